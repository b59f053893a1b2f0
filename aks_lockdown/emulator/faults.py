"""Fault rules (deterministic under the seed) and ARM's per-subscription throttling buckets."""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("status", "reset", "fail_operation", "delay", "error")


@dataclass
class FaultRule:
    """Match method + path regex; fire `count` times (or with `probability`); then do `action`:
    status (429/500/503 with optional retry_after), reset (close without answering), fail_operation
    (the next long operation the request starts ends Failed with code/message), delay (seconds,
    then serve normally), error (status + ARM code + message)."""

    action: str
    method: str = "*"
    path: str = ".*"
    count: int | None = None
    probability: float | None = None
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after: int | None = None
    seconds: float = 0.0
    id: int = 0
    fired: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _re: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, not {self.action!r}")
        if self.action in ("status", "error") and not self.status:
            self.status = 500 if self.action == "status" else 400
        self._re = re.compile(self.path, re.IGNORECASE)

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        assert self._re is not None
        if not self._re.search(path):
            return False
        if self.count is not None and self.fired >= self.count:
            return False
        # Probability draws come from the rule's own RNG (seeded from the emulator seed and the rule id),
        # so a rule's firing pattern does not depend on other traffic.
        return self.probability is None or self._rng.random() < self.probability

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


class Faults:
    def __init__(self, seed: int):
        self.seed = seed
        self.rules: list[FaultRule] = []
        self.lock = threading.Lock()
        self._next = 1

    def add(self, **rule: Any) -> FaultRule:
        with self.lock:
            r = FaultRule(**rule, id=self._next)
            r._rng = random.Random(f"{self.seed}:{r.id}")
            self._next += 1
            self.rules.append(r)
            return r

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def match(self, method: str, path: str, *, operation: bool = False) -> FaultRule | None:
        """First rule that fires. fail_operation rules are only considered for `operation=True`
        (when a long operation starts) and the others only for requests."""
        with self.lock:
            for r in self.rules:
                if (r.action == "fail_operation") != operation:
                    continue
                if r.matches(method, path):
                    r.fired += 1
                    return r
        return None


# ARM's current limits (learn.microsoft.com "request-limits-and-throttling"): per subscription and
# region, a token bucket per kind: (burst, refill per second).
BUCKETS = {"reads": (250.0, 25.0), "writes": (200.0, 10.0), "deletes": (200.0, 10.0)}


class Throttle:
    def __init__(self, scale: float = 1.0, enabled: bool = True):
        self.scale = scale
        self.enabled = enabled
        self.lock = threading.Lock()
        self._state: dict[tuple[str, str], tuple[float, float]] = {}

    @staticmethod
    def kind(method: str) -> str:
        m = method.upper()
        if m in ("GET", "HEAD"):
            return "reads"
        return "deletes" if m == "DELETE" else "writes"

    def take(self, subscription: str, method: str) -> tuple[bool, int, int]:
        """(allowed, remaining, retry_after seconds)."""
        kind = self.kind(method)
        burst, rate = BUCKETS[kind]
        burst *= self.scale
        rate *= self.scale
        now = time.monotonic()
        with self.lock:
            tokens, last = self._state.get((subscription, kind), (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if not self.enabled:
                return True, int(tokens), 0
            if tokens < 1.0:
                self._state[(subscription, kind)] = (tokens, now)
                wait = max(1, int((1.0 - tokens) / rate + 0.999)) if rate > 0 else 60
                return False, 0, wait
            tokens -= 1.0
            self._state[(subscription, kind)] = (tokens, now)
            return True, int(tokens), 0

    def reset(self) -> None:
        with self.lock:
            self._state.clear()

"""Emulator settings and the operation duration table (durations.json: data the AKS part reads too)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

Profile = Literal["fast", "realistic"]
DURATIONS_FILE = Path(__file__).with_name("durations.json")
# Real Network RP's Retry-After: 10 and growing while polling (see the firewall recording).
BASE_RETRY_AFTER = 10.0


@cache
def duration_table() -> dict[str, dict[str, tuple[float, str]]]:
    """{profile: {key: (seconds, source)}}; fast has every realistic key at 0 s."""
    raw = json.loads(DURATIONS_FILE.read_text())
    realistic = {k: (float(v[0]), str(v[1])) for k, v in raw["realistic"].items()}
    fast = {k: (0.0, "fast profile") for k in realistic}
    fast.update({k: (float(v[0]), str(v[1])) for k, v in raw.get("fast", {}).items()})
    # The principal delay is a visibility window, not an operation: fast means none.
    return {"realistic": realistic, "fast": fast}


@dataclass
class EmulatorConfig:
    profile: Profile = "fast"
    time_scale: float = 1.0
    seed: int = 0
    principal_delay: float | None = None  # seconds, unscaled; None = the profile's figure
    cloud: str = "AzureCloud"
    conflict_status: int = 409  # 409 AnotherOperationInProgress, or 429 RetryableErrorDueToAnotherOperation
    overrides: dict[str, float] = field(default_factory=dict)  # unscaled seconds per key
    throttling: bool = True
    throttle_scale: float = 1.0  # multiplies bucket sizes and refill rates
    # Benchmarks at a small time scale: send the unrounded poll delay as retry-after-ms instead of
    # a whole-second Retry-After (which would add up to a second per poll). Off: real ARM's headers.
    precise_retry_after: bool = False

    def __post_init__(self) -> None:
        if self.profile not in ("fast", "realistic"):
            raise ValueError(f"profile must be fast or realistic, not {self.profile!r}")
        if self.time_scale < 0:
            raise ValueError("time_scale must be >= 0")

    def duration(self, key: str) -> float:
        """Seconds for an operation kind, scaled. Unknown keys fall back to the base key before the
        first dot-suffix ("x.put.attached" -> "x.put") and then to 0."""
        if key in self.overrides:
            return self.overrides[key] * self.time_scale
        table = duration_table()[self.profile]
        while key not in table and "." in key[key.find(".") + 1 :]:
            key = key.rsplit(".", 1)[0]
        return table.get(key, (0.0, ""))[0] * self.time_scale

    def principal_visible_after(self) -> float:
        if self.principal_delay is not None:
            return self.principal_delay * self.time_scale
        return self.duration("principalDelay")

    def poll_delay(self, elapsed: float, remaining: float) -> float:
        """The poll delay real ARM would ask for (10, 20, 40 ... s as it grows it), scaled and capped
        at the time left (the recording shows ARM capping too)."""
        scaled_elapsed = elapsed / self.time_scale if self.time_scale else 0.0
        step = BASE_RETRY_AFTER * (2 ** min(5, int(scaled_elapsed // 20))) if scaled_elapsed > 0 else 10.0
        return min(step * self.time_scale, max(remaining, 0.0))

    def retry_after(self, elapsed: float, remaining: float) -> int:
        """Retry-After in whole seconds, never below 1 (0 makes azure-core wait 30 s)."""
        return max(1, math.ceil(self.poll_delay(elapsed, remaining)))

    def poll_headers(self, elapsed: float, remaining: float) -> dict[str, str]:
        if self.precise_retry_after:
            # azure-core's poller reads retry-after-ms when Retry-After is absent; the generated
            # clients would reject a decimal Retry-After on the initial response.
            return {"retry-after-ms": str(max(10, round(self.poll_delay(elapsed, remaining) * 1000)))}
        return {"Retry-After": str(self.retry_after(elapsed, remaining))}

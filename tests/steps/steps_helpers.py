"""A test-only StepContext that implements the protocol directly (no engine), and helpers.

The context's write() calls begin() and waits on the poller, as the engine does, and records every
write so tests can count them; it does not retry, classify errors or persist state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from aks_lockdown.config import Config
from aks_lockdown.engine.step import TERMINAL_STATES, Diff, PlannedWrite, Poller, Step

DEPLOYMENT = "steps-test"


class StubClients:
    """For desired()/pure tests: the only thing they read from clients is the subscription."""

    subscription_id = "00000000-0000-4000-8000-000000000001"


class FakeContext:
    def __init__(self, config: Config, clients: Any = None, *, deployment: str = DEPLOYMENT) -> None:
        self.config = config
        self.clients = clients if clients is not None else StubClients()
        self.deployment = deployment
        self.tags = {"managed-by": "aks-lockdown", "aks-lockdown-deployment": deployment}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.created: set[str] = set()
        self.adopted: set[str] = set()
        self.writes: list[tuple[str, str]] = []
        self.progress_messages: list[str] = []
        self.batches: list[int] = []  # the size of each write_many

    def write(
        self, resource_id: str, operation: str, begin: Callable[[], Any], *, description: str = ""
    ) -> Any:
        self.writes.append((resource_id, operation))
        result = begin()
        if isinstance(result, Poller):
            result = result.result()
        if operation == "create":
            self.created.add(resource_id.lower())
        elif operation == "delete":
            self.created.discard(resource_id.lower())
        return result

    def write_many(self, writes: Sequence[PlannedWrite]) -> list[Any]:
        """Every begin() first, then every poller (as the engine does); the first error after all."""
        self.batches.append(len(writes))
        handles: list[Any] = []
        errors: list[Exception] = []
        for w in writes:
            self.writes.append((w.resource_id, w.operation))
            try:
                handles.append(w.begin())
            except Exception as exc:
                errors.append(exc)
                handles.append(exc)
        results: list[Any] = []
        for w, handle in zip(writes, handles, strict=True):
            if isinstance(handle, Exception):
                results.append(None)
                continue
            try:
                results.append(handle.result() if isinstance(handle, Poller) else handle)
            except Exception as exc:
                errors.append(exc)
                results.append(None)
            if w.operation == "create":
                self.created.add(w.resource_id.lower())
            elif w.operation == "delete":
                self.created.discard(w.resource_id.lower())
        if errors:
            raise errors[0]
        return results

    def wait_for(self, resource_id: str, read_state: Callable[[], str], *, description: str = "") -> str:
        deadline = time.monotonic() + 120
        while True:
            state = read_state()
            if state in TERMINAL_STATES or not state:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"{resource_id} still {state}")
            time.sleep(0.2)

    def progress(self, message: str, *, resource_id: str = "") -> None:
        self.progress_messages.append(message)

    def mark_adopted(self, resource_id: str) -> None:
        self.adopted.add(resource_id.lower())

    def created_by_deployment(self, resource_id: str) -> bool:
        return resource_id.lower() in self.created


def converge(ctx: FakeContext, steps: list[type[Step]]) -> dict[str, Diff]:
    """What the runner does, minus state: check, apply when pending, outputs for the next steps."""
    diffs = {}
    for cls in steps:
        step = cls(ctx)
        diff = step.check()
        diffs[cls.name] = diff
        ctx.outputs[cls.name] = dict(step.apply(diff)) if diff.pending else dict(diff.outputs)
    return diffs


def rollback(ctx: FakeContext, steps: list[type[Step]]) -> None:
    for cls in reversed(steps):
        cls(ctx).rollback()


def emulator_available() -> bool:
    try:
        from aks_lockdown.emulator import (
            Emulator,  # noqa: F401
            server,
        )

        server._load_providers()
    except Exception:
        return False
    return True


def aks_available() -> bool:
    try:
        import aks_lockdown.emulator.containerservice  # noqa: F401
    except Exception:
        return False
    return True


def writes_of(emu: Any, since: float) -> list[dict[str, Any]]:
    """Every write the emulator saw since ``since`` (PUT/PATCH/DELETE, and POSTs that are not reads)."""
    return [
        r
        for r in emu.requests(since=since)
        if r["method"] in ("PUT", "PATCH", "DELETE")
        or (r["method"] == "POST" and "runCommand" not in r["path"] and "token" not in r["path"].lower())
    ]

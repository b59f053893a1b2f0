"""Progress events: the engine emits them, the CLI's displays (rich, plain, JSON lines) render them.

Steps never print; they call ``ctx.progress`` and the runner turns that into a ``Progress`` event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from aks_lockdown.engine.step import Diff


@dataclass(frozen=True)
class Event:
    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["event"] = type(self).__name__
        return data


@dataclass(frozen=True)
class RunStarted(Event):
    deployment: str
    command: str  # "deploy", "teardown", "plan"
    steps: tuple[tuple[str, str], ...]  # (name, title) in order


@dataclass(frozen=True)
class StepChecking(Event):
    step: str


@dataclass(frozen=True)
class StepPlanned(Event):
    step: str
    diff: Diff


@dataclass(frozen=True)
class WriteStarted(Event):
    step: str
    resource_id: str
    operation: str
    description: str = ""


@dataclass(frozen=True)
class Progress(Event):
    step: str
    message: str
    resource_id: str = ""
    elapsed: float = 0.0


@dataclass(frozen=True)
class WriteFinished(Event):
    step: str
    resource_id: str
    operation: str
    elapsed: float


@dataclass(frozen=True)
class RetryScheduled(Event):
    step: str
    code: str
    message: str
    attempt: int
    delay: float


@dataclass(frozen=True)
class StepDone(Event):
    step: str
    changed: bool
    elapsed: float
    outputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepFailed(Event):
    step: str
    error: str


@dataclass(frozen=True)
class StepRollingBack(Event):
    """Teardown (or --rollback-on-failure) is removing what this deployment created in a step."""

    step: str


@dataclass(frozen=True)
class RunFinished(Event):
    ok: bool
    elapsed: float
    summary: Mapping[str, Any] = field(default_factory=dict)


EventSink = Callable[[Event], None]


def discard(event: Event) -> None:
    """An event sink that ignores everything (library use, tests)."""

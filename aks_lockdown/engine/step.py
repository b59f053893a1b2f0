"""The step contract: what the engine runs and what every file in steps/ implements.

The engine knows nothing of Azure. A step turns config (and earlier steps' outputs) into a desired
state, reads Azure in ``check()``, converges in ``apply()`` and removes what this deployment created in
``rollback()``. Every write goes through ``StepContext.write`` so the engine can record the intent
before the request and the result after it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

Action = Literal["create", "update", "delete", "wait", "none"]
Operation = Literal["create", "update", "delete", "action"]
T = TypeVar("T")

TERMINAL_STATES = frozenset({"Succeeded", "Failed", "Canceled"})


@dataclass(frozen=True)
class FieldChange:
    path: str  # dotted, e.g. "properties.routes[default].nextHopIpAddress"
    current: Any
    desired: Any


@dataclass(frozen=True)
class ResourceChange:
    """One resource's difference between Azure and the desired state."""

    action: Action
    resource_id: str
    kind: str  # the ARM type, e.g. "Microsoft.Network/virtualNetworks"
    fields: tuple[FieldChange, ...] = ()
    # Why, in words an operator understands: "found Failed: will be written again",
    # "drift: route 'fw-internet' removed out of band", "found Updating: a previous run's operation".
    note: str = ""


@dataclass(frozen=True)
class Diff:
    changes: tuple[ResourceChange, ...] = ()
    # What check() observed, usable as the step's outputs when nothing differs (no second read).
    outputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return any(c.action != "none" for c in self.changes)

    def counts(self) -> tuple[int, int, int]:
        """(to add, to change, to destroy), as Terraform's plan summary counts them."""
        add = sum(c.action == "create" for c in self.changes)
        change = sum(c.action in ("update", "wait") for c in self.changes)
        destroy = sum(c.action == "delete" for c in self.changes)
        return add, change, destroy


@runtime_checkable
class Poller(Protocol):
    """What a long operation looks like to the engine (azure-core's LROPoller fits)."""

    def done(self) -> bool: ...

    def result(self, timeout: float | None = None) -> Any: ...


@dataclass(frozen=True)
class PlannedWrite:
    """One write of a batch for ``StepContext.write_many``: the arguments of ``write()``."""

    resource_id: str
    operation: Operation
    begin: Callable[[], Any]
    description: str = ""


class StepContext(Protocol):
    """What the engine hands each step. Implemented by the runner."""

    config: Any  # aks_lockdown.config.Config
    clients: Any  # aks_lockdown.arm.clients.ClientFactory
    deployment: str
    tags: Mapping[str, str]  # managed-by=aks-lockdown, aks-lockdown-deployment=<name>
    outputs: Mapping[str, Mapping[str, Any]]  # earlier steps' outputs, by step name

    def write(
        self,
        resource_id: str,
        operation: Operation,
        begin: Callable[[], T],
        *,
        description: str = "",
    ) -> Any:
        """Record the intent, call ``begin()``; if it returns a Poller, wait for it with progress events;
        record the result. Returns the poller's result (or ``begin()``'s return value)."""
        ...

    def write_many(self, writes: Sequence[PlannedWrite]) -> list[Any]:
        """Independent writes (distinct resources) that may run at the same time in Azure: record every
        intent before any request, call each ``begin()`` in order, wait for all the pollers together
        (with progress events) and record each result as it lands. Returns the results in the order of
        ``writes``. When some fail, the others are still awaited and recorded, then the first error
        (in time) is raised."""
        ...

    def wait_for(self, resource_id: str, read_state: Callable[[], str], *, description: str = "") -> str:
        """Wait, with progress events and without writing, until ``read_state()`` returns a terminal
        provisioning state (a previous run's operation still in flight). Returns that state."""
        ...

    def progress(self, message: str, *, resource_id: str = "") -> None: ...

    def mark_adopted(self, resource_id: str) -> None:
        """This resource existed before the deployment touched it: teardown must never delete it."""
        ...

    def created_by_deployment(self, resource_id: str) -> bool:
        """True when the state says this deployment created the resource (teardown may delete it)."""
        ...


class Step(ABC):
    name: ClassVar[str]  # short, stable, used in state and CLI: "vnet"
    title: ClassVar[str]  # for people: "Virtual network"
    # A container step (the resource group): when this deployment created it, teardown deletes it in
    # one long operation instead of rolling back every later step.
    contains_later_steps: ClassVar[bool] = False

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx

    @abstractmethod
    def desired(self) -> Mapping[str, Any]:
        """The desired state, JSON-serialisable and deterministic; its fingerprint makes state stale."""

    @abstractmethod
    def check(self) -> Diff:
        """Read Azure (GETs only) and report what differs from ``desired()``."""

    @abstractmethod
    def apply(self, diff: Diff) -> Mapping[str, Any]:
        """Converge (writes only through ``ctx.write``); return outputs (IDs, addresses)."""

    @abstractmethod
    def rollback(self) -> None:
        """Delete, through ``ctx.write(..., "delete", ...)``, only what ``ctx.created_by_deployment``
        says this deployment created. A resource already gone counts as deleted."""

    def resource_ids(self) -> list[str]:
        """The deterministic IDs of the resources this step manages (for status and teardown)."""
        return []

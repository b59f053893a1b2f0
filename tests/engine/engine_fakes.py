"""Plain-Python stand-ins for Azure: a fake cloud (optionally kept in a JSON file so a killed subprocess
and the test share it), fake long-operation pollers, and steps built on them. No Azure anywhere."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aks_lockdown.engine.events import Event
from aks_lockdown.engine.retry import ErrorInfo
from aks_lockdown.engine.runner import Runner
from aks_lockdown.engine.state import LocalStateStore
from aks_lockdown.engine.step import Diff, FieldChange, ResourceChange, Step

SUB = "/subscriptions/00000000-0000-0000-0000-000000000000"
RG = f"{SUB}/resourceGroups/rg-test"


def rid(kind: str, name: str, rg: str = RG) -> str:
    return f"{rg}/providers/Fake.Things/{kind}/{name}"


class Kill(BaseException):
    """Stands in for kill -9: not an Exception, so nothing on the way up records anything."""


class CloudError(Exception):
    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        status: int | None = 400,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.info = ErrorInfo(code, message or code, retryable, retry_after, status)


def classify(exc: BaseException) -> ErrorInfo | None:
    return exc.info if isinstance(exc, CloudError) else None


class FakeCloud:
    """Resources by ID with a provisioning state that advances one tick per poll.

    ``hooks[(point, resource_id)]`` run at: "apply" (the step is about to write), "begin" (inside
    begin(), before the cloud changes), "poll" (each done() while in flight), "result" (the operation
    finished in the cloud, before the engine sees the result). ``faults[resource_id]`` is a list of
    exceptions raised by the next writes to that resource.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.resources: dict[str, dict[str, Any]] = {}
        self.creates: dict[str, int] = {}
        self.deletes: dict[str, int] = {}
        self.writes: list[tuple[str, str]] = []
        self.hooks: dict[tuple[str, str], Callable[[], None]] = {}
        self.faults: dict[str, list[BaseException]] = {}
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            self.resources, self.creates, self.deletes = data["resources"], data["creates"], data["deletes"]
            self.writes = [tuple(w) for w in data["writes"]]

    def _save(self) -> None:
        if self.path is None:
            return
        data = {
            "resources": self.resources,
            "creates": self.creates,
            "deletes": self.deletes,
            "writes": self.writes,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)

    def hook(self, point: str, resource_id: str) -> None:
        fn = self.hooks.get((point, resource_id))
        if fn is not None:
            fn()

    def _fault(self, resource_id: str) -> None:
        pending = self.faults.get(resource_id)
        if pending:
            raise pending.pop(0)

    # reads
    def get(self, resource_id: str) -> dict[str, Any] | None:
        found = self.resources.get(resource_id)
        return dict(found) if found else None

    def read_state(self, resource_id: str) -> str:
        self.tick(resource_id)
        found = self.resources.get(resource_id)
        return found["state"] if found else "Succeeded"

    # writes
    def begin_put(self, resource_id: str, props: Mapping[str, Any], ticks: int = 0) -> Any:
        self.hook("begin", resource_id)
        self._fault(resource_id)
        self.writes.append(("put", resource_id))
        if resource_id not in self.resources:
            self.creates[resource_id] = self.creates.get(resource_id, 0) + 1
        state = "Creating" if ticks else "Succeeded"
        self.resources[resource_id] = {"props": dict(props), "state": state, "ticks": ticks}
        self._save()
        if ticks:
            return FakePoller(self, resource_id)
        self.hook("result", resource_id)
        return {"id": resource_id, "props": dict(props)}

    def begin_delete(self, resource_id: str, ticks: int = 0) -> Any:
        self.hook("begin", resource_id)
        self._fault(resource_id)
        self.writes.append(("delete", resource_id))
        if resource_id not in self.resources:
            raise CloudError("ResourceNotFound", f"{resource_id} not found", status=404)
        self.deletes[resource_id] = self.deletes.get(resource_id, 0) + 1
        if ticks:
            self.resources[resource_id].update(state="Deleting", ticks=ticks)
            self._save()
            return FakePoller(self, resource_id)
        self._remove(resource_id)
        return None

    def _remove(self, resource_id: str) -> None:
        # Deleting a container deletes what is inside it, as deleting a resource group does.
        prefix = resource_id.lower() + "/"
        for key in [k for k in self.resources if k == resource_id or k.lower().startswith(prefix)]:
            del self.resources[key]
        self._save()

    def tick(self, resource_id: str) -> None:
        found = self.resources.get(resource_id)
        if not found or found["ticks"] <= 0:
            return
        found["ticks"] -= 1
        if found["ticks"] == 0:
            if found["state"] == "Deleting":
                self._remove(resource_id)
                return
            found["state"] = "Succeeded"
        self._save()


class FakePoller:
    def __init__(self, cloud: FakeCloud, resource_id: str) -> None:
        self.cloud = cloud
        self.resource_id = resource_id

    def done(self) -> bool:
        self.cloud.hook("poll", self.resource_id)
        self.cloud.tick(self.resource_id)
        found = self.cloud.resources.get(self.resource_id)
        return found is None or found["state"] in ("Succeeded", "Failed")

    def result(self, timeout: float | None = None) -> Any:
        self.cloud.hook("result", self.resource_id)
        found = self.cloud.get(self.resource_id)
        if found and found["state"] == "Failed":
            raise CloudError("ProvisioningFailed", "the long operation failed")
        return found


def resource_step(
    name: str,
    resource_id: str,
    *,
    ticks: int = 0,
    container: bool = False,
    uses: str | None = None,
    adopt: bool = True,
) -> type[Step]:
    """A step managing one fake resource whose props come from ``config[name]`` (a dict)."""

    class FakeStep(Step):
        contains_later_steps = container

        @property
        def cloud(self) -> FakeCloud:
            return self.ctx.clients

        def props(self) -> dict[str, Any]:
            props = dict(self.ctx.config.get(name, {}))
            if uses is not None:
                # An input from an earlier step's outputs; absent in a plan before that step exists.
                props["upstream"] = self.ctx.outputs.get(uses, {}).get("id", "(known after apply)")
            props["tags"] = dict(self.ctx.tags)
            return props

        def desired(self) -> Mapping[str, Any]:
            return {"id": resource_id, "props": self.props()}

        def check(self) -> Diff:
            current = self.cloud.get(resource_id)
            props = self.props()
            if current is None:
                return Diff((ResourceChange("create", resource_id, "Fake.Things/thing"),))
            if adopt and not self.ctx.created_by_deployment(resource_id):
                self.ctx.mark_adopted(resource_id)
            if current["state"] not in ("Succeeded", "Failed"):
                change = ResourceChange("wait", resource_id, "Fake.Things/thing", note="in flight")
                return Diff((change,))
            if current["state"] == "Failed":
                return Diff((ResourceChange("update", resource_id, "Fake.Things/thing", note="Failed"),))
            fields = tuple(
                FieldChange(k, current["props"].get(k), v)
                for k, v in props.items()
                if current["props"].get(k) != v
            )
            if fields:
                return Diff((ResourceChange("update", resource_id, "Fake.Things/thing", fields),))
            return Diff(
                (ResourceChange("none", resource_id, "Fake.Things/thing"),),
                outputs={"id": resource_id, "props": current["props"]},
            )

        def apply(self, diff: Diff) -> Mapping[str, Any]:
            props = self.props()
            for change in diff.changes:
                if change.action == "wait":
                    self.ctx.wait_for(resource_id, lambda: self.cloud.read_state(resource_id))
                    current = self.cloud.get(resource_id)
                    if current and current["state"] == "Succeeded" and current["props"] == props:
                        continue
                    change = ResourceChange("update", resource_id, "Fake.Things/thing")
                if change.action in ("create", "update"):
                    self.cloud.hook("apply", resource_id)
                    self.ctx.write(
                        resource_id,
                        change.action,
                        lambda: self.cloud.begin_put(resource_id, props, ticks),
                        description=f"{change.action} {name}",
                    )
            return {"id": resource_id, "props": props}

        def rollback(self) -> None:
            if not self.ctx.created_by_deployment(resource_id):
                return
            current = self.cloud.get(resource_id)
            if current is not None and current["state"] == "Deleting":
                # A previous run's delete is still running: wait for it rather than send another.
                self.ctx.wait_for(resource_id, lambda: self.cloud.read_state(resource_id))
                current = self.cloud.get(resource_id)
            if current is None:
                return  # already gone
            self.ctx.write(resource_id, "delete", lambda: self.cloud.begin_delete(resource_id, ticks))

        def resource_ids(self) -> list[str]:
            return [resource_id]

    FakeStep.name = name
    FakeStep.title = f"Fake {name}"
    FakeStep.__name__ = FakeStep.__qualname__ = f"FakeStep_{name}"
    return FakeStep


class FakeClock:
    """A monotonic clock that only moves when slept on; ``on_sleep`` callbacks let tests act
    mid-wait (send SIGINT, kill)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[int], None] | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


class CountingStore(LocalStateStore):
    def __init__(self, directory: Path, deployment: str) -> None:
        super().__init__(directory, deployment)
        self.saves = 0

    def save(self, state: Any) -> None:
        self.saves += 1
        super().save(state)


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


A = rid("as", "a")
B = rid("bs", "b")
C = rid("cs", "c")
CONFIG: dict[str, Any] = {"a": {"size": 1}, "b": {"color": "blue"}}


def pipeline(ticks: int = 0) -> list[type[Step]]:
    """A container (the "resource group") and two steps inside it, b using a's outputs."""
    return [
        resource_step("rg", RG, container=True, ticks=ticks),
        resource_step("a", A, ticks=ticks, uses="rg"),
        resource_step("b", B, ticks=ticks, uses="a"),
    ]


DEPLOYMENT = "demo"
RESUME = "python -m aks_lockdown deploy demo.toml"


def make_runner(
    state_dir: Path,
    steps: list[type[Step]],
    cloud: FakeCloud,
    config: dict[str, Any] | None = None,
    *,
    clock: FakeClock | None = None,
    sink: Recorder | None = None,
    store: LocalStateStore | None = None,
    **kwargs: Any,
) -> Runner:
    clock = clock or FakeClock()
    return Runner(
        deployment=DEPLOYMENT,
        steps=steps,
        config=config if config is not None else {},
        clients=cloud,
        store=store or LocalStateStore(state_dir, DEPLOYMENT),
        sink=sink or Recorder(),
        classify=classify,
        resume_command=RESUME,
        sleep=clock.sleep,
        clock=clock,
        **kwargs,
    )


def read_state_file(state_dir: Path, deployment: str = DEPLOYMENT) -> dict[str, Any]:
    return json.loads((state_dir / f"{deployment}.json").read_text())

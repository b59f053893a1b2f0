"""The engine's Runner on the blob backend: a real run's saves, lock and resume go through the lease."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from aks_lockdown.engine.runner import Runner
from aks_lockdown.engine.step import Diff, ResourceChange, Step
from aks_lockdown.errors import LockHeldError
from aks_lockdown.state_blob import BlobStateOptions, BlobStateStore

from .conftest import Azurite

pytestmark = pytest.mark.azurite

RG = "/subscriptions/0000/resourceGroups/rg"
FAST = BlobStateOptions(lease_seconds=15, heartbeat_seconds=1, retry_total=1, retry_backoff_seconds=0.2)


def thing(name: str, seen_locks: list[str] | None = None) -> type[Step]:
    """A step that creates one fake resource in ``ctx.clients`` (a dict standing in for Azure)."""
    resource_id = f"{RG}/providers/Fake.Things/things/{name}"

    class Thing(Step):
        def desired(self) -> Mapping[str, Any]:
            return {"id": resource_id}

        def check(self) -> Diff:
            if resource_id in self.ctx.clients:
                return Diff((ResourceChange("none", resource_id, "Fake.Things/things"),), {"id": resource_id})
            return Diff((ResourceChange("create", resource_id, "Fake.Things/things"),))

        def apply(self, diff: Diff) -> Mapping[str, Any]:
            if seen_locks is not None:
                # Mid-run, from another "machine": the deployment is locked, naming this run.
                other = BlobStateStore(**self.ctx.config["blob"])
                with pytest.raises(LockHeldError) as err:
                    other.acquire()
                seen_locks.append(str(err.value))
            self.ctx.write(resource_id, "create", lambda: self.ctx.clients.setdefault(resource_id, {}))
            return {"id": resource_id}

        def rollback(self) -> None:
            if self.ctx.created_by_deployment(resource_id):
                self.ctx.write(resource_id, "delete", lambda: self.ctx.clients.pop(resource_id, None))

    Thing.name = name
    Thing.title = f"Thing {name}"
    return Thing


def test_runner_deploys_and_tears_down_on_blob_state(azurite: Azurite, container: str) -> None:
    blob_args = {
        "account_url": azurite.account_url,
        "container": container,
        "blob_name": None,
        "deployment": "dep",
        "credential": azurite.credential(),
        "options": FAST,
    }
    cloud: dict[str, Any] = {}
    seen: list[str] = []
    store = BlobStateStore(**blob_args)

    def runner() -> Runner:
        return Runner(
            deployment="dep",
            steps=[thing("one"), thing("two", seen)],
            config={"blob": blob_args},
            clients=cloud,
            store=store,
            classify=lambda exc: None,
            sleep=lambda s: None,
        )

    assert runner().deploy().ok
    assert len(cloud) == 2
    assert seen and "is locked by pid" in seen[0] and "deploy" in seen[0]
    state = store.load()
    assert {n: s.status for n, s in state.steps.items()} == {"one": "done", "two": "done"}
    assert all(r.origin == "created" for r in state.resources.values())
    assert len(store.versions()) >= 2  # every save kept the version before it
    assert store.holder() is None  # released at the end of the run

    again = runner().deploy()
    assert again.ok and not again.changed
    assert runner().teardown().ok
    assert cloud == {}
    assert all(r.deleted for r in store.load().resources.values())

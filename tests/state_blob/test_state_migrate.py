"""``state migrate`` between the local and blob backends, both ways, against a real Azurite."""

from __future__ import annotations

from pathlib import Path

import pytest

from aks_lockdown.config import Config, DeploymentSection, StateSection
from aks_lockdown.engine.state import DeploymentState, LocalStateStore, WriteResult
from aks_lockdown.errors import ConfigError, LockHeldError, StateError
from aks_lockdown.state_blob import BlobStateOptions, BlobStateStore
from aks_lockdown.state_migrate import backends_for, migrate

from .conftest import Azurite

pytestmark = pytest.mark.azurite

FAST = BlobStateOptions(lease_seconds=15, heartbeat_seconds=1, retry_total=1, retry_backoff_seconds=0.2)
RG = "/subscriptions/0000/resourceGroups/aks-egress-rg"


def blob_store(azurite: Azurite, container: str, deployment: str = "dep") -> BlobStateStore:
    return BlobStateStore(
        azurite.account_url, container, None, deployment, azurite.credential(), options=FAST
    )


def realistic(deployment: str = "dep") -> DeploymentState:
    state = DeploymentState(deployment=deployment)
    step = state.step("resource_group")
    step.status = "done"
    step.fingerprint = "sha256:abc"
    step.outputs = {"id": RG, "location": "eastus", "ünïcode": "✓"}
    step.add_result(
        WriteResult(time="2026-11-24T00:00:00Z", operation="create", resource_id=RG, outcome="succeeded")
    )
    state.record_created(RG, "resource_group")
    state.record_adopted(f"{RG}/providers/Microsoft.Network/virtualNetworks/v", "vnet")
    state.step("vnet").status = "failed"
    return state


def saved_local(directory: Path, state: DeploymentState) -> LocalStateStore:
    store = LocalStateStore(directory, state.deployment)
    with store.lock("seed"):
        store.save(state)
    return store


def test_round_trip_local_blob_local(tmp_path: Path, azurite: Azurite, container: str) -> None:
    original = realistic()
    local = saved_local(tmp_path / "a", original)
    blob = blob_store(azurite, container)

    result = migrate(local, blob, "dep")
    assert (result.steps, result.resources, result.resumed) == (2, 2, False)
    assert blob.load().to_json() == original.to_json()
    # The source is a tombstone that refuses to load, naming the destination; the state is its .prev.
    with pytest.raises(StateError, match=f"migrated to {blob.location}"):
        local.load()
    assert LocalStateStore(tmp_path / "a", "dep").prev_path.read_bytes() == original.dumps().encode()
    assert blob.list_deployments() == ["dep"]

    back = LocalStateStore(tmp_path / "b", "dep")
    migrate(blob, back, "dep")
    assert back.load().to_json() == original.to_json()
    assert back.path.read_bytes() == original.dumps().encode()  # byte for byte
    with pytest.raises(StateError, match=f"migrated to {back.location}"):
        blob.load()
    assert blob.list_deployments() == []
    assert blob.load_previous() is not None and blob.load_previous().to_json() == original.to_json()  # type: ignore[union-attr]

    # And back over the tombstone it left: a tombstone is not a state, so it may be overwritten.
    migrate(back, local, "dep")
    assert local.load().to_json() == original.to_json()
    migrate(local, blob, "dep")
    assert blob.load().to_json() == original.to_json()


def test_refuses_to_overwrite_a_different_state(tmp_path: Path, azurite: Azurite, container: str) -> None:
    original = realistic()
    local = saved_local(tmp_path, original)
    blob = blob_store(azurite, container)
    other = DeploymentState(deployment="dep")
    other.step("x").status = "done"
    with blob.lock():
        blob.save(other)
    with pytest.raises(StateError, match="already holds a different state"):
        migrate(local, blob, "dep")
    assert local.load().to_json() == original.to_json()
    assert blob.load().to_json() == other.to_json()


def test_interrupted_migration_finishes(tmp_path: Path, azurite: Azurite, container: str) -> None:
    # As if a previous migrate wrote and verified the destination, then died before the tombstone.
    original = realistic()
    local = saved_local(tmp_path, original)
    blob = blob_store(azurite, container)
    with blob.lock():
        blob.save(original)
    result = migrate(local, blob, "dep")
    assert result.resumed
    with pytest.raises(StateError, match="migrated to"):
        local.load()
    # Running it yet again reports the finished migration instead of failing.
    assert migrate(local, blob, "dep").resumed


def test_locked_destination_leaves_everything_alone(tmp_path: Path, azurite: Azurite, container: str) -> None:
    original = realistic()
    local = saved_local(tmp_path, original)
    holder = blob_store(azurite, container)
    with holder.lock(command="deploy elsewhere"), pytest.raises(LockHeldError, match="deploy elsewhere"):
        migrate(local, blob_store(azurite, container), "dep")
    assert local.load().to_json() == original.to_json()
    assert not holder.exists()
    assert local.holder() is None  # the source lock was let go


def test_nothing_to_migrate_and_wrong_names(tmp_path: Path, azurite: Azurite, container: str) -> None:
    with pytest.raises(StateError, match="no state of 'dep'"):
        migrate(LocalStateStore(tmp_path, "dep"), blob_store(azurite, container), "dep")
    with pytest.raises(StateError, match="is for deployment 'other'"):
        migrate(LocalStateStore(tmp_path, "dep"), blob_store(azurite, container, "other"), "dep")
    with pytest.raises(StateError, match="the same"):
        migrate(LocalStateStore(tmp_path, "dep"), LocalStateStore(tmp_path, "dep"), "dep")


def test_backends_for_a_config(tmp_path: Path, azurite: Azurite, container: str) -> None:
    config = Config(
        deployment=DeploymentSection(name="dep"),
        state=StateSection(backend="local", account_url=azurite.account_url, container=container),
    )
    original = realistic()
    saved_local(tmp_path, original)
    source, dest = backends_for(config, tmp_path, azurite.credential(), to="blob", options=FAST)
    assert isinstance(source, LocalStateStore) and isinstance(dest, BlobStateStore)
    migrate(source, dest, "dep")
    source, dest = backends_for(config, tmp_path, azurite.credential(), to="local", options=FAST)
    migrate(source, dest, "dep")
    assert LocalStateStore(tmp_path, "dep").load().to_json() == original.to_json()
    with pytest.raises(ConfigError, match=r"state\.account_url: required for the blob state backend"):
        backends_for(Config(), tmp_path, None, to="blob")

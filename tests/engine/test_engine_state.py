"""The state file: schema, atomic writes, refusal of bad files and of secrets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aks_lockdown.engine import state as state_mod
from aks_lockdown.engine.state import (
    SCHEMA,
    DeploymentState,
    LocalStateStore,
    StateBackend,
    fingerprint,
    kind_from_id,
    list_deployments,
)
from aks_lockdown.errors import EXIT_BAD_INPUT, StateError


def sample_state(name: str = "demo", marker: str = "v1") -> DeploymentState:
    st = DeploymentState(deployment=name)
    step = st.step("vnet")
    step.status = "done"
    step.fingerprint = fingerprint({"cidr": "10.0.0.0/16"})
    step.outputs = {"id": "/subscriptions/s/resourceGroups/rg/providers/X.Y/z/vnet", "marker": marker}
    st.record_created("/subscriptions/s/resourceGroups/rg/providers/X.Y/z/vnet", "vnet")
    st.record_adopted("/subscriptions/s/resourceGroups/shared", "rg")
    return st


def test_round_trip_and_layout(tmp_path: Path) -> None:
    store = LocalStateStore(tmp_path, "demo")
    assert isinstance(store, StateBackend)
    assert not store.exists()
    fresh = store.load()
    assert fresh.deployment == "demo" and fresh.steps == {}

    store.save(sample_state())
    doc = json.loads(store.path.read_text())
    assert doc["schema"] == SCHEMA and doc["tool"] == "aks-lockdown" and doc["deployment"] == "demo"
    assert set(doc["steps"]["vnet"]) >= {"status", "fingerprint", "intent", "outputs", "history"}
    vnet = doc["resources"]["/subscriptions/s/resourceGroups/rg/providers/X.Y/z/vnet"]
    assert vnet["origin"] == "created" and vnet["step"] == "vnet" and vnet["kind"] == "X.Y/z"
    assert vnet["deleted"] is False and vnet["created_at"]
    assert doc["resources"]["/subscriptions/s/resourceGroups/shared"]["origin"] == "adopted"

    loaded = store.load()
    assert loaded.to_json() == doc
    assert loaded.created_by_deployment("/SUBSCRIPTIONS/s/resourcegroups/rg/providers/X.Y/z/VNET")
    assert not loaded.created_by_deployment("/subscriptions/s/resourceGroups/shared")
    assert (os.stat(store.path).st_mode & 0o777) == 0o600


def test_previous_version_kept(tmp_path: Path) -> None:
    store = LocalStateStore(tmp_path, "demo")
    store.save(sample_state(marker="v1"))
    assert not store.prev_path.exists()
    store.save(sample_state(marker="v2"))
    store.save(sample_state(marker="v3"))
    assert json.loads(store.prev_path.read_text())["steps"]["vnet"]["outputs"]["marker"] == "v2"
    assert store.load().steps["vnet"].outputs["marker"] == "v3"


def test_crash_between_temp_write_and_replace_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStateStore(tmp_path, "demo")
    store.save(sample_state(marker="v1"))
    store.save(sample_state(marker="v2"))
    before = store.path.read_bytes()
    real_replace = os.replace

    def crash(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        if Path(dst) == store.path:
            raise OSError("simulated crash before rename")
        real_replace(src, dst)

    monkeypatch.setattr(state_mod.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.save(sample_state(marker="v3"))
    monkeypatch.undo()

    assert store.path.read_bytes() == before
    assert store.load().steps["vnet"].outputs["marker"] == "v2"
    assert store.prev_path.exists()
    json.loads(store.prev_path.read_text())  # whole, valid
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_crash_after_temp_file_written_leaves_valid_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync of the temp file fails (the disk went away): nothing visible changes."""
    store = LocalStateStore(tmp_path, "demo")
    store.save(sample_state(marker="v1"))
    before = store.path.read_bytes()
    monkeypatch.setattr(state_mod.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("EIO")))
    with pytest.raises(OSError):
        store.save(sample_state(marker="v2"))
    monkeypatch.undo()
    assert store.path.read_bytes() == before


GOOD = sample_state().dumps()


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("{", "not valid JSON"),
        (GOOD[: len(GOOD) // 2], "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        ("[1, 2]", "not an aks-lockdown state file"),
        (json.dumps({"version": 4, "terraform_version": "1.9.0"}), "not an aks-lockdown state file"),
        (GOOD.replace('"schema": 1', '"schema": 2'), "unknown state schema version 2"),
        (GOOD.replace('"deployment": "demo"', '"deployment": "prod"'), "belongs to deployment 'prod'"),
        (GOOD.replace('"status": "done"', '"status": "sideways"'), "malformed state at steps.vnet.status"),
        (GOOD.replace('"origin": "created"', '"origin": "stolen"'), "malformed state at resources"),
        (GOOD.replace('"intent": null', '"intent": 7'), "malformed state at steps.vnet.intent"),
    ],
)
def test_bad_state_files_refused_and_untouched(tmp_path: Path, content: str | bytes, expect: str) -> None:
    store = LocalStateStore(tmp_path, "demo")
    raw = content if isinstance(content, bytes) else content.encode()
    store.path.write_bytes(raw)
    mtime = store.path.stat().st_mtime_ns
    with pytest.raises(StateError) as info:
        store.load()
    err = info.value
    assert err.exit_code == EXIT_BAD_INPUT
    assert expect in str(err)
    assert str(store.path) in str(err)
    assert "\n" not in err.one_line()
    assert store.path.read_bytes() == raw and store.path.stat().st_mtime_ns == mtime


def test_corrupt_file_message_points_at_previous_version(tmp_path: Path) -> None:
    store = LocalStateStore(tmp_path, "demo")
    store.save(sample_state())
    store.save(sample_state())
    store.path.write_text('{"schema": 1, "tool": "aks-lock')
    with pytest.raises(StateError, match=r"previous version is kept at .*demo\.json\.prev"):
        store.load()


@pytest.mark.parametrize(
    "key", ["admin_password", "clientSecret", "token", "kubeconfig_token", "sshPrivateKey"]
)
def test_secrets_never_saved(tmp_path: Path, key: str) -> None:
    store = LocalStateStore(tmp_path, "demo")
    store.save(sample_state())
    before = store.path.read_bytes()
    st = sample_state()
    st.step("aks").outputs = {"cluster": {key: "hunter2"}}
    with pytest.raises(StateError, match=rf"steps\.aks\.outputs\.cluster\.{key} looks like a secret"):
        store.save(st)
    assert store.path.read_bytes() == before


def test_secret_names_and_ids_are_not_secrets(tmp_path: Path) -> None:
    store = LocalStateStore(tmp_path, "demo")
    st = sample_state()
    st.step("kv").outputs = {"secret_name": "db", "token_id": "abc", "password": None}
    st.record_created(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/secrets/x", "kv"
    )
    store.save(st)
    assert store.load().steps["kv"].outputs["secret_name"] == "db"


def test_history_is_bounded() -> None:
    st = DeploymentState(deployment="demo")
    step = st.step("a")
    for i in range(state_mod.HISTORY_LIMIT + 15):
        step.add_result(state_mod.WriteResult(time=str(i), operation="update", resource_id="r", outcome="ok"))
    assert len(step.history) == state_mod.HISTORY_LIMIT
    assert step.history[-1].time == str(state_mod.HISTORY_LIMIT + 14)


def test_adopted_is_never_upgraded_to_created() -> None:
    st = DeploymentState(deployment="demo")
    st.record_adopted("/x/a", "s")
    st.record_created("/X/A", "s")
    assert not st.created_by_deployment("/x/a")


def test_fingerprint_is_canonical() -> None:
    a = fingerprint({"b": [1, 2], "a": {"y": 1, "x": "é"}})
    b = fingerprint({"a": {"x": "é", "y": 1}, "b": [1, 2]})
    assert a == b and a.startswith("sha256:")
    assert fingerprint({"b": [2, 1], "a": {"x": "é", "y": 1}}) != a
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        fingerprint({"a": object()})


def test_list_deployments(tmp_path: Path) -> None:
    LocalStateStore(tmp_path, "alpha").save(DeploymentState(deployment="alpha"))
    LocalStateStore(tmp_path, "beta").save(DeploymentState(deployment="beta"))
    LocalStateStore(tmp_path, "beta").save(DeploymentState(deployment="beta"))  # makes beta.json.prev
    (tmp_path / ".beta.json.123.tmp").write_text("x")
    (tmp_path / "alpha.lock").write_text("")
    assert list_deployments(tmp_path) == ["alpha", "beta"]
    assert LocalStateStore(tmp_path, "gamma").list_deployments() == ["alpha", "beta"]
    assert list_deployments(tmp_path / "missing") == []


@pytest.mark.parametrize("name", ["", "../etc", "a/b", "-x", "a" * 81, "name with space"])
def test_bad_deployment_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(StateError):
        LocalStateStore(tmp_path, name)


def test_save_refuses_another_deployments_state(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="deployment 'other'"):
        LocalStateStore(tmp_path, "demo").save(DeploymentState(deployment="other"))


@pytest.mark.parametrize(
    ("rid", "kind"),
    [
        ("/subscriptions/s/resourceGroups/rg", "Microsoft.Resources/resourceGroups"),
        (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v",
            "Microsoft.Network/virtualNetworks",
        ),
        (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/a",
            "Microsoft.Network/virtualNetworks/subnets",
        ),
        (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/providers/"
            "Microsoft.Authorization/roleAssignments/g",
            "Microsoft.Authorization/roleAssignments",
        ),
        ("fake-thing", ""),
    ],
)
def test_kind_from_id(rid: str, kind: str) -> None:
    assert kind_from_id(rid) == kind

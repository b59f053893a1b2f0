"""The state commands on the config's backend, local or blob, against a real Azurite: ``state migrate``
both ways, ``status``/``state show`` reading the blob, ``state unlock --force`` breaking another
process's lease. The blob is reached through AKS_LOCKDOWN_STATE_BLOB_CONNECTION_STRING (Azurite's
well-known development key: not a secret), as an operator with shared-key access would."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

# The Azurite fixtures of the blob backend's own tests, reused (tests/ is on sys.path under pytest).
from state_blob.conftest import (  # noqa: F401
    ACCOUNT,
    ACCOUNT_KEY,
    REPO_ROOT,
    Azurite,
    azurite,
    container,
    env_for_subprocess,
)

from aks_lockdown.cli import STATE_BLOB_CONNECTION_STRING_ENV, main
from aks_lockdown.commands import _common
from aks_lockdown.engine.state import DeploymentState, LocalStateStore, WriteResult
from aks_lockdown.engine.step import Diff, ResourceChange, Step
from aks_lockdown.state_blob import BlobStateOptions, BlobStateStore

pytestmark = pytest.mark.azurite

NAME = "eastus-walkthrough"  # config/eastus.toml's deployment
RG = "/subscriptions/sub/resourceGroups/aks-egress-rg"
LOCAL_STATE = 'backend = "local"\ndirectory = ".aks-lockdown"'


def blob_section(name: str) -> str:
    # The config names the real-Azure form of the account; the connection string says where it is.
    return (
        f'backend = "blob"\ndirectory = ".aks-lockdown"\n'
        f'account_url = "https://{ACCOUNT}.blob.core.windows.net"\ncontainer = "{name}"'
    )


def write_config(path: Path, state_section: str) -> None:
    text = (REPO_ROOT / "config" / "eastus.toml").read_text()
    assert LOCAL_STATE in text
    path.write_text(text.replace(LOCAL_STATE, state_section))


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, azurite: Azurite) -> Iterator[Path]:  # noqa: F811
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "sub")
    monkeypatch.setenv(
        STATE_BLOB_CONNECTION_STRING_ENV,
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={azurite.account_url};",
    )
    yield tmp_path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def deployed_state() -> DeploymentState:
    state = DeploymentState(deployment=NAME)
    step = state.step("resource_group")
    step.status = "done"
    step.outputs = {"id": RG, "location": "eastus"}
    step.add_result(
        WriteResult(time="2026-11-24T00:00:00Z", operation="create", resource_id=RG, outcome="succeeded")
    )
    state.record_created(RG, "resource_group")
    state.step("firewall").status = "done"
    state.step("firewall").outputs = {"private_ip": "10.42.2.4"}
    return state


def seed_local(directory: Path) -> DeploymentState:
    state = deployed_state()
    store = LocalStateStore(directory, NAME)
    with store.lock("seed"):
        store.save(state)
    return state


def blob_store(azurite: Azurite, container: str) -> BlobStateStore:  # noqa: F811
    return BlobStateStore(azurite.account_url, container, None, NAME, azurite.credential())


def test_migrate_to_blob_status_and_show_read_it_then_back_to_local(
    cwd: Path,
    azurite: Azurite,  # noqa: F811
    container: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    original = seed_local(cwd / ".aks-lockdown")
    write_config(cwd / "c.toml", blob_section(container))
    blob_location = f"{azurite.account_url}/{container}/{NAME}.json"

    # Not a terminal and no --yes: nothing moves.
    code, _, err = run_cli(capsys, "state", "migrate", "c.toml", "--to", "blob")
    assert code == 2 and "pass --yes" in one_error_line(err)
    assert not blob_store(azurite, container).exists()

    code, out, err = run_cli(capsys, "state", "migrate", "c.toml", "--to", "blob", "--yes")
    assert code == 0, err
    assert f"{NAME}: state moved from " in out and f"to {blob_location}: 2 steps, 1 resources" in out
    assert blob_store(azurite, container).load().to_json() == original.to_json()

    # status CONFIG reads the blob (the local file is only a tombstone now).
    code, out, err = run_cli(capsys, "status", "c.toml")
    assert code == 0, err
    assert f"deployment {NAME} ({blob_location}" in out
    assert "✓ firewall" in out and "private_ip: 10.42.2.4" in out
    code, out, err = run_cli(capsys, "status", "--config", "c.toml", "--output", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["steps"]["firewall"]["outputs"] == {"private_ip": "10.42.2.4"} and doc["lock"] is None

    for argv in (("state", "show", "c.toml"), ("state", "show", "--config", "c.toml")):
        code, out, err = run_cli(capsys, *argv)
        assert code == 0, err
        assert out == original.dumps()
    code, out, _ = run_cli(capsys, "state", "unlock", "c.toml")
    assert code == 0 and out.strip() == f"{NAME}: not locked"

    # --name is the local backend: its file is the tombstone, which names where the state went.
    code, _, err = run_cli(capsys, "state", "show", "--name", NAME)
    assert code == 2 and f"migrated to {blob_location}" in one_error_line(err)

    # And back: blob -> local, while the config still names the blob.
    code, out, err = run_cli(capsys, "state", "migrate", "c.toml", "--to", "local", "--yes")
    assert code == 0, err
    assert f"{NAME}: state moved from {blob_location} to " in out
    assert 'set [state] backend = "local"' in out
    code, _, err = run_cli(capsys, "state", "show", "c.toml")  # the blob is a tombstone now
    assert code == 2 and "migrated to" in one_error_line(err)

    write_config(cwd / "c.toml", LOCAL_STATE)
    code, out, err = run_cli(capsys, "state", "show", "c.toml")
    assert code == 0, err
    assert out == original.dumps()
    code, out, err = run_cli(capsys, "status", "c.toml")
    assert code == 0 and ".aks-lockdown" in out.splitlines()[0] and "✓ firewall" in out, err
    code, out, err = run_cli(capsys, "state", "show", "--name", NAME)
    assert code == 0 and out == original.dumps(), err


def test_unlock_force_breaks_a_lease_held_by_another_process(
    cwd: Path,
    azurite: Azurite,  # noqa: F811
    container: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_config(cwd / "c.toml", blob_section(container))
    holder_script = REPO_ROOT / "tests" / "state_blob" / "_holder.py"
    proc = subprocess.Popen(
        [sys.executable, str(holder_script), azurite.account_url, container, NAME, "hold"],
        stdout=subprocess.PIPE,
        env=env_for_subprocess(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert json.loads(line)["result"] == "locked", line
        pid = proc.pid

        code, out, err = run_cli(capsys, "status", "c.toml")
        assert code == 0, err
        assert f"locked by pid {pid}" in out and "hold-and-crash" in out

        # Without --force a live holder is left alone: one line, exit 2.
        code, _, err = run_cli(capsys, "state", "unlock", "c.toml")
        assert code == 2 and "use --force only if that run is hung" in one_error_line(err)
        assert blob_store(azurite, container).holder() is not None

        code, out, err = run_cli(capsys, "state", "unlock", "--config", "c.toml", "--force")
        assert code == 0, err
        assert f"{NAME}: lock released (it was held by pid {pid}" in out
        store = blob_store(azurite, container)
        assert store.holder() is None
        # The state the holder saved is intact and anyone may take the lock now.
        assert store.load().steps["s"].outputs == {"writer": pid}
        fast = BlobStateOptions(lease_seconds=15, heartbeat_seconds=1)
        mine = BlobStateStore(azurite.account_url, container, None, NAME, azurite.credential(), options=fast)
        with mine.lock("after unlock"):
            assert mine.holder() is not None
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_bad_input_is_one_line_and_exit_2(
    cwd: Path,
    container: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(cwd / "local.toml", LOCAL_STATE)
    write_config(cwd / "c.toml", blob_section(container))
    seeded = seed_local(cwd / ".aks-lockdown")

    cases = [
        (
            ("state", "migrate", "local.toml", "--to", "blob", "--yes"),
            "state.account_url and state.container",
        ),
        (("state", "migrate", "missing.toml", "--to", "blob", "--yes"), "missing.toml: no such config file"),
        (("state", "migrate", "c.toml", "--yes"), "required: --to"),
        (("state", "migrate", "c.toml", "--to", "s3", "--yes"), "invalid choice: 's3'"),
        (("state", "show", "c.toml", "--config", "c.toml"), "either as CONFIG or as --config"),
        (("state", "unlock", "--config", "c.toml", "--name", NAME), "either CONFIG or --name"),
        (("status", "c.toml", "--name", NAME), "either CONFIG or --name"),
    ]
    for argv, message in cases:
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and message in one_error_line(err), (argv, err)

    # The connection string must be for the account the config names, and well formed.
    monkeypatch.setenv(
        STATE_BLOB_CONNECTION_STRING_ENV, "AccountName=other;AccountKey=a2V5;BlobEndpoint=http://x"
    )
    code, _, err = run_cli(capsys, "state", "migrate", "c.toml", "--to", "blob", "--yes")
    assert code == 2 and f"'other', but state.account_url names '{ACCOUNT}'" in one_error_line(err)
    monkeypatch.setenv(STATE_BLOB_CONNECTION_STRING_ENV, f"AccountName={ACCOUNT}")
    code, _, err = run_cli(capsys, "status", "c.toml")
    assert code == 2 and "needs AccountKey or SharedAccessSignature" in one_error_line(err)
    monkeypatch.setenv(STATE_BLOB_CONNECTION_STRING_ENV, "garbage")
    code, _, err = run_cli(capsys, "state", "show", "c.toml")
    assert code == 2 and "not a storage connection string" in one_error_line(err)
    # Nothing moved.
    assert LocalStateStore(cwd / ".aks-lockdown", NAME).load().to_json() == seeded.to_json()


def test_the_help_names_the_backend_rules_and_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert STATE_BLOB_CONNECTION_STRING_ENV == _common.STATE_BLOB_CONNECTION_STRING_ENV
    for argv in (
        ("status",),
        ("teardown",),
        ("verify",),
        ("state",),
        ("state", "show"),
        ("state", "unlock"),
        ("state", "migrate"),
    ):
        assert main([*argv, "--help"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert STATE_BLOB_CONNECTION_STRING_ENV in out, argv
        assert "With --name, or no argument, it is always a local state file" in out, argv
    main(["state", "show", "--help"])
    assert "local backend only" in " ".join(capsys.readouterr().out.split())


def test_connection_string_account_from_a_path_style_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    # No AccountName: the account is read from the endpoint (Azurite's path style, or a host label).
    from aks_lockdown.config import load_config

    assert _common._account_of("http://127.0.0.1:10000/devstoreaccount1") == "devstoreaccount1"
    assert _common._account_of("http://localhost:10000/devstoreaccount1/") == "devstoreaccount1"
    assert _common._account_of("https://acct.blob.core.windows.net") == "acct"
    path = REPO_ROOT / "config" / "eastus.toml"
    config = load_config(path).config
    blob = config.state.model_copy(
        update={"backend": "blob", "account_url": "https://acct.blob.core.windows.net", "container": "c"}
    )
    config = config.model_copy(update={"state": blob})
    monkeypatch.setenv(
        STATE_BLOB_CONNECTION_STRING_ENV,
        "BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=x",
    )
    effective, credential = _common.blob_access(config)
    assert effective.state.account_url == "https://acct.blob.core.windows.net"
    assert type(credential).__name__ == "AzureSasCredential"


class _Thing(Step):
    """A step whose "resource" lives in WORLD: deploy, verify and teardown with no Azure at all."""

    def desired(self) -> Mapping[str, Any]:
        return {"name": self.name}

    @property
    def rid(self) -> str:
        return f"{RG}/providers/Fake/things/{self.name}"

    def resource_ids(self) -> list[str]:
        return [self.rid]

    def check(self) -> Diff:
        if self.rid in WORLD:
            return Diff(outputs={"thing": self.name})
        return Diff((ResourceChange("create", self.rid, "Fake/things"),))

    def apply(self, diff: Diff) -> Mapping[str, Any]:
        self.ctx.write(self.rid, "create", lambda: WORLD.__setitem__(self.rid, {}))
        return {"thing": self.name}

    def rollback(self) -> None:
        if self.ctx.created_by_deployment(self.rid):
            self.ctx.write(self.rid, "delete", lambda: WORLD.pop(self.rid, None))


class Network(_Thing):
    name = "network"
    title = "Network"


class Firewall(_Thing):
    name = "firewall"
    title = "Firewall"


WORLD: dict[str, dict[str, Any]] = {}


def test_deploy_verify_teardown_keep_the_state_in_the_blob(
    cwd: Path,
    azurite: Azurite,  # noqa: F811
    container: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aks_lockdown.commands import verify

    WORLD.clear()
    monkeypatch.setattr(_common, "pipeline_steps", lambda config: [Network, Firewall])
    seen: list[Mapping[str, Any]] = []

    def fake_verify(config: Any, clients: Any, *, outputs: Mapping[str, Any], sink: Any, **kw: Any) -> bool:
        seen.append(outputs)
        return True

    monkeypatch.setattr(verify, "_impl", lambda: fake_verify)
    write_config(cwd / "c.toml", blob_section(container))

    code, _, err = run_cli(capsys, "deploy", "c.toml", "--yes", "--no-verify")
    assert code == 0, err
    store = blob_store(azurite, container)
    assert store.load().steps["firewall"].status == "done"
    assert not (cwd / ".aks-lockdown" / f"{NAME}.json").exists()  # nothing local

    code, _, err = run_cli(capsys, "verify", "c.toml")
    assert code == 0, err
    assert seen == [{"network": {"thing": "network"}, "firewall": {"thing": "firewall"}}]

    code, _, err = run_cli(capsys, "teardown", "c.toml", "--yes")
    assert code == 0, err
    assert WORLD == {}
    assert all(rec.deleted for rec in blob_store(azurite, container).load().resources.values())


def test_a_remembered_config_never_chooses_the_backend(tmp_path: Path) -> None:
    # --name (or no argument) is the local backend even when the config deploy remembered says blob.
    import argparse

    write_config(tmp_path / "c.toml", blob_section("somecontainer"))
    seed_local(tmp_path)
    _common.remember_config(tmp_path, NAME, tmp_path / "c.toml")
    args = argparse.Namespace(config=None, name=NAME, state_dir=str(tmp_path))
    resolved = _common.resolve_deployment(args, need_config=True)
    assert resolved.loaded is not None and resolved.loaded.config.state.backend == "blob"
    assert resolved.backend_config is None
    store = _common.store(resolved.directory, resolved.name, resolved.backend_config)
    assert isinstance(store, LocalStateStore)

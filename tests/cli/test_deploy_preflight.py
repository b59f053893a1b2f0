"""deploy's preflight (a service principal's secret must be in the environment before anything is
sent) and the pace of resume waits on an emulator (state_poll_interval scaled to its time), through the
real command line in-process against an in-process emulator."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aks_lockdown.cli import main
from aks_lockdown.commands import _common as common

ROOT = Path(__file__).resolve().parents[2]
SECRET_ENV = "AKS_LOCKDOWN_TEST_SP_SECRET"
SP_IDENTITY = f"""[cluster.identity]
type = "service-principal"
client_id = "11111111-2222-4333-8444-555555555555"
object_id = "66666666-7777-4888-9999-000000000000"
secret_env = "{SECRET_ENV}"
"""


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Any]:
    from aks_lockdown.emulator import Emulator

    with Emulator(data_dir=tmp_path / "emu", profile="fast") as emulator:
        yield emulator


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_TENANT_ID", common.STEPS_ENV, SECRET_ENV):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def sp_config(workdir: Path) -> Path:
    text = (ROOT / "config" / "eastus.toml").read_text()
    head, _, rest = text.partition("[cluster.identity]")
    rest = rest[rest.index("\n[", 1) :]  # drop the user-assigned identity section
    path = workdir / "sp.toml"
    path.write_text(head + SP_IDENTITY + rest)
    return path


def deploy_argv(config: Path, emu: Any) -> list[str]:
    return [
        "deploy",
        str(config),
        "--arm-endpoint",
        emu.arm_endpoint,
        "--ca-bundle",
        emu.ca_bundle,
        "--yes",
        "--no-verify",
        "--output",
        "json",
    ]


@pytest.mark.parametrize("value", [None, "", "   "])
def test_service_principal_secret_missing_is_refused_before_any_request(
    workdir: Path,
    emu: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    value: str | None,
) -> None:
    config = sp_config(workdir)
    if value is not None:
        monkeypatch.setenv(SECRET_ENV, value)
    before = len(emu.requests())
    assert main(deploy_argv(config, emu)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert str(config) in err and "cluster.identity.secret_env" in err and SECRET_ENV in err
    assert emu.requests()[before:] == []  # not a read, not a token, not a write
    assert not (workdir / ".aks-lockdown" / "eastus-walkthrough.json").exists()


def test_service_principal_secret_set_passes_the_preflight(
    workdir: Path, emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = sp_config(workdir)
    monkeypatch.setenv(SECRET_ENV, "not-a-real-secret")
    monkeypatch.setenv(common.STEPS_ENV, "resource_group")
    assert main(deploy_argv(config, emu)) == 0
    assert emu.requests(method="PUT", path="/resourceGroups/aks-egress-rg$")


def test_user_assigned_identity_needs_no_secret(
    workdir: Path, emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(common.STEPS_ENV, "resource_group")
    config = workdir / "eastus.toml"
    config.write_text((ROOT / "config" / "eastus.toml").read_text())
    assert main(deploy_argv(config, emu)) == 0


# --- resume waits paced for the emulator's time ----------------------------------------------------


@pytest.mark.parametrize(("scale", "interval"), [(0.03, 0.25), (0.01, 0.25), (0.2, 1.0), (1.0, 5.0)])
def test_embedded_emulator_interval_is_scaled(scale: float, interval: float) -> None:
    assert common.emulator_state_poll_interval(scale) == pytest.approx(interval)


def test_where_carries_the_interval(tmp_path: Path) -> None:
    external = argparse.Namespace(emulator=False, arm_endpoint="https://127.0.0.1:1", ca_bundle="ca.pem")
    with common.target(external, None, tmp_path) as where:
        assert where.state_poll_interval == 1.0
    azure = argparse.Namespace(emulator=False, arm_endpoint=None)
    with common.target(azure, None, tmp_path) as where:
        assert where.state_poll_interval is None  # the runner's default, paced for Azure
    embedded = argparse.Namespace(emulator=True, time_scale=0.03, emulator_profile="fast")
    with common.target(embedded, None, tmp_path) as where:
        assert where.state_poll_interval == 0.25


def spy_runners(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    built: list[Any] = []
    real = common.runner

    def spy(**kwargs: Any) -> Any:
        built.append(real(**kwargs))
        return built[-1]

    monkeypatch.setattr(common, "runner", spy)
    return built


def test_deploy_on_an_external_emulator_polls_state_every_second(
    workdir: Path, emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(common.STEPS_ENV, "resource_group")
    built = spy_runners(monkeypatch)
    config = workdir / "eastus.toml"
    config.write_text((ROOT / "config" / "eastus.toml").read_text())
    assert main(deploy_argv(config, emu)) == 0
    assert [r.state_poll_interval for r in built] == [1.0]


def test_deploy_on_the_embedded_emulator_polls_state_in_scaled_time(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(common.STEPS_ENV, "resource_group")
    built = spy_runners(monkeypatch)
    config = workdir / "eastus.toml"
    config.write_text((ROOT / "config" / "eastus.toml").read_text())
    argv = ["deploy", str(config), "--emulator", "--emulator-profile", "fast", "--yes", "--no-verify"]
    assert main([*argv, "--output", "json", "--time-scale", "0.1"]) == 0
    assert [r.state_poll_interval for r in built] == [pytest.approx(0.5)]


def test_runner_default_is_kept_for_azure() -> None:
    from aks_lockdown.config import Config
    from aks_lockdown.engine.state import LocalStateStore

    config = Config()
    store = LocalStateStore(Path("unused"), config.deployment.name)
    runner = common.runner(config=config, clients=None, store=store, sink=lambda e: None, resume_command="")
    assert runner.state_poll_interval == 5.0

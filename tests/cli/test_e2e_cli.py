"""End to end through the real command line: ``deploy --emulator`` / ``status`` / ``plan`` /
``teardown`` of the resource-group and VNet steps, each command a separate process sharing the
emulator's world under the state directory, including a resume after SIGKILL mid-VNet-operation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _emulator_available() -> bool:
    import importlib

    try:
        return hasattr(importlib.import_module("aks_lockdown.emulator"), "Emulator")
    except ImportError:
        return False


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    assert _emulator_available(), "the ARM emulator must be importable"
    (tmp_path / "eastus.toml").write_text((ROOT / "config" / "eastus.toml").read_text())
    return tmp_path


def env() -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AKS_LOCKDOWN_"))}
    environ["AKS_LOCKDOWN_STEPS"] = "resource_group,vnet"
    environ["PYTHONUNBUFFERED"] = "1"
    return environ


def cli(workdir: Path, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aks_lockdown", *argv],
        cwd=workdir,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def state(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / ".aks-lockdown" / "eastus-walkthrough.json").read_text())


def test_deploy_kill_resume_plan_status_teardown(workdir: Path) -> None:
    # 1. deploy, killed with SIGKILL while the VNet's long operation is in flight (realistic: 10 s
    #    at time scale 0.3, about 3 s, so the kill lands mid-operation).
    # --no-verify: two steps of nine leave no cluster to verify.
    deploy = [
        "deploy",
        "eastus.toml",
        "--emulator",
        "--yes",
        "--no-verify",
        "--output",
        "json",
        "--time-scale",
        "0.3",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aks_lockdown", *deploy],
        cwd=workdir,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120
    try:
        for line in proc.stdout:
            event = json.loads(line)
            seen.append(event)
            if event["event"] == "WriteStarted" and event["step"] == "vnet":
                time.sleep(0.5)  # the PUT is answered, the operation runs in the emulator
                proc.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "no VNet write within 120 s"
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, (seen, proc.stderr.read() if proc.stderr else "")
    recorded = state(workdir)
    assert recorded["steps"]["resource_group"]["status"] == "done"
    assert recorded["steps"]["vnet"]["intent"] is not None  # the write in flight is on record

    # 2. status (no Azure needed) says what was in flight.
    status = cli(workdir, "status", "eastus.toml")
    assert status.returncode == 0, status.stderr
    assert "in flight" in status.stdout and "vnet" in status.stdout

    # 3. The same command again resumes: the VNet operation is found still running and waited for,
    #    never written a second time.
    resumed = cli(workdir, *deploy)
    assert resumed.returncode == 0, resumed.stderr
    run = events(resumed.stdout)
    vnet_writes = [e for e in run if e["event"] == "WriteStarted" and e["step"] == "vnet"]
    assert vnet_writes == []
    planned = [e for e in run if e["event"] == "StepPlanned" and e["step"] == "vnet"]
    # "wait" while Azure still reports Updating; "none" once the operation has finished (the VNet step
    # currently reports "none" for a VNet found Updating: see the CLI report).
    assert [c["action"] for c in planned[0]["diff"]["changes"]] in (["wait"], ["none"])
    finished = [e for e in run if e["event"] == "RunFinished"]
    assert finished and finished[-1]["ok"] is True
    summary = [e for e in run if e["event"] == "Summary"]
    assert summary and summary[0]["deployment"] == "eastus-walkthrough"
    recorded = state(workdir)
    assert recorded["steps"]["vnet"]["status"] == "done" and recorded["steps"]["vnet"]["intent"] is None

    # 4. plan: nothing to do (detailed exit code 0), in Terraform's words.
    plan = cli(workdir, "plan", "eastus.toml", "--emulator", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes. Your infrastructure matches the configuration." in plan.stdout

    # 5. status --live agrees.
    live = cli(workdir, "status", "eastus.toml", "--live", "--emulator")
    assert live.returncode == 0, live.stderr
    assert "No changes." in live.stdout

    # 6. teardown with no argument (the only deployment in the state directory); the resource group
    #    delete is realistic 10 min, so a smaller time scale here.
    down = cli(workdir, "teardown", "--yes", "--emulator", "--time-scale", "0.005")
    assert down.returncode == 0, down.stdout + down.stderr

    # 7. Everything is gone: plan now has changes (exit 2 with the flag) to create both again.
    again = cli(workdir, "plan", "eastus.toml", "--emulator", "--detailed-exitcode")
    assert again.returncode == 2, again.stdout + again.stderr
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in again.stdout


def test_plain_output_and_summary_when_piped(workdir: Path) -> None:
    done = cli(
        workdir, "deploy", "eastus.toml", "--emulator", "--yes", "--no-verify", "--emulator-profile", "fast"
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "deploy eastus-walkthrough: 2 steps (resource_group, vnet)" in out
    assert "[vnet] create virtualNetworks/aks-egress-vnet" in out
    assert "deployment eastus-walkthrough: ready" in out
    assert "--emulator" in out  # the next commands reach the same world
    assert "teardown eastus.toml" in out


def test_full_deploy_then_credentials_0600(workdir: Path) -> None:
    # The whole pipeline on the fast profile, then the seed's `az aks get-credentials`.
    environ = {k: v for k, v in env().items() if k != "AKS_LOCKDOWN_STEPS"}
    fast = ["--emulator", "--emulator-profile", "fast"]
    done = subprocess.run(
        [sys.executable, "-m", "aks_lockdown", "deploy", "eastus.toml", "--yes", "--no-verify", *fast],
        cwd=workdir,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "API server" in done.stdout and "ingress (DNAT)" in done.stdout
    creds = subprocess.run(
        [sys.executable, "-m", "aks_lockdown", "credentials", "eastus.toml", "--file", "kube/config", *fast],
        cwd=workdir,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert creds.returncode == 0, creds.stderr
    kubeconfig = workdir / "kube" / "config"
    assert kubeconfig.stat().st_mode & 0o777 == 0o600
    assert "clusters:" in kubeconfig.read_text()
    assert "clusters:" not in creds.stdout  # written, never printed


def test_bare_teardown_goes_to_the_embedded_emulator_it_was_deployed_on(workdir: Path) -> None:
    """The card's `python -m aks_lockdown teardown` with no argument and no target flag: a deployment
    made with --emulator lives in that world, so the teardown must go there, never to Azure."""
    fast = ("--emulator", "--emulator-profile", "fast")
    deployed = cli(workdir, "deploy", "eastus.toml", *fast, "--yes", "--no-verify")
    assert deployed.returncode == 0, deployed.stderr
    assert (workdir / ".aks-lockdown" / "eastus-walkthrough.embedded-emulator").exists()

    torn = cli(workdir, "teardown", "--yes")
    assert torn.returncode == 0, torn.stderr
    assert "subscription_id" not in torn.stderr
    assert "torn down" in torn.stdout

    # The world itself is empty of this deployment: a plan against it wants to create everything.
    plan = cli(workdir, "plan", "eastus.toml", *fast, "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr

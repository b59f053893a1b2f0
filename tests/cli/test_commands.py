"""deploy / plan / status / teardown wired to the real engine, with plain Python steps (no Azure):
exit codes, outputs, the summary, the resume command on failure and on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from aks_lockdown.cli import main
from aks_lockdown.engine.step import Diff, ResourceChange, Step

ROOT = Path(__file__).resolve().parents[2]
RG = "/subscriptions/sub/resourceGroups/aks-egress-rg"
WORLD: dict[str, dict[str, Any]] = {}
BEHAVIOUR: dict[str, str] = {}  # step name -> "fail" | "interrupt"


class FakeStep(Step):
    kind: ClassVar[str] = "Fake/things"
    outputs: ClassVar[dict[str, Any]] = {}

    @property
    def rid(self) -> str:
        return f"{RG}/providers/{self.kind}/{self.name}"

    def desired(self) -> Mapping[str, Any]:
        return {"name": self.name}

    def resource_ids(self) -> list[str]:
        return [self.rid]

    def check(self) -> Diff:
        if self.rid in WORLD:
            return Diff(outputs=self.outputs)
        return Diff((ResourceChange("create", self.rid, self.kind, note="not there yet"),))

    def apply(self, diff: Diff) -> Mapping[str, Any]:
        if BEHAVIOUR.get(self.name) == "fail":
            from azure.core.exceptions import HttpResponseError

            raise HttpResponseError(
                response=_Response(400, {"error": {"code": "InvalidParameter", "message": "bad prefix"}})
            )
        if BEHAVIOUR.get(self.name) == "interrupt":
            os.kill(os.getpid(), signal.SIGINT)  # the operator's Ctrl-C, mid-step
        self.ctx.write(self.rid, "create", lambda: WORLD.__setitem__(self.rid, {}), description="make it")
        return self.outputs

    def rollback(self) -> None:
        if self.ctx.created_by_deployment(self.rid):
            self.ctx.write(self.rid, "delete", lambda: WORLD.pop(self.rid, None))


class _Response:
    """The least of an HTTP response HttpResponseError reads."""

    def __init__(self, status: int, body: Any) -> None:
        self.status_code, self.reason, self.headers, self._body = status, "Bad Request", {}, json.dumps(body)

    def text(self, encoding: str | None = None) -> str:
        return self._body


class Network(FakeStep):
    name = "network"
    title = "Network"


class Firewall(FakeStep):
    name = "firewall"
    title = "Firewall"
    outputs: ClassVar[dict[str, Any]] = {"private_ip": "10.42.2.4", "public_ips": ["203.0.113.7"]}


class Cluster(FakeStep):
    name = "cluster"
    title = "Cluster"
    outputs: ClassVar[dict[str, Any]] = {"fqdn": "aks-egress-abc.hcp.eastus.azmk8s.io"}


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    WORLD.clear()
    BEHAVIOUR.clear()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "sub")
    from aks_lockdown.commands import _common

    monkeypatch.setattr(_common, "pipeline_steps", lambda config: [Network, Firewall, Cluster])
    from aks_lockdown.commands import verify

    def fake_verify(config: Any, clients: Any, *, sink: Any, **kw: Any) -> bool:
        sink.note(f"verify {config.deployment.name}: PASSED (fake)")
        return True

    monkeypatch.setattr(verify, "_impl", lambda: fake_verify)
    (tmp_path / "c.toml").write_text((ROOT / "config" / "eastus.toml").read_text())
    return tmp_path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_deploy_plan_status_teardown(cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "plan", "c.toml", "--detailed-exitcode")
    assert code == 2
    assert out.rstrip().endswith("Plan: 3 to add, 0 to change, 0 to destroy.")
    assert f"  + {RG}/providers/Fake/things/firewall" in out

    code, out, err = run_cli(capsys, "deploy", "c.toml", "--yes")
    assert code == 0, err
    assert "deployment eastus-walkthrough: ready" in out
    assert re.search(r"firewall public IP +203\.0\.113\.7", out)
    assert "http://203.0.113.7:80/" in out
    assert "https://aks-egress-abc.hcp.eastus.azmk8s.io" in out
    assert "aks-lockdown teardown c.toml" in out
    assert "verify eastus-walkthrough: PASSED (fake)" in out
    assert "warning:" in err  # the example config's deliberate warnings

    code, out, _ = run_cli(capsys, "plan", "c.toml", "--detailed-exitcode")
    assert code == 0 and "No changes. Your infrastructure matches the configuration." in out

    code, out, _ = run_cli(capsys, "status", "c.toml")
    assert code == 0 and "✓ firewall  done" in out and "private_ip: 10.42.2.4" in out

    # No argument: the only deployment in ./.aks-lockdown, its config remembered by deploy.
    code, _, err = run_cli(capsys, "teardown", "--yes")
    assert code == 0, err
    assert WORLD == {}
    code, out, _ = run_cli(capsys, "plan", "c.toml", "--detailed-exitcode")
    assert code == 2


def test_deploy_json_lines(cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "deploy", "c.toml", "--yes", "--output", "json", "--no-verify")
    assert code == 0
    docs = [json.loads(line) for line in out.splitlines()]
    kinds = [d["event"] for d in docs]
    assert kinds[0] == "Warning" and "RunStarted" in kinds and kinds[-1] == "Summary"
    assert docs[-1]["firewall_private_ip"] == "10.42.2.4"


def test_failure_is_one_line_with_the_resume_command(cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    BEHAVIOUR["firewall"] = "fail"
    code, out, err = run_cli(capsys, "deploy", "c.toml", "--yes", "--no-verify")
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert "step firewall: InvalidParameter: bad prefix" in errors[0]
    assert errors[0].endswith("resume with: aks-lockdown deploy c.toml --yes --no-verify")
    assert "deployment eastus-walkthrough: not finished" in out  # what exists so far, and how to resume
    assert re.search(r"resume +aks-lockdown deploy c.toml --yes --no-verify", out)
    BEHAVIOUR.clear()
    code, _, err = run_cli(capsys, "deploy", "c.toml", "--yes", "--no-verify")
    assert code == 0, err


def test_rollback_on_failure_removes_what_this_run_created(
    cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    BEHAVIOUR["cluster"] = "fail"
    code, _, _ = run_cli(capsys, "deploy", "c.toml", "--yes", "--rollback-on-failure", "--no-verify")
    assert code == 1
    assert WORLD == {}


def test_ctrl_c_exits_130_with_the_resume_command(cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    BEHAVIOUR["network"] = "interrupt"
    code, _, err = run_cli(capsys, "deploy", "c.toml", "--yes", "--no-verify")
    assert code == 130
    line = next(x for x in err.splitlines() if x.startswith("error:"))
    assert "resume with: aks-lockdown deploy c.toml --yes --no-verify" in line
    BEHAVIOUR.clear()
    code, _, _ = run_cli(capsys, "deploy", "c.toml", "--yes", "--no-verify")
    assert code == 0 and len(WORLD) == 3


def test_plan_error_with_detailed_exitcode_is_1(cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "plan", "missing.toml", "--detailed-exitcode")
    assert code == 1 and "missing.toml" in err
    code, _, _ = run_cli(capsys, "plan", "missing.toml")
    assert code == 2


def test_teardown_refuses_without_yes_when_not_a_terminal(
    cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(capsys, "deploy", "c.toml", "--yes", "--no-verify")
    code, _, err = run_cli(capsys, "teardown", "c.toml")
    assert code == 2 and "pass --yes" in err
    assert len(WORLD) == 3

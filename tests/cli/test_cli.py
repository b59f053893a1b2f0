"""The command line: argument errors, start-up cost, validate, the deployment chooser, state."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aks_lockdown.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "config").glob("*.toml"))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_imports_no_azure_sdk_nor_rich() -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "aks_lockdown", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    assert "deploy" in proc.stdout and "teardown" in proc.stdout
    # -X importtime lines: "import time: self [us] | cumulative | imported package"
    modules = [
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    ]
    assert modules, "no -X importtime output"
    heavy = [m for m in modules if m.split(".")[0] in ("azure", "rich", "pydantic", "msrest", "requests")]
    assert heavy == [], f"--help imported {heavy}"
    print(f"--help start-up: {elapsed * 1000:.0f} ms, {len(modules)} modules")
    assert elapsed < 5  # generous: a loaded CI machine; typically well under 100 ms


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["deploy"],
        ["deploy", "c.toml", "--output", "xml"],
        ["deploy", "c.toml", "--frobnicate"],
        ["deploy", "c.toml", "--arm-endpoint", "https://127.0.0.1:8443"],
        ["deploy", "c.toml", "--ca-bundle", "ca.pem"],
        ["deploy", "c.toml", "--emulator", "--arm-endpoint", "https://127.0.0.1:8443"],
        ["deploy", "c.toml", "--arm-endpoint", "http://127.0.0.1:8443", "--ca-bundle", __file__],
        [
            "deploy",
            "c.toml",
            "--arm-endpoint",
            "https://127.0.0.1:8443",
            "--ca-bundle",
            "/nonexistent/ca.pem",
        ],
        ["deploy", "c.toml", "--emulator", "--time-scale", "0"],
        ["deploy", "c.toml", "--emulator", "--time-scale", "fast"],
        ["plan", "c.toml", "--detailed-exitcode", "--output", "yaml"],
        ["status", "c.toml", "--name", "other"],
        ["state"],
        ["state", "show", "--bogus"],
        ["egress", "--cloud", "Mars"],
        ["egress", "--format", "yaml"],
        ["egress", "--features", "gpu,monitr"],
        ["egress", "--location", "marsnorth"],
        ["emulator", "--port", "eighty"],
        ["deploy", "does-not-exist.toml", "--yes"],
        ["validate", "does-not-exist.toml"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (argv, out, err)
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_argument_error_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run_cli(capsys, "deploy", "c.toml", "--arm-endpoint", "https://127.0.0.1:8443")
    assert "--arm-endpoint needs --ca-bundle" in err
    _, _, err = run_cli(capsys, "egress", "--features", "gpu,monitr")
    assert "--features: unknown feature 'monitr' (did you mean 'monitor'?)" in err


def test_help_of_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (
        "deploy",
        "plan",
        "status",
        "teardown",
        "validate",
        "egress",
        "emulator",
        "credentials",
        "verify",
    ):
        code, out, _ = run_cli(capsys, command, "--help")
        assert code == 0 and "usage:" in out, command
    code, out, _ = run_cli(capsys, "state", "unlock", "--help")
    assert code == 0 and "--force" in out


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_validate_example_configs(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "validate", str(config))
    assert code == 0, err
    assert out.startswith(f"{config}: valid")
    assert "firewall" in out and "cluster" in out and "route table" in out
    for line in err.splitlines():
        assert line.startswith("warning: "), line


def test_validate_eastus_warns_about_the_seed_choices(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run_cli(capsys, "validate", str(ROOT / "config" / "eastus.toml"))
    assert "public_ip_count" in err
    assert "docker_bridge_cidr" in err


def test_validate_bad_config_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[network]\nvnet_cidr = "10.42.0.0/16"\nvnet_cdir = "x"\n')
    code, out, err = run_cli(capsys, "validate", str(bad))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "bad.toml" in err and "vnet_cdir" in err


def test_deploy_refuses_without_yes_when_not_a_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "deploy", str(ROOT / "config" / "eastus.toml"))
    assert code == 2 and out == ""
    assert "pass --yes" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / ".aks-lockdown").exists()  # nothing written, nothing sent


def _make_deployments(directory: Path, *names: str) -> None:
    from aks_lockdown.engine.state import DeploymentState, LocalStateStore

    for name in names:
        LocalStateStore(directory, name).save(DeploymentState(deployment=name))


def test_teardown_with_several_deployments_lists_them_and_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _make_deployments(tmp_path / ".aks-lockdown", "alpha", "beta")
    code, out, err = run_cli(capsys, "teardown", "--yes")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "2 deployments in .aks-lockdown: alpha, beta" in err
    assert "--name" in err


def test_teardown_and_status_with_no_deployment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (["teardown", "--yes"], ["status"], ["state", "show"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and "no deployment in the state directory" in err


def test_unknown_name_lists_what_exists(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _make_deployments(tmp_path, "alpha")
    code, _, err = run_cli(capsys, "status", "--name", "gamma", "--state-dir", str(tmp_path))
    assert code == 2 and "no deployment 'gamma'" in err and "found: alpha" in err


def test_status_and_state_of_the_only_deployment(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _make_deployments(tmp_path, "alpha")
    code, out, _ = run_cli(capsys, "status", "--state-dir", str(tmp_path))
    assert code == 0 and out.startswith("deployment alpha") and "nothing deployed yet" in out
    code, out, _ = run_cli(capsys, "status", "--state-dir", str(tmp_path), "--output", "json")
    assert code == 0 and '"deployment": "alpha"' in out
    code, out, _ = run_cli(capsys, "state", "show", "--state-dir", str(tmp_path))
    assert code == 0 and '"deployment": "alpha"' in out
    code, out, _ = run_cli(capsys, "state", "unlock", "--state-dir", str(tmp_path))
    assert code == 0 and out.strip() == "alpha: not locked"


def test_state_unlock_refuses_a_live_holder_without_force(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from aks_lockdown.engine.state import LocalStateStore

    _make_deployments(tmp_path, "alpha")
    holder = LocalStateStore(tmp_path, "alpha")
    # A child process holds the lock, as a hung deploy would.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from aks_lockdown.engine.state import LocalStateStore as S; "
            f"s=S({str(tmp_path)!r}, 'alpha'); s.acquire('deploy c.toml'); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        code, _, err = run_cli(capsys, "state", "unlock", "--state-dir", str(tmp_path))
        assert code == 2 and "locked by pid" in err and len(err.strip().splitlines()) == 1
        code, out, _ = run_cli(capsys, "state", "unlock", "--force", "--state-dir", str(tmp_path))
        assert code == 0 and "lock released" in out
    finally:
        child.kill()
        child.wait()
    assert holder.holder() is None


def test_verify_hook_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import aks_lockdown.verify  # noqa: F401
    except ImportError:
        code, _, err = run_cli(capsys, "verify", str(ROOT / "config" / "eastus.toml"))
        assert code == 2 and "arrives with the verify issue" in err


def test_resume_command_is_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from aks_lockdown.cli import command_line

    assert command_line(["deploy", "my config.toml", "--yes"]) == "aks-lockdown deploy 'my config.toml' --yes"
    monkeypatch.setattr(
        sys, "orig_argv", [".venv/bin/python", "-m", "aks_lockdown", "deploy", "c.toml", "--emulator"]
    )
    assert command_line(None) == ".venv/bin/python -m aks_lockdown deploy c.toml --emulator"


EGRESS_FORMATS = ["table", "json", "csv", "markdown", "arm"]


@pytest.mark.parametrize("fmt", EGRESS_FORMATS)
def test_egress_export_formats(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    import csv
    import io
    import json

    code, out, err = run_cli(
        capsys,
        "egress",
        "--cloud",
        "AzureChinaCloud",
        "--location",
        "chinaeast2",
        "--features",
        "gpu,monitor",
        "--edition",
        "current",
        "--format",
        fmt,
    )
    assert code == 0, err
    assert out.strip()
    if fmt == "json":
        json.loads(out)
    elif fmt == "arm":
        template = json.loads(out)
        assert "resources" in template and "$schema" in template
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(out)))
        assert len(rows) > 2 and len({len(r) for r in rows}) == 1
    elif fmt == "markdown":
        assert out.lstrip().startswith("|") or "\n|" in out
    assert "chinaeast2" in out or "chinacloudapi" in out or fmt == "arm"


def test_kubeconfig_is_written_0600_even_over_a_readable_file(tmp_path: Path) -> None:
    from aks_lockdown.commands.credentials import write_private

    path = tmp_path / "kubeconfig"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, b"apiVersion: v1\n")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_bytes() == b"apiVersion: v1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["kubeconfig"]


def test_validate_names_required_rows_the_rules_miss(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The seed's explicit FQDN list predates packages.aks.azure.com: today's nodes could not bootstrap.
    config = tmp_path / "seed-explicit.toml"
    config.write_text('[firewall]\nfqdn_mode = "explicit"\negress_edition = "seed-2020"\n')
    code, out, err = run_cli(capsys, "validate", str(config))
    assert code == 0 and "valid" in out
    assert (
        "warning: egress: required now but missing from the rules: packages.aks.azure.com (Https/443)" in err
    )

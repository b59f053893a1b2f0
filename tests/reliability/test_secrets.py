"""Secrets never leave the places they belong: the service principal's secret (read from an environment
variable) and the voting app's generated MySQL passwords appear in no byte the tool writes: the state
directory (state, previous state, lock, anything else), stdout and stderr of every command, in text and
JSON output and with -v (HTTP-level logging)."""

from __future__ import annotations

import base64
import urllib.parse
from pathlib import Path

import pytest
from rel_harness import app_passwords, run_cli, tool_env, write_config

pytestmark = pytest.mark.reliability

SECRET_ENV = "AKS_LOCKDOWN_SP_SECRET"
# Unmistakable, and not shaped like an Entra secret (the config loader would refuse that in a file).
SP_SECRET = "rel-sp-secret-3f9c1e7a5b2d4c6e8f0a"
SP_CLIENT_ID = "5b1f6a0e-3c2d-4e5f-8a9b-0c1d2e3f4a5b"
SP_OBJECT_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def _sp_config(directory: Path) -> Path:
    from rel_harness import eastus_text

    text = eastus_text().replace(
        'type = "user-assigned"',
        f'type = "service-principal"\nclient_id = "{SP_CLIENT_ID}"\nobject_id = "{SP_OBJECT_ID}"\n'
        f'secret_env = "{SECRET_ENV}"',
    )
    return write_config(directory, text)


def _forms(secret: str) -> list[bytes]:
    """The ways a leaked secret would be spelt in a file or a log."""
    raw = secret.encode()
    return [raw, base64.b64encode(raw), urllib.parse.quote(secret).encode()]


def test_no_secret_in_anything_the_tool_writes(tmp_path: Path) -> None:
    from aks_lockdown.emulator import Emulator

    work = tmp_path / "work"
    config = _sp_config(work)
    env = tool_env(**{SECRET_ENV: SP_SECRET})
    written: dict[str, bytes] = {}
    # The emulator's world lives outside the tool's state directory: Azure holds the secret, legitimately.
    emu = Emulator(tmp_path / "emulator", profile="fast").start()
    try:
        runs = {
            "deploy --output json -v": ("deploy", "--output", "json", "-v"),
            "deploy (rerun, text) -v": ("deploy", "-v"),
            "status --output json": ("status", "--output", "json"),
            "plan --output json": ("plan", "--output", "json"),
        }
        for label, (command, *extra) in runs.items():
            result = run_cli(emu, command, config, *extra, env=env)
            assert result.returncode == 0, (label, result.stderr[-3000:])
            written[f"{label}: stdout"] = result.stdout.encode()
            written[f"{label}: stderr"] = result.stderr.encode()
        passwords = app_passwords(emu)
        assert len(passwords) == 2 and all(len(p) >= 16 for p in passwords), "no generated app password found"
        # The cluster really got the service principal (else the test would prove nothing).
        cluster = next(r for r in emu.world_view()["resources"] if r["type"].endswith("managedClusters"))
        assert cluster["properties"]["servicePrincipalProfile"]["clientId"] == SP_CLIENT_ID

        result = run_cli(emu, "teardown", config, "--output", "json", "-v", env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        written["teardown: stdout"] = result.stdout.encode()
        written["teardown: stderr"] = result.stderr.encode()
    finally:
        emu.stop()

    for path in sorted(work.rglob("*")):
        if path.is_file():
            written[str(path)] = path.read_bytes()
    assert any(name.endswith(".json") for name in written), "no state file was written"
    assert sum(len(b) for b in written.values()) > 1000

    leaks = []
    for name, data in written.items():
        for label, secret in [
            ("service principal secret", SP_SECRET),
            *(("app password", p) for p in passwords),
        ]:
            if any(form in data for form in _forms(secret)):
                leaks.append(f"{label} in {name}")
    assert leaks == [], leaks

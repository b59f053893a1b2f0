"""`serve()`: what it prints, and that it stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests


def test_serve_prints_how_to_connect_and_stops(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aks_lockdown.emulator.main",
            "--port",
            "0",
            "--data",
            str(tmp_path),
            "--profile",
            "fast",
            "--time-scale",
            "0.5",
            "--seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ},
    )
    try:
        lines: list[str] = []
        deadline = time.time() + 20
        while time.time() < deadline:
            line = proc.stdout.readline() if proc.stdout else ""
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        out = "".join(lines)
        endpoint = next(x.split(": ", 1)[1].strip() for x in lines if "ARM endpoint" in x)
        assert f"--arm-endpoint {endpoint} --ca-bundle {tmp_path / 'ca.pem'}" in out
        assert "subscription :" in out and "tenant       :" in out
        r = requests.get(f"{endpoint}/_emulator/stats", verify=str(tmp_path / "ca.pem"), timeout=5)
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert (tmp_path / "world.json").exists()

"""`serve()`: what it prints, and that it stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
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


def test_serve_reports_dnat_listeners_and_ports_it_cannot_bind(tmp_path: Path) -> None:
    import socket

    from aks_lockdown.emulator import Emulator, network

    try:
        from .test_kube_dnat import free_port
        from .test_public_ips import _dnat_service
    except ImportError:
        from test_kube_dnat import free_port  # type: ignore[no-redef]
        from test_public_ips import _dnat_service  # type: ignore[no-redef]

    data = tmp_path / "data"
    port = free_port("127.0.0.1")
    with Emulator(data, fsync=False) as emu:  # a world with a DNAT rule to a live internal service
        ip = _dnat_service(emu, tmp_path / "s", port)
    assert network.address_free(ip, {port})
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((ip, port))
    blocker.listen()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aks_lockdown.emulator.main", "--port", "0", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.time() + 20
        while time.time() < deadline:
            line = proc.stdout.readline() if proc.stdout else ""
            lines.append(line)
            if "DNAT ERROR" in line or not line:
                break
        out = "".join(lines)
        assert f"DNAT ERROR: cannot listen on {ip}:{port}" in out and "Address already in use" in out
        endpoint = next(x.split(": ", 1)[1].strip() for x in lines if "ARM endpoint" in x)
        stats = requests.get(f"{endpoint}/_emulator/stats", verify=str(data / "ca.pem"), timeout=5).json()
        assert stats["dnat"]["listeners"] == [] and len(stats["dnat"]["errors"]) == 1
    finally:
        blocker.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_report_dnat_prints_each_line_once_while_it_holds(capsys: pytest.CaptureFixture[str]) -> None:
    from aks_lockdown.emulator import main

    class Fake:
        status: dict[str, object] = {}

        def hook_status(self) -> dict[str, object]:
            return {"dnat": self.status}

    fake = Fake()
    listener = {"address": "127.5.5.1:80", "translated": "10.42.1.250:80", "rule": "c/r", "firewall": "fw"}
    fake.status = {"listeners": [listener], "errors": []}
    seen: set[str] = set()
    main.report_dnat(fake, seen)  # type: ignore[arg-type]
    main.report_dnat(fake, seen)  # type: ignore[arg-type]
    fake.status = {"listeners": [], "errors": ["cannot listen on 127.5.5.1:80 for DNAT rule c/r of fw: x"]}
    main.report_dnat(fake, seen)  # type: ignore[arg-type]
    out = capsys.readouterr()
    assert out.out.splitlines() == ["DNAT listening on 127.5.5.1:80 -> 10.42.1.250:80 (rule c/r)"]
    assert out.err.splitlines() == ["DNAT ERROR: cannot listen on 127.5.5.1:80 for DNAT rule c/r of fw: x"]

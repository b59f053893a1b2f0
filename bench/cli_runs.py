"""The CLI in a subprocess, pointed at the bench's emulator: start-up, plan, and a SIGKILL mid-cluster.

The emulator stays in the bench process (as Azure outlives a killed client); the CLI reaches it with
``--arm-endpoint``/``--ca-bundle`` and finds its subscription through ``GET /subscriptions``.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import CONFIG, ROOT

PYTHON = sys.executable


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AZURE_SUBSCRIPTION_ID", None)  # discovered from the emulator, never a real one
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli(emu: Any, *args: str, state_dir: Path) -> list[str]:
    return [
        PYTHON,
        "-m",
        "aks_lockdown",
        *args,
        "--arm-endpoint",
        emu.arm_endpoint,
        "--ca-bundle",
        emu.ca_bundle,
        "--state-dir",
        str(state_dir),
        "--output",
        "json",
    ]


def run_cli(emu: Any, *args: str, state_dir: Path, timeout: float = 600) -> dict[str, Any]:
    """Run one CLI command to completion; wall time and the requests it sent."""
    before = len(emu.requests())
    started_at = time.time()  # the emulator logs wall-clock times
    start = time.perf_counter()
    proc = subprocess.run(
        cli(emu, *args, state_dir=state_dir),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - start
    sent = emu.requests()[before:]
    return {
        "argv": ["python", "-m", "aks_lockdown", *args],
        "exit": proc.returncode,
        "wall": wall,
        # Process start, imports and state reading: what a command costs before its first request.
        "first_request_after": (sent[0]["time"] - started_at) if sent else None,
        "requests": sent,
        "stderr_tail": proc.stderr[-2000:],
    }


def deploy_killed_during_cluster(
    emu: Any, *, state_dir: Path, kill_after: float, timeout: float = 600
) -> dict[str, Any]:
    """Start ``deploy``, SIGKILL it ``kill_after`` seconds after its cluster PUT reached the emulator."""
    before = len(emu.requests())
    start = time.perf_counter()
    proc = subprocess.Popen(
        cli(emu, "deploy", str(CONFIG), "--yes", "--no-verify", state_dir=state_dir),
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    cluster_put_at: float | None = None
    killed = False
    try:
        deadline = start + timeout
        while time.perf_counter() < deadline and proc.poll() is None:  # bounded by the timeout
            if cluster_put_at is None:
                # A fresh emulator per figure: any cluster PUT in its log is this run's.
                if emu.requests(method="PUT", path=r"/managedClusters/[^/]+$"):
                    cluster_put_at = time.perf_counter()
            elif time.perf_counter() - cluster_put_at >= kill_after:
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
            time.sleep(0.01)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read() if proc.stderr else ""
    return {
        "killed": killed,
        "exit": proc.returncode,
        "wall": wall,
        "cluster_put_after": (cluster_put_at - start) if cluster_put_at else None,
        "requests": emu.requests()[before:],
        "stderr_tail": stderr[-2000:],
    }


def help_startup(runs: int = 15) -> dict[str, Any]:
    """``python -m aks_lockdown --help``: median of ``runs`` cold starts (hyperfine-like, one warm-up)."""
    argv = [PYTHON, "-m", "aks_lockdown", "--help"]
    subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, check=False)  # warm the page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"--help exited {proc.returncode}: {proc.stderr[-500:]!r}")
    bare = []
    for _ in range(max(3, runs // 3)):
        start = time.perf_counter()
        subprocess.run([PYTHON, "-c", "pass"], capture_output=True, check=False)
        bare.append(time.perf_counter() - start)
    return {
        "runs": runs,
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "stdev": statistics.pstdev(times),
        "python_startup_median": statistics.median(bare),
    }

"""A real process, a real SIGKILL at a chosen (or random) instant, then a fresh runner that converges."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_fakes import CONFIG, RG, A, B, FakeCloud, make_runner, pipeline, read_state_file, rid

from aks_lockdown.engine.runner import Runner
from aks_lockdown.engine.state import LocalStateStore

CHILD = Path(__file__).with_name("engine_crash_child.py")


def run_and_kill(tmp_path: Path, command: str, point: str, *, delay: float = 0.0) -> None:
    """Start the child, wait until it reaches ``point`` (writes the marker), then SIGKILL it."""
    marker = tmp_path / f"marker-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(CHILD),
            str(tmp_path / "state"),
            str(tmp_path / "cloud.json"),
            command,
            point,
            str(marker),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while not marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"child exited {proc.returncode}: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "child never reached the crash point"
            time.sleep(0.005)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


@pytest.mark.parametrize(
    ("point", "in_cloud"),
    [("begin", False), ("poll", True), ("result", True)],
    ids=["after intent before begin", "during polling", "after success before result recorded"],
)
def test_kill_9_during_deploy_then_resume(tmp_path: Path, point: str, in_cloud: bool) -> None:
    run_and_kill(tmp_path, "deploy", point)
    state_dir = tmp_path / "state"
    doc = read_state_file(state_dir)  # whole and valid: written atomically
    assert doc["steps"]["a"]["intent"]["resource_id"] == A
    cloud = FakeCloud(tmp_path / "cloud.json")
    assert (A in cloud.resources) == in_cloud

    # No one unlocks anything: the kernel released the dead child's lock.
    result = make_runner(state_dir, pipeline(ticks=3), cloud, CONFIG).deploy()
    assert result.ok
    assert cloud.creates == {RG: 1, A: 1, B: 1}
    doc = read_state_file(state_dir)
    assert all(s["status"] == "done" and s["intent"] is None for s in doc["steps"].values())
    assert doc["resources"][A]["origin"] == "created"

    make_runner(state_dir, pipeline(ticks=3), cloud, CONFIG).teardown()
    assert cloud.resources == {}


def test_kill_9_during_teardown_then_resume(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    cloud = FakeCloud(tmp_path / "cloud.json")
    make_runner(state_dir, pipeline(ticks=3), cloud, CONFIG).deploy()
    run_and_kill(tmp_path, "teardown", "rg-poll")
    cloud = FakeCloud(tmp_path / "cloud.json")
    assert cloud.resources[RG]["state"] == "Deleting"
    make_runner(state_dir, pipeline(ticks=3), cloud, CONFIG).teardown()
    assert cloud.resources == {}
    assert cloud.deletes == {RG: 1}


def test_kill_9_at_random_instants_always_resumes(tmp_path: Path) -> None:
    """Whatever instant the kill lands on (mid state write included), the state file loads and the
    next run converges with every resource created exactly once."""
    from engine_crash_child import many_steps

    rng = random.Random(int(os.environ.get("ENGINE_CRASH_SEED", "7")))
    state_dir = tmp_path / "state"
    for _ in range(4):
        run_and_kill(tmp_path, "deploy", "none", delay=rng.uniform(0.0, 0.08))
        if (state_dir / "demo.json").exists():
            json.loads((state_dir / "demo.json").read_text())
    cloud = FakeCloud(tmp_path / "cloud.json")
    Runner(
        deployment="demo",
        steps=many_steps(),
        config={},
        clients=cloud,
        store=LocalStateStore(state_dir, "demo"),
        classify=lambda exc: None,
        sleep=lambda s: None,
    ).deploy()
    expected = {RG, *(rid("things", f"t{i}") for i in range(12))}
    assert set(cloud.resources) == expected
    assert all(count == 1 for count in cloud.creates.values()), cloud.creates
    doc = read_state_file(state_dir)
    assert {k for k, r in doc["resources"].items() if r["origin"] == "created"} == expected

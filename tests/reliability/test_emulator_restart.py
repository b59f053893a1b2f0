"""ARM goes away in the middle of a deploy and comes back with the same data directory: the deploy in
flight rides it out (or, when it gives up, the same command resumes it) and converges."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from rel_harness import (
    Baseline,
    cli_args,
    duplicates,
    normalize_world,
    run_cli,
    state_doc,
    tool_env,
    world_diff,
    write_config,
)

pytestmark = pytest.mark.reliability

# Operations long enough for the stop to land while they run.
DURATIONS = {"azureFirewalls.create": 3.0, "managedClusters.create": 3.0}


def _wait_for_request(emu: Any, method: str, path: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if emu.requests(method=method, path=path):
            return
        time.sleep(0.05)
    raise AssertionError(f"no {method} {path} within {timeout}s")


@pytest.mark.parametrize(
    ("resource", "down_seconds", "same_port"),
    [
        # A blip: the SDK's own retries of a refused connection carry the deploy over it.
        pytest.param(r"/azureFirewalls/", 1.0, True, id="firewall-create-1s-outage-same-port"),
        # ARM back on another address during the cluster create: the run in flight polls a dead
        # endpoint, so the operator kills it; the same command pointed at the new endpoint resumes.
        pytest.param(r"/managedClusters/[^/]+$", 1.0, False, id="cluster-create-new-port"),
    ],
)
def test_deploy_survives_emulator_restart(
    tmp_path: Path, baseline: Baseline, resource: str, down_seconds: float, same_port: bool
) -> None:
    from aks_lockdown.emulator import Emulator

    config = write_config(tmp_path / "work")
    data = tmp_path / "emulator"
    emu = Emulator(data, durations=DURATIONS).start()
    child = subprocess.Popen(
        cli_args(emu, "deploy", config),
        cwd=config.parent,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_for_request(emu, "PUT", resource)
        port = emu.port
        emu.stop()  # mid-operation: the long operation is persisted in world.json, in flight
        time.sleep(down_seconds)
        if not same_port:
            child.kill()  # kill -9 while it polls an address that is gone for good
        emu = Emulator(data, port=port if same_port else 0, durations=DURATIONS).start()
        _, err = child.communicate(timeout=180)
        if same_port:
            assert child.returncode == 0, err[-3000:]
            # The restarted ARM answered the polls of the operation the first one had started.
            assert emu.requests(method="GET", path=r"operation"), "the run never polled the new ARM"
        else:
            assert emu.port != port
            state_doc(config.parent / "state")  # parses
            rerun = run_cli(emu, "deploy", config)
            assert rerun.returncode == 0, rerun.stderr[-3000:]
        state = state_doc(config.parent / "state")
        assert all(s.status == "done" and s.intent is None for s in state.steps.values()), state.steps
        assert not duplicates(emu)
        actual = normalize_world(emu)
        assert actual == baseline.world, world_diff(actual, baseline.world)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
        emu.stop()

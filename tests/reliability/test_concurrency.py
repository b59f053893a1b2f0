"""Two runs of one deployment: the second is refused at once (exit 2) naming the holder of the lock, and
changes nothing; the first finishes as if it had been alone."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from rel_harness import (
    DEPLOYMENT,
    Baseline,
    cli_args,
    normalize_world,
    run_cli,
    state_doc,
    tool_env,
    world_diff,
    write_config,
)

pytestmark = pytest.mark.reliability

# Long enough to hold the first deploy mid-run (polling, so saving nothing) while the others try, even on
# a loaded CI machine where starting the interpreter twice takes seconds.
FIREWALL_SECONDS = 10.0


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_second_run_refused_naming_the_holder(tmp_path: Path, baseline: Baseline) -> None:
    from aks_lockdown.emulator import Emulator

    config = write_config(tmp_path / "work")
    state_file = config.parent / "state" / f"{DEPLOYMENT}.json"
    emu = Emulator(tmp_path / "emulator", durations={"azureFirewalls.create": FIREWALL_SECONDS}).start()
    first = subprocess.Popen(
        cli_args(emu, "deploy", config),
        cwd=config.parent,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        # The first run is inside the firewall's long operation: it holds the lock and writes nothing.
        _wait_for(lambda: emu.requests(method="PUT", path=r"/azureFirewalls/"), 60, "the firewall PUT")
        before = state_file.read_bytes()
        for command in ("deploy", "teardown"):
            started = time.monotonic()
            second = run_cli(emu, command, config, timeout=30)
            took = time.monotonic() - started
            assert second.returncode == 2, (command, second.returncode, second.stderr)
            # eastus.toml's two deliberate config warnings may come first; the refusal is one line.
            lines = [line for line in second.stderr.splitlines() if line.strip()]
            lines = [line for line in lines if not line.startswith("warning:")]
            assert len(lines) == 1, second.stderr
            assert f"pid {first.pid}" in lines[0] and socket.gethostname() in lines[0], lines[0]
            assert "deploy" in lines[0].split("command:", 1)[-1], (
                f"the holder's command is not named: {lines[0]}"
            )
            # "At once": no waiting for the lock (the time is the interpreter's start-up, not a wait).
            assert took < 10, took
            assert state_file.read_bytes() == before, f"the refused {command} changed the state"
        _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err[-3000:]
        state = state_doc(config.parent / "state")
        assert all(s.status == "done" for s in state.steps.values())
        actual = normalize_world(emu)
        assert actual == baseline.world, world_diff(actual, baseline.world)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
        emu.stop()


def test_lock_held_in_process_is_named_and_state_intact(emu: Any, workdir: Path) -> None:
    """The same with the holder being another process's lock object (this test process), and a state
    file already there: the refused run leaves it byte for byte as it was and sends nothing."""
    from aks_lockdown.engine.state import LocalStateStore

    config = write_config(workdir)
    store = LocalStateStore(workdir / "state", DEPLOYMENT)
    store.save(store.load())
    before = store.path.read_bytes()
    with store.lock("deploy: the-other-operator"):
        requests = len(emu.requests())
        result = run_cli(emu, "deploy", config, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "the-other-operator" in result.stderr and "pid " in result.stderr
    assert store.path.read_bytes() == before
    assert emu.requests()[requests:] == []

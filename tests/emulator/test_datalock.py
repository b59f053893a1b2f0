"""One emulator per data directory: <data>/emulator.lock (flock) refuses a second one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aks_lockdown.emulator import Emulator
from aks_lockdown.emulator.datalock import EmulatorDataLockedError
from aks_lockdown.errors import EXIT_BAD_INPUT, InputError


def test_second_emulator_on_the_same_dir_is_refused_until_the_first_stops(tmp_path: Path) -> None:
    first = Emulator(tmp_path, fsync=False).start()
    try:
        rg = f"/subscriptions/{first.subscription_id}/resourceGroups/rg1"
        with first.world.lock:
            first.world.upsert(rg, "Microsoft.Resources/resourceGroups", {"location": "westus"})
            first.world.persist()
        holder = json.loads((tmp_path / "emulator.lock").read_text())
        assert holder["endpoint"] == first.arm_endpoint and holder["pid"] > 0 and holder["host"]
        second = Emulator(tmp_path, fsync=False)
        with pytest.raises(EmulatorDataLockedError) as info:
            second.start()
        err = info.value
        assert isinstance(err, InputError) and err.exit_code == EXIT_BAD_INPUT
        line = err.one_line()
        assert "\n" not in str(err) and f"--arm-endpoint {first.arm_endpoint}" in line
        assert f"pid {holder['pid']}" in line and str(tmp_path) in line
        second.stop()  # a refused emulator's stop() must not write its (empty) world over the holder's
        assert first.world.get(rg) is not None
        assert rg.lower() in (tmp_path / "world.json").read_text().lower()
        assert json.loads((tmp_path / "emulator.lock").read_text())["endpoint"] == first.arm_endpoint
    finally:
        first.stop()
    assert (tmp_path / "emulator.lock").read_text() == ""  # holder info cleared on release
    with Emulator(tmp_path, fsync=False) as again:
        assert again.world.get(rg) is not None  # the first one's world, intact


def test_start_stop_start_on_one_instance(tmp_path: Path) -> None:
    emu = Emulator(tmp_path, fsync=False)
    emu.start()
    emu.stop()
    emu.start()
    try:
        with pytest.raises(EmulatorDataLockedError):
            Emulator(tmp_path, fsync=False).start()
    finally:
        emu.stop()


def test_a_killed_holder_frees_the_dir(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aks_lockdown.emulator.main", "--port", "0", "--data", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            line = proc.stdout.readline() if proc.stdout else ""
            if "ARM endpoint" in line or not line:
                break
        endpoint = line.split(": ", 1)[1].strip()
        with pytest.raises(EmulatorDataLockedError, match=f"pid {proc.pid} .*--arm-endpoint {endpoint}"):
            Emulator(tmp_path, fsync=False).start()
        # The CLI's own refusal: one line on stderr, exit 2.
        other = subprocess.run(
            [sys.executable, "-m", "aks_lockdown.emulator.main", "--port", "0", "--data", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert other.returncode == EXIT_BAD_INPUT
        assert other.stderr.count("\n") == 1 and f"--arm-endpoint {endpoint}" in other.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    with Emulator(tmp_path, fsync=False) as emu:  # the kernel dropped the dead holder's flock
        assert json.loads((tmp_path / "emulator.lock").read_text())["endpoint"] == emu.arm_endpoint

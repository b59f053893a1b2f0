"""The deployment lock: exclusive across processes, fails at once naming the holder, dies with its
holder (flock), breakable on purpose."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aks_lockdown.engine.state import LocalStateStore
from aks_lockdown.errors import EXIT_BAD_INPUT, LockHeldError

HOLDER = textwrap.dedent(
    """
    import sys, time
    from aks_lockdown.engine.state import LocalStateStore
    store = LocalStateStore(sys.argv[1], "demo")
    store.acquire("deploy: aks-lockdown deploy demo.toml")
    print("locked", flush=True)
    time.sleep(60)
    """
)


def start_holder(state_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(state_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_run_in_another_process_fails_at_once_naming_holder(tmp_path: Path) -> None:
    proc = start_holder(tmp_path)
    try:
        store = LocalStateStore(tmp_path, "demo")
        started = time.monotonic()
        with pytest.raises(LockHeldError) as info, store.lock("deploy: second"):
            pass
        assert time.monotonic() - started < 0.5  # at once, not after a wait
        text = str(info.value)
        assert f"pid {proc.pid}" in text
        assert socket.gethostname() in text
        assert "aks-lockdown deploy demo.toml" in text
        assert info.value.exit_code == EXIT_BAD_INPUT
        holder = store.holder()
        assert holder is not None and holder.pid == proc.pid

        # kill -9: the kernel drops the flock, the next run locks without anyone cleaning up.
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert store.holder() is None
        with store.lock("deploy: after kill") as mine:
            assert mine.pid == os.getpid()
            assert "deploy: after kill" in store.lock_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_lock_is_exclusive_within_one_process_too(tmp_path: Path) -> None:
    first = LocalStateStore(tmp_path, "demo")
    second = LocalStateStore(tmp_path, "demo")
    with first.lock("deploy"):
        with pytest.raises(LockHeldError, match=f"pid {os.getpid()}"):
            second.acquire("deploy")
        # Another deployment in the same directory is not affected.
        with LocalStateStore(tmp_path, "other").lock("deploy"):
            pass
    with second.lock("deploy"):
        pass
    assert first.lock_path.read_text() == ""  # holder info cleared on release


def test_unlock(tmp_path: Path) -> None:
    store = LocalStateStore(tmp_path, "demo")
    assert store.unlock() is None  # nothing to do
    proc = start_holder(tmp_path)
    try:
        with pytest.raises(LockHeldError, match="--force only if that process is hung"):
            store.unlock()
        old = store.unlock(force=True)
        assert old is not None and old.pid == proc.pid
        with store.lock("deploy: after force"):  # a fresh lock file: the hung holder is ignored
            pass
    finally:
        proc.kill()
        proc.wait()


def test_stale_holder_info_without_a_lock_is_ignored(tmp_path: Path) -> None:
    """A lock file left with holder info (e.g. copied from another machine) but no flock is free."""
    store = LocalStateStore(tmp_path, "demo")
    store.lock_path.write_text('{"pid": 1, "host": "elsewhere", "started_at": "x", "command": "deploy"}')
    assert store.holder() is None
    with store.lock("deploy"):
        pass

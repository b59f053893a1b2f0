"""The exclusive lock on an emulator's data directory.

Two emulators serving one data directory would overwrite each other's ``world.json`` and compete for
the world's DNAT listener addresses. ``Emulator.start()`` takes ``<data>/emulator.lock`` (``fcntl.flock``,
non-blocking) before it loads the world and holds it until ``stop()``; the kernel drops it when the
process dies, so a killed emulator never leaves a stale lock. The file holds the holder's pid, host,
start time and, once it listens, its ARM endpoint and CA bundle, so the refusal can name them.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from aks_lockdown.errors import InputError

LOCK_NAME = "emulator.lock"


class EmulatorDataLockedError(InputError):
    """Another emulator serves this data directory (exit 2: reach it with --arm-endpoint instead)."""

    def __init__(self, lock_path: Path, holder: dict[str, Any] | None) -> None:
        self.lock_path = lock_path
        self.holder = holder or {}
        h = self.holder
        if h:
            who = f"pid {h.get('pid', '?')} on {h.get('host', '?')} since {h.get('started', '?')}"
        else:
            who = "another process (holder unknown)"
        endpoint = h.get("endpoint") or ""
        if endpoint:
            reach = f"serving {endpoint}; reach it with --arm-endpoint {endpoint}"
            if h.get("ca_bundle"):
                reach += f" --ca-bundle {h['ca_bundle']}"
            reach += " instead"
        else:
            reach = "still starting (no endpoint yet); stop it or wait for it to listen"
        super().__init__(
            f"emulator data dir {lock_path.parent} is in use by {who}, {reach} (lock file {lock_path})"
        )


class DataDirLock:
    """``acquire()`` or EmulatorDataLockedError; ``describe(endpoint=...)`` records where it listens."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None
        self._info: dict[str, Any] = {}

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # No O_TRUNC: a refused emulator must not erase the holder's details.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise EmulatorDataLockedError(self.path, self.read_holder()) from None
        self._fd = fd
        self._info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "endpoint": "",
        }
        self._write()

    def describe(self, **fields: str) -> None:
        """Add fields (endpoint, ca_bundle) to the holder info."""
        if self._fd is None:
            return
        self._info.update(fields)
        self._write()

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Clear the holder info, keep the file: unlinking a flock'd file races with an opener.
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def read_holder(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
            data = json.loads(text) if text else None
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write(self) -> None:
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, (json.dumps(self._info) + "\n").encode(), 0)

"""Azurite (the Azure Storage emulator, npm package ``azurite``) for the blob state backend tests.

Azurite comes from the project's own node_modules (``npm ci`` at the repo root). When it is missing
the tests FAIL rather than skip: a skipped remote-state suite looks green while testing nothing.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Azurite's published, well-known development account: not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary(root: Path = REPO_ROOT) -> Path:
    binary = root / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        pytest.fail(
            f"{binary} is missing: run `npm ci` in {root} to install Azurite (package.json devDependency)",
            pytrace=False,
        )
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"azurite exited with status {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"azurite did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@dataclass
class Azurite:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @staticmethod
    def credential() -> object:
        from azure.core.credentials import AzureNamedKeyCredential

        return AzureNamedKeyCredential(ACCOUNT, ACCOUNT_KEY)

    def new_container(self) -> str:
        from azure.storage.blob import BlobServiceClient

        name = f"t{uuid.uuid4().hex[:20]}"
        BlobServiceClient(self.account_url, credential=self.credential()).create_container(name)
        return name


def start_azurite(binary: Path, location: Path) -> tuple[Azurite, str]:
    """Start Azurite on a free loopback port; retried because the port is free only when chosen."""
    problems = []
    for _attempt in range(3):
        port = free_port()
        log_path = location / f"azurite-{port}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    *(str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port)),
                    *("--location", str(location), "--silent", "--skipApiVersionCheck", "--loose"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=location,
            )
        try:
            wait_for_port(port, proc)
            return Azurite(port, proc), str(log_path)
        except RuntimeError as exc:
            stop(proc)
            problems.append(f"{exc}: {log_path.read_text()[-1000:]}")
    pytest.fail("Azurite did not start: " + " | ".join(problems), pytrace=False)


def stop(proc: subprocess.Popen[bytes]) -> None:
    # Killed, not terminated: Azurite's graceful close waits for idle keep-alive connections, and
    # its data is a temp dir anyway.
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    binary = azurite_binary()
    server, _log = start_azurite(binary, tmp_path_factory.mktemp("azurite"))
    try:
        yield server
    finally:
        stop(server.process)


@dataclass
class FlakyProxy:
    """A TCP proxy in front of Azurite that can fail connections on demand.

    ``mode``: "pass"; "reset" (every request's connection is closed unanswered: nothing reaches
    the service); "swallow" (requests matching ``swallow_if`` reach the service and commit, but the
    response is dropped and the connection closed: the client cannot know whether it committed).
    """

    upstream_port: int
    mode: str = "pass"
    swallow_if: Callable[[str], bool] = lambda line: False
    port: int = 0
    _server: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        last_request = ""
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([client, upstream], [], [], 0.2)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        if data[:8].split(b" ")[0] in (b"GET", b"PUT", b"HEAD", b"DELETE", b"POST"):
                            last_request = data.split(b"\r\n", 1)[0].decode("latin-1")
                        if self.mode == "reset":
                            return
                        upstream.sendall(data)
                    else:
                        if self.mode == "swallow" and self.swallow_if(last_request):
                            return
                        client.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()


@pytest.fixture
def flaky_proxy(azurite: Azurite) -> Iterator[FlakyProxy]:
    proxy = FlakyProxy(azurite.port)
    proxy.start()
    yield proxy
    proxy.close()


@pytest.fixture
def container(azurite: Azurite) -> str:
    return azurite.new_container()


def env_for_subprocess() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env

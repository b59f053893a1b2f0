"""Fixtures for the emulator core tests: real SDK clients over HTTPS against an in-process Emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from aks_lockdown.arm.clients import ClientFactory
from aks_lockdown.emulator import Emulator


@pytest.fixture(scope="session")
def shared_emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    # fsync off: ~11 ms per write on this disk; atomic rename still keeps every acknowledged write
    # across a process restart (test_lro covers restarts with fsync on).
    with Emulator(tmp_path_factory.mktemp("emu"), profile="fast", fsync=False) as emu:
        yield emu


@pytest.fixture
def emu(shared_emu: Emulator) -> Emulator:
    shared_emu.reset()
    return shared_emu


@pytest.fixture
def clients(emu: Emulator) -> ClientFactory:
    # retry_total=0: a fault or conflict surfaces as the SDK's exception instead of being retried.
    return ClientFactory(emu.target(), retry_total=0, polling_interval=0.01)


@pytest.fixture
def rg(clients: ClientFactory) -> str:
    clients.resource.resource_groups.create_or_update("rg1", {"location": "westus"})
    return "rg1"


class Raw:
    """Plain HTTPS calls with a token from the emulator, for protocol-level checks (headers, codes)."""

    def __init__(self, emu: Emulator):
        self.emu = emu
        self.session = requests.Session()
        self.session.verify = emu.ca_bundle
        # verify= per call: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        token = self.session.post(
            f"{emu.arm_endpoint}/{emu.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "t",
                "client_secret": "s",
                "scope": "https://management.azure.com/.default",
            },
            verify=emu.ca_bundle,
        ).json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method: str, path: str, body: Any = None, **kw: Any) -> requests.Response:
        url = path if path.startswith("https://") else self.emu.arm_endpoint + path
        kw.setdefault("verify", self.emu.ca_bundle)
        return self.session.request(method, url, json=body, **kw)


@pytest.fixture
def raw(emu: Emulator) -> Raw:
    return Raw(emu)


def new_emulator(path: Path, **kw: Any) -> Emulator:
    return Emulator(path, **kw)

"""A deployed world for the verify tests: the real Runner and steps on the in-process emulator, with the
real SDKs over HTTPS. One world per test module (deploying costs a couple of seconds); the drift
tests change Azure out of band through the SDK and put it back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from verify_world import Deployed, not_ready

from aks_lockdown.config import Config


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``deploy(config)`` -> a ``Deployed`` world that lives until the module ends."""
    reason = not_ready()
    if reason:
        pytest.fail(reason)
    from contextlib import ExitStack

    from aks_lockdown.arm.clients import ClientFactory
    from aks_lockdown.arm.errors import classify
    from aks_lockdown.emulator.server import Emulator
    from aks_lockdown.engine.runner import Runner
    from aks_lockdown.engine.state import LocalStateStore
    from aks_lockdown.pipeline import build_steps

    stack = ExitStack()

    def make(config: Config) -> Deployed:
        base = tmp_path_factory.mktemp("verify")
        emu = stack.enter_context(Emulator(base / "emulator", profile="fast"))
        clients = ClientFactory(emu.target(cloud=config.azure.cloud), polling_interval=0.05)
        (base / "state").mkdir()
        runner = Runner(
            deployment=config.deployment.name,
            steps=build_steps(config),
            config=config,
            clients=clients,
            store=LocalStateStore(base / "state", config.deployment.name),
            sink=lambda event: None,
            classify=classify,
            retry_deadline=60,
            poll_interval=0.05,
            state_poll_interval=0.1,
        )
        result = runner.deploy()
        assert result.ok
        return Deployed(emu, config, clients, {k: dict(v) for k, v in result.outputs.items()})

    with stack:
        yield make

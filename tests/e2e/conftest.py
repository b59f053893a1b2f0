"""Fixtures for the end-to-end tests: a fresh emulator world and state directory per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def _emulator_ready() -> str:
    """Why the pipeline cannot run end to end yet ("" when it can)."""
    try:
        from aks_lockdown.emulator import server

        server._load_providers()
        import aks_lockdown.emulator.containerservice
        import aks_lockdown.engine.runner  # noqa: F401
    except Exception as exc:
        return f"emulator or engine not usable yet: {exc}"
    return ""


@pytest.fixture
def emulator_for(tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    """Start (once per test) an emulator playing the given cloud: its AKS checks the nodes' egress
    against that cloud's required endpoints."""
    reason = _emulator_ready()
    if reason:
        pytest.fail(reason)
    from aks_lockdown.emulator import Emulator

    started: list[Any] = []

    def start(cloud: str = "AzureCloud") -> Any:
        assert not started, "one emulator per test"
        started.append(Emulator(data_dir=tmp_path / "emulator", profile="fast", cloud=cloud).start())
        return started[0]

    try:
        yield start
    finally:
        for emulator in started:
            emulator.stop()


@pytest.fixture
def emu(emulator_for: Callable[[str], Any]) -> Any:
    return emulator_for("AzureCloud")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path

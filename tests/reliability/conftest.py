"""Fixtures of the reliability suite: one emulator per xdist worker (reset between tests), and the
normalized world of a clean deploy that every faulted or crashed deploy must converge to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rel_harness import EASTUS, Baseline, InProcess, load, normalize_world


def _ready() -> str:
    """Why the pipeline cannot run on the emulator yet ("" when it can)."""
    try:
        from aks_lockdown.emulator import server

        server._load_providers()
        import aks_lockdown.emulator.containerservice
        import aks_lockdown.pipeline  # noqa: F401
    except Exception as exc:
        return f"emulator AKS or pipeline not usable yet: {exc}"
    return ""


@pytest.fixture(scope="session")
def shared_emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One emulator per worker: starting one is cheap, but sharing keeps TLS/CA setup and SDK warm-up
    off every test. Tests that need their own durations, a restart or a subprocess that outlives a test
    start their own."""
    reason = _ready()
    if reason:
        pytest.fail(reason)
    from aks_lockdown.emulator import Emulator

    emu = Emulator(tmp_path_factory.mktemp("shared-emulator"), profile="fast").start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def emu(shared_emu: Any) -> Iterator[Any]:
    """The shared emulator with an empty world, no faults and an empty request log."""
    shared_emu.reset()
    yield shared_emu
    shared_emu.clear_faults()


@pytest.fixture(scope="session")
def baseline(shared_emu: Any, tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    shared_emu.reset()
    run = InProcess(shared_emu, load(EASTUS), tmp_path_factory.mktemp("baseline-state"))
    run.runner().deploy()
    result = Baseline(normalize_world(shared_emu), tuple(run.writes()))
    shared_emu.reset()
    return result


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path

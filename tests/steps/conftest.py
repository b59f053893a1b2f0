"""Fixtures for the step tests: an in-process ARM emulator and a client factory on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from steps_helpers import emulator_available


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Any]:
    if not emulator_available():
        pytest.fail("the ARM emulator is not usable")
    from aks_lockdown.emulator import Emulator

    with Emulator(data_dir=tmp_path / "emu", profile="fast") as emu:
        yield emu


@pytest.fixture
def azure(emulator: Any) -> Any:
    """A ClientFactory on the emulator, polling fast."""
    from aks_lockdown.arm.clients import ClientFactory

    return ClientFactory(emulator.target(), polling_interval=0.05)

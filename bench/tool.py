"""aks_lockdown measured in process: the Runner built as the CLI builds it, pointed at the bench emulator.

The one difference from ``aks_lockdown.commands._common.runner``: ``sleep`` is scaled by the emulator's
time scale, so the Runner's own waits (0.5 s between ``done()`` checks, 5 s between state polls, retry
backoff) shrink with the Azure durations they wait for instead of dominating them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import CONFIG, scaled_sleep


def warm_imports() -> None:
    """Import the SDK modules before any clock starts (about a second of real time that would count
    as a minute of Azure time at scale 0.02; both the tool and the seed replay need them)."""
    import azure.mgmt.authorization
    import azure.mgmt.containerservice.models
    import azure.mgmt.msi
    import azure.mgmt.network.models
    import azure.mgmt.resource.resources  # noqa: F401

    import aks_lockdown.arm.errors
    import aks_lockdown.egress.compiler
    import aks_lockdown.pipeline
    from aks_lockdown.config import load_config

    aks_lockdown.pipeline.build_steps(load_config(CONFIG).config)


@dataclass
class ToolRun:
    ok: bool
    wall: float
    requests: list[dict[str, Any]]
    steps: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    writes_by_runner: int = 0


def load(config_path: Path = CONFIG) -> Any:
    from aks_lockdown.config import load_config

    return load_config(config_path).config


def make_runner(emu: Any, state_dir: Path, config: Any, *, time_scale: float, events: list[Any]) -> Any:
    from aks_lockdown.arm.clients import ClientFactory
    from aks_lockdown.arm.errors import classify
    from aks_lockdown.engine.runner import Runner
    from aks_lockdown.engine.state import LocalStateStore
    from aks_lockdown.pipeline import build_steps

    # A fresh factory per run, as a fresh process would have (one token request each).
    clients = ClientFactory(emu.target(cloud=config.azure.cloud), polling_interval=max(0.01, 10 * time_scale))
    return Runner(
        deployment=config.deployment.name,
        steps=build_steps(config),
        config=config,
        clients=clients,
        store=LocalStateStore(state_dir, config.deployment.name),
        sink=events.append,
        classify=classify,
        resume_command="python -m bench",
        sleep=scaled_sleep(time_scale) if time_scale else (lambda s: None),
    )


def _steps(result: Any) -> list[dict[str, Any]]:
    return [
        {"name": s.name, "status": s.status, "changed": s.changed, "elapsed": round(s.elapsed, 4)}
        for s in getattr(result, "steps", ())
    ]


def deploy(emu: Any, state_dir: Path, *, time_scale: float, config: Any | None = None) -> ToolRun:
    """One ``deploy`` through the Runner; the requests it sent come from the emulator's log."""
    config = config or load()
    events: list[Any] = []
    runner = make_runner(emu, state_dir, config, time_scale=time_scale, events=events)
    before = len(emu.requests())
    start = time.perf_counter()
    try:
        result = runner.deploy()
    except Exception as exc:  # reported, not raised: a failed figure is still a figure
        wall = time.perf_counter() - start
        return ToolRun(False, wall, emu.requests()[before:], error=f"{type(exc).__name__}: {exc}")
    wall = time.perf_counter() - start
    return ToolRun(bool(result.ok), wall, emu.requests()[before:], _steps(result))


def plan(emu: Any, state_dir: Path, *, time_scale: float, config: Any | None = None) -> ToolRun:
    config = config or load()
    events: list[Any] = []
    runner = make_runner(emu, state_dir, config, time_scale=time_scale, events=events)
    before = len(emu.requests())
    start = time.perf_counter()
    diffs = runner.plan()
    wall = time.perf_counter() - start
    pending = [name for name, diff in diffs if diff.pending]
    return ToolRun(True, wall, emu.requests()[before:], [{"pending": pending}])

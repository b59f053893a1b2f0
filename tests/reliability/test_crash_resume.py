"""kill -9 at every write boundary of deploy and teardown; the same command, run again, finishes the job.

The tool runs as the operator runs it (``python -m aks_lockdown deploy CONFIG --arm-endpoint ...``) in a
subprocess; the emulator lives in the test process, so it outlives every kill. The engine's test hook
(AKS_LOCKDOWN_CRASH_AT, see aks_lockdown/engine/runner.py) sends the SIGKILL at an exact point:

- before-intent: the step decided to write, nothing recorded, nothing sent;
- after-intent: the intent is on disk, the request not sent;
- polling: the request was accepted and the long operation is running in Azure (operations here take
  0.5 s, so the kill really lands mid-operation), the result not awaited;
- after-success: Azure finished, the result not recorded.

Kill points are batched per emulator world, in pipeline order: each run resumes what the previous kill
left and is itself killed at the next point, so every run both proves a resume and adds a kill. After
every kill the state file must parse and nothing may be duplicated; after the last, one clean run must
converge to the world a clean deploy builds (and, for teardown, leave nothing tagged behind).
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from rel_harness import (
    CRASH_ENV,
    Baseline,
    InProcess,
    duplicates,
    load,
    normalize_world,
    run_cli,
    state_doc,
    tagged,
    tool_env,
    world_diff,
    write_config,
)

pytestmark = pytest.mark.reliability

POINTS = ("before-intent", "after-intent", "polling", "after-success")
# Every long operation takes this long (unscaled seconds), so a "polling" kill lands mid-operation and
# the resumed run finds it still in flight or just finished, as after a real crash.
IN_FLIGHT = 0.5
DURATIONS = {
    key: IN_FLIGHT
    for key in (
        "virtualNetworks.put",
        "subnets.put",
        "publicIPAddresses.put",
        "firewallPolicies.put",
        "ruleCollectionGroups.put",
        "azureFirewalls.create",
        "azureFirewalls.update",
        "routeTables.put",
        "routes.put",
        "managedClusters.create",
        "runCommand",
        "virtualNetworks.delete",
        "publicIPAddresses.delete",
        "firewallPolicies.delete",
        "azureFirewalls.delete",
        "routeTables.delete",
        "managedClusters.delete",
        "resourceGroups.delete",
    )
}
# Writes the SDK answers synchronously (no poller): there is no "while polling" for them.
_SYNC = re.compile(
    r"/userAssignedIdentities/|/roleAssignments/|^/subscriptions/[^/]+/resourceGroups/[^/]+$", re.I
)
_UUID_TAIL = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def kill_points(writes: Sequence[tuple[str, str, str]], point: str) -> list[str]:
    """AKS_LOCKDOWN_CRASH_AT specs for every write (step, resource id or substring, operation) at
    ``point``, in the order given."""
    specs = []
    for step, rid, operation in writes:
        if point == "polling" and _SYNC.search(rid):
            continue
        # A role assignment's name derives from the identity's principal id, new in every world.
        stable = _UUID_TAIL.sub("/", rid)
        specs.append(f"{step}:{stable}:{operation}:{point}")
    return specs


def _start_emulator(tmp_path: Path, point: str = "") -> Any:
    """Operations take IN_FLIGHT seconds only for the "polling" kills (elsewhere they would only slow
    the teardown's in-use retries down)."""
    from aks_lockdown.emulator import Emulator

    durations = DURATIONS if point == "polling" else {}
    return Emulator(tmp_path / "emulator", profile="fast", durations=durations).start()


def _crash(emu: Any, command: str, config: Path, spec: str, *extra: str) -> None:
    """Run the command with the kill armed; it must die by SIGKILL at that point, leaving a state that
    parses and no duplicated resource."""
    result = run_cli(emu, command, config, *extra, env=tool_env(**{CRASH_ENV: spec}))
    assert result.returncode == -signal.SIGKILL, (
        f"{command} was not killed at {spec} (exit {result.returncode}): the point was never reached\n"
        f"stderr: {result.stderr[-2000:]}"
    )
    state = state_doc(config.parent / "state")  # raises StateError when it does not parse
    step, rid, operation, point = spec.split(":")[:4]
    intent = state.steps[step].intent if step in state.steps else None
    if point == "before-intent":
        assert intent is None or rid.lower() not in intent.resource_id.lower(), spec
    else:
        # The write was in flight at the kill: the state must say so, for the next run to resume it.
        assert intent is not None and rid.lower() in intent.resource_id.lower(), (spec, intent)
        assert intent.operation == operation
    assert not duplicates(emu), (spec, duplicates(emu))


@pytest.mark.parametrize("point", POINTS)
def test_deploy_killed_at_every_write_resumes(tmp_path: Path, baseline: Baseline, point: str) -> None:
    config = write_config(tmp_path / "work")
    specs = kill_points(baseline.writes, point)
    assert len(specs) >= 9
    emu = _start_emulator(tmp_path, point)
    try:
        for spec in specs:
            _crash(emu, "deploy", config, spec)
        final = run_cli(emu, "deploy", config)
        assert final.returncode == 0, final.stderr[-3000:]
        actual = normalize_world(emu)
        assert actual == baseline.world, world_diff(actual, baseline.world)
        state = state_doc(config.parent / "state")
        assert all(s.status == "done" and s.intent is None for s in state.steps.values()), state.steps
        # A converged deployment is a fixed point: one more run writes nothing.
        before = len(emu.requests())
        again = run_cli(emu, "deploy", config)
        assert again.returncode == 0, again.stderr[-2000:]
        assert [r for r in emu.requests()[before:] if r["method"] in ("PUT", "DELETE", "PATCH")] == []
    finally:
        emu.stop()


def _deployed(tmp_path: Path, point: str = "") -> tuple[Any, Path]:
    """An emulator with the deployment built (in process, quickly) into the CLI's state directory."""
    config = write_config(tmp_path / "work")
    emu = _start_emulator(tmp_path, point)
    InProcess(emu, load(config), config.parent / "state").runner().deploy()
    return emu, config


def _teardown_writes(emu: Any, config: Path, *extra: str) -> list[tuple[str, str, str]]:
    """The writes a clean teardown sends, from its JSON events."""
    result = run_cli(emu, "teardown", config, *extra, "--output", "json")
    assert result.returncode == 0, result.stderr
    writes = []
    for line in result.stdout.splitlines():
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("event") == "WriteStarted":
            writes.append((event["step"], event["resource_id"], event["operation"]))
    return writes


# The writes of `teardown --keep-resource-group` after a clean deploy (each step rolled back in reverse
# order), as (step, resource-id substring, operation). Checked against a real teardown below, so a
# change in the steps shows up as a failure of test_teardown_write_list_is_current, not as silent gaps.
KEEP_RG_WRITES = [
    ("cluster", "/managedClusters/aks-egress", "delete"),
    ("identity", "/roleAssignments/", "delete"),
    ("identity", "/userAssignedIdentities/aks-egress-identity", "delete"),
    ("route_table", "/subnets/aks-subnet", "update"),
    ("route_table", "/routeTables/aks-egress-fwrt", "delete"),
    ("firewall", "/azureFirewalls/aks-egress-fw", "delete"),
    ("rules", "/firewallPolicies/aks-egress-fwpolicy", "delete"),
    ("public_ips", "/publicIPAddresses/aks-egress-fwpublicip", "delete"),
    ("vnet", "/virtualNetworks/aks-egress-vnet", "delete"),
]
RG_WRITES = [("resource_group", "/resourceGroups/aks-egress-rg", "delete")]


def test_teardown_write_list_is_current(tmp_path: Path) -> None:
    emu, config = _deployed(tmp_path)
    try:
        seen = [
            (s, _UUID_TAIL.sub("/", rid), op)
            for s, rid, op in _teardown_writes(emu, config, "--keep-resource-group")
        ]
        assert len(seen) == len(KEEP_RG_WRITES), seen
        for (step, rid, op), (want_step, want_rid, want_op) in zip(seen, KEEP_RG_WRITES, strict=True):
            assert (step, op) == (want_step, want_op) and want_rid.lower() in rid.lower(), (
                seen,
                KEEP_RG_WRITES,
            )
    finally:
        emu.stop()


@pytest.mark.parametrize("point", POINTS)
def test_teardown_killed_at_every_write_resumes(tmp_path: Path, point: str) -> None:
    """Step-by-step teardown (--keep-resource-group), then the one-delete teardown of the group, each
    killed at every write; the reruns leave nothing tagged with the deployment."""
    emu, config = _deployed(tmp_path, point)
    try:
        for spec in kill_points(KEEP_RG_WRITES, point):
            _crash(emu, "teardown", config, spec, "--keep-resource-group")
        final = run_cli(emu, "teardown", config, "--keep-resource-group")
        assert final.returncode == 0, final.stderr[-3000:]
        left = tagged(emu)
        assert [rid.rsplit("/", 1)[-1] for rid in left] == ["aks-egress-rg"], left

        for spec in kill_points(RG_WRITES, point):
            _crash(emu, "teardown", config, spec)
        final = run_cli(emu, "teardown", config)
        assert final.returncode == 0, final.stderr[-3000:]
        assert tagged(emu) == []
        state = state_doc(config.parent / "state")
        assert all(r.deleted for r in state.resources.values() if r.origin == "created"), state.resources
    finally:
        emu.stop()


def test_crash_hook_inert_unless_armed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook costs nothing in normal runs (unset: a None checked per write) and, armed, fires only
    at the nth write matching step, resource substring, operation and point."""
    import aks_lockdown.engine.runner as runner

    assert runner._CRASH_AT is None, f"{CRASH_ENV} is set in the test environment"
    kills: list[int] = []
    monkeypatch.setattr(runner.os, "kill", lambda pid, sig: kills.append(sig))
    monkeypatch.setattr(
        runner, "_CRASH_AT", ["vnet", "/virtualNetworks/", "create", "polling", "2"] + [""] * 5
    )
    monkeypatch.setattr(runner, "_crash_hits", [0])
    vnet = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"
    runner._crash_point("after-intent", "vnet", vnet, "create")  # another point
    runner._crash_point("polling", "vnet", vnet, "delete")  # another operation
    runner._crash_point("polling", "rules", vnet, "create")  # another step
    runner._crash_point("polling", "vnet", vnet + "x/subnets/a", "create")  # 1st match
    assert kills == []
    runner._crash_point("polling", "vnet", vnet.upper(), "create")  # 2nd match (case-insensitive)
    assert kills == [signal.SIGKILL]

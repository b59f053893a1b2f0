"""The public IP step writes all its IPs in one ctx.write_many: created together, not one after another."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aks_lockdown.steps.public_ips import PublicIpStep
from aks_lockdown.steps.resource_group import ResourceGroupStep
from steps_helpers import FakeContext, converge, emulator_available

from aks_lockdown.config import Config

# Each create takes this long in the emulator (unscaled seconds; Retry-After rounds polls up to 1 s).
IP_SECONDS = 1.0
COUNT = 6


def test_all_ips_go_in_one_batch_and_a_rerun_writes_nothing(azure: Any) -> None:
    config = Config.model_validate({"firewall": {"public_ip_count": 20}})
    ctx = FakeContext(config, azure)
    converge(ctx, [ResourceGroupStep, PublicIpStep])
    assert ctx.batches == [20]
    out = ctx.outputs["public_ips"]
    assert len(out["ids"]) == 20 and all(out["addresses"]) and len(set(out["addresses"])) == 20
    ctx.writes.clear()
    converge(ctx, [ResourceGroupStep, PublicIpStep])
    assert ctx.writes == [] and ctx.batches == [20]  # nothing pending: no second batch


def test_basic_firewall_management_ip_joins_the_batch(azure: Any) -> None:
    config = Config.model_validate({"firewall": {"public_ip_count": 2, "sku": "Basic"}})
    ctx = FakeContext(config, azure)
    converge(ctx, [ResourceGroupStep, PublicIpStep])
    assert ctx.batches == [3]
    assert ctx.outputs["public_ips"]["management_address"]


@pytest.fixture
def slow_ips(tmp_path: Path) -> Iterator[Any]:
    if not emulator_available():
        pytest.fail("the ARM emulator is not usable")
    from aks_lockdown.emulator import Emulator

    emu = Emulator(tmp_path / "emu", profile="fast", durations={"publicIPAddresses.put": IP_SECONDS}).start()
    try:
        yield emu
    finally:
        emu.stop()


def test_the_creates_overlap_through_the_runner(slow_ips: Any, tmp_path: Path) -> None:
    from aks_lockdown.arm.clients import ClientFactory
    from aks_lockdown.arm.errors import classify
    from aks_lockdown.engine.runner import Runner
    from aks_lockdown.engine.state import LocalStateStore

    config = Config.model_validate({"firewall": {"public_ip_count": COUNT}})
    name = config.deployment.name
    runner = Runner(
        deployment=name,
        steps=[ResourceGroupStep, PublicIpStep],
        config=config,
        clients=ClientFactory(slow_ips.target(), polling_interval=0.05),
        store=LocalStateStore(tmp_path / "state", name),
        classify=classify,
        poll_interval=0.05,
    )
    started = time.monotonic()
    result = runner.deploy()
    elapsed = result.step("public_ips").elapsed
    # One after another this is at least COUNT x IP_SECONDS; together, about one of them.
    assert elapsed < COUNT * IP_SECONDS / 2, elapsed
    assert time.monotonic() - started < COUNT * IP_SECONDS
    puts = [r for r in slow_ips.requests() if r["method"] == "PUT" and "publicIPAddresses" in r["path"]]
    assert len(puts) == COUNT
    state = runner.status()
    recorded = state.steps["public_ips"]
    assert recorded.status == "done" and recorded.intent is None
    assert [h.outcome for h in recorded.history] == ["succeeded"] * COUNT
    ips = [rid for rid, r in state.resources.items() if "publicIPAddresses" in rid and r.origin == "created"]
    assert len(ips) == COUNT

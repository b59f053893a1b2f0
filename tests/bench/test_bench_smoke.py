"""Keeps the benchmark code from rotting: the seed replay and the tool's deploy on the fast profile.

Nothing here is timed: only counts that follow from what each side sends (the seed's 7 full firewall
writes against the tool's 1) and that the summary renders.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `bench` is a top-level directory of the repository, not an installed package.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aks_lockdown.emulator.containerservice  # noqa: E402, F401  (the smoke test needs AKS: never skip it)
from bench import tool  # noqa: E402
from bench.__main__ import summarize  # noqa: E402
from bench.common import bench_emulator, count  # noqa: E402
from bench.critical_path import lower_bound  # noqa: E402
from bench.report import render_block, update_marked_block  # noqa: E402
from bench.seed_replay import replay  # noqa: E402


def test_seed_replay_and_tool_deploy_counts(tmp_path: Path) -> None:
    with bench_emulator(tmp_path / "seed", profile="fast") as emu:
        seed = replay(emu, polling_interval=0.01)
    assert seed.ok, seed.error
    seed_counts = count(seed.all_requests())
    # create, ip-config, 3 network rules, 1 application rule, 1 NAT rule: one full PUT each.
    assert seed_counts["firewall_writes"] == 7
    assert len(seed.commands) == 24
    assert seed_counts["run_commands"] == 2

    config = tool.load()
    with bench_emulator(tmp_path / "tool", profile="fast") as emu:
        run = tool.deploy(emu, tmp_path / "state", time_scale=0.001, config=config)
        assert run.ok, run.error
        noop = tool.deploy(emu, tmp_path / "state", time_scale=0.001, config=config)
    tool_counts = count(run.requests)
    assert tool_counts["firewall_writes"] == 1
    assert tool_counts["writes"] < seed_counts["writes"]
    assert noop.ok and count(noop.requests)["writes"] == 0

    results = {
        "tool": {"ok": True, "wall": run.wall, "counts": tool_counts, "operations": {}},
        "seed": {"ok": True, "wall": seed.wall, "counts": seed_counts},
        "noop": {"wall": noop.wall, "counts": count(noop.requests)},
    }
    summary = summarize(results, lower_bound(config), 1.0)
    block = render_block(
        summary, scale=1.0, machine={"platform": "x", "cpu_count": 1, "python": "3"}, bench_seconds=0
    )
    assert "firewall writes" in block
    readme = tmp_path / "README.md"
    readme.write_text("# x\n")
    assert update_marked_block(readme, block, create=True)
    assert update_marked_block(readme, "second", create=True)
    text = readme.read_text()
    assert text.count("<!-- bench:start -->") == 1 and "second" in text and "firewall writes" not in text

"""``python -m bench`` (``make bench``): every figure in one run, each on a fresh emulator.

Raw results go to ``bench/results/<date>-<figure>.json``; the summary table is printed, written
between the ``<!-- bench:start -->``/``<!-- bench:end -->`` markers of README.md and of
docs/benchmarks.md (method and reading of the figures are in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import cli_runs, critical_path, throughput, tool
from bench.common import (
    CONFIG,
    RESULTS_DIR,
    ROOT,
    azure_seconds,
    bench_emulator,
    count,
    machine,
    write_result,
)
from bench.report import Target, render_block, update_marked_block
from bench.seed_replay import replay

FIGURES = ("deploy", "critical-path", "noop", "resume", "startup", "throughput")


def _strip(run_requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request log as stored in results: method, path, status, time offset."""
    if not run_requests:
        return []
    t0 = run_requests[0]["time"]
    return [
        {"t": round(r["time"] - t0, 4), "method": r["method"], "path": r["path"], "status": r["status"]}
        for r in run_requests
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--time-scale", type=float, default=0.02, help="emulator time scale (default 0.02)")
    p.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(FIGURES)}")
    p.add_argument("--repeat", type=int, default=3, help="tool deploys for the median of (1) (default 3)")
    p.add_argument("--help-runs", type=int, default=15, help="runs of --help for the median (default 15)")
    p.add_argument("--throughput-seconds", type=float, default=3.0, help="seconds per throughput loop")
    p.add_argument(
        "--kill-at",
        default="0.25,0.5,0.75",
        help="kill after these fractions of the cluster create, one trial each (default 0.25,0.5,0.75)",
    )
    p.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        help="skip the method check (one deploy on the stock emulator, whole-second Retry-After)",
    )
    p.add_argument("--no-write", action="store_true", help="print only: no results, README or docs")
    p.add_argument("--keep", action="store_true", help="keep the emulator data dirs (printed)")
    args = p.parse_args(argv)
    only = {f.strip() for f in args.only.split(",") if f.strip()} or set(FIGURES)
    unknown = only - set(FIGURES)
    if unknown:
        p.error(f"unknown figure(s): {', '.join(sorted(unknown))}")
    scale = args.time_scale
    if not 0 < scale <= 1:
        p.error("--time-scale must be in (0, 1]")

    tool.warm_imports()
    config = tool.load(CONFIG)
    tmp = Path(tempfile.mkdtemp(prefix="aks-lockdown-bench-"))
    started = time.perf_counter()
    results: dict[str, Any] = {"machine_at_start": machine()}
    bound = critical_path.lower_bound(config)
    print(f"bench: time scale {scale}, data under {tmp}", file=sys.stderr)
    try:
        # (1): extra deploys on fresh emulators, so the figure is a median, not one sample.
        walls: list[float] = []
        if only & {"deploy", "critical-path"}:
            for i in range(max(0, args.repeat - 1)):
                with bench_emulator(tmp / f"tool-{i}" / "emulator", time_scale=scale) as emu:
                    extra_run = tool.deploy(emu, tmp / f"tool-{i}" / "state", time_scale=scale, config=config)
                if extra_run.ok:
                    walls.append(extra_run.wall)
                print(f"bench: tool deploy {extra_run.wall:.2f} s ok={extra_run.ok}", file=sys.stderr)
        # (1) + (3) + (5b): the tool's deploy, its no-op rerun and a CLI plan, all on one emulator.
        if only & {"deploy", "critical-path", "noop", "startup"}:
            with bench_emulator(tmp / "tool" / "emulator", time_scale=scale) as emu:
                state = tmp / "tool" / "state"
                ops_before = time.time()
                run = tool.deploy(emu, state, time_scale=scale, config=config)
                ops = critical_path.operations_busy(emu.world_view()["operations"], ops_before)
                results["precise_retry_after"] = bool(getattr(emu, "bench_precise_retry_after", False))
                walls.append(run.wall)
                results["tool"] = {
                    "ok": run.ok,
                    "error": run.error,
                    # The median of the deploys (this one included); steps and requests are this one's.
                    "wall": statistics.median(walls) if run.ok else run.wall,
                    "walls": walls,
                    "wall_this_run": run.wall,
                    "azure_seconds": azure_seconds(statistics.median(walls), scale),
                    "counts": count(run.requests),
                    "steps": run.steps,
                    "operations": {k: v / scale if k != "count" else v for k, v in ops.items()},
                    "requests": _strip(run.requests),
                }
                print(f"bench: tool deploy {run.wall:.2f} s ok={run.ok} {run.error}", file=sys.stderr)
                if run.ok and "noop" in only:
                    noop = tool.deploy(emu, state, time_scale=scale, config=config)
                    results["noop"] = {
                        "ok": noop.ok,
                        "error": noop.error,
                        "wall": noop.wall,
                        "azure_seconds": azure_seconds(noop.wall, scale),
                        "counts": count(noop.requests),
                        "steps": noop.steps,
                        "requests": _strip(noop.requests),
                    }
                    print(f"bench: no-op rerun {noop.wall:.2f} s", file=sys.stderr)
                if run.ok and "startup" in only:
                    plan = cli_runs.run_cli(
                        emu, "plan", str(CONFIG), "--detailed-exitcode", state_dir=state, timeout=300
                    )
                    results["plan"] = {
                        "exit": plan["exit"],
                        "wall": plan["wall"],
                        "counts": count(plan["requests"]),
                        "requests": _strip(plan["requests"]),
                        "stderr_tail": plan["stderr_tail"] if plan["exit"] not in (0, 2) else "",
                    }
                    print(f"bench: CLI plan {plan['wall']:.2f} s exit {plan['exit']}", file=sys.stderr)
                if run.ok and "noop" in only:
                    # The same no-op as an operator runs it: a new process, the CLI's own Runner.
                    again = cli_runs.run_cli(
                        emu, "deploy", str(CONFIG), "--yes", "--no-verify", state_dir=state, timeout=300
                    )
                    results["noop_cli"] = {
                        "exit": again["exit"],
                        "wall": again["wall"],
                        "first_request_after": again["first_request_after"],
                        "counts": count(again["requests"]),
                        "requests": _strip(again["requests"]),
                        "stderr_tail": again["stderr_tail"] if again["exit"] != 0 else "",
                    }
                    print(
                        f"bench: CLI no-op deploy {again['wall']:.2f} s exit {again['exit']}", file=sys.stderr
                    )

        if args.calibrate and only & {"deploy", "critical-path"}:
            # The same deploy on the stock emulator (whole-second Retry-After): what the bench corrects.
            with bench_emulator(
                tmp / "stock" / "emulator", time_scale=scale, precise_retry_after=False
            ) as emu:
                stock = tool.deploy(emu, tmp / "stock" / "state", time_scale=scale, config=config)
            results["calibration"] = {
                "ok": stock.ok,
                "wall": stock.wall,
                "azure_seconds": azure_seconds(stock.wall, scale),
                "counts": count(stock.requests),
            }
            print(f"bench: tool deploy, stock Retry-After: {stock.wall:.2f} s", file=sys.stderr)

        if only & {"deploy", "critical-path"}:
            with bench_emulator(tmp / "seed" / "emulator", time_scale=scale) as emu:
                seed = replay(emu, polling_interval=max(0.01, 10 * scale))
                results["seed"] = {
                    **seed.to_json(),
                    "azure_seconds": azure_seconds(seed.wall, scale),
                    "counts": count(seed.all_requests()),
                }
                print(f"bench: seed replay {seed.wall:.2f} s ok={seed.ok} {seed.error}", file=sys.stderr)

        # (4) resume after SIGKILL during the cluster create, against an uninterrupted CLI deploy.
        if "resume" in only:
            with bench_emulator(tmp / "cli-base" / "emulator", time_scale=scale) as emu:
                base = cli_runs.run_cli(
                    emu, "deploy", str(CONFIG), "--yes", "--no-verify", state_dir=tmp / "cli-base" / "state"
                )
            print(f"bench: CLI deploy {base['wall']:.2f} s exit {base['exit']}", file=sys.stderr)
            trials = []
            for i, fraction in enumerate(_fractions(args.kill_at)):
                trials.append(_kill_and_resume(tmp / f"cli-kill-{i}", scale, fraction))
            results["resume"] = {
                "baseline": {k: v for k, v in base.items() if k != "requests"}
                | {"counts": count(base["requests"])},
                "trials": trials,
            }

        if "startup" in only:
            results["help"] = cli_runs.help_startup(args.help_runs)
            print(f"bench: --help median {results['help']['median']:.3f} s", file=sys.stderr)

        if "throughput" in only:
            with bench_emulator(tmp / "throughput" / "emulator", time_scale=scale, throttling=False) as emu:
                secs = args.throughput_seconds
                results["throughput"] = [
                    throughput.measure(emu, "sdk", secs),
                    throughput.measure(emu, "sdk", secs, threads=4),
                    throughput.measure(emu, "raw", secs),
                    throughput.measure(emu, "raw", secs, threads=4),
                ]
            print("bench: throughput done", file=sys.stderr)
    finally:
        if args.keep:
            print(f"bench: emulator data kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    total = time.perf_counter() - started
    summary = summarize(results, bound, scale)
    block = render_block(summary, scale=scale, machine=machine(), bench_seconds=total)
    print(block)
    if not args.no_write:
        for figure, data in figure_files(results, bound, summary, scale).items():
            if figure == "summary" and only != set(FIGURES):
                continue  # the day's summary is the full run's
            write_result(figure, data, results_dir=RESULTS_DIR)
        if only == set(FIGURES):
            # A partial run (--only) keeps its raw results but never replaces the full table.
            update_marked_block(ROOT / "README.md", block, create=True)
            update_marked_block(ROOT / "docs" / "benchmarks.md", block, create=False)
        else:
            print(
                "bench: partial run (--only): README.md and docs/benchmarks.md left as they were",
                file=sys.stderr,
            )
    failed = [name for name in ("tool", "seed") if name in results and not results[name].get("ok")]
    return 1 if failed else 0


def _fractions(text: str) -> list[float]:
    values = [float(v) for v in text.split(",") if v.strip()]
    if not values or any(not 0 < v < 1 for v in values):
        raise SystemExit("--kill-at: fractions between 0 and 1, comma-separated")
    return values


def _kill_and_resume(where: Path, scale: float, fraction: float) -> dict[str, Any]:
    """SIGKILL a CLI deploy ``fraction`` of the way into its cluster create, then rerun the command."""
    state = where / "state"
    with bench_emulator(where / "emulator", time_scale=scale) as emu:
        cluster_seconds = emu.config.duration("managedClusters.create")
        killed = cli_runs.deploy_killed_during_cluster(
            emu, state_dir=state, kill_after=fraction * cluster_seconds
        )
        resumed = cli_runs.run_cli(emu, "deploy", str(CONFIG), "--yes", "--no-verify", state_dir=state)
        ends = [
            critical_path.iso_ts(o["endTime"])
            for o in emu.world_view()["operations"]
            if o.get("kind") == "managedClusters.create" and o.get("endTime")
        ]
    cluster_end = max(ends, default=None)
    # How long after the create ended in Azure the resumed run first read the cluster again.
    after = [r["time"] for r in resumed["requests"] if cluster_end and r["time"] >= cluster_end]
    resumed["cluster_noticed_after"] = (after[0] - cluster_end) if after and cluster_end else None
    print(
        f"bench: kill at {fraction:.2f}: killed run {killed['wall']:.2f} s, "
        f"resume {resumed['wall']:.2f} s exit {resumed['exit']}",
        file=sys.stderr,
    )
    return {
        "kill_at_fraction": fraction,
        "killed": {k: v for k, v in killed.items() if k != "requests"}
        | {"counts": count(killed["requests"])},
        "resumed": {k: v for k, v in resumed.items() if k != "requests"}
        | {"counts": count(resumed["requests"]), "requests": _strip(resumed["requests"])},
    }


def summarize(results: dict[str, Any], bound: dict[str, Any], scale: float) -> dict[str, Any]:
    """The figures and their targets, in the order of the table."""
    s: dict[str, Any] = {"rows": [], "targets": []}
    rows, targets = s["rows"], s["targets"]
    tool_r, seed_r = results.get("tool"), results.get("seed")
    cp = bound["seconds"]
    if tool_r and seed_r:
        tc, sc = tool_r["counts"], seed_r["counts"]
        speedup = seed_r["wall"] / tool_r["wall"] if tool_r["wall"] else 0.0
        rows += [
            (
                "(1) deploy wall time"
                + (f" (median of {len(tool_r['walls'])})" if len(tool_r.get("walls", [])) > 1 else ""),
                f"{_az(tool_r['wall'], scale)} ({tool_r['wall']:.1f} s real)",
                f"{_az(seed_r['wall'], scale)} ({seed_r['wall']:.1f} s real)",
                f"{speedup:.2f}x faster",
            ),
            (
                "(1) firewall writes",
                tc["firewall_writes"],
                sc["firewall_writes"],
                _ratio(sc["firewall_writes"], tc["firewall_writes"]),
            ),
            (
                "(1) firewall policy/group writes",
                tc["firewall_policy_writes"],
                sc["firewall_policy_writes"],
                "",
            ),
            (
                "(1) resource writes (PUT/PATCH/DELETE)",
                tc["writes"],
                sc["writes"],
                _ratio(sc["writes"], tc["writes"]),
            ),
            ("(1) run commands (POST)", tc["run_commands"], sc["run_commands"], ""),
            (
                "(1) ARM requests (incl. polls)",
                tc["requests"],
                sc["requests"],
                _ratio(sc["requests"], tc["requests"]),
            ),
        ]
        targets += [
            Target(
                "firewall writes per deploy = 1 (seed 7)",
                f"{tc['firewall_writes']} (seed {sc['firewall_writes']})",
                tc["firewall_writes"] == 1,
            ),
            Target("deploy >= 1.8x faster than the seed replay", f"{speedup:.2f}x", speedup >= 1.8),
        ]
    if tool_r:
        ratio = azure_seconds(tool_r["wall"], scale) / cp if cp else 0.0
        rows.append(
            (
                "(2) critical-path lower bound",
                _az(cp * scale, scale),
                "",
                f"tool {ratio:.3f}x the bound"
                + (
                    f" (deploys {min(tool_r['walls']) / scale / cp:.3f}"
                    f"..{max(tool_r['walls']) / scale / cp:.3f}x)"
                    if len(tool_r.get("walls", [])) > 1
                    else ""
                ),
            )
        )
        ops = tool_r.get("operations") or {}
        if ops:
            rows.append(
                (
                    "(2) tool's long operations, summed",
                    f"{ops['sum'] / 60:.1f} min",
                    "",
                    f"{ops['count']} operations",
                )
            )
        targets.append(Target("deploy wall <= 1.10x critical path", f"{ratio:.3f}x", ratio <= 1.10))
    noop = results.get("noop")
    if noop:
        c = noop["counts"]
        rows.append(
            (
                "(3) no-op rerun",
                f"{noop['wall']:.2f} s real ({_az(noop['wall'], scale)})",
                "",
                f"{c['writes']} writes, {c['resource_gets']} GETs, {c['run_commands']} run command, "
                f"max {c['max_gets_per_resource']} GET/resource",
            )
        )
        targets.append(Target("no-op rerun: 0 writes", str(c["writes"]), c["writes"] == 0))
        targets.append(
            Target(
                "no-op rerun: <= 1 GET per resource",
                f"max {c['max_gets_per_resource']}",
                c["max_gets_per_resource"] <= 1,
            )
        )
    again = results.get("noop_cli")
    if again:
        c = again["counts"]
        rows.append(
            (
                "(3) no-op rerun through the CLI",
                f"{again['wall']:.2f} s real",
                "",
                f"exit {again['exit']}; {c['writes']} writes, {c['requests']} requests "
                f"(start-up {again['first_request_after'] or 0:.2f} s)",
            )
        )
        targets.append(Target("no-op rerun (CLI): 0 writes", str(c["writes"]), c["writes"] == 0))
    cal = results.get("calibration")
    if cal and tool_r:
        rows.append(
            (
                "method check: deploy on the stock emulator (1 s Retry-After floor)",
                _az(cal["wall"], scale),
                "",
                f"{cal['azure_seconds'] / cp:.3f}x the bound: the floor's overshoot, corrected in (1)-(3)",
            )
        )
    res = results.get("resume")
    if res and res.get("trials"):
        base = res["baseline"]
        extras = []
        for trial in res["trials"]:
            killed, resumed = trial["killed"], trial["resumed"]
            trial["extra"] = killed["wall"] + resumed["wall"] - base["wall"]
            extras.append(trial["extra"])
        res["extra_median"] = statistics.median(extras)
        worst = max(res["trials"], key=lambda t: t["extra"])
        ok = all(t["resumed"]["exit"] == 0 and t["killed"]["killed"] for t in res["trials"])
        starts = [t["resumed"].get("first_request_after") or 0.0 for t in res["trials"]]
        late = [t["resumed"].get("cluster_noticed_after") or 0.0 for t in res["trials"]]
        rows.append(
            (
                "(4) resume after SIGKILL mid-cluster: extra wall (real s)",
                f"median {res['extra_median']:+.2f} s, range {min(extras):+.2f}..{max(extras):+.2f} s"
                f" over {len(extras)} kills",
                "",
                f"CLI deploy {base['wall']:.1f} s uninterrupted; resumes {'all exit 0' if ok else 'FAILED'},"
                f" {max(t['resumed']['counts']['writes'] for t in res['trials'])} resource writes;"
                f" resume start-up {statistics.median(starts):.2f} s; cluster end noticed"
                f" {min(late):.2f}..{max(late):.2f} s late (CLI state poll {_cli_state_poll():g} s);"
                f" worst at {worst['kill_at_fraction']:.2f} of the create",
            )
        )
    hp = results.get("help")
    if hp:
        rows.append(
            (
                "(5) --help start-up (median)",
                f"{hp['median'] * 1000:.0f} ms",
                "",
                f"{hp['runs']} runs; bare python {hp['python_startup_median'] * 1000:.0f} ms",
            )
        )
        targets.append(Target("--help < 0.3 s", f"{hp['median']:.3f} s", hp["median"] < 0.3))
    plan = results.get("plan")
    if plan:
        c = plan["counts"]
        rows.append(
            (
                "(5) CLI plan on the deployed environment",
                f"{plan['wall']:.2f} s real",
                "",
                f"exit {plan['exit']}; {c['requests']} requests ({c['resource_gets']} GETs, "
                f"{c['run_commands']} run command), {c['writes']} writes",
            )
        )
    tp = results.get("throughput")
    if tp:
        cells = [
            f"{t['client']} x{t['threads']}: {t['per_second']:.0f}/s"
            if "per_second" in t
            else f"{t['client']}: error"
            for t in tp
        ]
        rows.append(("(6) emulator GET/s (client in a subprocess)", "; ".join(cells), "", "throttling off"))
    return s


def _cli_state_poll() -> float:
    """How often the CLI re-reads a resource in flight when pointed at an external emulator."""
    try:
        from aks_lockdown.commands import _common

        return float(getattr(_common, "EXTERNAL_EMULATOR_STATE_POLL_INTERVAL", 5.0))
    except ImportError:
        return 5.0


def _az(wall: float, scale: float) -> str:
    return f"{azure_seconds(wall, scale) / 60:.1f} min"


def _ratio(seed: float, tool_value: float) -> str:
    return f"{seed / tool_value:.1f}x fewer" if tool_value else ""


def figure_files(
    results: dict[str, Any], bound: dict[str, Any], summary: dict[str, Any], scale: float
) -> dict[str, dict[str, Any]]:
    common = {
        "machine_at_start": results.get("machine_at_start"),
        "time_scale": scale,
        "profile": "realistic",
        "config": str(CONFIG.relative_to(ROOT)),
        # Retry-After sent unrounded as retry-after-ms (see bench/common.py); False: stock emulator.
        "precise_retry_after": results.get("precise_retry_after", True),
    }
    files: dict[str, dict[str, Any]] = {}
    if "tool" in results and "seed" in results:
        files["fig1-deploy-vs-seed"] = {**common, "tool": results["tool"], "seed": results["seed"]}
    if "tool" in results:
        files["fig2-critical-path"] = {
            **common,
            "lower_bound": bound,
            "seed_sequence": critical_path.seed_sequence(),
            "tool_wall_azure_seconds": results["tool"]["azure_seconds"],
            "ratio": results["tool"]["azure_seconds"] / bound["seconds"] if bound["seconds"] else None,
            "tool_operations": results["tool"].get("operations"),
            "tool_steps": results["tool"].get("steps"),
        }
    if "noop" in results:
        files["fig3-noop-rerun"] = {**common, **results["noop"], "cli": results.get("noop_cli")}
    if "calibration" in results:
        files["method-check-stock-retry-after"] = {**common, **results["calibration"]}
    if "resume" in results:
        files["fig4-resume-after-kill"] = {**common, **results["resume"]}
    if "help" in results or "plan" in results:
        files["fig5-startup-and-plan"] = {**common, "help": results.get("help"), "plan": results.get("plan")}
    if "throughput" in results:
        files["fig6-throughput"] = {**common, "throughput": results["throughput"]}
    files["summary"] = {
        **common,
        "rows": [list(r) for r in summary["rows"]],
        "targets": [t.as_json() for t in summary["targets"]],
    }
    return files


if __name__ == "__main__":
    raise SystemExit(main())

"""The summary table (Markdown) and the marked block it refreshes in README.md and docs/benchmarks.md."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import now_iso

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"


@dataclass(frozen=True)
class Target:
    what: str
    measured: str
    met: bool

    def as_json(self) -> dict[str, Any]:
        return {"target": self.what, "measured": self.measured, "met": self.met}


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|")


def render_block(
    summary: Mapping[str, Any], *, scale: float, machine: Mapping[str, Any], bench_seconds: float
) -> str:
    load = "/".join(str(x) for x in machine.get("load_average", []))
    lines = [
        f"Measured {now_iso()} on {machine['platform']}, {machine['cpu_count']} CPUs, "
        f"Python {machine['python']}, load average {load} at the end; bench run {bench_seconds:.0f} s.",
        "",
        f"Method: config/eastus.toml deployed by aks_lockdown (the Runner in process) and the seed "
        f"walkthrough replayed call for call with the same SDKs, each on a fresh ARM emulator with the "
        f'`realistic` durations at time scale {scale}; times are wall clock divided by the scale ("Azure '
        f'minutes"). Details, caveats and raw JSON: docs/benchmarks.md, bench/results/.',
        "",
        "| figure | aks_lockdown | seed replay | comparison |",
        "|---|---|---|---|",
    ]
    for row in summary.get("rows", []):
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    targets = summary.get("targets", [])
    if targets:
        lines += ["", "| target | measured | |", "|---|---|---|"]
        for t in targets:
            lines.append(f"| {_cell(t.what)} | {_cell(t.measured)} | {'met' if t.met else 'MISSED'} |")
    return "\n".join(lines)


def update_marked_block(path: Path, block: str, *, create: bool) -> bool:
    """Replace the text between the markers; append the markers when absent and ``create`` is set.
    Returns whether the file was written."""
    text = path.read_text() if path.exists() else ""
    if START in text and END in text and text.index(START) < text.index(END):
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        new = f"{head}{START}\n{block}\n{END}{tail}"
    elif create:
        sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        new = f"{text}{sep}{START}\n{block}\n{END}\n"
    else:
        return False
    if new != text:
        path.write_text(new)
    return True

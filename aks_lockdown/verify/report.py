"""The verify report: checks, and their renderings (rich table, plain text, JSON, Markdown).

A check has a status as well as ``passed``: "warn" and "skip" pass (exit 0) but are shown, because a
change ticket should say what was not proven as plainly as what was.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.console import RenderableType

Status = Literal["pass", "fail", "warn", "skip"]
Category = Literal["routing", "firewall", "cluster", "identity", "ingress", "egress-probe", "dns", "inbound"]

_MARK = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}
_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


@dataclass(frozen=True)
class Check:
    id: str  # stable, e.g. "route.default"; tests and CI key on it
    category: Category
    title: str  # what the table's "check" column says
    expected: str
    observed: str
    status: Status
    message: str = ""  # the finding in words, naming the resource ("route 'x' ... is missing ...")
    details: tuple[str, ...] = ()  # one line per endpoint / rule / service, for the report

    @property
    def passed(self) -> bool:
        return self.status != "fail"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["details"] = list(self.details)
        data["passed"] = self.passed
        return data


@dataclass(frozen=True)
class Spec:
    """What a check is before it runs: its id, category, title and expectation; the methods give the
    verdict, so every check reads ``return spec.fail(observed, message)``."""

    id: str
    category: Category
    title: str
    expected: str

    def _check(self, status: Status, observed: str, message: str, details: Iterable[str]) -> Check:
        return Check(
            self.id, self.category, self.title, self.expected, observed, status, message, tuple(details)
        )

    def ok(self, observed: str, message: str = "", details: Iterable[str] = ()) -> Check:
        return self._check("pass", observed, message, details)

    def fail(self, observed: str, message: str, details: Iterable[str] = ()) -> Check:
        return self._check("fail", observed, message, details)

    def warn(self, observed: str, message: str, details: Iterable[str] = ()) -> Check:
        return self._check("warn", observed, message, details)

    def skip(self, observed: str, message: str, details: Iterable[str] = ()) -> Check:
        return self._check("skip", observed, message, details)


@dataclass
class VerifyReport:
    deployment: str
    target: str  # "Azure (AzureCloud), subscription ..." or "emulator https://127.0.0.1:PORT"
    started: datetime
    finished: datetime
    checks: list[Check] = field(default_factory=list)
    config_path: str = ""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def __bool__(self) -> bool:
        # The CLI's hook does `bool(run_verify(...))`: true exactly when every check passed.
        return self.passed

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def get(self, check_id: str) -> Check:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "warn": 0, "skip": 0}
        for c in self.checks:
            out[c.status] += 1
        return out

    def summary(self) -> str:
        n = self.counts()
        verdict = "PASSED" if self.passed else "FAILED"
        extra = "".join(f", {n[k]} {k}" for k in ("warn", "skip") if n[k])
        return f"verify {self.deployment}: {verdict} ({n['pass']} passed, {n['fail']} failed{extra})"

    def to_json(self) -> dict[str, Any]:
        return {
            "event": "VerifyReport",
            "deployment": self.deployment,
            "target": self.target,
            "config": self.config_path,
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "passed": self.passed,
            "counts": self.counts(),
            "checks": [c.to_json() for c in self.checks],
        }


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------------------- renderers


def render_json(report: VerifyReport, *, indent: int | None = None) -> str:
    """``--output json``: one object (one line unless ``indent``), so JSON-lines readers keep working."""
    return json.dumps(report.to_json(), indent=indent)


def render_text(report: VerifyReport) -> str:
    """Plain aligned text for logs and pipes: the same table as the rich one, then the findings."""
    rows = [("CHECK", "EXPECTED", "OBSERVED", "RESULT")]
    rows += [(c.title, _clip(c.expected), _clip(c.observed), _MARK[c.status]) for c in report.checks]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"verify {report.deployment} ({report.target})"]
    for r in rows:
        lines.append("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3])
    lines += _findings(report.checks)
    lines.append(report.summary())
    return "\n".join(lines)


def _findings(checks: Iterable[Check]) -> list[str]:
    out = []
    for c in checks:
        if c.status in ("fail", "warn") and c.message:
            out.append(f"{_MARK[c.status]} {c.id}: {c.message}")
    return out


def _clip(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_rich(report: VerifyReport) -> RenderableType:
    """A rich table: check, expected, observed, pass/fail; the findings under it."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"verify {report.deployment}", title_justify="left", caption=report.target)
    table.add_column("check", style="bold", no_wrap=True)
    table.add_column("expected", overflow="fold")
    table.add_column("observed", overflow="fold")
    table.add_column("result", no_wrap=True)
    for c in report.checks:
        table.add_row(c.title, c.expected, c.observed, Text(_MARK[c.status], style=_STYLE[c.status]))
    parts: list[Any] = [table]
    for c in report.checks:
        if c.status in ("fail", "warn") and c.message:
            parts.append(Text(f"{_MARK[c.status]} {c.id}: {c.message}", style=_STYLE[c.status]))
    parts.append(Text(report.summary(), style="bold green" if report.passed else "bold red"))
    return Group(*parts)


def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_markdown(report: VerifyReport) -> str:
    """The change-ticket report: deployment, time, target, verdict, every check, then the details."""
    n = report.counts()
    lines = [
        f"# Lockdown verification: {report.deployment}",
        "",
        f"- **Result:** {'PASSED' if report.passed else 'FAILED'} "
        f"({n['pass']} passed, {n['fail']} failed, {n['warn']} warnings, {n['skip']} skipped)",
        f"- **Deployment:** `{report.deployment}`",
        f"- **Time:** {_iso(report.started)} to {_iso(report.finished)} (UTC)",
        f"- **Target:** {_md(report.target)}",
    ]
    if report.config_path:
        lines.append(f"- **Config:** `{report.config_path}`")
    lines += ["", "| Check | Category | Expected | Observed | Result |", "|---|---|---|---|---|"]
    for c in report.checks:
        mark = _MARK[c.status]
        lines.append(
            f"| {_md(c.title)} (`{c.id}`) | {c.category} | {_md(c.expected)} | {_md(c.observed)} | "
            f"**{mark}** |"
        )
    lines += ["", "## Details", ""]
    for c in report.checks:
        lines.append(f"### {_MARK[c.status]}: {c.title} (`{c.id}`)")
        lines.append("")
        if c.message:
            lines += [c.message, ""]
        for d in c.details:
            lines.append(f"- {d}")
        if c.details:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def emit(report: VerifyReport, sink: Any) -> None:
    """Show the report on the CLI's display, whichever kind it is.

    A display that knows verify reports (a ``verify_report`` method) renders it itself; otherwise JSON
    displays get one JSON line, live displays the rich table, anything with ``note`` the plain text.
    """
    if sink is None:
        return
    own = getattr(sink, "verify_report", None)
    if callable(own):
        own(report)
        return
    if type(sink).__name__ == "JsonDisplay" and hasattr(sink, "stream"):
        sink.stream.write(render_json(report) + "\n")
        sink.stream.flush()
        return
    console = getattr(sink, "console", None)
    if console is not None:
        close = getattr(sink, "close", None)
        if callable(close):
            close()  # stop a live region first, or the table is drawn inside it
        console.print(render_rich(report))
        return
    note = getattr(sink, "note", None)
    if callable(note):
        note(render_text(report))
        return
    if callable(sink):
        sink(report)

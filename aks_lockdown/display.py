"""How the engine's events reach a person or a program.

Three sinks, one interface (call it with an ``Event``; use it as a context manager):

- ``LiveDisplay``: a rich live table on a terminal, one row per step, a spinner and the elapsed time
  on long operations, retries shown, then a summary panel.
- ``PlainDisplay``: one flushed line per event, for logs and pipes (stdout not a terminal).
- ``JsonDisplay``: ``--output json``, one ``Event.to_json()`` object per line, for CI.

Plus the Terraform-style plan renderer and the ``-v`` HTTP log set-up. rich is imported only by the
live display, so plain and JSON output (and the CLI's start-up) never pay for it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from aks_lockdown.engine.events import (
    Event,
    Progress,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepChecking,
    StepDone,
    StepFailed,
    StepPlanned,
    StepRollingBack,
    WriteFinished,
    WriteStarted,
)
from aks_lockdown.engine.step import Diff, ResourceChange

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = [
    "DeploySummary",
    "Display",
    "JsonDisplay",
    "LiveDisplay",
    "PlainDisplay",
    "PlannedStep",
    "enable_http_logging",
    "make_display",
    "render_plan",
    "short_id",
]


# --------------------------------------------------------------------------------------------------
# Shared pieces


def short_id(resource_id: str) -> str:
    """``.../providers/Microsoft.Network/virtualNetworks/v/subnets/s`` -> ``virtualNetworks/v/subnets/s``."""
    if not resource_id:
        return ""
    _, sep, tail = resource_id.rpartition("/providers/")
    if sep:
        parts = tail.split("/")
        return "/".join(parts[1:]) if len(parts) > 2 else tail
    parts = [p for p in resource_id.split("/") if p]
    return "/".join(parts[-2:])


def _seconds(value: float) -> str:
    value = max(0.0, value)
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}m{seconds:02d}s"


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


@dataclass(frozen=True)
class PlannedStep:
    """One step's diff, as the plan renderer takes it."""

    name: str
    title: str
    diff: Diff


@dataclass
class DeploySummary:
    """What the operator needs after a deploy: addresses, how to get in, what to run next."""

    deployment: str
    ok: bool
    elapsed: float = 0.0
    cluster_name: str | None = None
    api_server: str | None = None
    firewall_private_ip: str | None = None
    firewall_public_ips: list[str] = field(default_factory=list)
    authorized_ranges: list[str] = field(default_factory=list)
    dnat_urls: list[str] = field(default_factory=list)
    next_commands: list[tuple[str, str]] = field(default_factory=list)  # (what for, command line)
    rows: list[tuple[str, str]] = field(default_factory=list)  # more (label, value) lines
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items()}
        data["next_commands"] = [{"what": what, "command": cmd} for what, cmd in self.next_commands]
        data["rows"] = [{"label": label, "value": value} for label, value in self.rows]
        data["event"] = "Summary"
        return data

    def lines(self) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        if self.firewall_public_ips:
            rows.append(
                (
                    "firewall public IP" + ("s" if len(self.firewall_public_ips) > 1 else ""),
                    ", ".join(self.firewall_public_ips),
                )
            )
        if self.firewall_private_ip:
            rows.append(("firewall private IP", self.firewall_private_ip))
        if self.cluster_name:
            rows.append(("cluster", self.cluster_name))
        if self.api_server:
            rows.append(("API server", self.api_server))
        if self.authorized_ranges:
            rows.append(("authorized ranges", ", ".join(self.authorized_ranges)))
        for url in self.dnat_urls:
            rows.append(("ingress (DNAT)", url))
        return rows + list(self.rows)


# --------------------------------------------------------------------------------------------------
# The plan renderer

_MARKS = {"create": "+", "update": "~", "delete": "-", "wait": "<="}
_VERBS = {
    "create": "will be created",
    "update": "will be updated in place",
    "delete": "will be destroyed",
    "wait": "has an operation in flight: will be waited for",
}


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    try:
        return json.dumps(value, default=_json_default, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _change_lines(change: ResourceChange) -> list[str]:
    mark = _MARKS.get(change.action, "?")
    lines = [f"  # {change.kind} {short_id(change.resource_id)} {_VERBS.get(change.action, change.action)}"]
    lines.append(f"{mark:>3} {change.resource_id}")
    if change.note:
        lines.append(f"      ({change.note})")
    for fc in change.fields:
        if change.action == "create":
            lines.append(f"      {fc.path}: {_value(fc.desired)}")
        elif change.action == "delete":
            lines.append(f"      {fc.path}: {_value(fc.current)}")
        else:
            lines.append(f"      {fc.path}: {_value(fc.current)} -> {_value(fc.desired)}")
    return lines


def render_plan(planned: Sequence[PlannedStep]) -> str:
    """Terraform-style text: ``+`` create, ``~`` update, ``-`` destroy, ``<=`` wait, then the counts."""
    add = change = destroy = 0
    blocks: list[str] = []
    for step in planned:
        pending = [c for c in step.diff.changes if c.action != "none"]
        if not pending:
            continue
        a, c, d = step.diff.counts()
        add, change, destroy = add + a, change + c, destroy + d
        lines = [f"{step.name} ({step.title}):"]
        for item in pending:
            lines.extend(_change_lines(item))
        blocks.append("\n".join(lines))
    if not blocks:
        return "No changes. Your infrastructure matches the configuration."
    legend = "Symbols: + create, ~ update in place, - destroy, <= wait for an operation already in flight"
    summary = f"Plan: {add} to add, {change} to change, {destroy} to destroy."
    return "\n\n".join([legend, *blocks, summary])


def _plan_markup(text: str) -> RenderableType:
    """Colour the plan text the way Terraform does, without changing a character of it."""
    from rich.text import Text

    styles = {"+": "green", "~": "yellow", "-": "red", "<=": "cyan"}
    out = Text()
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        mark = stripped.split(" ", 1)[0] if stripped else ""
        if mark in styles and not line.startswith("  #"):
            out.append(line, style=styles[mark])
        elif line.startswith("  #"):
            out.append(line, style="dim")
        elif line.startswith("Plan:") or line.startswith("No changes."):
            out.append(line, style="bold")
        else:
            out.append(line)
    return out


# --------------------------------------------------------------------------------------------------
# Sinks


class Display:
    """The sink interface; the base class ignores everything."""

    def __call__(self, event: Event) -> None:  # pragma: no cover - overridden
        pass

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def plan(self, planned: Sequence[PlannedStep]) -> None:
        pass

    def summary(self, summary: DeploySummary) -> None:
        pass


def _diff_words(diff: Diff) -> str:
    """ "1 to create, 1 in flight (waiting for it)"; "up to date" when nothing differs."""
    words = {"create": "to create", "update": "to update", "delete": "to destroy", "wait": "in flight (wait)"}
    counts = {action: sum(c.action == action for c in diff.changes) for action in words}
    parts = [f"{n} {words[action]}" for action, n in counts.items() if n]
    return ", ".join(parts) if parts else "up to date"


def _event_text(event: Event) -> str | None:
    """One line of plain text for an event, or None when it says nothing on its own."""
    if isinstance(event, RunStarted):
        names = ", ".join(name for name, _ in event.steps)
        return f"{event.command} {event.deployment}: {len(event.steps)} steps ({names})"
    if isinstance(event, StepChecking):
        return f"[{event.step}] checking"
    if isinstance(event, StepPlanned):
        return f"[{event.step}] {_diff_words(event.diff)}"
    if isinstance(event, WriteStarted):
        what = f": {event.description}" if event.description else ""
        return f"[{event.step}] {event.operation} {short_id(event.resource_id)}{what}"
    if isinstance(event, Progress):
        where = f" {short_id(event.resource_id)}" if event.resource_id else ""
        when = f" ({_seconds(event.elapsed)})" if event.elapsed else ""
        return f"[{event.step}]{where} {event.message}{when}"
    if isinstance(event, WriteFinished):
        what = f"{event.operation} {short_id(event.resource_id)}"
        return f"[{event.step}] {what} done in {_seconds(event.elapsed)}"
    if isinstance(event, RetryScheduled):
        return (
            f"[{event.step}] retry {event.attempt} in {_seconds(event.delay)}: {event.code}: "
            f"{' '.join(event.message.split())}"
        )
    if isinstance(event, StepDone):
        state = "changed" if event.changed else "unchanged"
        return f"[{event.step}] done, {state}, in {_seconds(event.elapsed)}"
    if isinstance(event, StepFailed):
        return f"[{event.step}] FAILED: {' '.join(event.error.split())}"
    if isinstance(event, StepRollingBack):
        return f"[{event.step}] rolling back what this deployment created"
    if isinstance(event, RunFinished):
        return f"{'finished' if event.ok else 'failed'} in {_seconds(event.elapsed)}"
    return None


class PlainDisplay(Display):
    """One line per event, flushed at once so a CI log shows where a run is (or died)."""

    # A long operation reports progress every poll; a log needs a line when something changes, or
    # now and then to show the run is alive (a 6-minute firewall write is 12 lines, not 720).
    HEARTBEAT = 30.0

    def __init__(self, stream: IO[str] | None = None, *, timestamps: bool = True) -> None:
        self.stream = stream or sys.stdout
        self.timestamps = timestamps
        self._last_progress: dict[str, tuple[str, float]] = {}

    def _line(self, text: str) -> None:
        prefix = time.strftime("%H:%M:%S ") if self.timestamps else ""
        self.stream.write(f"{prefix}{text}\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress):
            key = f"{event.step} {event.resource_id}"
            message, at = self._last_progress.get(key, ("", -self.HEARTBEAT))
            now = time.monotonic()
            if event.message == message and now - at < self.HEARTBEAT:
                return
            self._last_progress[key] = (event.message, now)
        text = _event_text(event)
        if text is not None:
            self._line(text)

    def warning(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        self.stream.write(f"{message}\n")
        self.stream.flush()

    def plan(self, planned: Sequence[PlannedStep]) -> None:
        self.note(render_plan(planned))

    def summary(self, summary: DeploySummary) -> None:
        lines = [f"deployment {summary.deployment}: {'ready' if summary.ok else 'not finished'}"]
        width = max((len(k) for k, _ in summary.lines()), default=0)
        lines += [f"  {k.ljust(width)}  {v}" for k, v in summary.lines()]
        lines += [f"  {note}" for note in summary.notes]
        if summary.next_commands:
            lines.append("next:")
            width = max(len(what) for what, _ in summary.next_commands)
            lines += [f"  {what.ljust(width)}  {cmd}" for what, cmd in summary.next_commands]
        self.note("\n".join(lines))


class JsonDisplay(Display):
    """``--output json``: exactly one JSON object per line on stdout, nothing else there."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def _emit(self, data: Mapping[str, Any]) -> None:
        self.stream.write(json.dumps(data, default=_json_default, sort_keys=False) + "\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        self._emit(event.to_json())

    def warning(self, message: str) -> None:
        self._emit({"event": "Warning", "message": message})

    def note(self, message: str) -> None:
        self._emit({"event": "Note", "message": message})

    def plan(self, planned: Sequence[PlannedStep]) -> None:
        add = change = destroy = 0
        steps = []
        for step in planned:
            a, c, d = step.diff.counts()
            add, change, destroy = add + a, change + c, destroy + d
            steps.append({"step": step.name, "title": step.title, "diff": _diff_json(step.diff)})
        self._emit({"event": "Plan", "steps": steps, "add": add, "change": change, "destroy": destroy})

    def summary(self, summary: DeploySummary) -> None:
        self._emit(summary.to_json())


def _diff_json(diff: Diff) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(diff)


@dataclass
class _Row:
    name: str
    title: str
    status: str = "pending"  # pending, checking, planned, running, retrying, done, unchanged, failed
    started: float | None = None
    finished: float | None = None
    resource: str = ""
    detail: str = ""
    retries: int = 0
    write_started: float | None = None


class LiveDisplay(Display):
    """A rich live table: one row per step, a spinner and the elapsed time while a step works."""

    _MARKS = {
        "pending": ("·", "dim"),
        "planned": ("±", "yellow"),
        "unchanged": ("✓", "green"),
        "done": ("✓", "bold green"),
        "failed": ("✗", "bold red"),
    }

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console()
        self.rows: dict[str, _Row] = {}
        self.header = ""
        self.command = ""
        self.started = time.monotonic()
        self._live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=8,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live_started = False

    def _ensure_live(self) -> None:
        if not self._live_started:
            self._live.start()
            self._live_started = True

    def close(self) -> None:
        if self._live_started:
            self._live.refresh()
            self._live.stop()
            self._live_started = False

    def _render(self) -> RenderableType:
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        table = Table(
            box=None,
            show_header=False,
            pad_edge=False,
            expand=False,
            title=self.header or None,
            title_justify="left",
            title_style="bold",
        )
        table.add_column(width=2, no_wrap=True)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(style="dim", no_wrap=True)
        table.add_column(no_wrap=True, overflow="ellipsis", max_width=60)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(overflow="ellipsis", no_wrap=True, max_width=70)
        for row in self.rows.values():
            if row.status in ("checking", "running", "retrying"):
                mark: Any = Spinner("dots", style="yellow" if row.status == "retrying" else "cyan")
            else:
                glyph, style = self._MARKS.get(row.status, ("·", "dim"))
                mark = Text(glyph, style=style)
            if row.started is not None:
                elapsed = (row.finished if row.finished is not None else now) - row.started
                elapsed_text = _seconds(elapsed)
            else:
                elapsed_text = ""
            detail = Text(row.detail, style="red" if row.status == "failed" else "dim")
            if row.retries:
                detail = Text.assemble((f"retry {row.retries} ", "yellow"), detail)
            table.add_row(mark, row.name, row.title, row.resource, elapsed_text, detail)
        return table

    def _row(self, step: str) -> _Row:
        if step not in self.rows:
            self.rows[step] = _Row(step, step)
        return self.rows[step]

    def __call__(self, event: Event) -> None:
        now = time.monotonic()
        if isinstance(event, RunStarted):
            self.header = f"{event.command} {event.deployment}"
            self.command = event.command
            self.rows = {name: _Row(name, title) for name, title in event.steps}
            self.started = now
            self._ensure_live()
            return
        self._ensure_live()
        if isinstance(event, RunFinished):
            for row in self.rows.values():  # nothing spins once the run is over
                if row.status in ("checking", "running", "retrying"):
                    row.status, row.finished = ("failed" if not event.ok else "pending"), now
            self._live.refresh()
            return
        step = getattr(event, "step", None)
        if step is None:
            return
        row = self._row(step)
        if isinstance(event, StepChecking):
            row.status, row.started, row.finished, row.detail = "checking", now, None, "checking"
        elif isinstance(event, StepPlanned):
            row.detail = _diff_words(event.diff)
            if event.diff.changes:
                row.resource = short_id(event.diff.changes[0].resource_id)
            if self.command == "plan":  # a plan ends a step at its check
                row.status = "planned" if event.diff.pending else "unchanged"
                row.finished = now
        elif isinstance(event, WriteStarted):
            row.status, row.write_started = "running", now
            row.resource = short_id(event.resource_id)
            row.detail = event.description or f"{event.operation}…"
        elif isinstance(event, Progress):
            if row.status not in ("failed", "done"):
                row.status = "running" if row.status != "retrying" else row.status
            if event.resource_id:
                row.resource = short_id(event.resource_id)
            row.detail = event.message
        elif isinstance(event, WriteFinished):
            row.detail = f"{event.operation} done in {_seconds(event.elapsed)}"
        elif isinstance(event, RetryScheduled):
            row.status, row.retries = "retrying", event.attempt
            row.detail = f"{event.code}, waiting {_seconds(event.delay)}"
        elif isinstance(event, StepDone):
            row.status = "done" if event.changed else "unchanged"
            row.finished = now
            if row.started is None:
                row.started = now - event.elapsed
            if not event.changed:
                row.detail = "up to date"
        elif isinstance(event, StepFailed):
            row.status, row.finished = "failed", now
            row.detail = " ".join(event.error.split())
        elif isinstance(event, StepRollingBack):
            row.status, row.started, row.finished = "running", now, None
            row.detail = "rolling back"
        self._live.refresh()

    def warning(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {message}", highlight=False, markup=True)

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False, markup=False)

    def plan(self, planned: Sequence[PlannedStep]) -> None:
        # soft_wrap: long resource IDs are left to the terminal, never broken after the mark.
        self.console.print(_plan_markup(render_plan(planned)), soft_wrap=True)

    def summary(self, summary: DeploySummary) -> None:
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        self.close()
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for key, value in summary.lines():
            grid.add_row(key, Text(value))
        for note in summary.notes:
            grid.add_row("", Text(note, style="dim"))
        if summary.next_commands:
            grid.add_row("", "")
            grid.add_row("next", "")
            for what, cmd in summary.next_commands:
                grid.add_row(Text(what, style="dim"), Text(cmd, style="cyan"))
        state = "ready" if summary.ok else "not finished"
        title = f"{summary.deployment}: {state} in {_seconds(summary.elapsed)}"
        border = "green" if summary.ok else "red"
        self.console.print(Panel(grid, title=title, title_align="left", border_style=border, expand=False))


def make_display(output: str = "text", *, stream: IO[str] | None = None) -> Display:
    """JSON lines for ``--output json``; the live view on a terminal; plain lines otherwise."""
    stream = stream or sys.stdout
    if output == "json":
        return JsonDisplay(stream)
    if stream.isatty():
        from rich.console import Console

        return LiveDisplay(Console(file=stream))
    return PlainDisplay(stream)


# --------------------------------------------------------------------------------------------------
# -v: HTTP-level detail


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        from aks_lockdown.arm.errors import redact

        try:
            message = record.getMessage()
        except Exception:
            return True
        record.msg, record.args = redact(message), None
        return True


def enable_http_logging(stream: IO[str] | None = None) -> None:
    """azure-core's HttpLoggingPolicy (URL, status, headers with Authorization redacted) at DEBUG on
    stderr. Bodies are never logged: a token response body is a secret, so ``logging_enable`` (which
    dumps bodies) stays off, and every line also passes through the secret redactor."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S"))
    handler.addFilter(_RedactingFilter())
    for name in ("azure", "aks_lockdown"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)

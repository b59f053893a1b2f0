"""``status [CONFIG | --name NAME] [--live]``: what the state says; ``--live`` re-checks Azure."""

from __future__ import annotations

import argparse
import json
from typing import Any

from aks_lockdown.commands import _common as common

_MARKS = {"done": "✓", "applying": "…", "failed": "✗", "pending": "·", "rolled_back": "↺"}


def run(args: argparse.Namespace) -> int:
    from aks_lockdown.commands._engine import to_plain

    resolved = common.resolve_deployment(args, need_config=args.live)
    config = resolved.loaded.config if resolved.loaded else None
    store = common.store(resolved.directory, resolved.name, resolved.backend_config)
    state = store.load()
    holder = store.holder()
    order = _order(config)

    if args.output == "json":
        doc = to_plain(state)
        doc["lock"] = to_plain(holder) if holder else None
        print(json.dumps({"event": "Status", **doc}, default=str))
    else:
        print(_render(resolved.name, store.location, state, holder, order))
    if not args.live:
        return 0
    return _live(args, resolved)


def _order(config: Any) -> list[str]:
    if config is None:
        return []
    return [s.name for s in common.pipeline_steps(config)]


def _render(name: str, location: str, state: Any, holder: Any, order: list[str]) -> str:
    lines = [f"deployment {name} ({location}{', updated ' + state.updated_at if state.updated_at else ''})"]
    if holder is not None:
        lines.append(f"  locked by {holder.describe()}")
    steps = dict(state.steps)
    names = [n for n in order if n in steps] + [n for n in steps if n not in order]
    if not names:
        lines.append("  nothing deployed yet")
    width = max((len(n) for n in names), default=0)
    for step_name in names:
        step = steps[step_name]
        lines.append(f"  {_MARKS.get(step.status, '?')} {step_name.ljust(width)}  {step.status}")
        if step.intent is not None:
            intent = step.intent
            lines.append(
                f"      in flight since {intent.time}: {intent.operation} {intent.resource_id}"
                " (the next run waits for it)"
            )
        if step.error is not None:
            lines.append(f"      error: {step.error.code}: {' '.join(step.error.message.split())}")
        for key, value in step.outputs.items():
            lines.append(
                f"      {key}: {value if isinstance(value, str) else json.dumps(value, default=str)}"
            )
    resources = [r for r in state.resources.values() if not r.deleted]
    created = sum(r.origin == "created" for r in resources)
    adopted = len(resources) - created
    lines.append(
        f"  resources: {created} created by this deployment, {adopted} found and adopted (never deleted)"
    )
    return "\n".join(lines)


def _live(args: argparse.Namespace, resolved: common.Resolved) -> int:
    from aks_lockdown.commands._engine import planned_steps
    from aks_lockdown.commands.deploy import runner_steps
    from aks_lockdown.display import Display, JsonDisplay, PlainDisplay

    assert resolved.loaded is not None
    config = resolved.loaded.config
    with common.target(args, config, resolved.directory) as where:
        factory = common.clients(where, args)
        store = common.store(resolved.directory, resolved.name, resolved.backend_config, factory)
        out = JsonDisplay() if args.output == "json" else PlainDisplay(timestamps=False)
        runner = common.runner(
            config=config, clients=factory, store=store, sink=Display(), resume_command=args.command_line
        )
        planned = planned_steps(runner.plan(), runner_steps(runner, config))
    if args.output != "json":
        out.note("live check against Azure:")
    out.plan(planned)
    return 0

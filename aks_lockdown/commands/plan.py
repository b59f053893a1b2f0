"""``plan CONFIG``: every step's check, live, rendered Terraform-style. Writes nothing to Azure.

``--detailed-exitcode``: 0 no changes, 2 changes, 1 any error (input errors too, as Terraform does,
so a script can tell "changes" from "broken").
"""

from __future__ import annotations

import argparse
import sys

from aks_lockdown.commands import _common as common
from aks_lockdown.commands.validate import missing_required_lines
from aks_lockdown.errors import EXIT_FAILED, LockdownError

EXIT_CHANGES = 2


def run(args: argparse.Namespace) -> int:
    try:
        return _plan(args)
    except LockdownError as exc:
        if not args.detailed_exitcode:
            raise
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return EXIT_FAILED


def _plan(args: argparse.Namespace) -> int:
    from aks_lockdown.commands._engine import planned_steps
    from aks_lockdown.commands.deploy import runner_steps
    from aks_lockdown.display import JsonDisplay, make_display

    loaded = common.load(args.config)
    config = loaded.config
    directory = common.state_dir(args, config)
    # The checks' progress goes to stderr on text output, so stdout carries the plan alone.
    progress = make_display("json") if args.output == "json" else _progress_display()
    output = JsonDisplay() if args.output == "json" else make_display("text")
    egress = missing_required_lines(config, str(loaded.path))
    for warning in [*loaded.warnings, *(f"egress: {w}" for w in egress)]:
        output.warning(warning)
    with common.target(args, config, directory) as where:
        factory = common.clients(where, args)
        store = common.store(directory, config.deployment.name, config, factory)
        with progress:
            runner = common.runner(
                config=config, clients=factory, store=store, sink=progress, resume_command=args.command_line
            )
            planned = planned_steps(runner.plan(), runner_steps(runner, config))
    output.plan(planned)
    changes = any(p.diff.pending for p in planned)
    return EXIT_CHANGES if changes and args.detailed_exitcode else 0


def _progress_display():
    from aks_lockdown.display import Display, make_display

    if sys.stderr.isatty():
        return make_display("text", stream=sys.stderr)
    return Display()  # quiet when piped: the plan on stdout is the output

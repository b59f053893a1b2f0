"""``teardown [CONFIG | --name NAME]``: delete what this deployment created, never what it adopted.

When the deployment created the resource group, deleting the group is one long operation; otherwise
(or with ``--keep-resource-group``) the steps roll back in reverse order. Idempotent and resumable:
a resource already gone counts as deleted, and rerunning the same command picks up where it stopped.
"""

from __future__ import annotations

import argparse

from aks_lockdown.commands import _common as common
from aks_lockdown.errors import EXIT_FAILED, InputError


def run(args: argparse.Namespace) -> int:
    from aks_lockdown.display import make_display

    resolved = common.resolve_deployment(args, need_config=True)
    assert resolved.loaded is not None
    config = resolved.loaded.config
    if not args.yes and not (common.is_interactive() and args.output == "text"):
        raise InputError("teardown: nobody can confirm (not a terminal, or --output json): pass --yes")
    directory = resolved.directory

    with common.target(args, config, directory) as where:
        factory = common.clients(where, args)
        store = common.store(directory, resolved.name, resolved.backend_config, factory)
        if not args.yes:
            state = store.load()
            doomed = sorted(
                rid for rid, rec in state.resources.items() if rec.origin == "created" and not rec.deleted
            )
            kept = sorted(
                rid for rid, rec in state.resources.items() if rec.origin == "adopted" and not rec.deleted
            )
            print(f"teardown of {resolved.name} deletes what it created:")
            print("\n".join(f"  - {rid}" for rid in doomed) or "  (nothing recorded)")
            if kept:
                print("and keeps what it found there:")
                print("\n".join(f"    {rid}" for rid in kept))
            if not common.confirm(f"Tear down {resolved.name}?"):
                print("Teardown cancelled.")
                return EXIT_FAILED
        display = make_display(args.output)
        recorder = common.Recorder(display)
        with display:
            runner = common.runner(
                config=config, clients=factory, store=store, sink=recorder, resume_command=args.command_line
            )
            runner.teardown(keep_resource_group=args.keep_resource_group)
        ok = recorder.ok is not False
        if ok and args.output == "text":
            display.note(f"{resolved.name}: torn down")
        return 0 if ok else EXIT_FAILED

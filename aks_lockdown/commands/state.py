"""``state show`` and ``state unlock [--force]``."""

from __future__ import annotations

import argparse

from aks_lockdown.commands import _common as common


def run(args: argparse.Namespace) -> int:
    resolved = common.resolve_deployment(args)
    store = common.store(resolved.directory, resolved.name)
    if args.state_command == "show":
        if not store.exists():
            print(f"{resolved.name}: no state saved yet ({store.location})")
            return 0
        # The file as the engine wrote it (validated on load; secrets never enter it).
        print(store.load().dumps(), end="")
        return 0
    holder = store.unlock(force=args.force)
    if holder is None:
        print(f"{resolved.name}: not locked")
    else:
        print(f"{resolved.name}: lock released (it was held by {holder.describe()})")
    return 0

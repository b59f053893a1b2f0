"""``state show``, ``state unlock [--force]`` and ``state migrate CONFIG --to blob|local [--yes]``.

With CONFIG (or ``--config``) the state is the one the config's [state] section names, local or blob;
with ``--name`` (or no argument) it is a local state file in the state directory.
"""

from __future__ import annotations

import argparse

from aks_lockdown.commands import _common as common
from aks_lockdown.errors import EXIT_FAILED, InputError


def run(args: argparse.Namespace) -> int:
    if args.state_command == "migrate":
        return _migrate(args)
    resolved = common.resolve_deployment(args)
    store = common.store(resolved.directory, resolved.name, resolved.backend_config)
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


def _migrate(args: argparse.Namespace) -> int:
    from aks_lockdown.state_migrate import backends_for, migrate

    loaded = common.load(args.config)
    config = loaded.config
    if not args.yes and not common.is_interactive():
        raise InputError("state migrate: nobody can confirm (not a terminal): pass --yes")
    directory = common.state_dir(args, config)
    effective, credential = common.blob_access(config)
    source, dest = backends_for(effective, directory, credential, to=args.to)
    name = config.deployment.name
    if not args.yes:
        print(f"state migrate moves the state of {name}")
        print(f"  from {source.location}")
        print(f"  to   {dest.location}")
        print("and leaves a tombstone naming the destination at the source.")
        if not common.confirm(f"Migrate {name}?"):
            print("Migration cancelled.")
            return EXIT_FAILED
    result = migrate(source, dest, name, command=args.command_line)
    print(result.describe())
    if args.to == "local":
        print(
            f'next: set [state] backend = "local" in {loaded.path} (and remove account_url, container, '
            "blob_name) so the commands read the local state"
        )
    return 0

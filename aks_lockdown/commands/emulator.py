"""``emulator``: serve the ARM emulator in the foreground (its own module does the work)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    try:
        from aks_lockdown.emulator.main import serve
    except ImportError as exc:
        from aks_lockdown.errors import InputError

        raise InputError(f"emulator: not available in this build ({exc})") from None
    # serve() takes the parsed flags: host, port, data, profile, time_scale, seed, verbose.
    return int(serve(args) or 0)

"""`python -m aks_lockdown emulator ...`: run the ARM emulator in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aks_lockdown.emulator.datalock import EmulatorDataLockedError
from aks_lockdown.emulator.server import Emulator

DEFAULT_DATA = Path(".aks-lockdown") / "emulator"


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(
        prog="aks-lockdown emulator", description="Run the local ARM emulator."
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8443, help="port (default 8443; 0 picks a free one)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"data dir (default {DEFAULT_DATA})")
    p.add_argument(
        "--profile",
        choices=("fast", "realistic"),
        default="realistic",
        help="operation durations: realistic (documented Azure figures) or fast (instant)",
    )
    p.add_argument("--time-scale", type=float, default=1.0, help="multiply every duration (e.g. 0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed for fault probabilities and the subscription id")
    p.add_argument(
        "--principal-delay",
        type=float,
        default=None,
        help="seconds before a new identity can get a role without principalType (unscaled)",
    )
    p.add_argument("--no-throttling", action="store_true", help="disable ARM's per-subscription rate limits")
    return p


def dnat_lines(status: dict[str, Any]) -> list[str]:
    """The DNAT hook's status (Emulator.stats()["dnat"]) as lines for the operator."""
    lines = [
        f"DNAT listening on {item['address']} -> {item['translated']} (rule {item['rule']})"
        for item in status.get("listeners") or []
    ]
    lines += [f"DNAT ERROR: {msg}" for msg in status.get("errors") or []]
    return lines


def report_dnat(emu: Emulator, seen: set[str]) -> None:
    """Print DNAT listener changes and bind failures as they appear (each line once while it holds)."""
    status = emu.hook_status().get("dnat")
    if not isinstance(status, dict):
        return
    now = dnat_lines(status)
    for line in now:
        if line not in seen:
            print(line, file=sys.stderr if line.startswith("DNAT ERROR") else sys.stdout, flush=True)
    seen.intersection_update(now)  # a line that goes and comes back is printed again
    seen.update(now)


def serve(argv_or_args: Sequence[str] | argparse.Namespace | None = None) -> int:
    if isinstance(argv_or_args, argparse.Namespace):
        args = argv_or_args
    else:
        args = build_parser().parse_args(list(argv_or_args) if argv_or_args is not None else None)
    emu = Emulator(
        Path(args.data),
        host=args.host,
        port=args.port,
        profile=args.profile,
        time_scale=args.time_scale,
        seed=args.seed,
        principal_delay=getattr(args, "principal_delay", None),
        throttling=not getattr(args, "no_throttling", False),
    )
    try:
        emu.start()
    except EmulatorDataLockedError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(
        f"ARM emulator listening\n"
        f"  ARM endpoint : {emu.arm_endpoint}\n"
        f"  tenant       : {emu.tenant_id}\n"
        f"  subscription : {emu.subscription_id}\n"
        f"  CA bundle    : {emu.ca_bundle}\n"
        f"  data         : {Path(args.data).resolve()}\n"
        f"  profile      : {args.profile} (time scale {args.time_scale})\n"
        f"\nPoint the tool at it:\n"
        f"  aks-lockdown <command> --arm-endpoint {emu.arm_endpoint} --ca-bundle {emu.ca_bundle}\n"
        f"or export:\n"
        f"  export AZURE_SUBSCRIPTION_ID={emu.subscription_id}\n"
        f"  export REQUESTS_CA_BUNDLE={emu.ca_bundle}\n"
        f"Introspection: {emu.arm_endpoint}/_emulator/stats | /requests | /world (no token, loopback only)\n"
        f"Ctrl-C to stop; the world is kept in the data dir.",
        flush=True,
    )
    seen: set[str] = set()
    report_dnat(emu, seen)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            report_dnat(emu, seen)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
        print("emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(serve())

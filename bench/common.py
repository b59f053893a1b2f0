"""What every figure shares: the bench's emulator, request counting, machine facts, result files.

Time scale. The emulator runs the ``realistic`` durations multiplied by ``time_scale`` (0.02: a 6 min
firewall create takes 7.2 s). Every figure is reported twice: the wall time measured, and that time
divided by the scale ("Azure seconds"), which is what an operator would wait on real Azure.

Two things do not scale by themselves and are corrected here, both for the tool and for the seed
replay, so neither side is penalised by the compression of time:

* The emulator rounds ``Retry-After`` up to a whole second (real ARM sends integers, and 0 would make
  azure-core fall back to its 30 s default). At scale 0.02 one second of overshoot is 50 Azure seconds
  on *every* long operation. ``bench_emulator`` sends the scaled value unrounded instead, as
  ``retry-after-ms`` (which azure-core's poller honours), so a client polls when real ARM would have
  told it to.
* The tool's own waits (the Runner's 0.5 s ``done()`` polls, 5 s state polls, retry backoff) are real
  seconds. In process, the bench hands the Runner a ``sleep`` scaled by the same factor. A CLI
  subprocess cannot be scaled that way: figures that run the CLI say so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aks_lockdown.emulator import Emulator

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
CONFIG = ROOT / "config" / "eastus.toml"
# Smallest Retry-After the bench emulator sends: azure-core treats 0 as "no header" (30 s default).

_IDENTITY_RX = re.compile(r"/oauth2/|/\.well-known/", re.IGNORECASE)
_POLL_RX = re.compile(
    r"/(operations|nfvOperations|operationStatuses|operationResults|nfvOperationResults|operationresults"
    r"|commandResults)/[^/]+$",
    re.IGNORECASE,
)
_FIREWALL_RX = re.compile(r"/providers/Microsoft\.Network/azureFirewalls/[^/]+$", re.IGNORECASE)
_POLICY_RX = re.compile(r"/providers/Microsoft\.Network/firewallPolicies/", re.IGNORECASE)
_RUN_COMMAND_RX = re.compile(r"/runCommand$", re.IGNORECASE)
WRITE_METHODS = ("PUT", "PATCH", "DELETE")


def bench_emulator(
    data_dir: Path,
    *,
    profile: str = "realistic",
    time_scale: float = 0.02,
    precise_retry_after: bool = True,
    throttling: bool = True,
) -> Emulator:
    """An Emulator (not started) for one figure: fresh data dir, loopback only, port chosen by the OS."""
    # Unrounded poll delays (retry-after-ms): whole-second Retry-After would add up to 50 Azure-seconds
    # per long operation at scale 0.02, for the tool and the seed replay alike.
    precise = precise_retry_after and profile == "realistic"
    emu = Emulator(
        data_dir=data_dir,
        host="127.0.0.1",
        port=0,
        profile=profile,  # type: ignore[arg-type]
        time_scale=time_scale,
        throttling=throttling,
        precise_retry_after=precise,
    )
    emu.bench_precise_retry_after = precise  # type: ignore[attr-defined]
    return emu


def scaled_sleep(time_scale: float) -> Any:
    """A ``sleep`` for the Runner that compresses the tool's own waits like the emulator's durations."""

    def sleep(seconds: float) -> None:
        time.sleep(max(0.0, seconds) * time_scale)

    return sleep


# --- counting ----------------------------------------------------------------------------------


def is_identity(r: Mapping[str, Any]) -> bool:
    return bool(_IDENTITY_RX.search(r["path"]))


def is_poll(r: Mapping[str, Any]) -> bool:
    return r["method"] == "GET" and bool(_POLL_RX.search(r["path"]))


def is_firewall_write(r: Mapping[str, Any]) -> bool:
    return r["method"] in WRITE_METHODS and bool(_FIREWALL_RX.search(r["path"]))


def is_policy_write(r: Mapping[str, Any]) -> bool:
    return r["method"] in WRITE_METHODS and bool(_POLICY_RX.search(r["path"]))


def is_run_command(r: Mapping[str, Any]) -> bool:
    return r["method"] == "POST" and bool(_RUN_COMMAND_RX.search(r["path"]))


def count(requests: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The request figures every table uses, from the emulator's log.

    ``writes`` are ARM resource writes (PUT/PATCH/DELETE). Run commands are POST actions and are counted
    apart (``run_commands``): some only read (``kubectl get``), and the seed's ``kubectl apply`` is one too.
    ``requests`` excludes the token endpoints (one credential per process; the az CLI caches tokens).
    """
    items = list(requests)
    arm = [r for r in items if not is_identity(r)]
    gets = [r for r in arm if r["method"] == "GET"]
    resource_gets = Counter(r["path"].lower() for r in gets if not is_poll(r))
    return {
        "requests": len(arm),
        "identity_requests": len(items) - len(arm),
        "gets": len(gets),
        "polls": sum(1 for r in gets if is_poll(r)),
        "resource_gets": sum(resource_gets.values()),
        "max_gets_per_resource": max(resource_gets.values(), default=0),
        "resources_read_more_than_once": sorted(p for p, n in resource_gets.items() if n > 1),
        "writes": sum(1 for r in arm if r["method"] in WRITE_METHODS),
        "firewall_writes": sum(1 for r in arm if is_firewall_write(r)),
        "firewall_policy_writes": sum(1 for r in arm if is_policy_write(r)),
        "run_commands": sum(1 for r in arm if is_run_command(r)),
        "other_posts": sum(1 for r in arm if r["method"] == "POST" and not is_run_command(r)),
        "errors": sum(1 for r in arm if int(r["status"]) >= 400 and int(r["status"]) != 404),
        "not_found": sum(1 for r in arm if int(r["status"]) == 404),
    }


# --- results -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpu_count": os.cpu_count(),
        # Other work on the machine slows the client side (requests, state writes) and shows in the
        # figures: recorded with every result.
        "load_average": load,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_result(figure: str, data: Mapping[str, Any], *, results_dir: Path = RESULTS_DIR) -> Path:
    """bench/results/<date>-<figure>.json: the raw figure, with when and where it was measured."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{today()}-{figure}.json"
    doc = {"figure": figure, "date": now_iso(), "machine": machine(), "argv": sys.argv, **data}
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return path


def azure_seconds(wall: float, time_scale: float) -> float:
    return wall / time_scale if time_scale else wall


def fmt_minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"

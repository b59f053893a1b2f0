"""Measure GET/s the emulator serves to the real SDK (requests transport, keep-alive, TLS).

`python -m aks_lockdown.emulator.throughput [--seconds 5] [--threads 4]`
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aks_lockdown.arm.clients import ClientFactory
from aks_lockdown.emulator.server import Emulator


def measure(emu: Emulator, *, seconds: float = 3.0, threads: int = 4) -> dict[str, Any]:
    """GET one resource group as fast as `threads` SDK clients can; throttling must be off."""
    setup = ClientFactory(emu.target())
    setup.resource.resource_groups.create_or_update("bench", {"location": "westus"})
    counts = [0] * threads
    stop = threading.Event()

    def worker(i: int) -> None:
        client = ClientFactory(emu.target()).resource  # one connection pool per worker
        client.resource_groups.get("bench")  # warm up: token + TLS handshake
        while not stop.is_set():
            client.resource_groups.get("bench")
            counts[i] += 1

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    time.sleep(0.5)
    base = sum(counts)
    start = time.perf_counter()
    time.sleep(seconds)
    done = sum(counts) - base
    elapsed = time.perf_counter() - start
    stop.set()
    for t in ts:
        t.join()
    return {
        "gets": done,
        "seconds": round(elapsed, 2),
        "gets_per_second": round(done / elapsed, 1),
        "threads": threads,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=4)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as d, Emulator(Path(d), throttling=False) as emu:
        result = measure(emu, seconds=args.seconds, threads=args.threads)
    print(
        f"{result['gets_per_second']} GET/s ({result['gets']} GETs in {result['seconds']} s, "
        f"{result['threads']} SDK client threads)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Emulator throughput: GET requests per second, through the SDK and through a raw keep-alive client.

The emulator runs in the bench process; each client loop runs in a subprocess, so the client's own
CPU (the SDK spends about a millisecond per call) does not compete with the server for one GIL.
Throttling is off (the emulator otherwise answers 429 past ARM's 250-burst + 25/s read bucket, which is
the point of it, not its capacity). Every loop is bounded by time and by a request cap.

Client side alone: ``python -m bench.throughput --client raw --endpoint URL --ca PEM --token T
--path P --seconds 3 --threads 1`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from bench.common import ROOT

MAX_REQUESTS = 200_000  # per loop: a cap in case the clock misbehaves
RG = "bench-throughput"


def _setup(emu: Any) -> tuple[str, str]:
    """A resource group to GET, and a bearer token for it."""
    from aks_lockdown.arm.clients import ClientFactory

    clients = ClientFactory(emu.target())
    clients.resource.resource_groups.create_or_update(RG, {"location": "eastus"})
    token = clients.credential.get_token(clients.endpoints.scope).token
    path = f"/subscriptions/{clients.subscription_id}/resourcegroups/{RG}?api-version=2025-04-01"
    return token, path


def measure(emu: Any, client: str, seconds: float, threads: int = 1) -> dict[str, Any]:
    """Run one client loop in a subprocess against ``emu``; its JSON result."""
    token, path = _setup(emu)
    argv = [
        sys.executable,
        "-m",
        "bench.throughput",
        "--client",
        client,
        "--endpoint",
        emu.arm_endpoint,
        "--ca",
        emu.ca_bundle,
        "--subscription",
        emu.subscription_id,
        "--token",
        token,
        "--path",
        path,
        "--seconds",
        str(seconds),
        "--threads",
        str(threads),
    ]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if proc.returncode != 0:
        return {"client": client, "threads": threads, "error": proc.stderr[-1000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the client side (runs in the subprocess) --------------------------------------------------


def _sdk_loop(args: argparse.Namespace) -> dict[str, Any]:
    from aks_lockdown.arm.clients import ClientFactory, Target

    target = Target(arm_endpoint=args.endpoint, ca_bundle=args.ca, subscription_id=args.subscription)
    counts = [0] * args.threads
    stop_at = [float("inf")]
    barrier = threading.Barrier(args.threads + 1)

    def worker(i: int) -> None:
        client = ClientFactory(target).resource  # its own connection pool
        client.resource_groups.get(RG)  # warm-up: token, TLS handshake
        barrier.wait()
        while time.perf_counter() < stop_at[0] and counts[i] < MAX_REQUESTS:
            client.resource_groups.get(RG)
            counts[i] += 1

    return _run(worker, args, counts, stop_at, barrier, "azure-mgmt-resource")


def _raw_loop(args: argparse.Namespace) -> dict[str, Any]:
    url = urlsplit(args.endpoint)
    ctx = ssl.create_default_context(cafile=args.ca)
    headers = {"Authorization": f"Bearer {args.token}", "Accept": "application/json"}
    counts = [0] * args.threads
    stop_at = [float("inf")]
    barrier = threading.Barrier(args.threads + 1)

    def worker(i: int) -> None:
        conn = http.client.HTTPSConnection(url.hostname or "127.0.0.1", url.port, context=ctx, timeout=10)
        try:
            conn.request("GET", args.path, headers=headers)  # warm-up: TLS handshake
            conn.getresponse().read()
            barrier.wait()
            while time.perf_counter() < stop_at[0] and counts[i] < MAX_REQUESTS:
                conn.request("GET", args.path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"GET answered {resp.status}")
                counts[i] += 1
        finally:
            conn.close()

    return _run(worker, args, counts, stop_at, barrier, "http.client keep-alive")


def _run(
    worker: Any,
    args: argparse.Namespace,
    counts: list[int],
    stop_at: list[float],
    barrier: threading.Barrier,
    label: str,
) -> dict[str, Any]:
    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.threads)]
    for t in pool:
        t.start()
    barrier.wait(timeout=60)  # everyone warm: start the clock
    start = time.perf_counter()
    stop_at[0] = start + args.seconds
    for t in pool:
        t.join(timeout=args.seconds + 60)
    elapsed = time.perf_counter() - start
    total = sum(counts)
    return {
        "client": label,
        "threads": args.threads,
        "gets": total,
        "seconds": round(elapsed, 3),
        "per_second": round(total / elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.throughput")
    p.add_argument("--client", choices=("sdk", "raw"), required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--subscription", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if urlsplit(args.endpoint).hostname not in ("127.0.0.1", "localhost", "::1"):
        p.error("loopback endpoints only")
    result = _sdk_loop(args) if args.client == "sdk" else _raw_loop(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

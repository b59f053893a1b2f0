"""A separate process that takes a deployment's blob lock, for the race and crash tests.

usage: _holder.py ACCOUNT_URL CONTAINER DEPLOYMENT MODE [START_AT] [RELEASE_FILE]
  race: wait until wall-clock START_AT, try the lock; print one JSON line; when it got the lock,
        hold it until RELEASE_FILE exists (at most 30 s).
  hold: take the lock, save a state, print one JSON line, then sleep until killed.
"""

from __future__ import annotations

import json
import os
import sys
import time

from azure.core.credentials import AzureNamedKeyCredential

from aks_lockdown.errors import LockHeldError
from aks_lockdown.state_blob import BlobStateOptions, BlobStateStore

# Azurite's published development account key: not a secret.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def main() -> int:
    account_url, container, deployment, mode = sys.argv[1:5]
    store = BlobStateStore(
        account_url,
        container,
        None,
        deployment,
        AzureNamedKeyCredential("devstoreaccount1", KEY),
        options=BlobStateOptions(
            lease_seconds=15, heartbeat_seconds=1, retry_total=1, retry_backoff_seconds=0.2
        ),
    )
    if mode == "race":
        start_at, release = float(sys.argv[5]), sys.argv[6]
        time.sleep(max(0.0, start_at - time.time()))
        t0 = time.monotonic()
        try:
            with store.lock(command=f"race {os.getpid()}"):
                print(json.dumps({"result": "locked", "pid": os.getpid()}), flush=True)
                deadline = time.monotonic() + 30
                while not os.path.exists(release) and time.monotonic() < deadline:
                    time.sleep(0.05)
        except LockHeldError as exc:
            print(json.dumps({"result": "refused", "message": str(exc), "elapsed": time.monotonic() - t0}))
        return 0
    if mode == "hold":
        store.acquire(command="hold-and-crash")
        state = store.load()
        state.step("s").outputs = {"writer": os.getpid()}
        store.save(state)
        print(json.dumps({"result": "locked", "pid": os.getpid()}), flush=True)
        while True:
            time.sleep(60)
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main())

"""The blob state backend against a real Azurite: locking, lease expiry, stolen leases, network errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobLeaseClient, BlobServiceClient

from aks_lockdown.engine.state import DeploymentState, LockInfo, StateBackend
from aks_lockdown.errors import LockdownError, LockHeldError, StateError
from aks_lockdown.state_blob import (
    BlobStateOptions,
    BlobStateStore,
    _short,
    holder_from_metadata,
    holder_metadata,
)

from .conftest import Azurite, FlakyProxy, azurite_binary, env_for_subprocess, free_port

pytestmark = pytest.mark.azurite

HOLDER = Path(__file__).with_name("_holder.py")
# Short heartbeat and quick transport failure so the suite stays fast; 15 s is Azure's minimum lease.
FAST = BlobStateOptions(lease_seconds=15, heartbeat_seconds=1, retry_total=1, retry_backoff_seconds=0.2)


def store(
    azurite: Azurite, container: str, deployment: str = "dep", *, url: str | None = None, **kw: Any
) -> BlobStateStore:
    options = kw.pop("options", FAST)
    return BlobStateStore(
        url or azurite.account_url, container, kw.pop("blob_name", None), deployment, azurite.credential(),
        options=options, **kw,
    )  # fmt: skip


def raw_blob(azurite: Azurite, container: str, name: str = "dep.json") -> Any:
    service = BlobServiceClient(azurite.account_url, credential=azurite.credential())
    return service.get_blob_client(container, name)


def state(deployment: str = "dep", **outputs: Any) -> DeploymentState:
    doc = DeploymentState(deployment=deployment)
    doc.step("s").outputs = outputs
    return doc


def outputs(doc: DeploymentState | None) -> dict[str, Any]:
    assert doc is not None
    return doc.steps["s"].outputs if "s" in doc.steps else {}


def raw_outputs(azurite: Azurite, container: str) -> dict[str, Any]:
    """What is stored, read past the store under test."""
    return json.loads(raw_blob(azurite, container).download_blob().readall())["steps"]["s"]["outputs"]


def spawn(azurite: Azurite, container: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HOLDER), azurite.account_url, container, "dep", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for_subprocess(),
    )


def test_fixture_fails_without_npm_ci(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="npm ci"):
        azurite_binary(tmp_path)


def test_options_bound_the_lease() -> None:
    for bad in (14, 61, -1):
        with pytest.raises(ValueError, match="lease_seconds"):
            BlobStateOptions(lease_seconds=bad)
    with pytest.raises(ValueError, match="heartbeat"):
        BlobStateOptions(lease_seconds=15, heartbeat_seconds=15)
    assert BlobStateOptions().heartbeat == 10


def test_holder_metadata_round_trip() -> None:
    info = LockInfo(
        pid=42, host="höst-1", started_at="2026-01-01T00:00:00Z", command="deploy 'ü.toml'\n--yes"
    )
    meta = holder_metadata(info, "run")
    assert all(v.isascii() and "\n" not in v for v in meta.values())
    assert holder_from_metadata({k.upper(): v for k, v in meta.items()}) == info


def test_errors_never_quote_a_sas_token() -> None:
    exc = OSError("Max retries exceeded with url: /c/dep.json?comp=lease&sv=2024&sig=SECRET (refused)")
    text = _short(exc)
    assert "SECRET" not in text and "/c/dep.json?…" in text and text.endswith("(refused)")
    s = BlobStateStore("https://acct.blob.core.windows.net/?sv=1&sig=SECRET", "c", None, "dep", None)
    assert s.location == "https://acct.blob.core.windows.net/c/dep.json"


def test_satisfies_the_engine_protocol(azurite: Azurite) -> None:
    assert isinstance(store(azurite, "c"), StateBackend)


def test_save_load_versions_and_listing(azurite: Azurite, container: str) -> None:
    s = store(azurite, container, options=BlobStateOptions(lease_seconds=15, keep_versions=2))
    assert not s.exists() and s.load().deployment == "dep" and not s.load().steps
    with s.lock(command="deploy"):
        # Locking a new deployment leaves only a placeholder: still "no state".
        assert not s.exists() and not s.load().steps
        assert s.list_deployments() == []
        for n in range(1, 5):
            s.save(state(n=n))
    assert s.exists()
    assert outputs(s.load()) == {"n": 4}
    assert outputs(s.load_previous()) == {"n": 3}
    assert len(s.versions()) == 2  # pruned to keep_versions
    other = store(azurite, container, "other")
    with other.lock():
        other.save(state("other", n=0))
    assert s.list_deployments() == ["dep", "other"]
    # The holder is cleared on release; the lease is free again.
    assert s.holder() is None
    assert "akslockdown_lock_pid" not in raw_blob(azurite, container).get_blob_properties().metadata
    # Byte for byte what the local backend writes.
    assert raw_blob(azurite, container).download_blob().readall() == s.load().dumps().encode()


def test_save_guards(azurite: Azurite, container: str) -> None:
    s = store(azurite, container)
    with pytest.raises(StateError, match="needs the lock"):
        s.save(state(n=1))
    with s.lock():
        with pytest.raises(StateError, match="of deployment 'other'"):
            s.save(state("other"))
        with pytest.raises(StateError, match="looks like a secret"):
            s.save(state(client_secret="hunter2"))
    assert not s.exists()


def test_corrupt_blob_is_a_state_error(azurite: Azurite, container: str) -> None:
    raw_blob(azurite, container).upload_blob(b'{"tool": "aks-lockdown", "sch', metadata={})
    with pytest.raises(StateError, match=r"blob state http://.*/dep\.json: .*not valid JSON"):
        store(azurite, container).load()


def test_second_lock_refused_at_once_naming_holder(azurite: Azurite, container: str) -> None:
    a, b = store(azurite, container), store(azurite, container)
    with a.lock(command="aks-lockdown deploy a.toml"):
        t0 = time.monotonic()
        with pytest.raises(LockHeldError) as err, b.lock():
            pass
        assert time.monotonic() - t0 < 2
        message = err.value.one_line()
        assert f"pid {os.getpid()} on " in message and "aks-lockdown deploy a.toml" in message
        assert "unlock --force" in message
        # unlock without force only reports; it never breaks a live run's lock.
        with pytest.raises(LockHeldError):
            b.unlock()
        assert a.holder() is not None
    assert b.unlock() is None


def test_two_processes_race_exactly_one_wins(azurite: Azurite, container: str, tmp_path: Path) -> None:
    release = tmp_path / "release"
    start_at = time.time() + 1.5  # both interpreters are up and waiting by then
    procs = [spawn(azurite, container, "race", str(start_at), str(release)) for _ in range(2)]
    results = []
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the winner holds on until release exists
        assert line, proc.stderr.read() if proc.stderr else ""
        results.append(json.loads(line))
    release.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    winners = [r for r in results if r["result"] == "locked"]
    losers = [r for r in results if r["result"] == "refused"]
    assert len(winners) == 1 and len(losers) == 1, results
    assert f"pid {winners[0]['pid']} on " in losers[0]["message"]
    assert f"race {winners[0]['pid']}" in losers[0]["message"]
    assert losers[0]["elapsed"] < 2  # refused at once, not after waiting


def test_crashed_holder_lease_expires(azurite: Azurite, container: str) -> None:
    proc = spawn(azurite, container, "hold")
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    pid = json.loads(line)["pid"]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    killed_at = time.monotonic()

    s = store(azurite, container)
    with pytest.raises(LockHeldError, match=f"pid {pid} on .*hold-and-crash"):
        s.acquire()
    while True:
        try:
            s.acquire(command="after the crash")
            break
        except LockHeldError:
            # Within one lease duration of the last renewal (plus slack for a loaded test machine).
            assert time.monotonic() - killed_at < FAST.lease_seconds + 4, "the lease did not expire"
            time.sleep(0.5)
    try:
        # No person needed, and the crashed run's last save is intact.
        assert outputs(s.load()) == {"writer": pid}
        s.save(state(writer=os.getpid()))
    finally:
        s.release()
    assert raw_outputs(azurite, container) == {"writer": os.getpid()}


def test_stolen_lease_first_writer_fails_safe(azurite: Azurite, container: str) -> None:
    a = store(azurite, container)
    a.acquire(command="run a")
    a.save(state(writer="a", n=1))

    thief = store(azurite, container)
    broken = thief.unlock(force=True)
    assert broken is not None and broken.command == "run a"
    thief.acquire(command="run b")
    try:
        # Before a's heartbeat can notice: the write is refused, and named as a lost lock.
        with pytest.raises(StateError, match="lost its lock"):
            a.save(state(writer="a", n=2))
        assert raw_outputs(azurite, container) == {"writer": "a", "n": 1}
        # The new holder carries on from the intact state.
        assert outputs(thief.load()) == {"writer": "a", "n": 1}
        thief.save(state(writer="b", n=2))
        with pytest.raises(StateError, match="lost its lock"):
            a.save(state(writer="a", n=3))
        a.release()  # must not clear the new holder's metadata
        holder = thief.holder()
        assert holder is not None and holder.command == "run b"
    finally:
        thief.release()
    assert raw_outputs(azurite, container) == {"writer": "b", "n": 2}


def test_heartbeat_notices_a_broken_lease(azurite: Azurite, container: str) -> None:
    a = store(azurite, container)
    a.acquire()
    try:
        assert a._lease is not None
        first = a._lease.renewals
        time.sleep(1.5)
        assert a._lease.renewals > first  # it beats
        BlobLeaseClient(raw_blob(azurite, container)).break_lease(lease_break_period=0)
        deadline = time.monotonic() + 5
        while a._lease.lost_reason is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert a._lease.lost_reason is not None
        with pytest.raises(StateError, match=r"lost its lock \(lease renewal refused"):
            a.save(state(n=1))
    finally:
        a.release()
    assert not store(azurite, container).exists()


def test_etag_conflict_is_refused(azurite: Azurite, container: str) -> None:
    a = store(azurite, container)
    with a.lock():
        a.save(state(n=1))
        assert a._lease is not None
        # Someone with the lease ID (a bug, a second handle) writes behind this run's back.
        other = state(n=99).dumps().encode()
        raw_blob(azurite, container).upload_blob(other, overwrite=True, lease=a._lease.id)
        with pytest.raises(StateError, match="ETag mismatch"):
            a.save(state(n=2))
    assert raw_outputs(azurite, container) == {"n": 99}


def test_network_errors_during_writes(azurite: Azurite, container: str, flaky_proxy: FlakyProxy) -> None:
    url = f"http://127.0.0.1:{flaky_proxy.port}/devstoreaccount1"
    a = store(azurite, container, url=url)
    a.acquire()
    try:
        a.save(state(n=1))

        # Connections die before reaching the service: a clear one-line error, nothing written.
        flaky_proxy.mode = "reset"
        t0 = time.monotonic()
        with pytest.raises(StateError) as err:
            a.save(state(n=2))
        assert time.monotonic() - t0 < 10
        text = err.value.one_line()
        assert f"{container}/dep.json" in text and f"127.0.0.1:{flaky_proxy.port}" in text
        assert "AccountKey" not in text and "Eby8" not in text and "\n" not in str(err.value)
        assert raw_outputs(azurite, container) == {"n": 1}

        # The upload commits but its response is lost: the run recognises its own write.
        flaky_proxy.mode = "swallow"
        flaky_proxy.swallow_if = lambda line: line.startswith("PUT") and "comp=" not in line
        a.save(state(n=3))
        assert raw_outputs(azurite, container) == {"n": 3}

        # The upload commits, its response is lost and so is the check that follows: the outcome is
        # unknown, said so; the next call settles it (here: it did commit) and carries on.
        flaky_proxy.swallow_if = lambda line: line.startswith(("HEAD", "PUT")) and "comp=" not in line
        with pytest.raises(StateError, match="network error while writing"):
            a.save(state(n=4))
        assert a._pending is not None
        flaky_proxy.mode = "pass"
        assert outputs(a.load()) == {"n": 4} and a._pending is None
        a.save(state(n=5))
        assert outputs(a.load()) == {"n": 5} and outputs(a.load_previous()) == {"n": 4}
    finally:
        flaky_proxy.mode = "pass"
        a.release()


def test_closed_port_is_a_clear_error(azurite: Azurite, container: str) -> None:
    s = store(azurite, container, url=f"http://127.0.0.1:{free_port()}/devstoreaccount1")
    t0 = time.monotonic()
    with pytest.raises(LockdownError) as err:
        s.acquire()
    assert time.monotonic() - t0 < 10
    text = err.value.one_line()
    assert text.startswith("blob state http://127.0.0.1:") and f"/{container}/dep.json" in text


def test_missing_container_is_a_clear_error(azurite: Azurite) -> None:
    s = store(azurite, "no-such-container")
    with pytest.raises(StateError, match="no-such-container"):
        s.acquire()


def test_blob_of_another_deployment_is_refused(azurite: Azurite, container: str) -> None:
    a = store(azurite, container, "alpha", blob_name="shared.json")
    with a.lock():
        a.save(state("alpha", n=1))
    b = store(azurite, container, "beta", blob_name="shared.json")
    with pytest.raises(StateError, match="belongs to deployment 'alpha'"), b.lock():
        pass
    assert b.holder() is None  # the refused run let go of the lease it had taken


def test_read_before_lock_then_changed_is_refused(azurite: Azurite, container: str) -> None:
    a, b = store(azurite, container), store(azurite, container)
    with a.lock():
        a.save(state(n=1))
    assert outputs(b.load()) == {"n": 1}  # b reads without the lock ...
    with a.lock():
        a.save(state(n=2))  # ... a changes it ...
    with b.lock():  # ... and b's lock must not launder its stale read into a blind overwrite.
        with pytest.raises(StateError, match="changed after this run read it"):
            b.save(state(n=3))
        assert outputs(b.load()) == {"n": 2}
        b.save(state(n=3))
    with a.lock():  # a reloads under the lock (its last write is no longer current), then writes
        assert outputs(a.load()) == {"n": 3}
        a.save(state(n=4))

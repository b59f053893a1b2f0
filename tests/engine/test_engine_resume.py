"""Resume after the process dies at each point of a write, and Ctrl-C handling.

In-process, ``Kill`` (a BaseException, so nothing on the way up records anything) stands in for
kill -9; test_engine_crash_subprocess.py does the same with a real SIGKILL.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_fakes import (
    CONFIG,
    RESUME,
    RG,
    A,
    B,
    CloudError,
    FakeClock,
    FakeCloud,
    Kill,
    Recorder,
    make_runner,
    pipeline,
    read_state_file,
    resource_step,
)

from aks_lockdown.engine.events import Progress
from aks_lockdown.engine.step import Diff
from aks_lockdown.errors import EXIT_INTERRUPTED, Interrupted

main_thread_only = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals need the main thread"
)


def kill_on(cloud: FakeCloud, point: str, resource_id: str, *, after: int = 1) -> None:
    calls = 0

    def die() -> None:
        nonlocal calls
        calls += 1
        if calls >= after:
            raise Kill(point)

    cloud.hooks[(point, resource_id)] = die


def assert_converged(state_dir: Path, cloud: FakeCloud) -> None:
    assert cloud.creates == {RG: 1, A: 1, B: 1}  # nothing created twice
    assert all(r["state"] == "Succeeded" for r in cloud.resources.values())
    doc = read_state_file(state_dir)
    assert {n: s["status"] for n, s in doc["steps"].items()} == {"rg": "done", "a": "done", "b": "done"}
    assert all(s["intent"] is None for s in doc["steps"].values())
    assert {k: r["origin"] for k, r in doc["resources"].items()} == {
        RG: "created",
        A: "created",
        B: "created",
    }
    # And teardown can remove it all: ownership survived the crash.
    make_runner(state_dir, pipeline(ticks=3), cloud, CONFIG).teardown()
    assert cloud.resources == {}


# (hook point, kills after N calls, intent left on disk, A exists in the cloud after the kill)
CRASH_POINTS = {
    "before intent": ("apply", 1, False, False),
    "after intent, before begin": ("begin", 1, True, False),
    "during polling": ("poll", 2, True, True),
    "after success, before the result is recorded": ("result", 1, True, True),
}


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_resume_after_crash(tmp_path: Path, point: str) -> None:
    hook, after, intent_left, exists = CRASH_POINTS[point]
    cloud = FakeCloud()
    kill_on(cloud, hook, A, after=after)
    with pytest.raises(Kill):
        make_runner(tmp_path, pipeline(ticks=3), cloud, CONFIG).deploy()

    doc = read_state_file(tmp_path)
    intent = doc["steps"].get("a", {}).get("intent")
    assert (intent is not None) == intent_left
    if intent_left:
        assert intent["resource_id"] == A and intent["operation"] == "create"
    assert (A in cloud.resources) == exists
    assert B not in cloud.resources

    cloud.hooks.clear()
    rec = Recorder()
    result = make_runner(tmp_path, pipeline(ticks=3), cloud, CONFIG, sink=rec).deploy()
    assert result.ok
    if intent_left:
        history = read_state_file(tmp_path)["steps"]["a"]["history"]
        assert "resumed" in [h["outcome"] for h in history]
        assert any("previous run stopped" in e.message for e in rec.of(Progress))
    assert_converged(tmp_path, cloud)


def test_resume_teardown_after_crash_during_the_container_delete(tmp_path: Path) -> None:
    cloud = FakeCloud()
    make_runner(tmp_path, pipeline(ticks=3), cloud, CONFIG).deploy()
    kill_on(cloud, "poll", RG, after=2)
    with pytest.raises(Kill):
        make_runner(tmp_path, pipeline(ticks=3), cloud, CONFIG).teardown()
    assert read_state_file(tmp_path)["steps"]["rg"]["intent"]["operation"] == "delete"
    assert cloud.resources[RG]["state"] == "Deleting"
    cloud.hooks.clear()
    make_runner(tmp_path, pipeline(ticks=3), cloud, CONFIG).teardown()
    assert cloud.resources == {}
    doc = read_state_file(tmp_path)
    assert all(s["status"] == "rolled_back" for s in doc["steps"].values())
    assert all(r["deleted"] for r in doc["resources"].values())


def test_a_found_in_flight_is_waited_for_not_written_again(tmp_path: Path) -> None:
    """Another run's create is still provisioning: the step waits (wait_for), sending nothing."""
    cloud = FakeCloud()
    kill_on(cloud, "poll", A, after=1)
    with pytest.raises(Kill):
        make_runner(tmp_path, pipeline(ticks=5), cloud, CONFIG).deploy()
    cloud.hooks.clear()
    puts_before = [w for w in cloud.writes if w == ("put", A)]
    rec = Recorder()
    make_runner(tmp_path, pipeline(ticks=5), cloud, CONFIG, sink=rec).deploy()
    assert [w for w in cloud.writes if w == ("put", A)] == puts_before
    assert any("Creating" in e.message for e in rec.of(Progress) if e.resource_id == A)


def with_sigint(clock: FakeClock, *, at: int, times: int = 1, cloud: FakeCloud | None = None) -> None:
    """SIGINT to ourselves on the ``at``-th sleep (counted from when A exists, if a cloud is given)."""
    seen = 0

    def send(n: int) -> None:
        nonlocal seen
        if cloud is not None and A not in cloud.resources:
            return
        seen += 1
        if seen == at:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)

    clock.on_sleep = send


@main_thread_only
def test_first_ctrl_c_records_state_and_exits_130(tmp_path: Path) -> None:
    cloud, clock = FakeCloud(), FakeClock()
    with_sigint(clock, at=3, cloud=cloud)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted) as info:
        make_runner(tmp_path, pipeline(ticks=20), cloud, CONFIG, clock=clock).deploy()
    assert signal.getsignal(signal.SIGINT) is before  # the previous handler is back

    err = info.value
    assert err.exit_code == EXIT_INTERRUPTED
    text = str(err)
    assert RESUME in text and "carries on" in text and A in text
    doc = read_state_file(tmp_path)
    assert doc["steps"]["a"]["intent"]["operation"] == "create"  # still in flight in the cloud
    assert doc["steps"]["a"]["history"][-1]["outcome"] == "interrupted"
    assert doc["resources"][A]["origin"] == "created"
    assert cloud.resources[A]["state"] == "Creating"

    # The next run picks the operation up where the cloud has it.
    make_runner(tmp_path, pipeline(ticks=20), cloud, CONFIG).deploy()
    assert cloud.creates == {RG: 1, A: 1, B: 1}


@main_thread_only
def test_second_ctrl_c_stops_at_once(tmp_path: Path) -> None:
    cloud, clock = FakeCloud(), FakeClock()
    with_sigint(clock, at=2, times=2, cloud=cloud)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        make_runner(tmp_path, pipeline(ticks=20), cloud, CONFIG, clock=clock).deploy()
    assert signal.getsignal(signal.SIGINT) is before
    # Nothing more was recorded, but the intent written before the request is there to resume from.
    assert read_state_file(tmp_path)["steps"]["a"]["intent"]["resource_id"] == A
    make_runner(tmp_path, pipeline(ticks=20), cloud, CONFIG).deploy()
    assert cloud.creates == {RG: 1, A: 1, B: 1}


@main_thread_only
def test_ctrl_c_during_check_stops_before_any_write(tmp_path: Path) -> None:
    class Slow(resource_step("a", A, uses="rg")):  # type: ignore[misc]
        def check(self) -> Diff:
            os.kill(os.getpid(), signal.SIGINT)
            return super().check()

    cloud = FakeCloud()
    with pytest.raises(Interrupted, match="no Azure operation of this run is in flight"):
        make_runner(tmp_path, [pipeline()[0], Slow, pipeline()[2]], cloud, CONFIG).deploy()
    assert set(cloud.resources) == {RG}
    doc = read_state_file(tmp_path)
    assert doc["steps"]["rg"]["status"] == "done" and "a" not in doc["steps"]


@main_thread_only
def test_ctrl_c_during_a_retry_backoff(tmp_path: Path) -> None:
    cloud, clock = FakeCloud(), FakeClock()
    cloud.faults[A] = [CloudError("AnotherOperationInProgress", "busy", retryable=True) for _ in range(50)]
    with_sigint(clock, at=2)
    with pytest.raises(Interrupted, match="while waiting to retry step a"):
        make_runner(tmp_path, pipeline(), cloud, CONFIG, clock=clock).deploy()
    assert clock.now - 1000 < 10  # noticed within a poll interval, not after the whole backoff


@main_thread_only
def test_handler_restored_after_failure(tmp_path: Path) -> None:
    cloud = FakeCloud()
    cloud.faults[A] = [CloudError("Nope", "no")]
    before: Callable[..., object] | int | None = signal.getsignal(signal.SIGINT)
    with pytest.raises(Exception, match="Nope"):
        make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()
    assert signal.getsignal(signal.SIGINT) is before

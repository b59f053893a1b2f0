"""ctx.write_many: independent writes in flight together, every intent on disk before the first request.

A step managing several fake resources writes them in one batch. The tests check the one save before any
request, that the waits overlap, that each result is recorded as it lands, that a failure lets the others
finish before the first error is raised (and retried as for write()), Ctrl-C, and a kill (``Kill``, as in
test_engine_resume.py) at each of the crash hook's four points of every write, followed by a rerun.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from engine_fakes import (
    RESUME,
    RG,
    CloudError,
    CountingStore,
    FakeClock,
    FakeCloud,
    Kill,
    Recorder,
    make_runner,
    read_state_file,
    resource_step,
    rid,
)

import aks_lockdown.engine.runner as runner_module
from aks_lockdown.engine.events import Progress, WriteFinished, WriteStarted
from aks_lockdown.engine.step import Diff, PlannedWrite, ResourceChange, Step
from aks_lockdown.errors import AzureOperationError, Interrupted

main_thread_only = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals need the main thread"
)

IPS = [rid("ips", f"ip{i}") for i in range(1, 5)]
KIND = "Fake.Things/ip"


def batch_step(ids: list[str], *, ticks: int = 3, name: str = "ips") -> type[Step]:
    """A step managing several independent fake resources, written with one ctx.write_many."""

    class BatchStep(Step):
        @property
        def cloud(self) -> FakeCloud:
            return self.ctx.clients

        def props(self) -> dict[str, Any]:
            return {"sku": "Standard", "tags": dict(self.ctx.tags)}

        def desired(self) -> Mapping[str, Any]:
            return {"ids": ids, "props": self.props()}

        def check(self) -> Diff:
            changes = []
            for resource_id in ids:
                current = self.cloud.get(resource_id)
                if current is None:
                    changes.append(ResourceChange("create", resource_id, KIND))
                elif current["state"] not in ("Succeeded", "Failed"):
                    changes.append(ResourceChange("wait", resource_id, KIND, note="in flight"))
                elif current["state"] == "Failed" or current["props"] != self.props():
                    changes.append(ResourceChange("update", resource_id, KIND))
                else:
                    changes.append(ResourceChange("none", resource_id, KIND))
            diff = Diff(tuple(changes))
            return diff if diff.pending else Diff(diff.changes, {"ids": ids})

        def apply(self, diff: Diff) -> Mapping[str, Any]:
            props = self.props()
            writes = []
            for change in diff.changes:
                resource_id, action = change.resource_id, change.action
                if action == "wait":
                    self.ctx.wait_for(resource_id, lambda r=resource_id: self.cloud.read_state(r))
                    current = self.cloud.get(resource_id)
                    if current and current["state"] == "Succeeded" and current["props"] == props:
                        continue
                    action = "update"
                if action in ("create", "update"):
                    writes.append(
                        PlannedWrite(
                            resource_id,
                            action,
                            lambda r=resource_id: self.cloud.begin_put(r, props, ticks),
                            description=f"{action} {resource_id.rsplit('/', 1)[1]}",
                        )
                    )
            results = self.ctx.write_many(writes)
            assert len(results) == len(writes)
            return {"ids": ids}

        def rollback(self) -> None:
            for resource_id in reversed(ids):
                if self.ctx.created_by_deployment(resource_id) and self.cloud.get(resource_id):
                    self.ctx.write(resource_id, "delete", lambda r=resource_id: self.cloud.begin_delete(r))

        def resource_ids(self) -> list[str]:
            return list(ids)

    BatchStep.name = name
    BatchStep.title = "Fake IPs"
    return BatchStep


def steps(ticks: int = 3, ids: list[str] | None = None) -> list[type[Step]]:
    return [resource_step("rg", RG, container=True), batch_step(ids or IPS, ticks=ticks)]


def test_every_intent_is_saved_once_before_the_first_request(tmp_path: Path) -> None:
    cloud = FakeCloud()
    store = CountingStore(tmp_path, "demo")
    seen: list[tuple[str, int, dict[str, Any]]] = []

    def at_begin(resource_id: str) -> None:
        seen.append((resource_id, store.saves, read_state_file(tmp_path)))

    for resource_id in IPS:
        cloud.hooks[("begin", resource_id)] = lambda r=resource_id: at_begin(r)
    make_runner(tmp_path, steps(), cloud, store=store).deploy()

    assert [r for r, _, _ in seen] == IPS
    saves = {n for _, n, _ in seen}
    assert len(saves) == 1, "no save between the requests of a batch"
    doc = seen[0][2]
    step = doc["steps"]["ips"]
    assert step["status"] == "applying"
    assert step["intent"]["resource_id"] == IPS[0] and step["intent"]["operation"] == "create"
    # Every create of the batch is already this deployment's: a kill now resumes as after one write.
    assert all(doc["resources"][r]["origin"] == "created" for r in IPS)

    final = read_state_file(tmp_path)
    assert final["steps"]["ips"]["status"] == "done" and final["steps"]["ips"]["intent"] is None
    outcomes = [(h["resource_id"], h["outcome"]) for h in final["steps"]["ips"]["history"]]
    assert sorted(outcomes) == sorted((r, "succeeded") for r in IPS)
    assert cloud.creates == {RG: 1, **dict.fromkeys(IPS, 1)}


def test_the_waits_overlap_and_progress_is_aggregated(tmp_path: Path) -> None:
    cloud, clock, rec = FakeCloud(), FakeClock(), Recorder()
    make_runner(tmp_path, steps(ticks=4), cloud, clock=clock, sink=rec).deploy()
    # Every request is sent before any operation is awaited...
    assert [w for w in cloud.writes if w[1] in IPS] == [("put", r) for r in IPS]
    # ... and the four 4-tick operations take the time of one (one by one: 4 x 3 sleeps).
    assert len(clock.sleeps) == 3
    assert [e.resource_id for e in rec.of(WriteStarted) if e.step == "ips"] == IPS
    assert sorted(e.resource_id for e in rec.of(WriteFinished) if e.step == "ips") == sorted(IPS)
    messages = [e.message for e in rec.of(Progress) if e.step == "ips"]
    assert messages and all(m.startswith("0/4 done; waiting for create ip1 and 3 more") for m in messages)


def test_results_come_back_in_the_order_of_the_writes(tmp_path: Path) -> None:
    cloud = FakeCloud()
    got: list[Any] = []

    class Ordered(batch_step(IPS)):  # type: ignore[misc, valid-type]
        def apply(self, diff: Diff) -> Mapping[str, Any]:
            # ip4 finishes first (1 tick), ip1 last (4 ticks).
            writes = [
                PlannedWrite(r, "create", lambda r=r, t=5 - i: self.cloud.begin_put(r, self.props(), t))
                for i, r in enumerate(IPS, start=1)
            ]
            got.extend(self.ctx.write_many(writes))
            return {"ids": IPS}

    make_runner(tmp_path, [Ordered], cloud).deploy()
    assert [g["props"]["sku"] for g in got] == ["Standard"] * 4
    history = read_state_file(tmp_path)["steps"]["ips"]["history"]
    assert [h["resource_id"] for h in history] == list(reversed(IPS))  # recorded as they landed
    assert [g is not None for g in got] == [True] * 4


def test_one_failure_lets_the_others_finish_then_raises_the_first_error(tmp_path: Path) -> None:
    cloud, rec = FakeCloud(), Recorder()
    cloud.faults[IPS[1]] = [CloudError("InvalidRequest", "bad request")]  # begin() fails at once

    def fail_result() -> None:
        raise CloudError("ProvisioningFailed", "the long operation failed")

    cloud.hooks[("result", IPS[2])] = fail_result  # the long operation fails
    with pytest.raises(AzureOperationError) as info:
        make_runner(tmp_path, steps(), cloud, sink=rec).deploy()
    assert info.value.code == "InvalidRequest" and info.value.resource_id == IPS[1]
    doc = read_state_file(tmp_path)
    step = doc["steps"]["ips"]
    assert step["status"] == "failed" and step["intent"] is None
    outcomes = {h["resource_id"]: (h["outcome"], h["code"]) for h in step["history"]}
    assert outcomes == {
        IPS[0]: ("succeeded", ""),
        IPS[1]: ("failed", "InvalidRequest"),
        IPS[2]: ("failed", "ProvisioningFailed"),
        IPS[3]: ("succeeded", ""),
    }
    # The others were awaited to the end; a failed create may leave a resource behind: ours.
    assert cloud.resources[IPS[3]]["state"] == "Succeeded"
    assert all(doc["resources"][r]["origin"] == "created" for r in IPS)

    # The next run writes only what is missing or not right.
    del cloud.hooks[("result", IPS[2])]
    make_runner(tmp_path, steps(), cloud).deploy()
    assert cloud.creates == {RG: 1, **dict.fromkeys(IPS, 1)}
    assert [w for w in cloud.writes if w[1] in IPS].count(("put", IPS[0])) == 1


def test_a_retryable_failure_is_retried_like_write(tmp_path: Path) -> None:
    cloud = FakeCloud()
    cloud.faults[IPS[2]] = [CloudError("TooManyRequests", "slow down", retryable=True, retry_after=1)]
    make_runner(tmp_path, steps(), cloud).deploy()
    assert cloud.creates == {RG: 1, **dict.fromkeys(IPS, 1)}
    # The retry re-checked and sent only the one that failed (a refused request is not a write).
    order = [IPS[0], IPS[1], IPS[3], IPS[2]]
    assert [w for w in cloud.writes if w[1] in IPS] == [("put", r) for r in order]
    assert read_state_file(tmp_path)["steps"]["ips"]["status"] == "done"


@main_thread_only
def test_ctrl_c_while_in_flight_records_every_pending_write_and_resumes(tmp_path: Path) -> None:
    cloud, clock = FakeCloud(), FakeClock()

    def send(n: int) -> None:
        if n == 2:
            os.kill(os.getpid(), signal.SIGINT)

    clock.on_sleep = send
    with pytest.raises(Interrupted) as info:
        make_runner(tmp_path, steps(ticks=20), cloud, clock=clock).deploy()
    text = str(info.value)
    assert RESUME in text and "4 writes of step ips" in text and "carry on" in text
    doc = read_state_file(tmp_path)
    step = doc["steps"]["ips"]
    assert step["intent"] is not None and step["intent"]["resource_id"] in IPS
    assert [h["outcome"] for h in step["history"]] == ["interrupted"] * 4
    assert all(doc["resources"][r]["origin"] == "created" for r in IPS)

    make_runner(tmp_path, steps(ticks=20), cloud).deploy()
    assert cloud.creates == {RG: 1, **dict.fromkeys(IPS, 1)}
    final = read_state_file(tmp_path)["steps"]["ips"]
    assert final["status"] == "done" and final["intent"] is None


def test_guards(tmp_path: Path) -> None:
    cloud = FakeCloud()

    class Twice(batch_step(IPS)):  # type: ignore[misc, valid-type]
        def apply(self, diff: Diff) -> Mapping[str, Any]:
            w = PlannedWrite(IPS[0], "create", lambda: self.cloud.begin_put(IPS[0], {}))
            self.ctx.write_many([w, PlannedWrite(IPS[0].upper(), "create", w.begin)])
            return {}

    with pytest.raises(ValueError, match="appears twice"):
        make_runner(tmp_path, [Twice], cloud).deploy()
    assert cloud.writes == []

    class NotOurs(batch_step(IPS, name="other")):  # type: ignore[misc, valid-type]
        def apply(self, diff: Diff) -> Mapping[str, Any]:
            self.ctx.write_many([PlannedWrite(IPS[0], "delete", lambda: self.cloud.begin_delete(IPS[0]))])
            return {}

    with pytest.raises(Exception, match="refusing to delete"):
        make_runner(tmp_path / "b", [NotOurs], cloud).deploy()

    class Empty(batch_step(IPS, name="empty")):  # type: ignore[misc, valid-type]
        def apply(self, diff: Diff) -> Mapping[str, Any]:
            assert self.ctx.write_many([]) == []
            return {}

    make_runner(tmp_path / "c", [Empty], cloud).deploy()


def test_a_batch_of_one_records_what_write_records(tmp_path: Path) -> None:
    """write_many([w]) leaves the same events and state as write(w)."""
    one = [IPS[0]]

    def run(directory: Path, cls: type[Step]) -> tuple[list[str], dict[str, Any]]:
        cloud, rec = FakeCloud(), Recorder()
        make_runner(directory, [cls], cloud, sink=rec).deploy()
        doc = read_state_file(directory)["steps"]["ips"]
        history = [{k: v for k, v in h.items() if k not in ("time", "elapsed")} for h in doc["history"]]
        events = [type(e).__name__ + ":" + getattr(e, "message", "") for e in rec.events]
        return events, {"status": doc["status"], "intent": doc["intent"], "history": history}

    class Single(batch_step(one)):  # type: ignore[misc, valid-type]
        def apply(self, diff: Diff) -> Mapping[str, Any]:
            r = one[0]
            self.ctx.write(
                r, "create", lambda: self.cloud.begin_put(r, self.props(), 3), description="create ip1"
            )
            return {"ids": one}

    assert run(tmp_path / "many", batch_step(one)) == run(tmp_path / "one", Single)


# -- a kill at each of the four points of every write of the batch ---------------------------------------


def arm_crash(monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    def kill(pid: int, sig: int) -> None:
        raise Kill(spec)

    monkeypatch.setattr(runner_module, "_CRASH_AT", [*spec.split(":"), "", "", "", ""])
    monkeypatch.setattr(runner_module, "_crash_hits", [0])
    monkeypatch.setattr(runner_module.os, "kill", kill)


@pytest.mark.parametrize("point", ["before-intent", "after-intent", "polling", "after-success"])
@pytest.mark.parametrize("index", range(len(IPS)))
def test_killed_at_every_point_of_every_write_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, index: int
) -> None:
    cloud = FakeCloud()
    spec = f"ips:{IPS[index]}:create:{point}"
    with monkeypatch.context() as m:
        arm_crash(m, spec)
        with pytest.raises(Kill):
            make_runner(tmp_path, steps(ticks=3), cloud).deploy()
    doc = read_state_file(tmp_path)
    step = doc["steps"].get("ips", {})
    if point == "before-intent":
        assert step.get("intent") is None
        assert not any(r in doc["resources"] for r in IPS)
        assert not any(w[1] in IPS for w in cloud.writes)
    else:
        # In flight at the kill: the state says so, and whatever exists under those IDs is ours.
        assert step["intent"] is not None and step["intent"]["resource_id"] in IPS
        assert all(doc["resources"][r]["origin"] == "created" for r in IPS)

    rec = Recorder()
    make_runner(tmp_path, steps(ticks=3), cloud, sink=rec).deploy()
    assert cloud.creates == {RG: 1, **dict.fromkeys(IPS, 1)}, "nothing created twice"
    final = read_state_file(tmp_path)
    assert final["steps"]["ips"]["status"] == "done" and final["steps"]["ips"]["intent"] is None
    assert all(final["resources"][r]["origin"] == "created" for r in IPS)
    if point != "before-intent":
        assert any("a previous run stopped" in e.message for e in rec.of(Progress))
    # A converged deployment writes nothing more; a teardown deletes every one of them.
    writes = len(cloud.writes)
    make_runner(tmp_path, steps(ticks=3), cloud).deploy()
    assert len(cloud.writes) == writes
    make_runner(tmp_path, steps(ticks=3), cloud).teardown()
    assert cloud.resources == {}

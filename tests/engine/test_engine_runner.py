"""The runner with fake steps: deploy, no-op reruns, intents, staleness, retries, failures, plan,
status, rollback on failure, teardown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from engine_fakes import (
    CONFIG,
    RESUME,
    RG,
    A,
    B,
    C,
    CloudError,
    CountingStore,
    FakeClock,
    FakeCloud,
    Recorder,
    make_runner,
    pipeline,
    read_state_file,
    resource_step,
    rid,
)

from aks_lockdown.engine.events import (
    Progress,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepDone,
    StepFailed,
    StepRollingBack,
    WriteFinished,
    WriteStarted,
)
from aks_lockdown.engine.runner import RefusedDeleteError, RunResult
from aks_lockdown.engine.state import LocalStateStore
from aks_lockdown.engine.step import Diff
from aks_lockdown.errors import EXIT_FAILED, AzureOperationError, LockHeldError


def test_deploy_creates_records_and_chains_outputs(tmp_path: Path) -> None:
    cloud, rec = FakeCloud(), Recorder()
    result = make_runner(tmp_path, pipeline(ticks=4), cloud, CONFIG, sink=rec).deploy()

    assert isinstance(result, RunResult) and result.ok and result.command == "deploy"
    assert [(s.name, s.status, s.changed) for s in result.steps] == [
        ("rg", "done", True),
        ("a", "done", True),
        ("b", "done", True),
    ]
    assert result.outputs["b"]["props"]["upstream"] == A  # b saw a's outputs
    assert result.outputs["a"]["props"]["tags"] == {
        "managed-by": "aks-lockdown",
        "aks-lockdown-deployment": "demo",
    }
    assert cloud.creates == {RG: 1, A: 1, B: 1}

    doc = read_state_file(tmp_path)
    assert {n: s["status"] for n, s in doc["steps"].items()} == {"rg": "done", "a": "done", "b": "done"}
    assert all(s["intent"] is None for s in doc["steps"].values())
    assert {k: (v["origin"], v["step"]) for k, v in doc["resources"].items()} == {
        RG: ("created", "rg"),
        A: ("created", "a"),
        B: ("created", "b"),
    }
    assert doc["steps"]["a"]["history"][-1]["outcome"] == "succeeded"

    kinds = [type(e) for e in rec.events]
    assert kinds[0] is RunStarted and kinds[-1] is RunFinished and rec.events[-1].ok
    waits = [e for e in rec.of(Progress) if e.resource_id == A]
    assert waits and waits[-1].elapsed > waits[0].elapsed  # elapsed advances while polling
    assert [e.step for e in rec.of(StepDone)] == ["rg", "a", "b"]
    for event in rec.events:
        json.dumps(event.to_json(), default=str)  # every event renders as a JSON line


def test_noop_rerun_makes_zero_writes(tmp_path: Path) -> None:
    cloud = FakeCloud()
    make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()
    writes, before = list(cloud.writes), (tmp_path / "demo.json").read_bytes()
    mtime = (tmp_path / "demo.json").stat().st_mtime_ns

    store, rec = CountingStore(tmp_path, "demo"), Recorder()
    result = make_runner(tmp_path, pipeline(), cloud, CONFIG, store=store, sink=rec).deploy()

    assert cloud.writes == writes  # nothing sent to the cloud
    assert store.saves == 0  # nothing written to the state either
    assert (tmp_path / "demo.json").read_bytes() == before
    assert (tmp_path / "demo.json").stat().st_mtime_ns == mtime
    assert not result.changed and rec.of(WriteStarted) == []
    assert result.outputs["b"]["props"]["upstream"] == A


def test_intent_is_on_disk_before_begin(tmp_path: Path) -> None:
    cloud = FakeCloud()
    seen: list[dict[str, Any]] = []

    def assert_intent() -> None:
        doc = read_state_file(tmp_path)
        intent = doc["steps"]["a"]["intent"]
        assert intent is not None
        assert intent["resource_id"] == A and intent["operation"] == "create" and intent["step"] == "a"
        assert intent["time"] and intent["description"] == "create a"
        assert A not in cloud.resources  # the request has not been sent yet
        seen.append(intent)

    cloud.hooks[("begin", A)] = assert_intent
    make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()
    assert len(seen) == 1
    assert read_state_file(tmp_path)["steps"]["a"]["intent"] is None  # cleared with the result


def test_changed_config_makes_step_stale_and_updates(tmp_path: Path) -> None:
    cloud = FakeCloud()
    make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()
    old_fp = read_state_file(tmp_path)["steps"]["a"]["fingerprint"]
    assert make_runner(tmp_path, pipeline(), cloud, CONFIG).stale_steps() == []

    changed = {**CONFIG, "a": {"size": 2}}
    runner = make_runner(tmp_path, pipeline(), cloud, changed)
    # a is stale; b depends on a's outputs, which have not changed yet (only a's props did).
    assert runner.stale_steps() == ["a"]
    result = runner.deploy()
    assert [s.name for s in result.steps if s.changed] == ["a"]
    assert cloud.resources[A]["props"]["size"] == 2
    doc = read_state_file(tmp_path)
    assert doc["steps"]["a"]["fingerprint"] != old_fp
    assert doc["steps"]["a"]["history"][-1]["operation"] == "update"
    assert make_runner(tmp_path, pipeline(), cloud, changed).stale_steps() == []


def test_retryable_errors_are_retried_with_events(tmp_path: Path) -> None:
    cloud, rec, clock = FakeCloud(), Recorder(), FakeClock()
    cloud.faults[A] = [
        CloudError("AnotherOperationInProgress", "busy", retryable=True, status=409),
        CloudError("TooManyRequests", "slow down", retryable=True, retry_after=30, status=429),
    ]
    result = make_runner(tmp_path, pipeline(), cloud, CONFIG, sink=rec, clock=clock).deploy()
    assert result.ok and cloud.creates[A] == 1
    retries = rec.of(RetryScheduled)
    assert [(r.step, r.code, r.attempt) for r in retries] == [
        ("a", "AnotherOperationInProgress", 1),
        ("a", "TooManyRequests", 2),
    ]
    assert 2 <= retries[0].delay <= 4  # exponential from 2 s with jitter
    assert 30 <= retries[1].delay <= 31  # Retry-After honoured
    assert sum(clock.sleeps) >= 32
    history = read_state_file(tmp_path)["steps"]["a"]["history"]
    assert [h["outcome"] for h in history] == ["failed", "failed", "succeeded"]
    assert history[0]["code"] == "AnotherOperationInProgress"


def test_retry_gives_up_at_the_deadline(tmp_path: Path) -> None:
    cloud, rec, clock = FakeCloud(), Recorder(), FakeClock()
    cloud.faults[A] = [CloudError("PrincipalNotFound", "not yet", retryable=True) for _ in range(1000)]
    runner = make_runner(tmp_path, pipeline(), cloud, CONFIG, sink=rec, clock=clock, retry_deadline=120)
    start = clock.now
    with pytest.raises(AzureOperationError) as info:
        runner.deploy()
    assert clock.now - start <= 120
    assert len(rec.of(RetryScheduled)) >= 4
    err = info.value
    assert err.code == "PrincipalNotFound" and err.resource_id == A and err.step == "a"
    assert "retry deadline 120s" in str(err)
    assert read_state_file(tmp_path)["steps"]["a"]["status"] == "failed"


def test_non_retryable_error_stops_with_resume_command(tmp_path: Path) -> None:
    cloud, rec = FakeCloud(), Recorder()
    cloud.faults[B] = [CloudError("InvalidTemplate", "color 'blue' is not allowed")]
    with pytest.raises(AzureOperationError) as info:
        make_runner(tmp_path, pipeline(), cloud, CONFIG, sink=rec).deploy()
    err = info.value
    assert err.exit_code == EXIT_FAILED
    assert (err.step, err.resource_id, err.code) == ("b", B, "InvalidTemplate")
    assert err.message == "color 'blue' is not allowed"
    assert RESUME in str(err) and B in str(err)
    assert rec.of(RetryScheduled) == []
    assert [e.step for e in rec.of(StepFailed)] == ["b"]
    assert rec.events[-1] == RunFinished(False, rec.events[-1].elapsed, rec.events[-1].summary)

    doc = read_state_file(tmp_path)
    assert doc["steps"]["a"]["status"] == "done"
    assert doc["steps"]["b"]["status"] == "failed"
    assert doc["steps"]["b"]["error"]["code"] == "InvalidTemplate"
    assert doc["steps"]["b"]["error"]["resource_id"] == B
    assert doc["steps"]["b"]["intent"] is None

    # Fix the cause, rerun: it converges and clears the error.
    result = make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()
    assert [s.name for s in result.steps if s.changed] == ["b"]
    assert read_state_file(tmp_path)["steps"]["b"]["error"] is None


def test_a_bug_is_reraised_as_is_and_recorded(tmp_path: Path) -> None:
    cloud = FakeCloud()

    def boom() -> None:
        raise ZeroDivisionError("step bug")

    cloud.hooks[("apply", B)] = boom
    with pytest.raises(ZeroDivisionError):
        make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()
    doc = read_state_file(tmp_path)
    assert doc["steps"]["b"]["status"] == "failed"
    assert doc["steps"]["b"]["error"]["code"] == "ZeroDivisionError"


def test_failed_long_operation_marks_the_resource_ours(tmp_path: Path) -> None:
    """A create whose long operation fails leaves a Failed resource behind: it is ours to delete."""
    cloud = FakeCloud()

    def fail_it() -> None:
        cloud.resources[A]["state"] = "Failed"

    cloud.hooks[("result", A)] = fail_it
    with pytest.raises(AzureOperationError, match="ProvisioningFailed"):
        make_runner(tmp_path, pipeline(ticks=1), cloud, CONFIG).deploy()
    assert read_state_file(tmp_path)["resources"][A]["origin"] == "created"
    del cloud.hooks[("result", A)]
    # The rerun finds it Failed and writes it again to reconcile.
    make_runner(tmp_path, pipeline(ticks=1), cloud, CONFIG).deploy()
    assert cloud.resources[A]["state"] == "Succeeded" and cloud.creates[A] == 1


def test_rollback_on_failure_removes_only_what_this_run_created(tmp_path: Path) -> None:
    cloud, rec = FakeCloud(), Recorder()
    make_runner(tmp_path, pipeline()[:2], cloud, CONFIG).deploy()  # an earlier run: rg and a
    steps = [*pipeline(), resource_step("c", C, uses="b")]
    cloud.faults[C] = [CloudError("QuotaExceeded", "no more c")]
    with pytest.raises(AzureOperationError, match="QuotaExceeded"):
        make_runner(tmp_path, steps, cloud, CONFIG, sink=rec).deploy(rollback_on_failure=True)

    assert set(cloud.resources) == {RG, A}  # b (this run's) is gone, the earlier run's stay
    assert ("delete", B) in cloud.writes
    assert all(w != ("delete", RG) and w != ("delete", A) for w in cloud.writes)
    assert [e.step for e in rec.of(StepRollingBack)] == ["c", "b"]
    doc = read_state_file(tmp_path)
    assert doc["resources"][B]["deleted"] is True
    assert doc["resources"][A]["deleted"] is False
    assert doc["steps"]["b"]["status"] == "rolled_back"
    assert doc["steps"]["a"]["status"] == "done"
    assert doc["steps"]["c"]["status"] == "rolled_back"
    assert doc["steps"]["c"]["error"]["code"] == "QuotaExceeded"  # the failure stays on record


def test_rollback_on_failure_never_deletes_beyond_the_run(tmp_path: Path) -> None:
    """A step whose rollback deletes everything it ever created is held to this run's creations."""
    cloud = FakeCloud()
    make_runner(tmp_path, pipeline()[:2], cloud, CONFIG).deploy()

    class Greedy(resource_step("b", B, uses="a")):  # type: ignore[misc]
        def rollback(self) -> None:
            super().rollback()
            self.ctx.write(A, "delete", lambda: self.cloud.begin_delete(A))  # not this run's

        def apply(self, diff: Diff) -> dict[str, Any]:
            super().apply(diff)
            raise CloudError("Conflict", "late failure")

    rec = Recorder()
    with pytest.raises(AzureOperationError, match="late failure"):
        make_runner(tmp_path, [*pipeline()[:2], Greedy], cloud, CONFIG, sink=rec).deploy(
            rollback_on_failure=True
        )
    assert A in cloud.resources
    assert any("removes only what this run created" in e.error for e in rec.of(StepFailed))


def test_plan_reads_only(tmp_path: Path) -> None:
    cloud, rec = FakeCloud(), Recorder()
    plan = make_runner(tmp_path, pipeline(), cloud, CONFIG, sink=rec).plan()
    assert [(name, diff.counts()) for name, diff in plan] == [
        ("rg", (1, 0, 0)),
        ("a", (1, 0, 0)),
        ("b", (1, 0, 0)),
    ]
    assert cloud.writes == [] and not (tmp_path / "demo.json").exists()
    assert rec.events[-1].summary == {"add": 3, "change": 0, "destroy": 0}

    make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()
    before = (tmp_path / "demo.json").read_bytes()
    changed = {**CONFIG, "b": {"color": "red"}}
    plan = dict(make_runner(tmp_path, pipeline(), cloud, changed).plan())
    assert not plan["a"].pending and plan["b"].counts() == (0, 1, 0)
    assert [f.path for f in plan["b"].changes[0].fields] == ["color"]
    assert (tmp_path / "demo.json").read_bytes() == before


def test_plan_and_status_while_a_deploy_holds_the_lock(tmp_path: Path) -> None:
    cloud = FakeCloud()
    make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()
    holder = LocalStateStore(tmp_path, "demo")
    with holder.lock("deploy: elsewhere"):
        runner = make_runner(tmp_path, pipeline(), cloud, CONFIG)
        assert all(not d.pending for _, d in runner.plan())  # no lock needed to read
        assert runner.status().steps["a"].status == "done"
        with pytest.raises(LockHeldError, match="deploy: elsewhere"):
            runner.deploy()
        with pytest.raises(LockHeldError):
            runner.teardown()


def test_plan_uses_recorded_outputs_for_later_steps(tmp_path: Path) -> None:
    """a is about to change; b's check still gets a's recorded outputs rather than nothing."""
    cloud = FakeCloud()
    make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()
    seen: list[Any] = []

    class Spy(resource_step("b", B, uses="a")):  # type: ignore[misc]
        def check(self) -> Diff:
            seen.append(self.ctx.outputs.get("a", {}).get("id"))
            return super().check()

    make_runner(tmp_path, [*pipeline()[:2], Spy], cloud, {**CONFIG, "a": {"size": 9}}).plan()
    assert seen == [A]


def test_status_is_read_only(tmp_path: Path) -> None:
    cloud = FakeCloud()
    runner = make_runner(tmp_path, pipeline(), cloud, CONFIG)
    assert runner.status().steps == {}
    runner.deploy()
    before = (tmp_path / "demo.json").read_bytes()
    st = runner.status()
    assert st.steps["b"].outputs["id"] == B and st.created_by_deployment(B)
    assert (tmp_path / "demo.json").read_bytes() == before


def test_teardown_through_the_container_is_one_delete(tmp_path: Path) -> None:
    cloud, rec = FakeCloud(), Recorder()
    make_runner(tmp_path, pipeline(ticks=2), cloud, CONFIG).deploy()
    result = make_runner(tmp_path, pipeline(ticks=2), cloud, CONFIG, sink=rec).teardown()
    assert result.ok and cloud.resources == {}
    assert [w for w in cloud.writes if w[0] == "delete"] == [("delete", RG)]
    doc = read_state_file(tmp_path)
    assert {n: s["status"] for n, s in doc["steps"].items()} == {
        "rg": "rolled_back",
        "a": "rolled_back",
        "b": "rolled_back",
    }
    assert all(r["deleted"] for r in doc["resources"].values())
    assert all(s["outputs"] == {} for s in doc["steps"].values())

    assert [e.step for e in rec.of(StepDone)] == ["rg", "a", "b"]  # every row of the display ends

    # Idempotent: a second teardown finds nothing to do and writes nothing anywhere.
    writes, store = list(cloud.writes), CountingStore(tmp_path, "demo")
    make_runner(tmp_path, pipeline(ticks=2), cloud, CONFIG, store=store).teardown()
    assert cloud.writes == writes and store.saves == 0


def test_teardown_in_reverse_when_the_container_was_adopted(tmp_path: Path) -> None:
    cloud, rec = FakeCloud(), Recorder()
    cloud.resources[RG] = {"props": {"owner": "someone else"}, "state": "Succeeded", "ticks": 0}
    make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()
    assert read_state_file(tmp_path)["resources"][RG]["origin"] == "adopted"

    make_runner(tmp_path, pipeline(), cloud, CONFIG, sink=rec).teardown()
    assert [w for w in cloud.writes if w[0] == "delete"] == [("delete", B), ("delete", A)]
    assert set(cloud.resources) == {RG}  # never delete what we found
    assert [e.step for e in rec.of(StepRollingBack)] == ["b", "a", "rg"]


def test_teardown_keep_resource_group(tmp_path: Path) -> None:
    cloud = FakeCloud()
    make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()
    result = make_runner(tmp_path, pipeline(), cloud, CONFIG).teardown(keep_resource_group=True)
    assert set(cloud.resources) == {RG}
    assert [w for w in cloud.writes if w[0] == "delete"] == [("delete", B), ("delete", A)]
    assert [s.name for s in result.steps] == ["b", "a"]
    # Later, the whole thing: now the container goes.
    make_runner(tmp_path, pipeline(), cloud, CONFIG).teardown()
    assert cloud.resources == {}


def test_engine_refuses_to_delete_what_it_did_not_create(tmp_path: Path) -> None:
    cloud = FakeCloud()
    cloud.resources[A] = {"props": {}, "state": "Succeeded", "ticks": 0}
    stranger = rid("xs", "stranger")
    cloud.resources[stranger] = {"props": {}, "state": "Succeeded", "ticks": 0}
    make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()  # a is adopted (and updated)

    for target, origin in ((A, "adopted"), (stranger, "unknown")):

        class Reckless(resource_step("b", B, uses="a")):  # type: ignore[misc]
            def rollback(self, target: str = target) -> None:
                self.ctx.write(target, "delete", lambda: self.cloud.begin_delete(target))

        with pytest.raises(RefusedDeleteError, match=f"did not create it .origin: {origin}"):
            make_runner(tmp_path, [*pipeline()[:2], Reckless], cloud, CONFIG).teardown(
                keep_resource_group=True
            )
        assert target in cloud.resources
    assert ("delete", A) not in cloud.writes


def test_engine_refuses_to_delete_a_container_holding_adopted_resources(tmp_path: Path) -> None:
    cloud = FakeCloud()
    cloud.resources[B] = {"props": {}, "state": "Succeeded", "ticks": 0}  # exists before us: adopted
    make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()
    rec = Recorder()
    # Not the one-delete path (it would take b with it): step by step, and the group is refused.
    with pytest.raises(RefusedDeleteError, match=f"contains {B}"):
        make_runner(tmp_path, pipeline(), cloud, CONFIG, sink=rec).teardown()
    assert B in cloud.resources and RG in cloud.resources and A not in cloud.resources
    assert [e.step for e in rec.of(StepRollingBack)] == ["b", "a", "rg"]
    assert read_state_file(tmp_path)["steps"]["rg"]["status"] == "failed"


def test_delete_of_a_resource_already_gone_counts_as_done(tmp_path: Path) -> None:
    cloud = FakeCloud()
    make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()

    class Blind(resource_step("b", B, uses="a")):  # type: ignore[misc]
        def rollback(self) -> None:  # no existence check: relies on the engine's 404 handling
            self.ctx.write(B, "delete", lambda: self.cloud.begin_delete(B))

    del cloud.resources[B]  # deleted out of band
    rec = Recorder()
    make_runner(tmp_path, [*pipeline()[:2], Blind], cloud, CONFIG, sink=rec).teardown(
        keep_resource_group=True
    )
    doc = read_state_file(tmp_path)
    assert doc["resources"][B]["deleted"] and doc["steps"]["b"]["status"] == "rolled_back"
    assert doc["steps"]["b"]["history"][-1]["message"] == "already gone"
    assert any(e.resource_id == B for e in rec.of(WriteFinished))


def test_write_during_plan_is_a_bug(tmp_path: Path) -> None:
    class Writer(resource_step("a", A)):  # type: ignore[misc]
        def check(self) -> Diff:
            self.ctx.write(A, "create", lambda: None)
            return Diff()

    with pytest.raises(RuntimeError, match="checks only"):
        make_runner(tmp_path, [Writer], FakeCloud(), CONFIG).plan()


def test_secret_in_outputs_is_refused(tmp_path: Path) -> None:
    class Leaky(resource_step("a", A)):  # type: ignore[misc]
        def apply(self, diff: Diff) -> dict[str, Any]:
            return {**super().apply(diff), "admin_password": "hunter2"}

    with pytest.raises(Exception, match="looks like a secret"):
        make_runner(tmp_path, [Leaky], FakeCloud(), CONFIG).deploy()
    assert "hunter2" not in (tmp_path / "demo.json").read_text()


def test_runner_rejects_duplicate_step_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unique"):
        make_runner(tmp_path, [resource_step("a", A), resource_step("a", B)], FakeCloud())


def test_progress_from_steps_becomes_events(tmp_path: Path) -> None:
    class Chatty(resource_step("a", A)):  # type: ignore[misc]
        def check(self) -> Diff:
            self.ctx.progress("reading the thing", resource_id=A)
            return super().check()

    rec = Recorder()
    make_runner(tmp_path, [Chatty], FakeCloud(), CONFIG, sink=rec).deploy()
    assert Progress("a", "reading the thing", A, 0.0) in rec.events


def test_teardown_without_state_touches_nothing(tmp_path: Path) -> None:
    cloud = FakeCloud()
    cloud.resources[A] = {"props": {}, "state": "Succeeded", "ticks": 0}
    result = make_runner(tmp_path, pipeline(), cloud, CONFIG).teardown()
    assert result.ok and result.steps == ()
    assert cloud.writes == [] and not (tmp_path / "demo.json").exists()


def test_lock_holder_names_the_running_command(tmp_path: Path) -> None:
    cloud = FakeCloud()
    seen: list[str] = []

    def peek() -> None:
        holder = LocalStateStore(tmp_path, "demo").holder()
        assert holder is not None
        seen.append(holder.command)

    cloud.hooks[("begin", A)] = peek
    make_runner(tmp_path, pipeline(), cloud, CONFIG).deploy()
    assert seen and seen[0].startswith("deploy: ")
    assert LocalStateStore(tmp_path, "demo").holder() is None  # released after the run

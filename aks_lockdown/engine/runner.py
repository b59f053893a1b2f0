"""The runner: steps in order, every write bracketed by an intent and a result in the state file.

Kill the process at any instant and rerun the same command: the state says which write was in flight
(the intent), the step's ``check()`` says what Azure did with it, and the run carries on from there.
The engine knows nothing of Azure; the classifier it is given turns exceptions into ``ErrorInfo``.

Locking: ``deploy`` and ``teardown`` hold the deployment's exclusive lock for the whole run. ``plan`` and
``status`` never take it: they only read, and a state file is replaced atomically, so a reader sees
either the previous or the next complete version. A plan during a deploy is therefore a consistent (if
momentary) preview; it never waits for, nor blocks, the deploy.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from aks_lockdown.engine.events import (
    Event,
    EventSink,
    Progress,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepChecking,
    StepDone,
    StepFailed,
    StepPlanned,
    StepRollingBack,
    WriteFinished,
    WriteStarted,
    discard,
)
from aks_lockdown.engine.retry import ErrorClassifier, ErrorInfo, RetryPolicy, RetryStats, call_with_retry
from aks_lockdown.engine.state import (
    DeploymentState,
    Intent,
    StateBackend,
    StepError,
    WriteResult,
    fingerprint,
    utcnow,
)
from aks_lockdown.engine.step import TERMINAL_STATES, Diff, Operation, PlannedWrite, Poller, Step
from aks_lockdown.errors import AzureOperationError, Interrupted, LockdownError

T = TypeVar("T")
MANAGED_BY_TAG = "managed-by"
MANAGED_BY = "aks-lockdown"
DEPLOYMENT_TAG = "aks-lockdown-deployment"

# TEST HOOK, for the reliability suite's kill -9 points; never set it in real use. With
# AKS_LOCKDOWN_CRASH_AT="<step>:<resource-id substring>:<operation>:<point>[:<nth>]" the process SIGKILLs
# itself at the nth (default 1st) ctx.write matching step, substring (case-insensitive) and operation
# ("" or "*" match anything) when it reaches <point>: before-intent | after-intent (intent saved, request
# not sent) | polling (request sent, long operation not awaited) | after-success (Azure done, result not
# saved). Read once at import, so when unset it costs one falsy test per write.
_CRASH_SPEC = os.environ.get("AKS_LOCKDOWN_CRASH_AT", "")
_CRASH_AT: list[str] | None = [*_CRASH_SPEC.split(":"), "", "", "", ""] if _CRASH_SPEC else None
_crash_hits = [0]


def _crash_point(point: str, step: str, resource_id: str, operation: str) -> None:
    assert _CRASH_AT is not None
    want_step, want_rid, want_op, want_point, nth = _CRASH_AT[:5]
    if want_point != point or want_step not in ("", "*", step) or want_op not in ("", "*", operation):
        return
    if want_rid not in ("", "*") and want_rid.lower() not in resource_id.lower():
        return
    _crash_hits[0] += 1
    if _crash_hits[0] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


class RefusedDeleteError(LockdownError):
    """A delete the engine will not send: the resource is not this deployment's (or not this run's)."""


@dataclass(frozen=True)
class StepSummary:
    name: str
    title: str
    status: str  # the step's status in the state after the run
    changed: bool  # whether the run wrote anything for this step
    elapsed: float
    outputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    ok: bool
    command: str  # "deploy" | "teardown"
    deployment: str
    elapsed: float
    steps: tuple[StepSummary, ...]
    outputs: Mapping[str, Mapping[str, Any]]  # every step's outputs, by step name

    @property
    def changed(self) -> bool:
        return any(s.changed for s in self.steps)

    def step(self, name: str) -> StepSummary:
        return next(s for s in self.steps if s.name == name)


@dataclass
class _Run:
    """What one command invocation knows beyond the state file."""

    command: str
    state: DeploymentState
    started: float
    persist: bool = True  # False for plan/status: the state is read, never saved
    writes_allowed: bool = True
    # Resources this run created (in order), for --rollback-on-failure.
    created: list[tuple[str, str]] = field(default_factory=list)
    # When set, created_by_deployment() and deletes are limited to this run's creations.
    scope_to_run: bool = False
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    summaries: list[StepSummary] = field(default_factory=list)
    interrupt_requested: bool = False
    interrupt_noticed: bool = False
    failed_resource: str = ""
    writes: int = 0

    def created_this_run(self, resource_id: str) -> bool:
        key = resource_id.lower()
        return any(rid.lower() == key for _, rid in self.created)


class _Context:
    """The StepContext the runner hands each step instance."""

    def __init__(self, runner: Runner, run: _Run, step: str) -> None:
        self._runner = runner
        self._run = run
        self.step = step
        self.config = runner.config
        self.clients = runner.clients
        self.deployment = runner.deployment
        self.tags: Mapping[str, str] = MappingProxyType(runner.tags)
        self.outputs: Mapping[str, Mapping[str, Any]] = MappingProxyType(run.outputs)
        self._started = runner._clock()

    def write(
        self,
        resource_id: str,
        operation: Operation,
        begin: Callable[[], T],
        *,
        description: str = "",
    ) -> Any:
        return self._runner._write(self._run, self.step, resource_id, operation, begin, description)

    def write_many(self, writes: Sequence[PlannedWrite]) -> list[Any]:
        return self._runner._write_many(self._run, self.step, writes)

    def wait_for(self, resource_id: str, read_state: Callable[[], str], *, description: str = "") -> str:
        return self._runner._wait_for(self._run, self.step, resource_id, read_state, description)

    def progress(self, message: str, *, resource_id: str = "") -> None:
        elapsed = self._runner._clock() - self._started
        self._runner._emit(Progress(self.step, message, resource_id, elapsed))

    def mark_adopted(self, resource_id: str) -> None:
        state = self._run.state
        if state.resource(resource_id) is None:
            state.record_adopted(resource_id, self.step)
            self._runner._save(self._run)

    def created_by_deployment(self, resource_id: str) -> bool:
        if self._run.scope_to_run:
            return self._run.created_this_run(resource_id)
        return self._run.state.created_by_deployment(resource_id)


_NO_HANDLER = object()


class Runner:
    """Runs a deployment's steps: ``deploy``, ``plan``, ``teardown``, ``status``.

    ``classify`` turns an exception into ``ErrorInfo`` (None: not a cloud error, so a bug: re-raised).
    ``sleep`` and ``clock`` are injectable so tests run instantly; ``poll_interval`` paces ``done()``
    polls of a long operation, ``state_poll_interval`` the GETs of ``ctx.wait_for``.
    """

    def __init__(
        self,
        *,
        deployment: str,
        steps: Sequence[type[Step]],
        config: Any,
        clients: Any,
        store: StateBackend,
        sink: EventSink = discard,
        classify: ErrorClassifier,
        resume_command: str = "",
        tags: Mapping[str, str] | None = None,
        retry_deadline: float = 900,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.5,
        state_poll_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names must be unique: {names}")
        if store.deployment != deployment:
            raise ValueError(f"the store is for deployment {store.deployment!r}, not {deployment!r}")
        self.deployment = deployment
        self.steps = tuple(steps)
        self.config = config
        self.clients = clients
        self.store = store
        self.sink = sink
        self.classify = classify
        self.resume_command = resume_command
        self.tags = {MANAGED_BY_TAG: MANAGED_BY, DEPLOYMENT_TAG: deployment, **(tags or {})}
        self.policy = RetryPolicy(deadline=retry_deadline)
        self._sleep = sleep
        self.poll_interval = poll_interval
        # read_state() in wait_for is a GET per call: poll it gently (ARM counts reads per hour).
        self.state_poll_interval = state_poll_interval
        self._clock = clock

    # -- commands ------------------------------------------------------------------------------

    def deploy(self, *, rollback_on_failure: bool = False) -> RunResult:
        with self._session("deploy") as run:
            try:
                for cls in self.steps:
                    self._check_interrupt(run, f"before step {cls.name}")
                    self._deploy_step(run, cls)
            except Interrupted:
                raise
            except Exception:
                if rollback_on_failure:
                    self._rollback_run(run)
                raise
            return self._result(run)

    def plan(self) -> list[tuple[str, Diff]]:
        """Check every step against Azure; no writes, no lock (see the module docstring)."""
        run = _Run("plan", self._load_readonly(), self._clock(), persist=False, writes_allowed=False)
        run.outputs = {name: dict(s.outputs) for name, s in run.state.steps.items()}
        self._emit(RunStarted(self.deployment, "plan", self._step_titles()))
        results: list[tuple[str, Diff]] = []
        try:
            for cls in self.steps:
                diff = self._plan_step(run, cls)
                # Later steps see what Azure has now when it matches, else what the state last recorded
                # overlaid with whatever check() could observe (the step copes with what is missing).
                if diff.pending:
                    run.outputs[cls.name] = {**run.outputs.get(cls.name, {}), **dict(diff.outputs)}
                else:
                    run.outputs[cls.name] = dict(diff.outputs)
                results.append((cls.name, diff))
        except Exception:
            self._emit(RunFinished(False, self._clock() - run.started))
            raise
        add, change, destroy = (sum(d.counts()[i] for _, d in results) for i in range(3))
        summary = {"add": add, "change": change, "destroy": destroy}
        self._emit(RunFinished(True, self._clock() - run.started, summary))
        return results

    def teardown(self, *, keep_resource_group: bool = False) -> RunResult:
        with self._session("teardown") as run:
            state = run.state
            if not self.store.exists():
                # Nothing was ever recorded, so nothing here is ours to delete; do not create a state
                # file for a deployment that never existed either.
                return self._result(run)
            run.outputs = {name: dict(s.outputs) for name, s in state.steps.items()}
            steps = list(self.steps)
            first = steps[0] if steps else None
            if first is not None and first.contains_later_steps and not keep_resource_group:
                container = self._container_ids(run, first)
                if (
                    container
                    and all(state.created_by_deployment(rid) for rid in container)
                    and not self._holds_adopted(run, container)
                ):
                    self._teardown_container(run, first, container)
                    return self._result(run)
            for cls in reversed(steps):
                self._check_interrupt(run, f"before rolling back step {cls.name}")
                if keep_resource_group and cls.contains_later_steps:
                    self._emit(Progress(cls.name, "kept (--keep-resource-group)"))
                    continue
                self._rollback_step(run, cls)
            return self._result(run)

    def status(self) -> DeploymentState:
        """The recorded state (read-only, no lock; leftover intents are shown reconciled in memory)."""
        return self._load_readonly()

    def stale_steps(self) -> list[str]:
        """Steps recorded done whose desired state (from the config now) differs from when they ran."""
        state = self._load_readonly()
        run = _Run("status", state, self._clock(), persist=False, writes_allowed=False)
        run.outputs = {name: dict(s.outputs) for name, s in state.steps.items()}
        stale = []
        for cls in self.steps:
            recorded = state.steps.get(cls.name)
            if recorded is None or recorded.status != "done":
                continue
            try:
                now = fingerprint(cls(_Context(self, run, cls.name)).desired())
            except Exception:
                now = ""  # cannot be computed now (missing inputs): not known to match
            if now != recorded.fingerprint:
                stale.append(cls.name)
        return stale

    # -- one step ------------------------------------------------------------------------------

    def _deploy_step(self, run: _Run, cls: type[Step]) -> None:
        name = cls.name
        recorded = run.state.step(name)
        started = self._clock()
        writes_before = run.writes
        self._emit(StepChecking(name))
        last: list[Step] = []

        def attempt() -> tuple[str, dict[str, Any]]:
            run.failed_resource = ""
            step = cls(_Context(self, run, name))
            last[:] = [step]
            fp = fingerprint(step.desired())
            if recorded.status == "done" and recorded.fingerprint and recorded.fingerprint != fp:
                self._emit(Progress(name, "the config changed since the last run: checking again"))
            diff = step.check()
            self._emit(StepPlanned(name, diff))
            if not diff.pending:
                return fp, _jsonable(name, diff.outputs)
            return fp, _jsonable(name, step.apply(diff) or {})

        stats = RetryStats()
        try:
            fp, outputs = self._with_retry(run, name, attempt, stats)
        except Interrupted:
            raise
        except Exception as exc:
            err = self._fail_step(run, name, exc, stats, last[0] if last else None)
            if err is exc:
                raise
            raise err from exc

        before = recorded.model_dump()
        recorded.status = "done"
        recorded.fingerprint = fp
        recorded.outputs = outputs
        recorded.error = None
        if recorded.model_dump() != before:  # a no-op rerun saves nothing
            recorded.updated_at = utcnow()
            self._save(run)
        run.outputs[name] = copy.deepcopy(outputs)  # later steps read these; the state keeps its own
        elapsed = self._clock() - started
        changed = run.writes > writes_before
        self._emit(StepDone(name, changed, elapsed, outputs))
        run.summaries.append(StepSummary(name, cls.title, "done", changed, elapsed, outputs))

    def _plan_step(self, run: _Run, cls: type[Step]) -> Diff:
        self._emit(StepChecking(cls.name))
        stats = RetryStats()
        try:
            diff = self._with_retry(run, cls.name, lambda: cls(_Context(self, run, cls.name)).check(), stats)
        except Exception as exc:
            info = self._classify(exc)
            self._emit(StepFailed(cls.name, _describe(exc, info)))
            if info is None:
                raise
            raise AzureOperationError(
                step=cls.name,
                resource_id=run.failed_resource,
                code=info.code,
                message=info.message,
                resume_command=self.resume_command,
            ) from exc
        self._emit(StepPlanned(cls.name, diff))
        return diff

    def _rollback_step(self, run: _Run, cls: type[Step], *, keep_error: bool = False) -> None:
        name = cls.name
        recorded = run.state.step(name)
        started = self._clock()
        writes_before = run.writes
        self._emit(StepRollingBack(name))
        last: list[Step] = []

        def attempt() -> None:
            run.failed_resource = ""
            step = cls(_Context(self, run, name))
            last[:] = [step]
            step.rollback()

        stats = RetryStats()
        try:
            self._with_retry(run, name, attempt, stats)
        except Interrupted:
            raise
        except Exception as exc:
            err = self._fail_step(run, name, exc, stats, last[0] if last else None)
            if err is exc:
                raise
            raise err from exc
        before = recorded.model_dump()
        recorded.status = "rolled_back"
        recorded.outputs = {}
        if not keep_error:  # after --rollback-on-failure the failure stays on record
            recorded.error = None
        # rollback() returning means the step removed (or found gone) everything of its own in scope,
        # including what it found already deleted without sending a delete.
        gone = [
            rid
            for rid, r in run.state.resources.items()
            if r.step == name
            and r.origin == "created"
            and not r.deleted
            and (not run.scope_to_run or run.created_this_run(rid))
        ]
        for rid in gone:
            run.state.record_deleted(rid)
        if gone or recorded.model_dump() != before:
            recorded.updated_at = utcnow()
            self._save(run)
        run.outputs.pop(name, None)
        elapsed = self._clock() - started
        changed = run.writes > writes_before
        self._emit(StepDone(name, changed, elapsed, {}))
        run.summaries.append(StepSummary(name, cls.title, "rolled_back", changed, elapsed, {}))

    def _teardown_container(self, run: _Run, first: type[Step], container: list[str]) -> None:
        """Deleting the container (the resource group) deletes every later step's resources in one long
        operation. Resources this deployment created outside it are rolled back by their steps first."""
        state = run.state
        prefixes = [rid.lower().rstrip("/") + "/" for rid in container]

        def inside(rid: str) -> bool:
            return rid.lower() in {c.lower() for c in container} or rid.lower().startswith(tuple(prefixes))

        outside = {
            r.step
            for rid, r in state.resources.items()
            if r.origin == "created" and not r.deleted and not inside(rid)
        }
        for cls in reversed(self.steps[1:]):
            if cls.name in outside:
                self._check_interrupt(run, f"before rolling back step {cls.name}")
                self._rollback_step(run, cls)
        self._check_interrupt(run, f"before rolling back step {first.name}")
        self._rollback_step(run, first)
        dirty = False
        for rid, record in state.resources.items():
            if inside(rid) and record.origin == "created" and not record.deleted:
                state.record_deleted(rid)
                dirty = True
        for cls in self.steps[1:]:
            recorded = state.step(cls.name)
            before = recorded.model_dump()
            recorded.status = "rolled_back"
            recorded.outputs = {}
            recorded.error = None
            if recorded.model_dump() != before:
                recorded.updated_at = utcnow()
                dirty = True
            run.outputs.pop(cls.name, None)
            if all(s.name != cls.name for s in run.summaries):
                # Gone with the container: tell the display so every row ends.
                self._emit(StepDone(cls.name, False, 0.0, {}))
                run.summaries.append(StepSummary(cls.name, cls.title, "rolled_back", False, 0.0, {}))
        if dirty:
            self._save(run)

    def _holds_adopted(self, run: _Run, container: list[str]) -> bool:
        # Deleting the container would take an adopted resource with it: go step by step instead
        # (where the container's own delete is then refused, naming what it holds).
        prefixes = tuple(c.lower().rstrip("/") + "/" for c in container)
        return any(
            r.origin == "adopted" and not r.deleted and rid.lower().startswith(prefixes)
            for rid, r in run.state.resources.items()
        )

    def _container_ids(self, run: _Run, cls: type[Step]) -> list[str]:
        ids = cls(_Context(self, run, cls.name)).resource_ids()
        if ids:
            return list(ids)
        return [rid for rid, r in run.state.resources.items() if r.step == cls.name]

    def _rollback_run(self, run: _Run) -> None:
        """--rollback-on-failure: remove, in reverse, only what this run created. Best effort: the
        original error is what the operator sees; rollback failures are reported as events."""
        if not run.created:
            return
        involved = {step for step, _ in run.created}
        run.scope_to_run = True
        try:
            for cls in reversed(self.steps):
                if cls.name not in involved:
                    continue
                try:
                    self._rollback_step(run, cls, keep_error=True)
                except Interrupted:
                    raise
                except Exception:
                    continue  # _fail_step already recorded and reported it
                # Resources an earlier run created in this step are still there: the step is not
                # rolled back as a whole, it needs a deploy again.
                if any(
                    r.step == cls.name and r.origin == "created" and not r.deleted
                    for r in run.state.resources.values()
                ):
                    run.state.step(cls.name).status = "pending"
                    self._save(run)
        finally:
            run.scope_to_run = False

    # -- writes and waits ----------------------------------------------------------------------

    def _write(
        self,
        run: _Run,
        step: str,
        resource_id: str,
        operation: Operation,
        begin: Callable[[], Any],
        description: str,
    ) -> Any:
        if not run.writes_allowed:
            raise RuntimeError(f"step {step}: ctx.write({resource_id!r}) during {run.command}: checks only")
        if operation not in ("create", "update", "delete", "action"):
            raise ValueError(f"step {step}: unknown operation {operation!r}")
        if operation == "delete":
            self._refuse_unsafe_delete(run, resource_id)
        # A Ctrl-C already seen: stop before starting anything new in Azure.
        self._check_interrupt(run, f"before the {operation} of {resource_id}")
        if _CRASH_AT:
            _crash_point("before-intent", step, resource_id, operation)

        state = run.state
        recorded = state.step(step)
        # The intent reaches the disk before the request leaves: a kill after this line is resumable.
        recorded.intent = Intent(
            step=step, resource_id=resource_id, operation=operation, time=utcnow(), description=description
        )
        recorded.status = "applying"
        recorded.updated_at = utcnow()
        self._save(run)
        if _CRASH_AT:
            _crash_point("after-intent", step, resource_id, operation)
        run.writes += 1
        self._emit(WriteStarted(step, resource_id, operation, description))
        started = self._clock()

        def finish(outcome: str, code: str = "", message: str = "") -> None:
            recorded.intent = None
            recorded.add_result(
                WriteResult(
                    time=utcnow(),
                    operation=operation,
                    resource_id=resource_id,
                    outcome=outcome,
                    elapsed=round(self._clock() - started, 3),
                    code=code,
                    message=message,
                )
            )
            recorded.updated_at = utcnow()
            self._save(run)

        try:
            handle = begin()
            if _CRASH_AT and isinstance(handle, Poller):
                _crash_point("polling", step, resource_id, operation)
            if isinstance(handle, Poller):
                result = self._wait_poller(run, step, resource_id, operation, description, handle, started)
            else:
                result = handle
        except Interrupted:
            raise
        except Exception as exc:
            info = self._classify(exc)
            if operation == "delete" and info is not None and info.status == 404:
                state.record_deleted(resource_id)  # already gone counts as deleted
                finish("succeeded", info.code, "already gone")
                self._emit(WriteFinished(step, resource_id, operation, self._clock() - started))
                return None
            if operation == "create":
                # The create may have left a resource behind (a failed long operation): it is ours.
                self._record_created(run, step, resource_id)
            run.failed_resource = resource_id
            finish("failed", info.code if info else type(exc).__name__, info.message if info else str(exc))
            raise
        if _CRASH_AT:
            _crash_point("after-success", step, resource_id, operation)
        if operation == "create":
            self._record_created(run, step, resource_id)
        elif operation == "delete":
            state.record_deleted(resource_id)
        finish("succeeded")
        self._emit(WriteFinished(step, resource_id, operation, self._clock() - started))
        return result

    def _write_many(self, run: _Run, step: str, writes: Sequence[PlannedWrite]) -> list[Any]:
        """``write()`` for independent writes, in flight together.

        The state holds one intent per step, so the batch is recorded this way, in one save before any
        request leaves: the intent names a write of the batch still in flight (it moves on as writes
        finish), and every create of the batch is recorded as this deployment's resource, which is what
        the next run's reconcile makes of a create intent (check() found nothing under that ID, so
        whatever exists there after a kill is ours). Then each ``begin()`` in order, one wait for all the
        pollers, each result recorded as it lands; the crash hook fires at its four points per write.
        """
        writes = list(writes)
        if not run.writes_allowed:
            ids = ", ".join(repr(w.resource_id) for w in writes)
            raise RuntimeError(f"step {step}: ctx.write_many({ids}) during {run.command}: checks only")
        seen: set[str] = set()
        for w in writes:
            if w.operation not in ("create", "update", "delete", "action"):
                raise ValueError(f"step {step}: unknown operation {w.operation!r}")
            if w.resource_id.lower() in seen:
                raise ValueError(
                    f"step {step}: write_many: {w.resource_id} appears twice (the writes must be independent)"
                )
            seen.add(w.resource_id.lower())
        if not writes:
            return []
        for w in writes:
            if w.operation == "delete":
                self._refuse_unsafe_delete(run, w.resource_id)
        first = writes[0]
        where = (
            f"before the {first.operation} of {first.resource_id}"
            if len(writes) == 1
            else f"before the {len(writes)} writes of step {step}"
        )
        self._check_interrupt(run, where)
        if _CRASH_AT:
            for w in writes:
                _crash_point("before-intent", step, w.resource_id, w.operation)

        state = run.state
        recorded = state.step(step)
        now = utcnow()
        intents = [
            Intent(
                step=step,
                resource_id=w.resource_id,
                operation=w.operation,
                time=now,
                description=w.description,
            )
            for w in writes
        ]
        # Every intent reaches the disk (see the docstring) before the first request leaves.
        recorded.intent = intents[0]
        for w in writes:
            if w.operation == "create":
                state.record_created(w.resource_id, step)
        recorded.status = "applying"
        recorded.updated_at = utcnow()
        self._save(run)
        if _CRASH_AT:
            for w in writes:
                _crash_point("after-intent", step, w.resource_id, w.operation)
        run.writes += len(writes)

        batch_started = self._clock()
        started = [batch_started] * len(writes)
        results: list[Any] = [None] * len(writes)
        unfinished = set(range(len(writes)))  # no result recorded yet (not begun, or in flight)
        pollers: dict[int, Poller] = {}
        errors: list[BaseException] = []

        def finish(i: int, outcome: str, code: str = "", message: str = "") -> None:
            w = writes[i]
            unfinished.discard(i)
            if recorded.intent is not None and recorded.intent.resource_id == w.resource_id:
                # Keep the intent on a write still in flight, for the next run's message.
                recorded.intent = intents[min(unfinished)] if unfinished else None
            recorded.add_result(
                WriteResult(
                    time=utcnow(),
                    operation=w.operation,
                    resource_id=w.resource_id,
                    outcome=outcome,
                    elapsed=round(self._clock() - started[i], 3),
                    code=code,
                    message=message,
                )
            )
            recorded.updated_at = utcnow()
            self._save(run)

        def succeeded(i: int, result: Any) -> None:
            w = writes[i]
            if _CRASH_AT:
                _crash_point("after-success", step, w.resource_id, w.operation)
            if w.operation == "create":
                self._record_created(run, step, w.resource_id)
            elif w.operation == "delete":
                state.record_deleted(w.resource_id)
            results[i] = result
            finish(i, "succeeded")
            self._emit(WriteFinished(step, w.resource_id, w.operation, self._clock() - started[i]))

        def failed(i: int, exc: Exception) -> None:
            w = writes[i]
            info = self._classify(exc)
            if w.operation == "delete" and info is not None and info.status == 404:
                state.record_deleted(w.resource_id)  # already gone counts as deleted
                finish(i, "succeeded", info.code, "already gone")
                self._emit(WriteFinished(step, w.resource_id, w.operation, self._clock() - started[i]))
                return
            if w.operation == "create":
                # The create may have left a resource behind (a failed long operation): it is ours.
                self._record_created(run, step, w.resource_id)
            if not errors:
                run.failed_resource = w.resource_id
            errors.append(exc)
            finish(i, "failed", info.code if info else type(exc).__name__, info.message if info else str(exc))

        for i, w in enumerate(writes):
            self._emit(WriteStarted(step, w.resource_id, w.operation, w.description))
            started[i] = self._clock()
            try:
                handle = w.begin()
            except Interrupted:
                raise
            except Exception as exc:
                failed(i, exc)
                continue
            if isinstance(handle, Poller):
                if _CRASH_AT:
                    _crash_point("polling", step, w.resource_id, w.operation)
                pollers[i] = handle
            else:
                succeeded(i, handle)

        while pollers:
            for i in list(pollers):
                if not pollers[i].done():
                    continue
                poller = pollers.pop(i)
                try:
                    result = poller.result()
                except Interrupted:
                    raise
                except Exception as exc:
                    failed(i, exc)
                    continue
                succeeded(i, result)
            if not pollers:
                break
            waiting = [writes[i] for i in sorted(pollers)]
            if run.interrupt_requested:
                self._interrupt_batch(run, step, waiting, [started[i] for i in sorted(pollers)])
            if len(writes) == 1:
                label = first.description or f"waiting for the {first.operation} of {first.resource_id}"
                self._emit(Progress(step, label, first.resource_id, self._clock() - started[0]))
            else:
                done = len(writes) - len(pollers)
                what = waiting[0].description or f"the {waiting[0].operation} of {waiting[0].resource_id}"
                message = f"{done}/{len(writes)} done; waiting for {what}"
                if len(waiting) > 1:
                    message += f" and {len(waiting) - 1} more"
                self._emit(Progress(step, message, waiting[0].resource_id, self._clock() - batch_started))
            self._sleep(self.poll_interval)
        if errors:
            raise errors[0]
        return results

    def _interrupt_batch(
        self, run: _Run, step: str, waiting: Sequence[PlannedWrite], started: Sequence[float]
    ) -> None:
        """Ctrl-C with writes of a batch in flight: as ``_wait_poller`` does for one, for each of them
        (the intent stays, on one of them; the creates are already recorded as ours)."""
        recorded = run.state.step(step)
        for w, began in zip(waiting, started, strict=True):
            recorded.add_result(
                WriteResult(
                    time=utcnow(),
                    operation=w.operation,
                    resource_id=w.resource_id,
                    outcome="interrupted",
                    elapsed=round(self._clock() - began, 3),
                    message="Ctrl-C while in flight; the operation carries on in Azure",
                )
            )
            if w.operation == "create":
                self._record_created(run, step, w.resource_id)
        self._save(run)
        if len(waiting) == 1:
            what = f"the {waiting[0].operation} of {waiting[0].resource_id}"
            tail = "the Azure operation carries on and the next run picks it up"
        else:
            what = f"{len(waiting)} writes of step {step} ({waiting[0].resource_id}, ...)"
            tail = "the Azure operations carry on and the next run picks them up"
        raise self._interrupted(f"while waiting for {what}: {tail}")

    def _record_created(self, run: _Run, step: str, resource_id: str) -> None:
        run.state.record_created(resource_id, step)
        if not run.created_this_run(resource_id):
            run.created.append((step, resource_id))

    def _wait_poller(
        self,
        run: _Run,
        step: str,
        resource_id: str,
        operation: str,
        description: str,
        poller: Poller,
        started: float,
    ) -> Any:
        label = description or f"waiting for the {operation} of {resource_id}"
        while not poller.done():
            if run.interrupt_requested:
                recorded = run.state.step(step)
                # The intent stays: the operation is still in flight in Azure, the next run resumes it.
                recorded.add_result(
                    WriteResult(
                        time=utcnow(),
                        operation=operation,
                        resource_id=resource_id,
                        outcome="interrupted",
                        elapsed=round(self._clock() - started, 3),
                        message="Ctrl-C while in flight; the operation carries on in Azure",
                    )
                )
                if operation == "create":
                    self._record_created(run, step, resource_id)
                self._save(run)
                raise self._interrupted(
                    f"while waiting for the {operation} of {resource_id}: "
                    "the Azure operation carries on and the next run picks it up"
                )
            self._emit(Progress(step, label, resource_id, self._clock() - started))
            self._sleep(self.poll_interval)
        return poller.result()

    def _wait_for(
        self, run: _Run, step: str, resource_id: str, read_state: Callable[[], str], description: str
    ) -> str:
        started = self._clock()
        label = description or f"waiting for {resource_id} (a previous operation is still running)"
        while True:
            current = read_state()
            if current in TERMINAL_STATES:
                return current
            if run.interrupt_requested:
                raise self._interrupted(
                    f"while waiting for {resource_id} ({current}): "
                    "the Azure operation carries on and the next run picks it up"
                )
            self._emit(Progress(step, f"{label}: {current}", resource_id, self._clock() - started))
            self._sleep(self.state_poll_interval)

    def _refuse_unsafe_delete(self, run: _Run, resource_id: str) -> None:
        """The safety net under every step's rollback: only delete what this deployment created, and
        nothing that holds something it adopted."""
        state = run.state
        record = state.resource(resource_id)
        if record is None or record.origin != "created":
            origin = record.origin if record else "unknown to this deployment"
            raise RefusedDeleteError(
                f"refusing to delete {resource_id}: this deployment did not create it (origin: {origin})"
            )
        if run.scope_to_run and not run.created_this_run(resource_id):
            raise RefusedDeleteError(
                f"refusing to delete {resource_id}: rollback on failure removes only what this run created"
            )
        prefix = resource_id.lower().rstrip("/") + "/"
        for rid, r in state.resources.items():
            if r.origin == "adopted" and not r.deleted and rid.lower().startswith(prefix):
                raise RefusedDeleteError(
                    f"refusing to delete {resource_id}: it contains {rid}, which this deployment adopted"
                )

    # -- the run's frame: lock, state, Ctrl-C, events --------------------------------------------

    @contextmanager
    def _session(self, command: str) -> Iterator[_Run]:
        started = self._clock()
        holder = f"{command}: {shlex.join(sys.argv)}"
        with self.store.lock(holder):
            run = _Run(command, self.store.load(), started)
            previous = self._install_sigint(run)
            try:
                self._emit(RunStarted(self.deployment, command, self._step_titles()))
                if self._reconcile(run, announce=True):
                    self._save(run)
                try:
                    yield run
                except Exception:
                    self._emit(RunFinished(False, self._clock() - started, self._summary(run)))
                    raise
                self._emit(RunFinished(True, self._clock() - started, self._summary(run)))
            finally:
                self._restore_sigint(previous)

    def _reconcile(self, run: _Run, *, announce: bool) -> bool:
        """Leftover intents: a previous run died (or was interrupted) with a write in flight.

        A "create" intent means that run's check() found nothing there, so whatever exists now under
        that ID is ours: record it created (kill -9 between intent and result stays safe). For every
        intent, the step's check() will read what Azure actually did; the intent is closed here."""
        changed = False
        for name, recorded in run.state.steps.items():
            intent = recorded.intent
            if intent is None:
                continue
            if intent.operation == "create":
                run.state.record_created(intent.resource_id, name)
            message = (
                f"a previous run stopped while the {intent.operation} of {intent.resource_id} "
                f"(recorded {intent.time}) was in flight; resuming from what Azure reports"
            )
            recorded.add_result(
                WriteResult(
                    time=utcnow(),
                    operation=intent.operation,
                    resource_id=intent.resource_id,
                    outcome="resumed",
                    message=message,
                )
            )
            recorded.intent = None
            changed = True
            if announce:
                self._emit(Progress(name, message, intent.resource_id))
        return changed

    def _load_readonly(self) -> DeploymentState:
        state = self.store.load()
        self._reconcile(_Run("status", state, self._clock(), persist=False), announce=False)
        return state

    def _save(self, run: _Run) -> None:
        if not run.persist:
            return
        run.state.updated_at = utcnow()
        self.store.save(run.state)

    def _install_sigint(self, run: _Run) -> Any:
        # Signal handlers can only be installed from the main thread; elsewhere Ctrl-C stays Python's.
        if threading.current_thread() is not threading.main_thread():
            return _NO_HANDLER

        def on_sigint(signum: int, frame: Any) -> None:
            if run.interrupt_requested:
                raise KeyboardInterrupt  # the second Ctrl-C: stop now
            run.interrupt_requested = True  # the first: noticed at the next wait poll or step boundary

        try:
            return signal.signal(signal.SIGINT, on_sigint)
        except ValueError:
            return _NO_HANDLER

    def _restore_sigint(self, previous: Any) -> None:
        if previous is _NO_HANDLER:
            return
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)

    def _check_interrupt(self, run: _Run, where: str) -> None:
        if run.interrupt_requested:
            raise self._interrupted(f"{where}; no Azure operation of this run is in flight")

    def _interrupted(self, detail: str) -> Interrupted:
        text = f"interrupted {detail}; state recorded in {self.store.location}"
        if self.resume_command:
            text += f"; resume with: {self.resume_command}"
        return Interrupted(text)

    # -- errors and retries --------------------------------------------------------------------

    def _with_retry(self, run: _Run, step: str, fn: Callable[[], T], stats: RetryStats) -> T:
        def on_retry(attempt: int, info: ErrorInfo, delay: float) -> None:
            self._emit(RetryScheduled(step, info.code, info.message, attempt, round(delay, 3)))

        def sleep(seconds: float) -> None:
            # Sleep in slices so a Ctrl-C during a long backoff is noticed promptly.
            end = self._clock() + seconds
            while True:
                self._check_interrupt(run, f"while waiting to retry step {step}")
                left = end - self._clock()
                if left <= 0:
                    return
                self._sleep(min(left, max(self.poll_interval, 0.05)))

        return call_with_retry(
            fn,
            classify=self._classify,
            policy=self.policy,
            sleep=sleep,
            clock=self._clock,
            on_retry=on_retry,
            stats=stats,
        )

    def _classify(self, exc: BaseException) -> ErrorInfo | None:
        if isinstance(exc, LockdownError):
            return None
        try:
            return self.classify(exc)
        except Exception:
            return None  # a broken classifier must not hide the original error

    def _fail_step(
        self, run: _Run, name: str, exc: Exception, stats: RetryStats, step: Step | None
    ) -> BaseException:
        """Record the step as failed and return what to raise: AzureOperationError for a cloud error,
        the exception itself for a bug or one of our own errors."""
        info = self._classify(exc)
        resource_id = run.failed_resource
        if not resource_id and step is not None:
            try:
                ids = step.resource_ids()
                resource_id = ids[0] if ids else ""
            except Exception:
                resource_id = ""
        if info is not None:
            code, message = info.code, info.message
            if info.retryable:
                message += (
                    f" (still failing after {stats.attempts} attempts; retry deadline "
                    f"{self.policy.deadline:.0f}s)"
                )
        else:
            code = type(exc).__name__
            message = exc.one_line() if isinstance(exc, LockdownError) else str(exc)
        recorded = run.state.step(name)
        recorded.status = "failed"
        recorded.error = StepError(code=code, message=message, resource_id=resource_id, time=utcnow())
        recorded.updated_at = utcnow()
        self._save(run)
        self._emit(StepFailed(name, f"{code}: {message}"))
        if info is None:
            return exc
        return AzureOperationError(
            step=name, resource_id=resource_id, code=code, message=message, resume_command=self.resume_command
        )

    # -- small helpers -------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        self.sink(event)

    def _step_titles(self) -> tuple[tuple[str, str], ...]:
        return tuple((s.name, getattr(s, "title", s.name)) for s in self.steps)

    def _summary(self, run: _Run) -> dict[str, Any]:
        return {
            "command": run.command,
            "steps": {s.name: {"status": s.status, "changed": s.changed} for s in run.summaries},
        }

    def _result(self, run: _Run) -> RunResult:
        return RunResult(
            ok=True,
            command=run.command,
            deployment=self.deployment,
            elapsed=self._clock() - run.started,
            steps=tuple(run.summaries),
            outputs={name: json.loads(json.dumps(v)) for name, v in run.outputs.items()},
        )


def _jsonable(step: str, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs go into the state file: they must survive a JSON round trip unchanged in meaning."""
    try:
        return json.loads(json.dumps(dict(outputs), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"step {step}: outputs are not JSON-serialisable: {exc}") from exc


def _describe(exc: BaseException, info: ErrorInfo | None) -> str:
    if info is not None:
        return f"{info.code}: {info.message}"
    return f"{type(exc).__name__}: {exc}"

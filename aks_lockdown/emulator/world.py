"""The emulator's state: resources and operations, persisted to <data>/world.json.

Operations are records (start, duration, outcome), never timers: whether one is done is computed from
the wall clock, and `settle(now)` runs the completion of every operation whose end has passed before a
request is served. So a restart mid-operation loses nothing.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from aks_lockdown.emulator.framework import ArmError

TERMINAL = ("Succeeded", "Failed", "Canceled")


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


@dataclass
class Record:
    id: str
    type: str
    body: dict[str, Any]
    created: float
    etag: str = field(default_factory=new_etag)
    op_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    failed: bool = False  # the last operation on it failed: provisioningState Failed until the next write


@dataclass
class Operation:
    id: str
    resource_id: str
    kind: str
    start: float
    duration: float
    namespace: str = "Microsoft.Network"
    location: str = "westus"
    in_flight: str = "Updating"
    on_complete: str | None = None
    locks: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    # Outcome: None while running or until settled; fail_operation faults set it at start.
    error: dict[str, Any] | None = None
    forced_error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    settled: bool = False
    is_delete: bool = False
    subscription: str = ""

    @property
    def end(self) -> float:
        return self.start + self.duration

    def done(self, now: float) -> bool:
        return now >= self.end

    def status(self, now: float) -> str:
        if not self.settled and not self.done(now):
            return "InProgress"
        if self.error is not None:
            return "Canceled" if self.error.get("code") == "Canceled" else "Failed"
        return "Succeeded"


class Operations:
    def __init__(self, world: World):
        self._world = world
        self.items: dict[str, Operation] = {}
        # Unsettled operations only: settle() and busy() run on every request and must not walk
        # a day's worth of finished ones.
        self.pending: dict[str, Operation] = {}

    def start(
        self,
        *,
        resource_id: str,
        kind: str,
        duration: float,
        in_flight: str = "Updating",
        on_complete: str | None = None,
        namespace: str = "Microsoft.Network",
        location: str = "westus",
        locks: list[str] | None = None,
        data: dict[str, Any] | None = None,
        is_delete: bool = False,
        op_id: str | None = None,
    ) -> Operation:
        w = self._world
        op = Operation(
            id=op_id or str(uuid.uuid4()),
            resource_id=resource_id,
            kind=kind,
            start=w.clock(),
            duration=max(0.0, duration),
            namespace=namespace,
            location=(location or "westus").replace(" ", "").lower(),
            in_flight=in_flight,
            on_complete=on_complete,
            locks=[x.lower() for x in (locks if locks is not None else [resource_id])],
            data=dict(data or {}),
            is_delete=is_delete,
            subscription=resource_id.split("/")[2] if resource_id.startswith("/subscriptions/") else "",
        )
        # A fault may have decided that the next matching operation fails.
        forced = w.take_forced_failure(op)
        if forced is not None:
            op.forced_error = forced
        self.items[op.id] = op
        self.pending[op.id] = op
        rec = w.get(resource_id)
        if rec is not None:
            rec.op_id = op.id
            rec.failed = False
        w.touch()
        return op

    def get(self, op_id: str) -> Operation | None:
        return self.items.get(op_id) or self.items.get(op_id.lower())

    def busy(self, resource_id: str, now: float | None = None) -> Operation | None:
        now = self._world.clock() if now is None else now
        key = resource_id.lower()
        for op in self.pending.values():
            if not op.settled and not op.done(now) and key in op.locks:
                return op
        return None


class World:
    def __init__(self, path: Path, clock: Callable[[], float], *, fsync: bool = True):
        self.path = path
        # fsync protects against a host crash; rename alone already survives a killed process.
        self.fsync = fsync
        self.clock = clock
        self.lock = threading.RLock()
        self.resources: dict[str, Record] = {}
        self.ops = Operations(self)
        self.meta: dict[str, Any] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.dirty = False
        # Wired by the server: type -> renderer, completion name -> callback, fault hook.
        self.renderers: dict[str, Callable[[World, Record], dict[str, Any]]] = {}
        self.completions: dict[str, Callable[[World, Operation], None]] = {}
        self.take_forced_failure: Callable[[Operation], dict[str, Any] | None] = lambda op: None
        self.change_listeners: list[Callable[[World], None]] = []

    # ---- resources -------------------------------------------------------------------------
    def get(self, rid: str) -> Record | None:
        return self.resources.get(rid.lower())

    def upsert(
        self, rid: str, type_: str, body: dict[str, Any], extra: dict[str, Any] | None = None
    ) -> Record:
        key = rid.lower()
        old = self.resources.get(key)
        if old is None:
            rec = Record(id=rid, type=type_, body=body, created=self.clock(), extra=dict(extra or {}))
            self.resources[key] = rec
        else:
            rec = old
            rec.body = body
            rec.etag = new_etag()
            if extra is not None:
                rec.extra = dict(extra)
        self.touch()
        return rec

    def remove(self, rid: str) -> None:
        key = rid.lower()
        prefix = key + "/"
        for k in [k for k in self.resources if k == key or k.startswith(prefix)]:
            del self.resources[k]
        self.touch()

    def children(self, parent_id: str, child_type: str | None = None) -> list[Record]:
        """Direct children of a resource (one type/name pair deeper), creation order."""
        prefix = parent_id.lower() + "/"
        depth = parent_id.count("/") + 2
        out = []
        for k, rec in self.resources.items():
            if (
                k.startswith(prefix)
                and rec.id.count("/") == depth
                and (child_type is None or rec.type.lower().endswith("/" + child_type.lower()))
            ):
                out.append(rec)
        return sorted(out, key=lambda r: r.created)

    def list(self, type_: str, under: str | None = None) -> list[Record]:
        t = type_.lower()
        prefix = (under.lower().rstrip("/") + "/") if under else ""
        return sorted(
            (r for k, r in self.resources.items() if r.type.lower() == t and k.startswith(prefix)),
            key=lambda r: r.created,
        )

    def provisioning_state(self, rec: Record, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        op = self.ops.get(rec.op_id) if rec.op_id else None
        if op is not None and op.status(now) == "InProgress":
            return "Deleting" if op.is_delete else op.in_flight
        return "Failed" if rec.failed else "Succeeded"

    def view(self, rid: str) -> dict[str, Any] | None:
        rec = self.get(rid)
        if rec is None:
            return None
        return self.render(rec)

    def render(self, rec: Record) -> dict[str, Any]:
        fn = self.renderers.get(rec.type.lower())
        if fn is not None:
            return fn(self, rec)
        return default_render(self, rec)

    # ---- settle ------------------------------------------------------------------------------
    def settle(self, now: float | None = None) -> None:
        """Complete, in end-time order, every operation whose end has passed."""
        now = self.clock() if now is None else now
        pending = self.ops.pending
        for op_id in [k for k, op in pending.items() if op.settled]:
            del pending[op_id]  # settled elsewhere (e.g. canceled by a resource group delete)
        due = sorted((op for op in pending.values() if op.done(now)), key=lambda o: o.end)
        for op in due:
            pending.pop(op.id, None)
            if not op.settled:
                self._complete(op)

    def _complete(self, op: Operation) -> None:
        op.settled = True
        self.touch()
        if op.forced_error is not None:
            op.error = op.forced_error
        else:
            try:
                if op.on_complete:
                    fn = self.completions.get(op.on_complete)
                    if fn is None:
                        raise ArmError(500, "InternalServerError", f"no completion named {op.on_complete}")
                    fn(self, op)
                elif op.is_delete:
                    self.remove(op.resource_id)
            except ArmError as exc:
                op.error = exc.as_error()
        # The resource and those shown Updating with it (a firewall while its policy's group is written)
        # end Failed when the operation fails, as a firewall does after a failed policy update.
        for rid in [op.resource_id, *op.data.get("also_updating", [])]:
            rec = self.get(rid)
            if rec is not None and rec.op_id == op.id:
                rec.failed = op.error is not None
                if not rec.failed:
                    rec.etag = new_etag()

    # ---- persistence -------------------------------------------------------------------------
    def touch(self) -> None:
        self.dirty = True

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "subscriptions": self.subscriptions,
            "meta": self.meta,
            "resources": [asdict(r) for r in self.resources.values()],
            "operations": [asdict(o) for o in self.ops.items.values()],
        }

    def load(self) -> None:
        if not self.path.exists():
            return
        raw = json.loads(self.path.read_text())
        self.subscriptions = raw.get("subscriptions", {})
        self.meta = raw.get("meta", {})
        # Unknown keys (a newer emulator's file) are dropped rather than failing the start.
        rkeys = {f.name for f in fields(Record)}
        okeys = {f.name for f in fields(Operation)}
        self.resources = {
            r["id"].lower(): Record(**{k: v for k, v in r.items() if k in rkeys})
            for r in raw.get("resources", [])
        }
        self.ops.items = {
            o["id"]: Operation(**{k: v for k, v in o.items() if k in okeys})
            for o in raw.get("operations", [])
        }
        self.ops.pending = {k: o for k, o in self.ops.items.items() if not o.settled}

    def persist(self) -> None:
        """Atomic write: temp file, fsync, rename, fsync the directory."""
        if not self.dirty:
            return
        self.dirty = False
        data = json.dumps(self.to_json(), separators=(",", ":")).encode()
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        if self.fsync:
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        for fn in self.change_listeners:
            fn(self)

    def prune_operations(self, keep_seconds: float = 86400.0) -> None:
        now = self.clock()
        for k in [k for k, o in self.ops.items.items() if o.settled and now - o.end > keep_seconds]:
            del self.ops.items[k]


def default_render(world: World, rec: Record) -> dict[str, Any]:
    """The stored body plus id/name/type/etag and the live provisioningState under properties."""
    body = copy.deepcopy(rec.body)
    out: dict[str, Any] = {"id": rec.id, "name": rec.id.rsplit("/", 1)[-1], "type": rec.type}
    out.update(body)
    out.setdefault("etag", rec.etag)
    if rec.extra.get("no_etag"):
        out.pop("etag", None)
    props = out.setdefault("properties", {})
    props["provisioningState"] = world.provisioning_state(rec)
    return out

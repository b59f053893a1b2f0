"""The deployment state: what each step did, what is in flight, and which resources are ours.

One JSON file per deployment (``<dir>/<name>.json``), written atomically with the previous version kept
beside it (``<name>.json.prev``), and an exclusive OS-level lock on a separate file (``<name>.lock``)
held for the whole of a run. A blob backend can come later behind the same ``StateBackend`` protocol.

The state never holds secrets: ``save()`` refuses a document with a non-empty value under a key named
like a secret (password, token, ...).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import socket
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aks_lockdown.errors import LockHeldError, StateError

SCHEMA = 1
TOOL = "aks-lockdown"
HISTORY_LIMIT = 20

StepStatus = Literal["pending", "applying", "done", "failed", "rolled_back"]
Origin = Literal["created", "adopted"]

# A deployment name becomes a file name: keep it to something every filesystem and blob store accepts.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
# Keys whose values must never be persisted. Identifiers of secrets (``secret_name``, ``token_id``) are
# fine: they name a secret without holding it.
_SECRET_KEY = re.compile(r"secret|passw(or)?d|token|private_?key|connection_?string|api_?key", re.I)
_SECRET_KEY_OK = re.compile(r"(_|-)?(id|ids|name|names|uri|url)$", re.I)


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fingerprint(desired: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a step's desired state: a changed config changes it."""
    try:
        text = json.dumps(desired, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"desired state is not JSON-serialisable: {exc}") from exc
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def kind_from_id(resource_id: str) -> str:
    """The resource type spelled in an ARM-style ID ("Microsoft.Network/virtualNetworks/subnets").

    Plain string parsing, so the engine stays free of Azure imports; "" for IDs of another shape.
    """
    parts = [p for p in resource_id.split("/") if p]
    lower = [p.lower() for p in parts]
    if "providers" in lower:
        i = len(lower) - 1 - lower[::-1].index("providers")
        rest = parts[i + 1 :]
        if len(rest) >= 3:
            namespace, pairs = rest[0], rest[1:]
            types = pairs[0::2]
            return namespace + "/" + "/".join(types)
        return ""
    if len(lower) == 4 and lower[0] == "subscriptions" and lower[2] == "resourcegroups":
        return "Microsoft.Resources/resourceGroups"
    if len(lower) == 2 and lower[0] == "subscriptions":
        return "Microsoft.Resources/subscriptions"
    return ""


class _Model(BaseModel):
    # Unknown keys mean another tool or a future schema wrote the file: refuse rather than guess.
    model_config = ConfigDict(extra="forbid")


class Intent(_Model):
    """A write about to be sent (recorded before the request, cleared with its result)."""

    step: str
    resource_id: str
    operation: Literal["create", "update", "delete", "action"]
    time: str
    description: str = ""


class WriteResult(_Model):
    time: str
    operation: str
    resource_id: str
    # succeeded | failed | interrupted (Ctrl-C while in flight) | abandoned (the process died in flight)
    outcome: str
    elapsed: float = 0.0
    code: str = ""
    message: str = ""


class StepError(_Model):
    code: str
    message: str
    resource_id: str = ""
    time: str


class StepState(_Model):
    status: StepStatus = "pending"
    fingerprint: str = ""
    intent: Intent | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: StepError | None = None
    history: list[WriteResult] = Field(default_factory=list)
    updated_at: str = ""

    def add_result(self, result: WriteResult) -> None:
        self.history.append(result)
        del self.history[:-HISTORY_LIMIT]


class ResourceRecord(_Model):
    origin: Origin
    step: str
    kind: str = ""
    created_at: str
    deleted: bool = False
    deleted_at: str | None = None


class DeploymentState(_Model):
    schema_: int = Field(default=SCHEMA, alias="schema")
    tool: str = TOOL
    deployment: str
    created_at: str = Field(default_factory=utcnow)
    updated_at: str = ""
    steps: dict[str, StepState] = Field(default_factory=dict)
    resources: dict[str, ResourceRecord] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def step(self, name: str) -> StepState:
        """The named step's record, created pending on first use."""
        return self.steps.setdefault(name, StepState())

    def resource(self, resource_id: str) -> ResourceRecord | None:
        # ARM IDs are case-insensitive and Azure does not always echo the casing it was sent.
        found = self.resources.get(resource_id)
        if found is not None:
            return found
        key = resource_id.lower()
        for rid, record in self.resources.items():
            if rid.lower() == key:
                return record
        return None

    def resource_key(self, resource_id: str) -> str:
        key = resource_id.lower()
        return next((rid for rid in self.resources if rid.lower() == key), resource_id)

    def record_created(self, resource_id: str, step: str) -> None:
        """Ours, unless it was adopted first: never upgrade something we found into something we may
        delete."""
        existing = self.resource(resource_id)
        if existing is not None and existing.origin == "adopted":
            return
        if existing is not None:
            existing.deleted = False
            existing.deleted_at = None
            return
        self.resources[resource_id] = ResourceRecord(
            origin="created", step=step, kind=kind_from_id(resource_id), created_at=utcnow()
        )

    def record_adopted(self, resource_id: str, step: str) -> None:
        if self.resource(resource_id) is not None:
            return  # already ours (created) or already adopted: keep what we knew first
        self.resources[resource_id] = ResourceRecord(
            origin="adopted", step=step, kind=kind_from_id(resource_id), created_at=utcnow()
        )

    def record_deleted(self, resource_id: str) -> None:
        record = self.resource(resource_id)
        if record is not None and not record.deleted:
            record.deleted = True
            record.deleted_at = utcnow()

    def created_by_deployment(self, resource_id: str) -> bool:
        record = self.resource(resource_id)
        return record is not None and record.origin == "created"

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"


def find_secrets(doc: Any, path: str = "") -> list[str]:
    """Dotted paths of non-empty values stored under secret-looking keys."""
    found: list[str] = []
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            here = f"{path}.{key}" if path else str(key)
            if path == "resources":
                # Keys here are resource IDs (".../secrets/x" names a secret, it does not hold one).
                found += find_secrets(value, here)
                continue
            k = str(key)
            if _SECRET_KEY.search(k) and not _SECRET_KEY_OK.search(k) and value not in (None, "", {}, []):
                found.append(here)
            else:
                found += find_secrets(value, here)
    elif isinstance(doc, list | tuple):
        for i, value in enumerate(doc):
            found += find_secrets(value, f"{path}[{i}]")
    return found


@dataclass(frozen=True)
class LockInfo:
    """Who holds a deployment's lock (written into the lock file)."""

    pid: int
    host: str
    started_at: str
    command: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.started_at} (command: {self.command or '?'})"


@runtime_checkable
class StateBackend(Protocol):
    """Where a deployment's state lives. Local files now; a blob backend (lease-based lock) later."""

    deployment: str

    @property
    def location(self) -> str:
        """Where the state is, for messages: a path or a URL."""
        ...

    def exists(self) -> bool: ...

    def load(self) -> DeploymentState:
        """The saved state, or a fresh one when none exists. Raises StateError on a bad file."""
        ...

    def save(self, state: DeploymentState) -> None:
        """Persist atomically, keeping the previous version. Refuses secrets (StateError)."""
        ...

    def lock(self, command: str = "") -> AbstractContextManager[LockInfo]:
        """Take the exclusive lock for a run, at once or LockHeldError naming the holder."""
        ...

    def holder(self) -> LockInfo | None:
        """The current holder, if the lock is held."""
        ...

    def unlock(self, force: bool = False) -> LockInfo | None:
        """Clear a stale lock; with force, break one a live process still holds. Returns the old
        holder."""
        ...

    def list_deployments(self) -> list[str]: ...


def validate_name(deployment: str) -> str:
    if not _NAME.match(deployment):
        raise StateError(
            f"deployment name {deployment!r} is not valid: use letters, digits, '.', '_' or '-' "
            "(at most 80, starting with a letter or digit)"
        )
    return deployment


def list_deployments(directory: Path) -> list[str]:
    """Deployment names that have a state file in ``directory``."""
    if not directory.is_dir():
        return []
    return sorted(
        p.name[: -len(".json")]
        for p in directory.iterdir()
        if p.is_file() and p.name.endswith(".json") and _NAME.match(p.name[: -len(".json")])
    )


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some filesystems refuse fsync on a directory, which is fine.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, keep_previous: Path | None = None) -> None:
    """Write ``data`` to ``path`` so a crash at any instant leaves either the old or the new file.

    Temp file in the same directory (same filesystem, so the rename is atomic), write, flush, fsync,
    keep the old version as ``keep_previous``, rename over, fsync the directory.
    """
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous is not None and path.exists():
            _keep_previous(path, keep_previous)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(directory)


def _keep_previous(path: Path, prev: Path) -> None:
    # A hard link then a rename: the current file is never missing, and .prev is always whole.
    link = prev.with_name(prev.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    try:
        os.link(path, link)
    except OSError:
        link.write_bytes(path.read_bytes())
    os.replace(link, prev)


class LocalStateStore:
    """State files and locks in a local directory.

    ``<dir>/<name>.json`` (the state), ``<name>.json.prev`` (the version before the last save) and
    ``<name>.lock`` (flock'd for the whole run; holds the holder's pid, host, start time, command).
    """

    def __init__(self, directory: Path | str, deployment: str) -> None:
        self.directory = Path(directory)
        self.deployment = validate_name(deployment)
        self.path = self.directory / f"{deployment}.json"
        self.prev_path = self.directory / f"{deployment}.json.prev"
        self.lock_path = self.directory / f"{deployment}.lock"
        self._lock_fd: int | None = None

    @property
    def location(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def list_deployments(self) -> list[str]:
        return list_deployments(self.directory)

    # -- load / save ---------------------------------------------------------------------------

    def load(self) -> DeploymentState:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return DeploymentState(deployment=self.deployment)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read the state file: {exc.strerror}") from exc
        return parse_state(raw, source=str(self.path), deployment=self.deployment, prev=self.prev_path)

    def save(self, state: DeploymentState) -> None:
        if state.deployment != self.deployment:
            raise StateError(
                f"{self.path}: refusing to save the state of deployment {state.deployment!r} here"
            )
        doc = state.to_json()
        secrets = find_secrets(doc)
        if secrets:
            raise StateError(
                f"{self.path}: refusing to save: {', '.join(secrets)} looks like a secret "
                "(secrets never enter the state)"
            )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()
        atomic_write(self.path, data, keep_previous=self.prev_path)

    # -- lock ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, command: str = "") -> Iterator[LockInfo]:
        info = self.acquire(command)
        try:
            yield info
        finally:
            self.release()

    def acquire(self, command: str = "") -> LockInfo:
        """Take the lock now or raise LockHeldError. Prefer ``with store.lock(...)``."""
        if self._lock_fd is not None:
            raise LockHeldError(f"{self.lock_path}: this process already holds the lock")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # O_CREAT without O_TRUNC: a run that fails to get the lock must not erase the holder's info.
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = self._read_holder()
            who = holder.describe() if holder else "another process (holder unknown)"
            raise LockHeldError(
                f"deployment {self.deployment!r} is locked by {who}; wait for that run to finish "
                f"(lock file {self.lock_path}; if that process is hung: state unlock --force)"
            ) from None
        info = LockInfo(pid=os.getpid(), host=socket.gethostname(), started_at=utcnow(), command=command)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(asdict(info)) + "\n").encode(), 0)
        os.fsync(fd)
        self._lock_fd = fd
        return info

    def release(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        try:
            # Clear the holder info before unlocking; the file itself stays (unlinking a flock'd file
            # races with a process that has just opened it).
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _read_holder(self) -> LockInfo | None:
        try:
            text = self.lock_path.read_text()
            data = json.loads(text)
            return LockInfo(
                pid=int(data["pid"]),
                host=str(data["host"]),
                started_at=str(data["started_at"]),
                command=str(data.get("command", "")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def holder(self) -> LockInfo | None:
        if not self.lock_path.exists():
            return None
        fd = os.open(self.lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return self._read_holder() or LockInfo(pid=0, host="?", started_at="?", command="?")
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def unlock(self, force: bool = False) -> LockInfo | None:
        """A flock dies with its process, so a lock is only ever "stale" when its holder is alive but
        stuck (or the file sits on a filesystem without working flock). Without ``force`` a held lock is
        refused; with it, the lock file is removed so the next run locks a fresh file: the operator
        asserts the old holder will not write again."""
        holder = self.holder()
        if holder is None:
            with contextlib.suppress(FileNotFoundError):
                self.lock_path.write_text("")  # drop leftover holder info, if any
            return None
        if not force:
            raise LockHeldError(
                f"deployment {self.deployment!r} is locked by {holder.describe()}; "
                "use --force only if that process is hung"
            )
        with contextlib.suppress(FileNotFoundError):
            self.lock_path.unlink()
        _fsync_dir(self.directory)
        return holder


def parse_state(raw: bytes, *, source: str, deployment: str, prev: Path | None = None) -> DeploymentState:
    """Validate a state document; any problem is one StateError line naming the file and the fault."""
    hint = f" (the previous version is kept at {prev})" if prev is not None and prev.exists() else ""
    if not raw.strip():
        raise StateError(f"{source}: the state file is empty (truncated?){hint}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise StateError(f"{source}: the state file is not UTF-8 text (corrupt){hint}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(
            f"{source}: the state file is not valid JSON (corrupt or truncated at line {exc.lineno} "
            f"column {exc.colno}: {exc.msg}){hint}"
        ) from None
    if not isinstance(data, dict) or data.get("tool") != TOOL:
        raise StateError(f'{source}: not an aks-lockdown state file (no "tool": "{TOOL}")')
    schema = data.get("schema")
    if schema != SCHEMA:
        raise StateError(
            f"{source}: unknown state schema version {schema!r} (this aks-lockdown reads {SCHEMA}); "
            "use the aks-lockdown version that wrote it"
        )
    if data.get("deployment") != deployment:
        raise StateError(
            f"{source}: this state belongs to deployment {data.get('deployment')!r}, not {deployment!r}"
        )
    try:
        return DeploymentState.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise StateError(f"{source}: malformed state at {where}: {first['msg']}{more}{hint}") from None

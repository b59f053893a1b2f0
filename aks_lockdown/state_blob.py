"""Deployment state on Azure Blob Storage, locked by a finite, heartbeat-renewed blob lease.

For teams and CI runners that operate the same deployment from several machines. It implements the
engine's ``StateBackend`` protocol (``aks_lockdown.engine.state``), like ``LocalStateStore``.

One blob holds one deployment's state, the same JSON document the local backend writes. The lock is
a lease *on that same blob*, so Azure itself refuses any write that does not carry the current lease
ID: a run that lost its lease cannot overwrite another's state even if its own bookkeeping is wrong.
Every write is also conditional on the ETag the run last saw, and first snapshots the version it
replaces.

Why a finite lease: Terraform's azurerm backend takes an infinite lease, so a crashed run leaves a lock
a person must break by hand (azurerm #19043, terraform #17046). Here the lease lasts 15-60 s (default
30) and a daemon thread renews it; a SIGKILLed run's lock frees itself within one lease duration.

Blob layout for deployment ``D`` (blob name default ``D.json``, as the local file):

* the blob: the current state. Its metadata carries the deployment name and, while a run holds the
  lease, the holder (pid, host, start time, command), so a refused run can name it.
* its snapshots: previous versions, the newest ``keep_versions`` kept (one is taken before every write).
* a zero-byte placeholder (metadata ``akslockdown_placeholder``) when a deployment is locked before
  its first save, because a lease needs an existing blob. ``exists()`` and ``load()`` treat it as
  absent; ``list_deployments()`` skips it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aks_lockdown.engine.state import (
    TOOL,
    DeploymentState,
    LockInfo,
    find_secrets,
    parse_state,
    utcnow,
    validate_name,
)
from aks_lockdown.errors import ConfigError, LockHeldError, StateError

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, BlobLeaseClient, ContainerClient

    from aks_lockdown.config import Config

MIN_LEASE_SECONDS = 15  # Azure's own bounds for a finite lease
MAX_LEASE_SECONDS = 60
DEFAULT_LEASE_SECONDS = 30

# Metadata names must be C# identifiers; values must be ASCII (they travel as HTTP headers).
_META_DEPLOYMENT = "akslockdown_deployment"
_META_PLACEHOLDER = "akslockdown_placeholder"
_META_MIGRATED_TO = "akslockdown_migrated_to"
_META_PID = "akslockdown_lock_pid"
_META_HOST = "akslockdown_lock_host"
_META_STARTED = "akslockdown_lock_started"
_META_COMMAND = "akslockdown_lock_command"
_META_RUN = "akslockdown_lock_run"
_HOLDER_KEYS = (_META_PID, _META_HOST, _META_STARTED, _META_COMMAND, _META_RUN)

# Storage error codes that mean "the lease is not ours any more".
_LEASE_LOST_CODES = frozenset(
    {
        "LeaseIdMismatchWithLeaseOperation",
        "LeaseIdMismatchWithBlobOperation",
        "LeaseIsBrokenAndCannotBeRenewed",
        "LeaseNotPresentWithLeaseOperation",
        "LeaseNotPresentWithBlobOperation",
        "LeaseLost",
        "LeaseIdMissing",
    }
)


@dataclass(frozen=True)
class BlobStateOptions:
    """Knobs; the defaults suit real Azure, tests shrink the timings."""

    lease_seconds: int = DEFAULT_LEASE_SECONDS
    # Renew well inside the lease so two missed beats still leave time; default lease/3.
    heartbeat_seconds: float | None = None
    keep_versions: int = 10  # snapshots kept; older ones are deleted after each write
    # Transport: a dead endpoint must fail a run in seconds, not after the SDK's default backoff.
    retry_total: int = 3
    retry_backoff_seconds: float = 2.0
    connection_timeout: float = 10.0
    read_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not MIN_LEASE_SECONDS <= self.lease_seconds <= MAX_LEASE_SECONDS:
            raise ValueError(
                f"lease_seconds must be between {MIN_LEASE_SECONDS} and {MAX_LEASE_SECONDS}, "
                f"got {self.lease_seconds}"
            )
        if self.heartbeat_seconds is not None and not 0 < self.heartbeat_seconds < self.lease_seconds:
            raise ValueError("heartbeat_seconds must be positive and shorter than lease_seconds")
        if self.keep_versions < 1:
            raise ValueError("keep_versions must be at least 1")

    @property
    def heartbeat(self) -> float:
        return self.heartbeat_seconds if self.heartbeat_seconds is not None else self.lease_seconds / 3


def default_blob_name(deployment: str) -> str:
    return f"{deployment}.json"


def holder_metadata(info: LockInfo, run_id: str) -> dict[str, str]:
    """The holder as blob metadata. Percent-encoded: values are HTTP header values (ASCII, no
    newlines). The command is capped so the 8 KiB metadata limit is never why a lock fails."""
    return {
        _META_PID: str(info.pid),
        _META_HOST: _quote(info.host),
        _META_STARTED: _quote(info.started_at),
        _META_COMMAND: _quote(info.command[:1024]),
        _META_RUN: _quote(run_id),
    }


def holder_from_metadata(metadata: Mapping[str, str] | None) -> LockInfo | None:
    meta = _lower(metadata)
    if _META_PID not in meta:
        return None
    try:
        pid = int(meta[_META_PID])
    except ValueError:
        pid = 0
    return LockInfo(
        pid=pid,
        host=_unquote(meta.get(_META_HOST, "?")),
        started_at=_unquote(meta.get(_META_STARTED, "?")),
        command=_unquote(meta.get(_META_COMMAND, "")),
    )


class _Lease:
    """A held lease plus the daemon thread that renews it.

    The lease client has its own BlobClient (own connection pool), so a renewal never queues behind a
    long upload; ``_renew_lock`` serialises the heartbeat's renewals with the main thread's checks.
    """

    def __init__(self, client: BlobLeaseClient, options: BlobStateOptions) -> None:
        self.client = client
        self.id: str = client.id
        self._options = options
        self._stop = threading.Event()
        self._renew_lock = threading.Lock()
        self.lost_reason: str | None = None
        self.last_renewed = time.monotonic()
        self.renewals = 0
        self._thread = threading.Thread(target=self._beat, name="aks-lockdown-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=self._options.heartbeat + self._options.read_timeout)

    def mark_lost(self, reason: str) -> None:
        if self.lost_reason is None:
            self.lost_reason = reason

    def renew(self) -> None:
        """Renew now. A definite refusal marks the lease lost; a transport error is raised."""
        from azure.core.exceptions import HttpResponseError

        with self._renew_lock:
            if self.lost_reason is not None:
                return
            try:
                self.client.renew()
            except HttpResponseError as exc:
                code = _error_code(exc)
                if code in _LEASE_LOST_CODES or exc.status_code in (409, 412):
                    self.mark_lost(f"lease renewal refused: {code or exc.status_code}")
                    return
                raise
            self.last_renewed = time.monotonic()
            self.renewals += 1

    def _beat(self) -> None:
        while not self._stop.wait(self._options.heartbeat):
            if self.lost_reason is not None:
                return
            try:
                self.renew()
            except Exception as exc:
                # A network blip: keep trying until the lease would have expired. Past that point
                # another run may legitimately hold it, so this run must stop writing.
                if time.monotonic() - self.last_renewed >= self._options.lease_seconds:
                    self.mark_lost(f"lease not renewed for {self._options.lease_seconds} s: {_short(exc)}")
                    return


class BlobStateStore:
    """One deployment's state in one blob, with a lease-based lock (a ``StateBackend``).

    ``credential`` is the tool's usual one (``ClientFactory.credential``); for Azurite an
    ``AzureNamedKeyCredential`` works. ``client_kwargs`` go to the storage client (``transport``,
    ``connection_verify``, ``audience`` ...). Not thread-safe: one store per run.
    """

    backend = "blob"

    def __init__(
        self,
        account_url: str,
        container: str,
        blob_name: str | None,
        deployment: str,
        credential: Any,
        *,
        options: BlobStateOptions | None = None,
        **client_kwargs: Any,
    ) -> None:
        self.deployment = validate_name(deployment)
        self.account_url = account_url.rstrip("/")
        self.container = container
        self.blob_name = blob_name or default_blob_name(deployment)
        self.options = options or BlobStateOptions()
        self._credential = credential
        self._client_kwargs = client_kwargs
        self._etag: str | None = None  # the version this run last read or wrote
        self._lease: _Lease | None = None
        self._info: LockInfo | None = None
        self._run_id = ""
        # MD5 of a write whose outcome is unknown (its response was lost).
        self._pending: bytes | None = None
        # MD5 of the content this store last read or wrote (b"" for none). A run that reads before
        # it locks would otherwise overwrite a change made in between: taking the lock refreshes
        # the ETag (the holder is written into the metadata), so the ETag alone cannot catch it.
        self._seen_md5: bytes | None = None
        self._stale = False
        self._container_client: ContainerClient | None = None

    @classmethod
    def from_config(
        cls, config: Config, credential: Any, *, options: BlobStateOptions | None = None, **kw: Any
    ) -> BlobStateStore:
        section = config.state
        if not section.account_url:
            raise ConfigError("config", "state.account_url", "required for the blob state backend")
        if not section.container:
            raise ConfigError("config", "state.container", "required for the blob state backend")
        return cls(
            section.account_url,
            section.container,
            section.blob_name,
            config.deployment.name,
            credential,
            options=options,
            **kw,
        )

    # ---- description, errors -------------------------------------------------------------

    @property
    def location(self) -> str:
        """Where the state lives, for messages. Query string dropped: it could be a SAS token."""
        url = urllib.parse.urlsplit(self.account_url)
        return f"{url.scheme}://{url.netloc}{url.path.rstrip('/')}/{self.container}/{self.blob_name}"

    def __repr__(self) -> str:
        return f"BlobStateStore({self.location}, deployment={self.deployment!r})"

    def _fail(self, action: str, exc: BaseException) -> StateError:
        return StateError(f"blob state {self.location}: {action}: {_short(exc)}")

    def _lost(self, reason: str) -> StateError:
        return StateError(
            f"blob state {self.location}: this run lost its lock ({reason}); nothing was written, "
            "the stored state is untouched; another run may hold the lock now"
        )

    # ---- clients ---------------------------------------------------------------------------

    def _container(self) -> ContainerClient:
        if self._container_client is None:
            self._container_client = self._make_container_client()
        return self._container_client

    def _make_container_client(self) -> ContainerClient:
        from azure.storage.blob import ContainerClient, LinearRetry

        # Linear and short: state calls are small and a storage account answers fast or not at all;
        # the SDK's default (exponential from 15 s, jitter 3 s) would stall a run for a minute.
        backoff = self.options.retry_backoff_seconds
        retry = LinearRetry(
            backoff=backoff, retry_total=self.options.retry_total, random_jitter_range=backoff / 2
        )
        kwargs: dict[str, Any] = {
            "retry_policy": retry,
            "connection_timeout": self.options.connection_timeout,
            "read_timeout": self.options.read_timeout,
        }
        kwargs.update(self._client_kwargs)
        return ContainerClient(self.account_url, self.container, credential=self._credential, **kwargs)

    def _blob(self, snapshot: str | None = None) -> BlobClient:
        return self._container().get_blob_client(self.blob_name, snapshot=snapshot)

    # ---- reading ---------------------------------------------------------------------------

    def _properties(self) -> Any | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            return self._blob().get_blob_properties()
        except ResourceNotFoundError as exc:
            if _error_code(exc) == "ContainerNotFound":
                raise self._fail(f"container {self.container!r} not found", exc) from None
            return None
        except AzureError as exc:
            raise self._fail("cannot read", exc) from None

    def exists(self) -> bool:
        props = self._properties()
        return props is not None and not _is_placeholder(props)

    def load_bytes(self) -> tuple[bytes, dict[str, str]] | None:
        """The stored document and its metadata; None when there is none (or only a placeholder)."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        self._resolve_pending()
        try:
            downloader = self._blob().download_blob()
            data = downloader.readall()
        except ResourceNotFoundError as exc:
            if _error_code(exc) == "ContainerNotFound":
                raise self._fail(f"container {self.container!r} not found", exc) from None
            self._etag = None
            self._seen(b"")
            return None
        except AzureError as exc:
            raise self._fail("cannot read", exc) from None
        props = downloader.properties
        # Remember the version read: the next write is accepted only on top of exactly this one.
        self._etag = props.etag
        self._seen(hashlib.md5(data).digest() if data else b"")
        if _is_placeholder(props):
            return None
        expected = props.content_settings.content_md5
        if expected and hashlib.md5(data).digest() != bytes(expected):
            raise StateError(f"blob state {self.location}: the content does not match its stored MD5")
        return data, _lower(props.metadata)

    def load(self) -> DeploymentState:
        """The saved state, or a fresh one when none exists; StateError on a bad or migrated blob."""
        found = self.load_bytes()
        if found is None:
            return DeploymentState(deployment=self.deployment)
        data, meta = found
        if _META_MIGRATED_TO in meta:
            raise StateError(
                f"blob state {self.location}: the state of {self.deployment!r} was migrated to "
                f"{_unquote(meta[_META_MIGRATED_TO])}; point the config's [state] section there"
            )
        try:
            return parse_state(data, source=f"blob state {self.location}", deployment=self.deployment)
        except StateError as exc:
            if self.versions():
                raise StateError(f"{exc} (previous versions are kept as snapshots of the blob)") from None
            raise

    def versions(self) -> list[str]:
        """Snapshot IDs (timestamps) of previous versions, oldest first."""
        from azure.core.exceptions import AzureError

        try:
            blobs = self._container().list_blobs(name_starts_with=self.blob_name, include=["snapshots"])
            return sorted(b.snapshot for b in blobs if b.name == self.blob_name and b.snapshot)
        except AzureError as exc:
            raise self._fail("cannot list previous versions", exc) from None

    def load_previous(self) -> DeploymentState | None:
        """The version before the current one (the newest non-empty snapshot), or None."""
        from azure.core.exceptions import AzureError

        for snapshot in reversed(self.versions()):
            try:
                data = self._blob(snapshot).download_blob().readall()
            except AzureError as exc:
                raise self._fail("cannot read a previous version", exc) from None
            if data:  # empty: the placeholder's snapshot
                source = f"blob state {self.location} (snapshot {snapshot})"
                return parse_state(data, source=source, deployment=self.deployment)
        return None

    def list_deployments(self) -> list[str]:
        """Deployments with state in this container, by the name recorded in each blob's metadata."""
        from azure.core.exceptions import AzureError

        found: set[str] = set()
        try:
            for item in self._container().list_blobs(include=["metadata"]):
                meta = _lower(item.metadata)
                if (
                    _META_DEPLOYMENT in meta
                    and _META_PLACEHOLDER not in meta
                    and _META_MIGRATED_TO not in meta
                    and item.size
                ):
                    found.add(_unquote(meta[_META_DEPLOYMENT]))
        except AzureError as exc:
            raise self._fail("cannot list deployments", exc) from None
        return sorted(found)

    def holder(self) -> LockInfo | None:
        """The current holder, or None when the blob is not leased (a lapsed lease holds nothing)."""
        props = self._properties()
        if props is None or props.lease.state != "leased":
            return None
        return holder_from_metadata(props.metadata) or LockInfo(pid=0, host="?", started_at="?", command="?")

    # ---- locking ---------------------------------------------------------------------------

    @property
    def locked(self) -> bool:
        return self._lease is not None

    @contextmanager
    def lock(self, command: str = "") -> Iterator[LockInfo]:
        """Hold the deployment's lock for the ``with`` block; LockHeldError at once if another has it."""
        info = self.acquire(command)
        try:
            yield info
        finally:
            self.release()

    def acquire(self, command: str = "") -> LockInfo:
        """Take the lock now or raise LockHeldError. Prefer ``with store.lock(...)``."""
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError, ResourceExistsError

        if self._lease is not None:
            raise LockHeldError(f"blob state {self.location}: this process already holds the lock")
        self._ensure_blob()
        blob = self._blob()
        try:
            lease = blob.acquire_lease(lease_duration=self.options.lease_seconds)
        except ResourceExistsError as exc:
            if _error_code(exc) == "LeaseAlreadyPresent":
                raise self._held_error() from None
            raise self._fail("cannot take the lock", exc) from None
        except AzureError as exc:
            raise self._fail("cannot take the lock", exc) from None

        info = LockInfo(pid=os.getpid(), host=socket.gethostname(), started_at=utcnow(), command=command)
        run_id = base64.urlsafe_b64encode(os.urandom(12)).decode()
        try:
            props = blob.get_blob_properties(lease=lease)
            recorded = _lower(props.metadata).get(_META_DEPLOYMENT)
            if recorded is not None and _unquote(recorded) != self.deployment:
                raise StateError(
                    f"blob state {self.location} belongs to deployment {_unquote(recorded)!r}, "
                    f"not {self.deployment!r}"
                )
            stored = bytes(props.content_settings.content_md5 or b"?") if props.size else b""
            self._stale = self._seen_md5 is not None and stored != self._seen_md5
            # Record the holder on the blob, under the lease. A metadata write changes the ETag,
            # and it must keep whatever else the metadata says.
            meta = {k: v for k, v in props.metadata.items() if k.lower() not in _HOLDER_KEYS}
            meta.update(holder_metadata(info, run_id))
            result = blob.set_blob_metadata(
                meta, lease=lease, etag=props.etag, match_condition=MatchConditions.IfNotModified
            )
        except StateError:
            with suppress(Exception):
                lease.release()
            raise
        except AzureError as exc:
            with suppress(Exception):
                lease.release()
            raise self._fail("cannot record the lock holder", exc) from None
        self._etag = result["etag"]
        self._info, self._run_id = info, run_id
        self._lease = _Lease(self._lease_client(lease.id), self.options)
        self._lease.start()
        return info

    def _lease_client(self, lease_id: str) -> BlobLeaseClient:
        from azure.storage.blob import BlobLeaseClient

        blob = self._make_container_client().get_blob_client(self.blob_name)
        return BlobLeaseClient(blob, lease_id=lease_id)

    def _ensure_blob(self) -> None:
        """A lease needs a blob: create the zero-byte placeholder if none exists yet."""
        from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

        if self._properties() is not None:
            return
        try:
            self._blob().upload_blob(
                b"",
                metadata={_META_PLACEHOLDER: "1", _META_DEPLOYMENT: _quote(self.deployment)},
                overwrite=False,
            )
        except ResourceExistsError:
            pass  # another run created it first: the lease decides who goes on
        except ResourceNotFoundError as exc:
            raise self._fail(f"container {self.container!r} not found", exc) from None
        except AzureError as exc:
            raise self._fail("cannot create the state blob", exc) from None

    def _held_error(self) -> LockHeldError:
        holder = self.holder()
        who = holder.describe() if holder else "another run (which has just let go: try again)"
        return LockHeldError(
            f"deployment {self.deployment!r} is locked by {who}; wait for that run to finish "
            f"(blob lease on {self.location}: a crashed run's lock frees itself within "
            f"{self.options.lease_seconds} s; if that run is hung: state unlock --force)"
        )

    def release(self) -> None:
        """Stop the heartbeat, clear the holder, release the lease (best effort: it expires anyway)."""
        from azure.core import MatchConditions

        lease, self._lease = self._lease, None
        self._info = None
        if lease is None:
            return
        lease.stop()
        if lease.lost_reason is not None:
            return  # not ours any more: touching the blob could clobber the new holder's metadata
        with suppress(Exception):
            blob = self._blob()
            props = blob.get_blob_properties(lease=lease.id)
            meta = {k: v for k, v in props.metadata.items() if k.lower() not in _HOLDER_KEYS}
            result = blob.set_blob_metadata(
                meta, lease=lease.id, etag=props.etag, match_condition=MatchConditions.IfNotModified
            )
            self._etag = result["etag"]
        with suppress(Exception):
            lease.client.release()

    def unlock(self, force: bool = False) -> LockInfo | None:
        """``state unlock``: a lapsed lease needs nothing (returns None). A live one is refused
        without ``force``; with it the lease is broken at once and the old holder returned. The
        broken run cannot write afterwards: Azure refuses its lease ID and its ETag."""
        from azure.core.exceptions import AzureError, HttpResponseError
        from azure.storage.blob import BlobLeaseClient

        holder = self.holder()
        if holder is None:
            return None
        if not force:
            raise LockHeldError(
                f"deployment {self.deployment!r} is locked by {holder.describe()} "
                f"(blob lease on {self.location}); use --force only if that run is hung"
            )
        try:
            BlobLeaseClient(self._blob()).break_lease(lease_break_period=0)  # now, not at lease end
        except HttpResponseError as exc:
            if _error_code(exc) == "LeaseNotPresentWithLeaseOperation":
                return None  # it lapsed meanwhile
            raise self._fail("cannot break the lock", exc) from None
        except AzureError as exc:
            raise self._fail("cannot break the lock", exc) from None
        return holder

    # ---- writing ---------------------------------------------------------------------------

    def _require_lease(self) -> _Lease:
        lease = self._lease
        if lease is None:
            raise StateError(f"blob state {self.location}: writing needs the lock, and this run has none")
        if lease.lost_reason is None and time.monotonic() - lease.last_renewed >= self.options.heartbeat * 2:
            # The heartbeat is behind (network trouble): confirm the lease before trusting it.
            with suppress(Exception):
                lease.renew()
        if lease.lost_reason is not None:
            raise self._lost(lease.lost_reason)
        return lease

    def save(self, state: DeploymentState) -> None:
        """Persist under the lock: conditional on lease and ETag, previous version kept as a snapshot."""
        if state.deployment != self.deployment:
            raise StateError(
                f"blob state {self.location}: refusing to save the state of deployment "
                f"{state.deployment!r} here"
            )
        doc = state.to_json()
        secrets = find_secrets(doc)
        if secrets:
            raise StateError(
                f"blob state {self.location}: refusing to save: {', '.join(secrets)} looks like a secret "
                "(secrets never enter the state)"
            )
        # Byte for byte what LocalStateStore writes, so a migrated state compares equal.
        self.save_bytes((json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())

    def save_bytes(self, payload: bytes, *, extra_metadata: Mapping[str, str] | None = None) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import (
            AzureError,
            HttpResponseError,
            ResourceModifiedError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )
        from azure.storage.blob import ContentSettings

        lease = self._require_lease()
        self._resolve_pending()
        if self._stale:
            raise StateError(
                f"blob state {self.location}: the state changed after this run read it and before it "
                "took the lock; nothing written; load it again under the lock"
            )
        if self._etag is None:
            props = self._properties()
            if props is None:
                raise StateError(f"blob state {self.location}: the state blob vanished while locked")
            self._etag = props.etag
        blob = self._blob()
        md5 = hashlib.md5(payload).digest()
        try:
            # The previous version first, as a snapshot taken only if the blob is still exactly the
            # version this run knows (same ETag) and the lease is still ours.
            blob.create_snapshot(
                lease=lease.id, etag=self._etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceModifiedError:
            raise self._conflict(lease) from None
        except HttpResponseError as exc:
            self._raise_if_lease_lost(lease, exc)
            raise self._fail("cannot keep the previous version, nothing written", exc) from None
        except AzureError as exc:
            raise self._fail("cannot keep the previous version, nothing written", exc) from None

        metadata = {_META_DEPLOYMENT: _quote(self.deployment)}
        if self._info is not None:
            metadata.update(holder_metadata(self._info, self._run_id))
        metadata.update(extra_metadata or {})
        try:
            # Put Blob replaces the content atomically: readers see the old or the new bytes, never a
            # mix. validate_content sends a Content-MD5 the service checks on arrival; the blob's
            # own MD5 property (content_md5) lets readers and _committed() check it later.
            result = blob.upload_blob(
                payload,
                overwrite=True,
                lease=lease.id,
                etag=self._etag,
                match_condition=MatchConditions.IfNotModified,
                metadata=metadata,
                content_settings=ContentSettings(content_type="application/json", content_md5=md5),
                validate_content=True,
            )
        except ResourceModifiedError:
            # Perhaps our own write, committed on an attempt whose response was lost, then retried.
            if self._committed(md5):
                self._prune_versions()
                return
            raise self._conflict(lease) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            if self._committed(md5):
                self._prune_versions()
                return
            self._pending = md5
            raise self._fail(
                "network error while writing; the stored state is the previous version or this one, "
                "never a mix; re-run to resume",
                exc,
            ) from None
        except ResourceNotFoundError as exc:
            raise self._fail("cannot write (container or blob gone)", exc) from None
        except HttpResponseError as exc:
            self._raise_if_lease_lost(lease, exc)
            raise self._fail("cannot write; the stored state is untouched", exc) from None
        except AzureError as exc:
            raise self._fail("cannot write", exc) from None
        returned = result.get("content_md5")
        if returned and bytes(returned) != md5:
            raise StateError(
                f"blob state {self.location}: the service stored content whose MD5 differs from what was "
                "sent; the previous version is kept as a snapshot"
            )
        self._etag = result["etag"]
        self._seen(md5)
        self._prune_versions()

    def _committed(self, md5: bytes) -> bool:
        """After an ambiguous failure: is the blob now exactly what this run tried to write?"""
        try:
            props = self._blob().get_blob_properties()
        except Exception:
            return False
        stored = props.content_settings.content_md5
        ours = _unquote(_lower(props.metadata).get(_META_RUN, "")) == self._run_id != ""
        if stored and bytes(stored) == md5 and ours:
            self._etag = props.etag
            self._seen(md5)
            self._pending = None
            return True
        return False

    def _seen(self, md5: bytes) -> None:
        self._seen_md5 = md5
        self._stale = False

    def _resolve_pending(self) -> None:
        """A previous write's outcome was unknown: settle it before reading or writing again."""
        if self._pending is None:
            return
        if self._committed(self._pending):
            return  # it did commit: _committed adopted the new ETag
        if self._properties() is not None:
            # It did not commit: the ETag this run holds is still the right precondition.
            self._pending = None

    def _conflict(self, lease: _Lease) -> StateError:
        # A new holder's first act (recording itself in the metadata) also changes the ETag: find
        # out which it was, so the operator reads "lost the lock" rather than a bare ETag mismatch.
        with suppress(Exception):
            lease.renew()
        if lease.lost_reason is not None:
            return self._lost(lease.lost_reason)
        return StateError(
            f"blob state {self.location}: the state changed since this run read it (ETag mismatch); "
            "refusing to overwrite another run's state; nothing written"
        )

    def _raise_if_lease_lost(self, lease: _Lease, exc: Any) -> None:
        code = _error_code(exc)
        if code in _LEASE_LOST_CODES:
            lease.mark_lost(f"write refused: {code}")
            raise self._lost(lease.lost_reason or code) from None

    def _prune_versions(self) -> None:
        """Delete snapshots beyond ``keep_versions`` (best effort: a failure only costs storage)."""
        with suppress(Exception):
            snapshots = self.versions()
            for snapshot in snapshots[: max(0, len(snapshots) - self.options.keep_versions)]:
                self._blob(snapshot).delete_blob()

    # ---- migration -------------------------------------------------------------------------

    def write_tombstone(self, destination: str) -> None:
        """Replace the state by a marker naming where it went (see ``state_migrate``); the state
        itself stays readable as the newest snapshot (``load_previous()``)."""
        self.save_bytes(
            tombstone_bytes(self.deployment, destination),
            extra_metadata={_META_MIGRATED_TO: _quote(destination[:1024])},
        )

    def migrated_to(self) -> str | None:
        props = self._properties()
        meta = _lower(props.metadata) if props is not None else {}
        return _unquote(meta[_META_MIGRATED_TO]) if _META_MIGRATED_TO in meta else None


TOMBSTONE_SCHEMA_PREFIX = "migrated to "


def tombstone_bytes(deployment: str, destination: str) -> bytes:
    """A document every loader refuses with a message naming the destination: parse_state reports
    ``unknown state schema version 'migrated to <destination>'``."""
    doc = {
        "schema": f"{TOMBSTONE_SCHEMA_PREFIX}{destination}",
        "tool": TOOL,
        "deployment": deployment,
        "migrated_to": destination,
        "migrated_at": utcnow(),
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def tombstone_destination(data: bytes) -> str | None:
    """The destination a tombstone names, or None when ``data`` is not a tombstone."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if isinstance(doc, dict) and str(doc.get("schema", "")).startswith(TOMBSTONE_SCHEMA_PREFIX):
        return str(doc.get("migrated_to", ""))
    return None


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe=" /:.,-_=+@")


def _unquote(value: str) -> str:
    return urllib.parse.unquote(value)


def _lower(metadata: Mapping[str, str] | None) -> dict[str, str]:
    # Azure may hand metadata keys back in another case.
    return {k.lower(): v for k, v in (metadata or {}).items()}


def _is_placeholder(props: Any) -> bool:
    return _META_PLACEHOLDER in _lower(props.metadata) and not props.size


def _error_code(exc: Any) -> str:
    code = getattr(exc, "error_code", None)
    if code is None:
        return ""
    return str(getattr(code, "value", code))


def _short(exc: BaseException) -> str:
    """One line: HTTP status, storage error code and the message's first line; no request IDs, XML
    or headers (which could carry a SAS token)."""
    status = getattr(exc, "status_code", None)
    code = _error_code(exc)
    message = str(getattr(exc, "message", None) or exc or type(exc).__name__)
    first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    parts = [f"HTTP {status}" if status else "", code, first]
    text = " ".join(" ".join(p for p in parts if p).split())
    # Transport errors quote the request URL; with a SAS credential its query string is the secret.
    return _QUERY.sub("?…", text)[:300]


_QUERY = re.compile(r"\?[^\s'\")]+")

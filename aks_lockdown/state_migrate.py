"""``state migrate``: move a deployment's state between backends (local <-> blob), both ways.

Order of work, so that at every instant one complete copy is authoritative:

1. lock the source, then the destination (either held elsewhere: LockHeldError, nothing touched);
2. load and validate the source;
3. write the destination (refused if it already holds a *different* state of the deployment);
4. read the destination back and compare it with the source, field for field;
5. only then replace the source by a *tombstone*: a small document naming the destination that every
   loader refuses ("unknown state schema version 'migrated to <destination>'"), so a stale config
   cannot resume from, or start over beside, the moved state. The source's full state stays
   recoverable as its previous version: ``<name>.json.prev`` locally, the newest snapshot of the blob.

A crash anywhere before step 5 leaves the source intact; re-running migrate then finds the destination
already equal and just finishes. Migrating back over a tombstone is allowed (it is not a state).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aks_lockdown.engine.state import DeploymentState, LocalStateStore, StateBackend, atomic_write
from aks_lockdown.errors import StateError
from aks_lockdown.state_blob import BlobStateStore, tombstone_bytes, tombstone_destination

if TYPE_CHECKING:
    from aks_lockdown.config import Config


@dataclass(frozen=True)
class MigrationResult:
    deployment: str
    source: str  # locations, for the summary line
    destination: str
    steps: int
    resources: int
    resumed: bool = False  # the destination already held this state (a previous migrate was cut short)

    def describe(self) -> str:
        how = " (finished an interrupted migration)" if self.resumed else ""
        return (
            f"{self.deployment}: state moved from {self.source} to {self.destination}{how}: "
            f"{self.steps} steps, {self.resources} resources; the source is now a tombstone naming the "
            "destination"
        )


def migrate(
    source: StateBackend, destination: StateBackend, deployment: str, *, command: str = "state migrate"
) -> MigrationResult:
    """Move ``deployment``'s state from ``source`` to ``destination`` (see the module docstring)."""
    for backend, role in ((source, "source"), (destination, "destination")):
        if backend.deployment != deployment:
            raise StateError(
                f"state migrate: the {role} {backend.location} is for deployment {backend.deployment!r}, "
                f"not {deployment!r}"
            )
    if source.location == destination.location:
        raise StateError(f"state migrate: source and destination are the same ({source.location})")

    with source.lock(command), destination.lock(command):
        moved_to = _tombstone(source)
        if moved_to is not None:
            if moved_to == destination.location and destination.exists() and _tombstone(destination) is None:
                state = destination.load()
                return _result(deployment, source, destination, state, resumed=True)
            raise StateError(f"state migrate: {source.location} was already migrated to {moved_to}")
        if not source.exists():
            raise StateError(f"state migrate: no state of {deployment!r} at {source.location}")
        state = source.load()
        wanted = state.to_json()

        resumed = False
        if destination.exists() and _tombstone(destination) is None:
            if destination.load().to_json() != wanted:
                raise StateError(
                    f"state migrate: {destination.location} already holds a different state of "
                    f"{deployment!r}; refusing to overwrite it (nothing changed on either side)"
                )
            resumed = True  # an earlier migrate wrote it and stopped before the tombstone
        else:
            destination.save(state)

        if destination.load().to_json() != wanted:
            raise StateError(
                f"state migrate: what {destination.location} returned differs from what was written; "
                f"the source {source.location} is left as it was"
            )
        _write_tombstone(source, destination.location)
        return _result(deployment, source, destination, state, resumed=resumed)


def backends_for(
    config: Config, directory: Path | str, credential: Any, *, to: Literal["blob", "local"], **blob_kw: Any
) -> tuple[StateBackend, StateBackend]:
    """(source, destination) for ``state migrate --to blob|local``: the local store in ``directory``
    and the blob named by the config's [state] section (account_url and container must be set,
    whatever ``backend`` says: the config is switched to the new backend after migrating)."""
    local = LocalStateStore(directory, config.deployment.name)
    blob = BlobStateStore.from_config(config, credential, **blob_kw)
    return (local, blob) if to == "blob" else (blob, local)


def _result(
    deployment: str, source: StateBackend, destination: StateBackend, state: DeploymentState, *, resumed: bool
) -> MigrationResult:
    return MigrationResult(
        deployment=deployment,
        source=source.location,
        destination=destination.location,
        steps=len(state.steps),
        resources=len(state.resources),
        resumed=resumed,
    )


def _tombstone(backend: Any) -> str | None:
    """Where a migrated-away state went, when ``backend`` holds a tombstone."""
    if isinstance(backend, BlobStateStore):
        found = backend.load_bytes()
        return tombstone_destination(found[0]) if found is not None else None
    if isinstance(backend, LocalStateStore):
        try:
            return tombstone_destination(backend.path.read_bytes())
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"{backend.path}: cannot read the state file: {exc.strerror}") from None
    raise TypeError(f"state migrate does not know the backend {type(backend).__name__}")


def _write_tombstone(backend: Any, destination: str) -> None:
    if isinstance(backend, BlobStateStore):
        backend.write_tombstone(destination)
        return
    if isinstance(backend, LocalStateStore):
        # Same atomic write as a save: the state becomes <name>.json.prev, whole.
        atomic_write(
            backend.path, tombstone_bytes(backend.deployment, destination), keep_previous=backend.prev_path
        )
        return
    raise TypeError(f"state migrate does not know the backend {type(backend).__name__}")

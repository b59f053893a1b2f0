"""Small helpers every step shares: ARM IDs, tags, REST JSON, 404 -> None, owned-field diffs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from aks_lockdown.engine.step import Diff, FieldChange, ResourceChange, StepContext
from aks_lockdown.errors import LockdownError

T = TypeVar("T")

DEPLOYMENT_TAG = "aks-lockdown-deployment"
# Shown in plan for values only an earlier step's apply can tell (an IP Azure allocates).
KNOWN_AFTER_APPLY = "(known after apply)"
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"

# Fields Azure sets and never accepts back as a change: dropped before comparing or re-sending.
READ_ONLY_KEYS = frozenset(
    {"etag", "provisioningState", "resourceGuid", "systemData", "size", "ruleCollectionGroups"}
)
# A (child) resource's own id and type are read-only; a bare {"id": ...} reference is not.
RESOURCE_ONLY_KEYS = frozenset({"id", "type"})


class AdoptionConflict(LockdownError):
    """A resource of the deployment's name exists, was not created by it, and does not match the config."""


# --- ARM IDs ---------------------------------------------------------------------------------------


def rg_id(ctx: StepContext) -> str:
    return f"/subscriptions/{ctx.clients.subscription_id}/resourceGroups/{ctx.config.resource_group}"


def resource_id(ctx: StepContext, provider_type: str, name: str, *children: str) -> str:
    """``provider_type`` like "Microsoft.Network/virtualNetworks"; ``children`` alternate type, name."""
    rid = f"{rg_id(ctx)}/providers/{provider_type}/{name}"
    for part in children:
        rid += f"/{part}"
    return rid


def same_id(a: str | None, b: str | None) -> bool:
    """ARM IDs compare case-insensitively (Azure may return another casing than the one sent)."""
    return (a or "").lower() == (b or "").lower()


def deterministic_uuid(*parts: str) -> str:
    """A stable GUID name (role assignments): the same inputs always give the same name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(p.lower() for p in parts)))


# --- reads -----------------------------------------------------------------------------------------


def get_or_none(read: Callable[[], T]) -> T | None:
    """A GET whose 404 means "not there yet" rather than an error."""
    try:
        return read()
    except ResourceNotFoundError:
        return None
    except HttpResponseError as exc:
        if exc.status_code == 404:
            return None
        raise


def to_json(obj: Any) -> dict[str, Any] | None:
    """REST JSON (camelCase, as on the wire) of an SDK model, whichever generator made it."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        as_dict = getattr(obj, "as_dict", None)
        return as_dict() if callable(as_dict) else dict(obj)
    serialize = getattr(obj, "serialize", None)  # msrest-style models (msi, authorization)
    if callable(serialize):
        return serialize(keep_readonly=True)
    raise TypeError(f"not an SDK model: {type(obj).__name__}")


def strip_read_only(value: Any) -> Any:
    """Drop read-only fields, None values and empty lists/maps (Azure fills or omits them at will)."""
    if isinstance(value, Mapping):
        is_resource = "properties" in value or "name" in value
        out = {}
        for key, item in value.items():
            if key in READ_ONLY_KEYS or (is_resource and key in RESOURCE_ONLY_KEYS):
                continue
            cleaned = strip_read_only(item)
            if cleaned is None or cleaned == [] or cleaned == {}:
                continue
            out[key] = cleaned
        return out
    if isinstance(value, list):
        return [strip_read_only(item) for item in value]
    return value


def state_for_wait(actual: Mapping[str, Any] | None) -> str:
    """provisioningState for ctx.wait_for: a resource that vanished (a delete in flight finished) ends the
    wait as "Canceled"; the step's check() then sees it gone and decides what comes next."""
    return "Canceled" if actual is None else (provisioning_state(actual) or "Succeeded")


def provisioning_state(actual: Mapping[str, Any] | None) -> str:
    if not actual:
        return ""
    return str((actual.get("properties") or {}).get("provisioningState") or "")


# --- tags and ownership ----------------------------------------------------------------------------


def is_ours(ctx: StepContext, rid: str, actual: Mapping[str, Any] | None) -> bool:
    """Created by this deployment: the state says so, or the tag does (state lost in a crash)."""
    if ctx.created_by_deployment(rid):
        return True
    tags = (actual or {}).get("tags") or {}
    return tags.get(DEPLOYMENT_TAG) == ctx.deployment


def merged_tags(ctx: StepContext, actual: Mapping[str, Any] | None) -> dict[str, str]:
    """The resource's tags with ours added: an operator's own tags survive our writes."""
    tags = dict((actual or {}).get("tags") or {})
    tags.update(ctx.tags)
    return tags


def tag_changes(ctx: StepContext, actual: Mapping[str, Any]) -> list[FieldChange]:
    tags = actual.get("tags") or {}
    return [
        FieldChange(f"tags.{key}", tags.get(key), value)
        for key, value in sorted(ctx.tags.items())
        if tags.get(key) != value
    ]


# --- diffs -----------------------------------------------------------------------------------------


def _scalar_equal(desired: Any, actual: Any) -> bool:
    if isinstance(desired, str) and isinstance(actual, str) and desired.startswith("/subscriptions/"):
        return same_id(desired, actual)
    if isinstance(desired, bool) or isinstance(actual, bool):
        return desired is actual or (desired in (None, False) and actual in (None, False))
    return desired == actual


def owned_changes(
    desired: Any, actual: Any, path: str = "", *, strict_names: bool = False
) -> list[FieldChange]:
    """Differences in the fields ``desired`` names; anything else Azure holds is not ours to judge.

    Lists of objects with a "name" are matched by name (order is Azure's business); with
    ``strict_names`` a named item Azure has and we do not is reported too (a rule someone added)."""
    if isinstance(desired, Mapping):
        if not isinstance(actual, Mapping):
            return [] if not desired and actual is None else [FieldChange(path, actual, desired)]
        changes: list[FieldChange] = []
        for key, value in desired.items():
            sub = f"{path}.{key}" if path else key
            changes += owned_changes(value, actual.get(key), sub, strict_names=strict_names)
        return changes
    if isinstance(desired, list):
        actual_list = actual if isinstance(actual, list) else []
        if desired and all(isinstance(i, Mapping) and "name" in i for i in desired):
            by_name = {str(i.get("name", "")).lower(): i for i in actual_list if isinstance(i, Mapping)}
            changes = []
            for item in desired:
                match = by_name.pop(str(item["name"]).lower(), None)
                sub = f"{path}[{item['name']}]"
                if match is None:
                    changes.append(FieldChange(sub, None, item))
                else:  # matched by name already (names are case-insensitive in ARM)
                    rest = {k: v for k, v in item.items() if k != "name"}
                    changes += owned_changes(rest, match, sub, strict_names=strict_names)
            if strict_names:
                changes += [FieldChange(f"{path}[{i.get('name')}]", i, None) for i in by_name.values()]
            return changes
        if len(desired) != len(actual_list) or not all(
            not owned_changes(d, a, strict_names=strict_names)
            for d, a in zip(desired, actual_list, strict=False)
        ):
            return [FieldChange(path, actual, desired)]
        return []
    if desired is None:
        return []  # None in a desired document means "not ours to set"
    return [] if _scalar_equal(desired, actual) else [FieldChange(path, actual, desired)]


def unchanged(rid: str, kind: str, note: str = "") -> ResourceChange:
    return ResourceChange("none", rid, kind, note=note)


def change_for(
    rid: str, kind: str, actual: Mapping[str, Any] | None, fields: Iterable[FieldChange], note: str = ""
) -> ResourceChange:
    """create when absent, update when fields differ (or the resource is Failed), none otherwise."""
    if actual is None:
        return ResourceChange("create", rid, kind, note=note)
    fields = tuple(fields)
    if provisioning_state(actual) == "Failed":
        return ResourceChange("update", rid, kind, fields, note or "found Failed: will be written again")
    if fields:
        return ResourceChange("update", rid, kind, fields, note)
    return ResourceChange("none", rid, kind, note=note)


def pending_ids(diff: Diff) -> set[str]:
    return {c.resource_id.lower() for c in diff.changes if c.action != "none"}


def delete_if_created(
    ctx: StepContext, rid: str, exists: Callable[[], Any], begin: Callable[[], Any]
) -> None:
    """Rollback of one resource: only what this deployment created, and a 404 counts as deleted."""
    if not ctx.created_by_deployment(rid):
        return
    if get_or_none(exists) is None:
        return
    try:
        ctx.write(rid, "delete", begin, description="delete")
    except ResourceNotFoundError:
        pass  # deleted between our GET and our DELETE: the goal is reached

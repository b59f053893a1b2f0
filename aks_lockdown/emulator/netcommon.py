"""Shared Network RP machinery: stored-body hygiene, the put-as-long-operation pattern, references."""

from __future__ import annotations

import copy
import ipaddress
import json
import uuid
from typing import Any

from aks_lockdown.emulator import lro
from aks_lockdown.emulator.framework import ArmError, Request, Response
from aks_lockdown.emulator.world import Record, World

NS = "Microsoft.Network"
READ_ONLY = ("id", "name", "type", "etag")
READ_ONLY_PROPS = ("provisioningState", "resourceGuid")


def clean(body: Any, *, drop_props: tuple[str, ...] = ()) -> dict[str, Any]:
    """A request body without read-only fields (clients often send back what they GET)."""
    out = copy.deepcopy(body) if isinstance(body, dict) else {}
    for k in READ_ONLY:
        out.pop(k, None)
    props = out.get("properties")
    if not isinstance(props, dict):
        props = {}
    for k in (*READ_ONLY_PROPS, *drop_props):
        props.pop(k, None)
    out["properties"] = props
    if "location" in out and isinstance(out["location"], str):
        out["location"] = norm_location(out["location"])
    return out


def norm_location(loc: str) -> str:
    return loc.replace(" ", "").lower()


def require_location(req: Request, body: dict[str, Any], existing: Record | None) -> str:
    loc = body.get("location") or (existing.body.get("location") if existing else None)
    if not loc:
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    return norm_location(str(loc))


def resource_guid(existing: Record | None) -> str:
    if existing is not None and existing.extra.get("resourceGuid"):
        return str(existing.extra["resourceGuid"])
    return str(uuid.uuid4())


def start_put(
    req: Request,
    rec: Record,
    *,
    created: bool,
    key: str,
    location: str,
    locks: list[str] | None = None,
    also_updating: list[str] | None = None,
    on_complete: str | None = None,
    nfv: bool = False,
    data: dict[str, Any] | None = None,
) -> Response:
    """Start the operation for a PUT and answer 201/200 with provisioningState Updating and the async
    headers. `also_updating`: other resources whose provisioningState shows the operation (e.g. the
    firewall while its policy's group is written)."""
    op = req.world.ops.start(
        resource_id=rec.id,
        kind=key,
        duration=req.config.duration(key),
        in_flight="Updating",
        namespace=NS,
        location=location,
        locks=locks if locks is not None else [rec.id],
        on_complete=on_complete,
        data={**(data or {}), **({"nfv": True} if nfv else {})},
    )
    for other in also_updating or []:
        orec = req.world.get(other)
        if orec is not None:
            orec.op_id = op.id
            orec.failed = False
    if also_updating:
        op.data["also_updating"] = list(also_updating)
    return lro.put_response(req, rec, op, created=created)


def referrers(world: World, target_id: str, *, skip_under: str | None = None) -> list[Record]:
    """Records whose body references target_id as an id value (role assignments and the target's own
    subtree excluded)."""
    needle = f'"{target_id.lower()}"'
    own = target_id.lower()
    skip = (skip_under or target_id).lower()
    out = []
    for key, rec in world.resources.items():
        if key in (own, skip) or key.startswith(own + "/") or key.startswith(skip + "/"):
            continue
        if rec.type.lower() == "microsoft.authorization/roleassignments":
            continue
        if needle in json.dumps(rec.body).lower():
            out.append(rec)
    return out


def ref_id(obj: Any) -> str | None:
    return obj.get("id") if isinstance(obj, dict) and obj.get("id") else None


def ensure_ref(world: World, ref: str | None, referrer: str, location: str | None = None) -> Record | None:
    if ref is None:
        return None
    rec = world.get(ref)
    if rec is None:
        raise ArmError(
            400,
            "InvalidResourceReference",
            f"Resource {ref} referenced by resource {referrer} was not found. Please make sure that the "
            "referenced resource exists, and that both resources are in the same region.",
            details=[],
        )
    return rec


def parse_prefix(prefix: Any, owner: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(str(prefix), strict=False)
    except ValueError:
        raise ArmError(
            400,
            "InvalidCIDRNotation",
            f"The address prefix {prefix} in resource {owner} has an invalid CIDR notation. For a /24 "
            "prefix length, the valid prefix is x.x.x.0/24.",
        ) from None


def prefixes_of(props: dict[str, Any]) -> list[str]:
    if props.get("addressPrefixes"):
        return [str(p) for p in props["addressPrefixes"]]
    return [str(props["addressPrefix"])] if props.get("addressPrefix") else []


def render_base(world: World, rec: Record, *, with_location: bool = True) -> dict[str, Any]:
    body = copy.deepcopy(rec.body)
    out: dict[str, Any] = {
        "name": rec.id.rsplit("/", 1)[-1],
        "id": rec.id,
        "etag": rec.etag,
        "type": rec.type,
    }
    if with_location and "location" in body:
        out["location"] = body.pop("location")
    for k in ("tags", "sku", "zones", "identity"):
        if k in body:
            out[k] = body.pop(k)
    props = body.pop("properties", {})
    props["provisioningState"] = world.provisioning_state(rec)
    if rec.extra.get("resourceGuid"):
        props["resourceGuid"] = rec.extra["resourceGuid"]
    out["properties"] = props
    out.update({k: v for k, v in body.items() if k not in out})
    return out

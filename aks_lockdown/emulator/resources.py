"""Microsoft.Resources: resource groups (PUT is synchronous; DELETE is a long operation that cascades)."""

from __future__ import annotations

import copy
import re
from typing import Any

from aks_lockdown.emulator import lro
from aks_lockdown.emulator.framework import ArmError, Registry, Request, Response
from aks_lockdown.emulator.world import Operation, Record, World

RG_TYPE = "Microsoft.Resources/resourceGroups"


def _rg_id(req: Request) -> str:
    parts = req.path.strip("/").split("/")
    return f"/subscriptions/{parts[1]}/resourceGroups/{parts[3]}"


def render_rg(world: World, rec: Record) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rec.id,
        "name": rec.id.rsplit("/", 1)[-1],
        "type": RG_TYPE,
        "location": rec.body.get("location"),
    }
    if rec.body.get("managedBy"):
        out["managedBy"] = rec.body["managedBy"]
    if rec.body.get("tags") is not None:
        out["tags"] = copy.deepcopy(rec.body["tags"])
    out["properties"] = {"provisioningState": world.provisioning_state(rec)}
    return out


def _not_found(name: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def _deleting(req: Request, rec: Record) -> Operation | None:
    op = req.world.ops.busy(rec.id, req.now)
    return op if op is not None and op.is_delete else None


def put_rg(req: Request) -> Response:
    rid = _rg_id(req)
    body = req.body if isinstance(req.body, dict) else {}
    if not body.get("location"):
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    rec = req.world.get(rid)
    if rec is not None:
        if _deleting(req, rec):
            raise ArmError(
                409,
                "ResourceGroupBeingDeleted",
                f"The resource group '{rec.id.rsplit('/', 1)[-1]}' is in deprovisioning state and cannot "
                "perform this operation.",
            )
        if str(rec.body.get("location", "")).lower() != str(body["location"]).replace(" ", "").lower():
            raise ArmError(
                409,
                "InvalidResourceGroupLocation",
                f"Invalid resource group location '{body['location']}'. The Resource group already exists in "
                f"location '{rec.body.get('location')}'.",
            )
    stored = {"location": str(body["location"]).replace(" ", "").lower()}
    if body.get("tags") is not None:
        stored["tags"] = body["tags"]
    if body.get("managedBy"):
        stored["managedBy"] = body["managedBy"]
    created = rec is None
    rec = req.world.upsert(rec.id if rec else rid, RG_TYPE, stored)
    rec.op_id = None
    return Response(201 if created else 200, render_rg(req.world, rec))


def get_rg(req: Request) -> Response:
    rec = req.world.get(_rg_id(req))
    if req.method == "HEAD":
        return Response(204 if rec is not None else 404)
    if rec is None:
        raise _not_found(_rg_id(req).rsplit("/", 1)[-1])
    return Response(200, render_rg(req.world, rec))


def patch_rg(req: Request) -> Response:
    rec = req.world.get(_rg_id(req))
    if rec is None:
        raise _not_found(_rg_id(req).rsplit("/", 1)[-1])
    if isinstance(req.body, dict) and "tags" in req.body:
        rec.body["tags"] = req.body["tags"]
        req.world.touch()
    return Response(200, render_rg(req.world, rec))


def delete_rg(req: Request) -> Response:
    rec = req.world.get(_rg_id(req))
    if rec is None:
        # ARM answers 404 for a missing group (the SDK's begin_delete raises ResourceNotFoundError).
        raise _not_found(_rg_id(req).rsplit("/", 1)[-1])
    op = _deleting(req, rec) or req.world.ops.start(
        resource_id=rec.id,
        kind="resourceGroups.delete",
        duration=req.config.duration("resourceGroups.delete"),
        namespace="Microsoft.Resources",
        location=str(rec.body.get("location")),
        locks=[rec.id],
        is_delete=True,
        on_complete="resources.rg_delete",
    )
    base = f"{req.base_url}/subscriptions/{op.subscription}"
    location = f"{base}/operationresults/{op.id}?api-version={req.api_version}"
    return Response(202, None, {"Location": location, **lro.retry_after(req, op)})


def finish_rg_delete(world: World, op: Operation) -> None:
    """Cascade: everything whose id sits under the group goes with it (role assignments at or under
    the group's scope included); operations in flight on them are dropped."""
    gone = [op.resource_id]
    # A group managed by a resource of this group (an AKS node resource group, `managedBy` = the
    # cluster) goes with it, as in ARM; and so on down (its own managed groups).
    i = 0
    while i < len(gone):
        prefix = gone[i].lower() + "/"
        for rg in world.list(RG_TYPE):
            mb = str(rg.body.get("managedBy") or "").lower()
            if mb.startswith(prefix) and all(rg.id.lower() != g.lower() for g in gone):
                gone.append(rg.id)
        i += 1
    for rid in gone:
        world.remove(rid)
    prefixes = tuple(g.lower() + "/" for g in gone)
    for other in world.ops.items.values():
        if other is not op and not other.settled and other.resource_id.lower().startswith(prefixes):
            other.settled = True
            other.error = {"code": "Canceled", "message": "The resource group was deleted.", "details": []}


def _tag_filter(flt: str) -> tuple[str, str | None] | None:
    """$filter=tagName eq 'k' [and tagValue eq 'v']"""
    name = re.search(r"tagName\s+eq\s+'([^']*)'", flt)
    if name is None:
        return None
    value = re.search(r"tagValue\s+eq\s+'([^']*)'", flt)
    return name.group(1), value.group(1) if value else None


def _tagged(item: dict[str, Any], tag: tuple[str, str | None] | None) -> bool:
    if tag is None:
        return True
    tags = item.get("tags") or {}
    return tag[0] in tags and (tag[1] is None or tags[tag[0]] == tag[1])


def list_rg(req: Request) -> Response:
    sub = req.path.strip("/").split("/")[1]
    recs = req.world.list(RG_TYPE, f"/subscriptions/{sub}")
    tag = _tag_filter(req.query.get("$filter", ""))
    return Response(200, {"value": [v for r in recs if _tagged(v := render_rg(req.world, r), tag)]})


def list_resources(req: Request) -> Response:
    """GET .../resources: top-level resources (not children, not role assignments), generic shape."""
    parts = req.path.strip("/").split("/")
    scope = "/" + "/".join(parts[:-1])
    if len(parts) == 5 and req.world.get(scope) is None:
        raise _not_found(parts[3])
    tag = _tag_filter(req.query.get("$filter", ""))
    out = []
    for key, rec in req.world.resources.items():
        if not key.startswith(scope.lower() + "/") or rec.type == RG_TYPE:
            continue
        # /subscriptions/s/resourceGroups/rg/providers/ns/type/name: 8 slashes for a top-level resource.
        if rec.id.count("/") != 8 or "/providers/microsoft.authorization/" in key:
            continue
        item: dict[str, Any] = {"id": rec.id, "name": rec.id.rsplit("/", 1)[-1], "type": rec.type}
        for k in ("location", "tags", "sku", "kind", "identity"):
            if rec.body.get(k) is not None:
                item[k] = rec.body[k]
        if _tagged(item, tag):
            out.append(item)
    return Response(200, {"value": out})


def register(reg: Registry) -> None:
    one = r"^/subscriptions/[^/]+/resourcegroups/[^/]+$"
    reg.route("GET", r"^/subscriptions/[^/]+/resourcegroups$", list_rg)
    reg.route("GET", r"^/subscriptions/[^/]+(/resourcegroups/[^/]+)?/resources$", list_resources)
    reg.route("PUT", one, put_rg)
    reg.route("GET", one, get_rg)
    reg.route("HEAD", one, get_rg)
    reg.route("PATCH", one, patch_rg)
    reg.route("DELETE", one, delete_rg)
    reg.resource_type(RG_TYPE, render=render_rg)
    reg.on_complete("resources.rg_delete", finish_rg_delete)

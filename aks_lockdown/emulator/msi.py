"""Microsoft.ManagedIdentity/userAssignedIdentities: synchronous PUT/GET/DELETE as the real RP.
Each identity's service principal is recorded with its creation time in world.meta["principals"], so
role assignments can answer PrincipalNotFound while the directory has not "replicated" it yet."""

from __future__ import annotations

import uuid
from typing import Any

from aks_lockdown.emulator.framework import ArmError, Registry, Request, Response, not_found
from aks_lockdown.emulator.world import Record, World

TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"


def render(world: World, rec: Record) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rec.id,
        "name": rec.id.rsplit("/", 1)[-1],
        "type": TYPE,
        "location": rec.body["location"],
        "tags": rec.body.get("tags") or {},
        "properties": dict(rec.body["properties"]),
    }
    return out


def principals(world: World) -> dict[str, dict[str, Any]]:
    return world.meta.setdefault("principals", {})


def put(req: Request) -> Response:
    body = req.body if isinstance(req.body, dict) else {}
    if not body.get("location"):
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    w = req.world
    rec = w.get(req.rid.id)
    tenant = req.world.meta.get("tenant_id") or _tenant(req)
    if rec is None:
        props = {
            "tenantId": tenant,
            "principalId": str(uuid.uuid4()),
            "clientId": str(uuid.uuid4()),
            "isolationScope": (body.get("properties") or {}).get("isolationScope", "None"),
        }
    else:
        props = dict(rec.body["properties"])
        if "isolationScope" in (body.get("properties") or {}):
            props["isolationScope"] = body["properties"]["isolationScope"]
    stored = {
        "location": str(body["location"]).replace(" ", "").lower(),
        "tags": body.get("tags") or {},
        "properties": props,
    }
    created = rec is None
    rec = w.upsert(rec.id if rec else req.rid.id, TYPE, stored)
    if created:
        principals(w)[props["principalId"]] = {
            "created": req.now,
            "type": "ServicePrincipal",
            "identity": rec.id,
        }
    return Response(201 if created else 200, render(w, rec))


def _tenant(req: Request) -> str:
    from aks_lockdown.arm.clients import EMULATOR_TENANT_ID

    return EMULATOR_TENANT_ID


def get(req: Request) -> Response:
    rec = req.world.get(req.rid.id)
    if rec is None:
        raise not_found(req.rid)
    return Response(200, render(req.world, rec))


def delete(req: Request) -> Response:
    rec = req.world.get(req.rid.id)
    if rec is None:
        return Response(204)
    principals(req.world).pop(rec.body["properties"]["principalId"], None)
    req.world.remove(rec.id)
    return Response(200)


def register(reg: Registry) -> None:
    reg.resource_type(TYPE, put=put, get=get, delete=delete, render=render)

"""Generic handlers, used for a resource type that registers None for a verb (and reusable by
providers, e.g. `generic_delete(req, key=..., locks=[...])` after their own in-use checks)."""

from __future__ import annotations

from aks_lockdown.emulator import lro
from aks_lockdown.emulator.framework import ArmError, Request, ResourceId, Response, not_found


def no_type(rid: ResourceId) -> ArmError:
    return ArmError(
        400,
        "InvalidResourceType",
        f"The resource type '{'/'.join(rid.types)}' could not be found in the namespace '{rid.namespace}' "
        f"for api version.",
    )


def generic_get(req: Request) -> Response:
    view = req.world.view(req.rid.id)
    if view is None:
        raise not_found(req.rid)
    rec = req.world.get(req.rid.id)
    return Response(200, view, {"ETag": rec.etag} if rec else {})


def generic_list(req: Request) -> Response:
    rid = req.rid
    under = rid.parent_id_for_action() if len(rid.types) > 1 else rid.scope
    recs = req.world.list(rid.type, under)
    return Response(200, {"value": [req.world.render(r) for r in recs]})


def generic_delete(req: Request, *, key: str | None = None, locks: list[str] | None = None) -> Response:
    rec = req.world.get(req.rid.id)
    if rec is None:
        return Response(204)
    lro.ensure_free(req, locks or [req.rid.id])
    leaf = req.rid.types[-1]
    op = req.world.ops.start(
        resource_id=rec.id,
        kind=f"{leaf}.delete",
        duration=req.config.duration(key or f"{leaf}.delete"),
        namespace=req.rid.namespace or "Microsoft.Network",
        location=str(rec.body.get("location") or _location_of(req, rec.id)),
        locks=locks,
        is_delete=True,
    )
    return lro.delete_response(req, op)


def generic_patch(req: Request) -> Response:
    rec = req.world.get(req.rid.id)
    if rec is None:
        raise not_found(req.rid)
    if isinstance(req.body, dict) and "tags" in req.body:
        body = dict(rec.body)
        body["tags"] = req.body["tags"]
        req.world.upsert(rec.id, rec.type, body)
    return Response(200, req.world.render(rec))


def _location_of(req: Request, rid: str) -> str:
    """A child resource's location: its top-level parent's."""
    parts = rid.split("/")
    while len(parts) > 8:
        parts = parts[:-2]
        rec = req.world.get("/".join(parts))
        if rec is not None and rec.body.get("location"):
            return str(rec.body["location"])
    return "westus"

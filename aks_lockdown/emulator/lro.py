"""Long-operation responses as real ARM sends them, and the generic status/result endpoints."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aks_lockdown.emulator.framework import ArmError, Registry, Request, Response
from aks_lockdown.emulator.world import Operation, Record

# Network RP's firewall policies and their groups poll "nfvOperations" (firewall_policy recording).
STATUS_KINDS = ("operations", "nfvOperations", "operationStatuses")
RESULT_KINDS = ("operationResults", "nfvOperationResults", "operationresults")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def status_url(req: Request, op: Operation, kind: str = "operations") -> str:
    return (
        f"{req.base_url}/subscriptions/{op.subscription}/providers/{op.namespace}/locations/{op.location}"
        f"/{kind}/{op.id}?api-version={req.api_version}"
    )


def result_url(req: Request, op: Operation, kind: str = "operationResults") -> str:
    return status_url(req, op, kind)


def retry_after(req: Request, op: Operation) -> dict[str, str]:
    """The poll-delay header(s) for an operation in flight."""
    now = req.now
    return req.config.poll_headers(now - op.start, op.end - now)


def lro_headers(req: Request, op: Operation, *, location: bool = False) -> dict[str, str]:
    nfv = "nfv" if op.data.get("nfv") else ""
    headers = {
        "Azure-AsyncOperation": status_url(req, op, f"{nfv}operations" if nfv else "operations"),
        **retry_after(req, op),
        # Real ARM reuses the operation id as the initial request's x-ms-request-id (recordings).
        "x-ms-request-id": op.id,
    }
    if nfv:
        headers["Azure-AsyncOperation"] = status_url(req, op, "nfvOperations")
    if location:
        headers["Location"] = result_url(req, op, "nfvOperationResults" if nfv else "operationResults")
    return headers


def put_response(req: Request, record: Record, op: Operation, *, created: bool) -> Response:
    """201 (new) / 200 (existing) with the body in its non-terminal state and the async headers."""
    body = req.world.render(record)
    return Response(201 if created else 200, body, lro_headers(req, op))


def delete_response(req: Request, op: Operation) -> Response:
    return Response(202, None, lro_headers(req, op, location=True))


def action_response(req: Request, op: Operation, *, location: str | None = None) -> Response:
    headers = {"Location": location or result_url(req, op), **retry_after(req, op)}
    return Response(202, None, headers)


def ensure_free(req: Request, ids: list[str]) -> None:
    """One write at a time: 409 AnotherOperationInProgress (or 429 RetryableErrorDueToAnotherOperation)."""
    for rid in ids:
        op = req.world.ops.busy(rid, req.now)
        if op is None:
            continue
        name = rid.rstrip("/").rsplit("/", 1)[-1]
        wait = max(1, int(op.end - req.now + 0.999))
        if req.config.conflict_status == 429:
            raise ArmError(
                429,
                "RetryableErrorDueToAnotherOperation",
                f"Operation on resource {name} cannot be performed because another operation "
                f"({op.kind}, id {op.id}) is in progress. Please retry after some time.",
                headers={"Retry-After": str(wait)},
            )
        raise ArmError(
            409,
            "AnotherOperationInProgress",
            f"Another operation on this or dependent resource is in progress. To retrieve status of the "
            f"operation use uri: {status_url(req, op)}.",
            details=[],
        )


def status_body(op: Operation, now: float) -> dict[str, Any]:
    status = op.status(now)
    done = status != "InProgress"
    elapsed = max(0.0, now - op.start)
    pct = 100.0 if done else (min(99.0, 100.0 * elapsed / op.duration) if op.duration else 0.0)
    body: dict[str, Any] = {
        "id": f"/subscriptions/{op.subscription}/providers/{op.namespace}/locations/{op.location}"
        f"/operations/{op.id}",
        "name": op.id,
        "status": status,
        "startTime": iso(op.start),
        "percentComplete": round(pct, 1),
    }
    if done:
        body["endTime"] = iso(op.end)
    if status in ("Failed", "Canceled"):
        body["error"] = op.error
    return body


def _status(req: Request) -> Response:
    op = req.world.ops.get(req.path.rstrip("/").rsplit("/", 1)[-1])
    if op is None:
        raise ArmError(404, "OperationNotFound", "The operation was not found.")
    body = status_body(op, req.now)
    headers = retry_after(req, op) if body["status"] == "InProgress" else {}
    return Response(200, body, headers)


def _result(req: Request) -> Response:
    op = req.world.ops.get(req.path.rstrip("/").rsplit("/", 1)[-1])
    if op is None:
        raise ArmError(404, "OperationNotFound", "The operation was not found.")
    status = op.status(req.now)
    if status == "InProgress":
        return Response(202, None, {"Location": req.base_url + req.path + "?" + _qs(req), **_ra(req, op)})
    if status in ("Failed", "Canceled"):
        err = op.error or {}
        raise ArmError(400, err.get("code", "Failed"), err.get("message", "The operation failed."))
    if op.result is not None:
        return Response(200, op.result)
    return Response(204 if op.is_delete else 200, None)


def _ra(req: Request, op: Operation) -> dict[str, str]:
    return retry_after(req, op)


def _qs(req: Request) -> str:
    return "&".join(f"{k}={v}" for k, v in req.query.items())


def register(reg: Registry) -> None:
    kinds = "|".join(STATUS_KINDS)
    results = "|".join(RESULT_KINDS)
    reg.route("GET", rf"^/subscriptions/[^/]+/providers/[^/]+/locations/[^/]+/({kinds})/[^/]+$", _status)
    reg.route("GET", rf"^/subscriptions/[^/]+/providers/[^/]+/locations/[^/]+/({results})/[^/]+$", _result)
    reg.route("GET", r"^/subscriptions/[^/]+/operationresults/[^/]+$", _result)


def wall_clock() -> float:
    return time.time()

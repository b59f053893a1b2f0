"""The ARM emulator: an HTTPS server (stdlib ThreadingHTTPServer, HTTP/1.1 keep-alive) that the real
Azure SDKs talk to, with its world on disk. Public API: `Emulator`."""

from __future__ import annotations

import importlib
import json
import socket
import threading
import time
import uuid
from collections import Counter, deque
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aks_lockdown.arm.clients import EMULATOR_TENANT_ID, Target
from aks_lockdown.emulator import identity, lro, network
from aks_lockdown.emulator.config import EmulatorConfig, Profile
from aks_lockdown.emulator.datalock import DataDirLock
from aks_lockdown.emulator.faults import Faults, Throttle
from aks_lockdown.emulator.framework import ArmError, Registry, Request, ResourceId, Response, not_found
from aks_lockdown.emulator.generic import (  # re-exported: providers import them from here too
    generic_delete,
    generic_get,
    generic_list,
    generic_patch,
    no_type,
)
from aks_lockdown.emulator.tls import ensure_tls, server_context
from aks_lockdown.emulator.transport import Handler, Server, is_loopback, read_body
from aks_lockdown.emulator.world import Operation, World

PROVIDER_MODULES = (
    "aks_lockdown.emulator.resources",
    "aks_lockdown.emulator.network",
    "aks_lockdown.emulator.msi",
    "aks_lockdown.emulator.authorization",
)
# The AKS part plugs in here when its module exists.
OPTIONAL_PROVIDER_MODULES = ("aks_lockdown.emulator.containerservice",)
MAX_LOGGED_REQUESTS = 100_000


def _load_providers() -> list[ModuleType]:
    mods = [importlib.import_module(m) for m in PROVIDER_MODULES]
    for name in OPTIONAL_PROVIDER_MODULES:
        try:
            mods.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return mods


class Emulator:
    """A local, stateful ARM. `with Emulator(tmp_path) as emu:` then point clients at `emu.target()`."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        profile: Profile = "fast",
        time_scale: float = 1.0,
        seed: int = 0,
        principal_delay: float | None = None,
        cloud: str = "AzureCloud",
        conflict_status: int = 409,
        durations: dict[str, float] | None = None,
        throttling: bool = True,
        throttle_scale: float = 1.0,
        precise_retry_after: bool = False,
        fsync: bool = True,
    ):
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.config = EmulatorConfig(
            profile=profile,
            time_scale=time_scale,
            seed=seed,
            principal_delay=principal_delay,
            cloud=cloud,
            conflict_status=conflict_status,
            overrides=dict(durations or {}),
            throttling=throttling,
            throttle_scale=throttle_scale,
            precise_retry_after=precise_retry_after,
        )
        self.tenant_id = EMULATOR_TENANT_ID
        self.faults = Faults(seed)
        self.throttle = Throttle(throttle_scale, throttling)
        self.world = World(self.data_dir / "world.json", time.time, fsync=fsync)
        self.registry = Registry()
        self._log: deque[dict[str, Any]] = deque(maxlen=MAX_LOGGED_REQUESTS)
        self._log_lock = threading.Lock()
        self._httpd: Server | None = None
        self._thread: threading.Thread | None = None
        self._current = threading.local()
        self.ca_bundle = ""
        self.arm_endpoint = ""
        self._data_lock = DataDirLock(self.data_dir)
        self._world_loaded = False

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Emulator:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # One emulator per data dir: a second would overwrite the world and fight over its DNAT
        # addresses. EmulatorDataLockedError (an InputError, exit 2) names the holder and its endpoint.
        self._data_lock.acquire()
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Emulator:
        tls = ensure_tls(self.data_dir)
        self.ca_bundle = str(tls.ca)
        if not self.registry.types:  # start() after stop(): keep the providers (and hooks) registered once
            lro.register(self.registry)
            for mod in _load_providers():
                mod.register(self.registry)
        w = self.world
        w.renderers = dict(self.registry.renderers)
        w.completions = dict(self.registry.completions)
        w.take_forced_failure = self._forced_failure
        w.load()
        self._world_loaded = True
        w.meta.setdefault("tenant_id", self.tenant_id)
        # The world's own loopback block for public IPs: drawn when the world is created, kept after.
        network.public_ip_block(w)
        w.prune_operations()
        if not w.subscriptions:
            sub = str(uuid.uuid5(uuid.NAMESPACE_URL, f"aks-lockdown-emulator/{self.config.seed}"))
            w.subscriptions[sub] = _subscription(sub, self.tenant_id, "aks-lockdown emulator")
            w.touch()
        with w.lock:
            w.settle()
            w.persist()
        self._httpd = Server((self.host, self.port), Handler, self, server_context(tls))
        self.port = self._httpd.server_address[1]
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        self.arm_endpoint = f"https://[{host}]:{self.port}" if ":" in host else f"https://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="arm-emulator", daemon=True
        )
        self._thread.start()
        self._data_lock.describe(endpoint=self.arm_endpoint, ca_bundle=str(Path(self.ca_bundle).resolve()))
        for hook in self.registry.hooks:
            hook.start(self)
        w.change_listeners = [h.on_change for h in self.registry.hooks]
        with w.lock:
            for h in self.registry.hooks:
                h.on_change(w)
        return self

    def stop(self) -> None:
        # Requests first: one still in flight would persist and so call the hooks' on_change, which
        # reopened the DNAT listeners of a stopped hook (left open for the life of the process, so the
        # next emulator on the same world could not bind them). Then the hooks, detached from the world
        # so the final persist below does not wake them either.
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.close_connections()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self.world.lock:
            self.world.change_listeners = []
        for hook in self.registry.hooks:
            try:
                hook.stop()
            except Exception:  # a hook failing to stop must not keep the server up
                pass
        if not self._data_lock.held:
            return  # never started (or refused): the world on disk is another emulator's, leave it
        try:
            if self._world_loaded:
                with self.world.lock:
                    self.world.persist()
        finally:
            self._world_loaded = False
            self._data_lock.release()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- public helpers --------------------------------------------------------------------------
    @property
    def subscription_id(self) -> str:
        return next(iter(self.world.subscriptions))

    def add_subscription(self, subscription_id: str | None = None, display_name: str = "emulator") -> str:
        sub = subscription_id or str(uuid.uuid4())
        with self.world.lock:
            self.world.subscriptions[sub] = _subscription(sub, self.tenant_id, display_name)
            self.world.touch()
            self.world.persist()
        return sub

    def target(self, cloud: str = "AzureCloud") -> Target:
        return Target(
            cloud=cloud,
            arm_endpoint=self.arm_endpoint,
            ca_bundle=self.ca_bundle,
            subscription_id=self.subscription_id,
            tenant_id=self.tenant_id,
        )

    def requests(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        since: float | None = None,
        status: int | None = None,
    ) -> list[dict[str, Any]]:
        """Requests served, oldest first; `path` is a regex searched in the path."""
        import re

        rx = re.compile(path, re.IGNORECASE) if path else None
        with self._log_lock:
            items = list(self._log)
        return [
            r
            for r in items
            if (method is None or r["method"] == method.upper())
            and (rx is None or rx.search(r["path"]))
            and (since is None or r["time"] >= since)
            and (status is None or r["status"] == status)
        ]

    def stats(self) -> dict[str, Any]:
        with self._log_lock:
            items = list(self._log)
        by_method = Counter(r["method"] for r in items)
        by_type = Counter(r["resource_type"] or "-" for r in items)
        by_kind = Counter(r["kind"] for r in items)
        by_status = Counter(str(r["status"]) for r in items)
        return {
            "total": len(items),
            "by_method": dict(by_method),
            "by_resource_type": dict(by_type),
            "reads": by_kind.get("reads", 0),
            "writes": by_kind.get("writes", 0),
            "deletes": by_kind.get("deletes", 0),
            "by_status": dict(by_status),
            **self.hook_status(),
        }

    def hook_status(self) -> dict[str, Any]:
        """`status()` of every hook that has one, keyed by its `status_key` (the DNAT hook: "dnat",
        with its listeners and the ports it could not bind)."""
        out: dict[str, Any] = {}
        for hook in self.registry.hooks:
            fn = getattr(hook, "status", None)
            if callable(fn):
                key = getattr(hook, "status_key", None) or type(hook).__name__.lower()
                try:
                    out[key] = fn()
                except Exception as exc:  # introspection must answer even if a hook is broken
                    out[key] = {"error": repr(exc)}
        return out

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        return self.faults.add(**rule).public()

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset(self) -> None:
        """Empty the world (keeping the subscriptions), the request log, faults and throttle state."""
        w = self.world
        with w.lock:
            w.resources.clear()
            w.ops.items.clear()
            w.ops.pending.clear()
            block = w.meta.get(network.PUBLIC_IP_BLOCK_KEY)
            w.meta.clear()
            w.meta["tenant_id"] = self.tenant_id
            if block is not None:
                w.meta[network.PUBLIC_IP_BLOCK_KEY] = block  # the world's addresses stay its own
            w.touch()
            w.persist()
        with self._log_lock:
            self._log.clear()
        self.faults.clear()
        self.throttle.reset()

    def world_view(self) -> dict[str, Any]:
        w = self.world
        with w.lock:
            w.settle()
            w.persist()
            now = w.clock()
            return {
                "subscriptions": list(w.subscriptions.values()),
                "resources": [w.render(r) for r in w.resources.values()],
                "operations": [
                    {**lro.status_body(o, now), "resourceId": o.resource_id, "kind": o.kind}
                    for o in w.ops.items.values()
                ],
                "meta": w.meta,
            }

    def set_throttling(self, enabled: bool = True, scale: float | None = None) -> None:
        self.throttle.enabled = enabled
        if scale is not None:
            self.throttle.scale = scale
        self.throttle.reset()

    # ---- request handling ------------------------------------------------------------------------
    def _forced_failure(self, op: Operation) -> dict[str, Any] | None:
        method = getattr(self._current, "method", "DELETE" if op.is_delete else "PUT")
        rule = self.faults.match(method, op.resource_id, operation=True)
        if rule is None:
            rule = self.faults.match(method, getattr(self._current, "path", op.resource_id), operation=True)
        if rule is None:
            return None
        return {
            "code": rule.code or "InternalServerError",
            "message": rule.message or f"The operation failed ({rule.code or 'InternalServerError'}).",
            "details": [],
        }

    def handle(self, h: Handler, method: str) -> None:
        started = time.time()
        url = urlsplit(h.path)
        path = url.path.rstrip("/") or "/"
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in h.headers.items()}
        raw = read_body(h, headers)
        corr = (
            headers.get("x-ms-correlation-request-id")
            or headers.get("x-ms-client-request-id")
            or str(uuid.uuid4())
        )
        common = {
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-correlation-request-id": corr,
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Expires": "-1",
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
            "X-Content-Type-Options": "nosniff",
            "x-ms-routing-request-id": f"LOCAL:{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}:{corr}",
        }
        if "x-ms-client-request-id" in headers:
            common["x-ms-client-request-id"] = headers["x-ms-client-request-id"]
        rtype: str | None = None
        kind = Throttle.kind(method)
        try:
            if path.startswith("/_emulator"):
                # Not logged: reading the log or stats must not change them.
                resp = self._introspection(h, method, path, query, raw)
                self._send(h, method, resp.status, resp.body, {**common, **resp.headers})
                return
            elif "/oauth2/" in path or "/.well-known/" in path or path.endswith("/discovery/instance"):
                resp = self._identity(method, path, raw)
                rtype = kind = "identity"
            else:
                rid = ResourceId.parse(path)
                rtype = rid.type or (
                    "Microsoft.Resources/subscriptions" if path.startswith("/subscriptions") else None
                )
                identity.check_bearer(headers.get("authorization"), self.tenant_id)
                rule = self.faults.match(method, path)
                if rule is not None:
                    fault = self._apply_fault(h, rule)
                    if fault == "reset":
                        self._record(method, path, query, 0, started, rtype, kind, common)
                        return
                if "api-version" not in query:
                    raise ArmError(
                        400,
                        "MissingApiVersionParameter",
                        "The api-version query parameter (?api-version=) is required for all requests.",
                    )
                sub = rid.subscription or "-"
                ok, remaining, wait = self.throttle.take(sub, method)
                common[f"x-ms-ratelimit-remaining-subscription-{kind}"] = str(remaining)
                if not ok:
                    raise ArmError(
                        429,
                        "SubscriptionRequestsThrottled",
                        f"Number of '{kind[:-1]}' requests for subscription '{sub}' exceeded. "
                        "Please try again "
                        f"after '{wait}' seconds after additional tokens are available. Refer to "
                        "https://aka.ms/arm-throttling for additional information.",
                        headers={"Retry-After": str(wait)},
                    )
                body = json.loads(raw) if raw.strip() else None
                resp = self._dispatch(method, path, query, headers, body, rid)
        except ArmError as exc:
            resp = Response(exc.status, exc.body(), dict(exc.headers))
        except json.JSONDecodeError as exc:
            resp = Response(
                400, ArmError(400, "InvalidRequestContent", f"The request content was invalid: {exc}").body()
            )
        except Exception as exc:  # an emulator bug must still answer as ARM would
            import traceback

            traceback.print_exc()
            resp = Response(500, ArmError(500, "InternalServerError", f"emulator error: {exc!r}").body())
        merged = {**common, **resp.headers}
        # Logged before the answer goes out, so a client that reads the log next sees its request.
        self._record(method, path, query, resp.status, started, rtype, kind, merged)
        self._send(h, method, resp.status, resp.body, merged)

    def _apply_fault(self, h: Handler, rule: Any) -> str | None:
        if rule.action == "reset":
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return "reset"
        if rule.action == "delay":
            time.sleep(rule.seconds)
            return None
        if rule.action == "status":
            status = int(rule.status or 500)
            code = rule.code or {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(
                status, "InternalServerError"
            )
            extra = (
                {"Retry-After": str(rule.retry_after or 1)}
                if status in (429, 503) or rule.retry_after
                else {}
            )
            raise ArmError(status, code, rule.message or f"Injected fault: {status} {code}.", headers=extra)
        if rule.action == "error":
            code = rule.code or "BadRequest"
            extra = {"Retry-After": str(rule.retry_after)} if rule.retry_after else {}
            raise ArmError(
                int(rule.status or 400), code, rule.message or f"Injected fault: {code}.", headers=extra
            )
        return None

    def _dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: Any,
        rid: ResourceId,
    ) -> Response:
        w = self.world
        with w.lock:
            now = w.clock()
            w.settle(now)
            self._current.method = method
            self._current.path = path
            req = Request(
                method,
                path,
                query,
                headers,
                body,
                query["api-version"],
                rid,
                w,
                self.config,
                now,
                self.arm_endpoint,
                self.registry,
            )
            try:
                resp = self._route(req)
            finally:
                w.persist()
            return resp

    def _route(self, req: Request) -> Response:
        method, path, rid, w = req.method, req.path, req.rid, req.world
        if path == "/subscriptions" and method == "GET":
            return Response(
                200,
                {
                    "count": {"type": "Total", "value": len(w.subscriptions)},
                    "value": list(w.subscriptions.values()),
                },
            )
        if rid.subscription is None or rid.subscription not in w.subscriptions:
            raise ArmError(
                404, "SubscriptionNotFound", f"The subscription '{rid.subscription}' could not be found."
            )
        for m, rx, fn in self.registry.routes:
            if (m == method or (m == "GET" and method == "HEAD")) and rx.match(path):
                return fn(req)
        if path.count("/") == 2 and method == "GET":
            return Response(200, w.subscriptions[rid.subscription])
        if (
            rid.resource_group
            and rid.namespace != "Microsoft.Resources"
            and w.get(f"/subscriptions/{rid.subscription}/resourceGroups/{rid.resource_group}") is None
        ):
            raise ArmError(
                404, "ResourceGroupNotFound", f"Resource group '{rid.resource_group}' could not be found."
            )
        if rid.namespace is None or not rid.types:
            raise ArmError(404, "NotFound", f"No route for {method} {path}.")
        if rid.resource_group and method in ("PUT", "PATCH", "POST"):
            rg_op = w.ops.busy(
                f"/subscriptions/{rid.subscription}/resourceGroups/{rid.resource_group}", req.now
            )
            if rg_op is not None and rg_op.is_delete:
                raise ArmError(
                    409,
                    "ResourceGroupBeingDeleted",
                    f"The resource group '{rid.resource_group}' is in deprovisioning state and cannot "
                    "perform this operation.",
                )
        if rid.is_collection:
            if method == "POST":
                th = self.registry.lookup(rid.parent_type)
                action = rid.types[-1]
                if th is None or action not in th.actions:
                    raise ArmError(
                        400,
                        "InvalidResourceType" if th is None else "InvalidAction",
                        f"The action '{action}' is not supported for '{rid.parent_type}'.",
                    )
                parent = rid.parent_id_for_action()
                if w.get(parent) is None:
                    raise not_found(ResourceId.parse(parent))
                return th.actions[action](req)
            if method == "GET":
                th = self.registry.lookup(rid.type)
                if th is not None and th.list is not None:
                    return th.list(req)
                if th is None:
                    raise no_type(rid)
                return generic_list(req)
            raise ArmError(405, "MethodNotAllowed", f"{method} is not allowed on a collection.")
        th = self.registry.lookup(rid.type)
        if th is None:
            raise no_type(rid)
        if rid.parent is not None and w.get(rid.parent) is None and method != "DELETE":
            raise not_found(ResourceId.parse(rid.parent))
        fn = {"PUT": th.put, "GET": th.get, "HEAD": th.get, "DELETE": th.delete, "PATCH": th.patch}.get(
            method
        )
        if fn is None:
            fn = {
                "GET": generic_get,
                "HEAD": generic_get,
                "DELETE": generic_delete,
                "PATCH": generic_patch,
            }.get(method)
        if fn is None:
            raise ArmError(405, "MethodNotAllowed", f"{method} is not supported for '{rid.type}'.")
        return fn(req)

    def _introspection(
        self, h: Handler, method: str, path: str, query: dict[str, str], raw: bytes
    ) -> Response:
        if not is_loopback(h.client_address[0]):
            raise ArmError(
                403, "Forbidden", "The emulator's introspection endpoints answer loopback clients only."
            )
        body = json.loads(raw) if raw.strip() else {}
        if path == "/_emulator/requests" and method == "GET":
            since = float(query["since"]) if "since" in query else None
            return Response(
                200,
                self.requests(
                    method=query.get("method"),
                    path=query.get("path"),
                    since=since,
                    status=int(query["status"]) if "status" in query else None,
                ),
            )
        if path == "/_emulator/stats" and method == "GET":
            return Response(200, self.stats())
        if path == "/_emulator/world" and method == "GET":
            return Response(200, self.world_view())
        if path == "/_emulator/reset" and method == "POST":
            self.reset()
            return Response(200, {"reset": True})
        if path == "/_emulator/faults":
            if method == "POST":
                rules = body if isinstance(body, list) else body.get("rules", [body])
                try:
                    return Response(200, {"rules": [self.add_fault(**r) for r in rules]})
                except (TypeError, ValueError) as exc:
                    raise ArmError(400, "InvalidFaultRule", str(exc)) from None
            if method == "DELETE":
                self.clear_faults()
                return Response(200, {"rules": []})
            if method == "GET":
                return Response(200, {"rules": [r.public() for r in self.faults.rules]})
        if path == "/_emulator/throttling" and method == "POST":
            self.set_throttling(bool(body.get("enabled", True)), body.get("scale"))
            return Response(200, {"enabled": self.throttle.enabled, "scale": self.throttle.scale})
        raise ArmError(404, "NotFound", f"No introspection endpoint {method} {path}.")

    def _identity(self, method: str, path: str, raw: bytes) -> Response:
        parts = path.strip("/").split("/")
        tenant = parts[0]
        if path.endswith("/discovery/instance"):
            return Response(
                200,
                {
                    "tenant_discovery_endpoint": (
                        f"{self.arm_endpoint}/common/.well-known/openid-configuration"
                    ),
                    "api-version": "1.1",
                    "metadata": [],
                },
            )
        if path.endswith("/.well-known/openid-configuration") and method == "GET":
            return Response(200, identity.openid_configuration(self.arm_endpoint, tenant))
        if path.endswith("/oauth2/v2.0/token") and method == "POST":
            status, body = identity.issue_token(self.arm_endpoint, tenant, raw)
            return Response(status, body)
        raise ArmError(404, "NotFound", f"No identity endpoint {method} {path}.")

    def _send(self, h: Handler, method: str, status: int, body: Any, headers: dict[str, str]) -> None:
        data = b"" if body is None or status == 204 else json.dumps(body).encode()
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if data:
            h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        if data and method != "HEAD":
            h._headers_buffer.append(b"\r\n" + data)  # one write for head and body
            h.flush_headers()
        else:
            h.end_headers()

    def _record(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        status: int,
        started: float,
        rtype: str | None,
        kind: str,
        headers: dict[str, str],
    ) -> None:
        entry = {
            "method": method,
            "path": path,
            "api_version": query.get("api-version"),
            "status": status,
            "time": started,
            "duration_ms": round((time.time() - started) * 1000, 3),
            "resource_type": rtype,
            "kind": kind,
            "request_id": headers.get("x-ms-request-id"),
            "correlation_id": headers.get("x-ms-correlation-request-id"),
        }
        with self._log_lock:
            self._log.append(entry)


def _subscription(sub: str, tenant: str, name: str) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{sub}",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": sub,
        "tenantId": tenant,
        "displayName": name,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    }

"""What providers plug into: ARM errors, requests/responses, resource ids and the registry."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aks_lockdown.emulator.config import EmulatorConfig
    from aks_lockdown.emulator.world import Operation, World


class ArmError(Exception):
    """An ARM error answer: rendered as {"error": {"code", "message", "target", "details": []}}."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "target": self.target,
                "details": self.details,
            }
        }

    def as_error(self) -> dict[str, Any]:
        """The error object as an operation status carries it."""
        return {"code": self.code, "message": self.message, "details": self.details}


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


# A path segment pair list; ARM ids are case-insensitive but keep the casing they were created with.
_SUB_RE = re.compile(r"^/subscriptions/([^/]+)(?:/resourcegroups/([^/]+))?", re.IGNORECASE)


@dataclass(frozen=True)
class ResourceId:
    """A parsed ARM path. `scope` is everything before the last /providers/ (an extension resource such
    as a role assignment can sit on any scope)."""

    path: str
    scope: str
    subscription: str | None
    resource_group: str | None
    namespace: str | None
    types: tuple[str, ...]
    names: tuple[str, ...]
    action: str | None = None

    @staticmethod
    def parse(path: str) -> ResourceId:
        path = "/" + path.strip("/")
        m = _SUB_RE.match(path)
        sub = m.group(1) if m else None
        rg = m.group(2) if m else None
        low = path.lower()
        i = low.rfind("/providers/")
        if i < 0:
            # /subscriptions/s[/resourceGroups/rg[/action]]: the resource group itself.
            parts = path.strip("/").split("/")
            action = parts[4] if len(parts) == 5 and rg else None
            types: tuple[str, ...] = ("resourceGroups",) if rg else ()
            names: tuple[str, ...] = (rg,) if rg else ()
            scope = f"/subscriptions/{sub}" if sub else ""
            return ResourceId(
                path, scope, sub, rg, "Microsoft.Resources" if rg else None, types, names, action
            )
        scope = path[:i]
        rest = path[i + len("/providers/") :].split("/")
        ns = rest[0]
        segs = rest[1:]
        types_l = segs[0::2]
        names_l = segs[1::2]
        action = None
        if len(types_l) > len(names_l) and len(types_l) >= 2:
            # .../type/name/action: an odd trailing segment after a named resource is a POST action
            # or a collection of a child type; dispatch decides by method and registry.
            action = types_l[-1]
        return ResourceId(path, scope, sub, rg, ns, tuple(types_l), tuple(names_l), action)

    @property
    def is_collection(self) -> bool:
        return len(self.types) > len(self.names)

    @property
    def type(self) -> str:
        """Full type, e.g. Microsoft.Network/virtualNetworks/subnets (collection: the listed type)."""
        if self.namespace is None:
            return ""
        return "/".join((self.namespace, *self.types))

    @property
    def parent_type(self) -> str:
        return "/".join((self.namespace or "", *self.types[:-1]))

    @property
    def name(self) -> str | None:
        return self.names[-1] if self.names and not self.is_collection else None

    @property
    def id(self) -> str:
        """Canonical id of the resource (for a collection or action: of the named resource before it)."""
        if (
            self.namespace == "Microsoft.Resources"
            and self.resource_group
            and "/providers/" not in self.path.lower()
        ):
            return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
        pairs = [f"{t}/{n}" for t, n in zip(self.types, self.names, strict=False)]
        return f"{self.scope}/providers/{self.namespace}/" + "/".join(pairs)

    def parent_id_for_action(self) -> str:
        """Id of the named resource a trailing collection or action segment hangs off."""
        pairs = [f"{t}/{n}" for t, n in zip(self.types[:-1], self.names, strict=False)]
        return f"{self.scope}/providers/{self.namespace}/" + "/".join(pairs)

    @property
    def parent(self) -> str | None:
        if len(self.names) < 2:
            return None
        pairs = [f"{t}/{n}" for t, n in zip(self.types[:-1], self.names[:-1], strict=False)]
        return f"{self.scope}/providers/{self.namespace}/" + "/".join(pairs)


def rg_id(subscription: str, rg: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{rg}"


def not_found(rid: ResourceId) -> ArmError:
    """404 worded as ARM words it."""
    kind = "/".join(
        [rid.namespace or ""] + [p for pair in zip(rid.types, rid.names, strict=False) for p in pair]
    )
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{kind}' under resource group '{rid.resource_group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    api_version: str
    rid: ResourceId
    world: World
    config: EmulatorConfig
    now: float
    base_url: str
    registry: Registry | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


Handler = Callable[[Request], Response]
CompletionFn = Callable[["World", "Operation"], None]


class Hook(Protocol):
    def start(self, emu: Any) -> None: ...
    def on_change(self, world: World) -> None: ...
    def stop(self) -> None: ...


@dataclass
class TypeHandlers:
    type: str
    put: Handler | None = None
    get: Handler | None = None
    delete: Handler | None = None
    patch: Handler | None = None
    list: Handler | None = None
    actions: dict[str, Handler] = field(default_factory=dict)


class Registry:
    """Handlers by resource type (case-insensitive), free-form routes, completion callbacks, hooks."""

    def __init__(self) -> None:
        self.types: dict[str, TypeHandlers] = {}
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.completions: dict[str, CompletionFn] = {}
        self.hooks: list[Hook] = []
        # Renderers turn a stored record into its GET view (e.g. merging children); keyed by type.
        self.renderers: dict[str, Callable[[World, Any], dict[str, Any]]] = {}

    def resource_type(
        self,
        type_: str,
        *,
        put: Handler | None = None,
        get: Handler | None = None,
        delete: Handler | None = None,
        patch: Handler | None = None,
        list: Handler | None = None,  # mirrors the ARM verb
        actions: dict[str, Handler] | None = None,
        render: Callable[[World, Any], dict[str, Any]] | None = None,
    ) -> None:
        self.types[type_.lower()] = TypeHandlers(type_, put, get, delete, patch, list, dict(actions or {}))
        if render is not None:
            self.renderers[type_.lower()] = render

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method.upper(), re.compile(pattern, re.IGNORECASE), handler))

    def on_complete(self, name: str, fn: CompletionFn) -> None:
        self.completions[name] = fn

    def hook(self, hook: Hook) -> None:
        self.hooks.append(hook)

    def lookup(self, type_: str) -> TypeHandlers | None:
        return self.types.get(type_.lower())

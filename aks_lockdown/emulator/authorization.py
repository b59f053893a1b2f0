"""Microsoft.Authorization: built-in role definitions (real ids) and role assignments at any scope."""

from __future__ import annotations

import re
from typing import Any

from aks_lockdown.emulator.framework import ArmError, Registry, Request, ResourceId, Response, not_found
from aks_lockdown.emulator.msi import principals
from aks_lockdown.emulator.world import Record, World

RA_TYPE = "Microsoft.Authorization/roleAssignments"
RD_TYPE = "Microsoft.Authorization/roleDefinitions"

# Real built-in role definition ids (learn.microsoft.com "Azure built-in roles").
BUILTIN_ROLES: dict[str, tuple[str, str, list[str]]] = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": (
        "Owner",
        "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        ["*"],
    ),
    "b24988ac-6180-42a0-ab88-20f7382dd24c": (
        "Contributor",
        "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
        ["*"],
    ),
    "acdd72a7-3299-48c4-9ad4-9c8e4f3f5a8f": (
        "Reader",
        "View all resources, but does not allow you to make any changes.",
        ["*/read"],
    ),
    "4d97b98b-1d4f-4787-a291-c67834d212e7": (
        "Network Contributor",
        "Lets you manage networks, but not access to them.",
        ["Microsoft.Network/*"],
    ),
    "f1a07417-d97a-45cb-824c-7a7467783830": (
        "Managed Identity Operator",
        "Read and Assign User Assigned Identity",
        ["Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action"],
    ),
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": (
        "User Access Administrator",
        "Lets you manage user access to Azure resources.",
        ["Microsoft.Authorization/*"],
    ),
    "ed7f3fbd-7b88-4dd4-9017-9adb7ce333f8": (
        "Azure Kubernetes Service Contributor Role",
        "Grants access to read and write Azure Kubernetes Service clusters",
        ["Microsoft.ContainerService/managedClusters/*"],
    ),
    "4abbcc35-e782-43d8-92c5-2d3f1bd2253f": (
        "Azure Kubernetes Service Cluster User Role",
        "List cluster user credential action.",
        ["Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"],
    ),
}
# Roles that let a cluster identity manage a subnet / route table (for the AKS part's check).
NETWORK_WRITER_ROLES = (
    "4d97b98b-1d4f-4787-a291-c67834d212e7",
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
)
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def role_definition_body(scope: str, role_id: str, custom: dict[str, Any] | None = None) -> dict[str, Any]:
    scope = scope.rstrip("/")
    if custom is not None:
        props = dict(custom)
    else:
        name, desc, actions = BUILTIN_ROLES[role_id]
        props = {
            "roleName": name,
            "type": "BuiltInRole",
            "description": desc,
            "assignableScopes": ["/"],
            "permissions": [{"actions": actions, "notActions": [], "dataActions": [], "notDataActions": []}],
            "createdOn": "2015-02-02T21:55:09.8806423Z",
            "updatedOn": "2021-11-11T20:13:47.8628684Z",
            "createdBy": None,
            "updatedBy": None,
        }
    return {
        "properties": props,
        "id": f"{scope}/providers/Microsoft.Authorization/roleDefinitions/{role_id}",
        "type": RD_TYPE,
        "name": role_id,
    }


def _custom_roles(world: World) -> dict[str, dict[str, Any]]:
    return world.meta.setdefault("custom_roles", {})


def role_exists(world: World, role_id: str) -> bool:
    return role_id.lower() in BUILTIN_ROLES or role_id.lower() in _custom_roles(world)


def get_role_definition(req: Request) -> Response:
    role_id = (req.rid.name or "").lower()
    if role_id in BUILTIN_ROLES:
        return Response(200, role_definition_body(req.rid.scope, role_id))
    custom = _custom_roles(req.world).get(role_id)
    if custom is not None:
        return Response(200, role_definition_body(req.rid.scope, role_id, custom))
    raise ArmError(
        404,
        "RoleDefinitionDoesNotExist",
        f"The specified role definition with ID '{req.rid.name}' does not exist.",
    )


def put_role_definition(req: Request) -> Response:
    """Custom roles (so examples that reference non built-in role ids can be replayed)."""
    role_id = (req.rid.name or "").lower()
    if role_id in BUILTIN_ROLES:
        raise ArmError(400, "RoleDefinitionUpdateNotAllowed", "Built-in role definitions cannot be changed.")
    props = dict((req.body or {}).get("properties") or {})
    props.setdefault("type", "CustomRole")
    props.setdefault("assignableScopes", [req.rid.scope])
    created = role_id not in _custom_roles(req.world)
    _custom_roles(req.world)[role_id] = props
    req.world.touch()
    return Response(201 if created else 200, role_definition_body(req.rid.scope, role_id, props))


def list_role_definitions(req: Request) -> Response:
    flt = req.query.get("$filter", "")
    items = [role_definition_body(req.rid.scope, rid) for rid in BUILTIN_ROLES]
    items += [role_definition_body(req.rid.scope, rid, p) for rid, p in _custom_roles(req.world).items()]
    m = re.search(r"roleName\s+eq\s+'([^']*)'", flt)
    if m:
        items = [i for i in items if i["properties"]["roleName"].lower() == m.group(1).lower()]
    return Response(200, {"value": items})


# ---- role assignments ------------------------------------------------------------------------------
def render_assignment(world: World, rec: Record) -> dict[str, Any]:
    return {
        "properties": dict(rec.body["properties"]),
        "id": rec.id,
        "type": RA_TYPE,
        "name": rec.id.rsplit("/", 1)[-1],
    }


def _role_guid(role_definition_id: str) -> str:
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


def put_assignment(req: Request) -> Response:
    rid = req.rid
    w = req.world
    props = dict((req.body or {}).get("properties") or {})
    role_def = str(props.get("roleDefinitionId") or "")
    principal = str(props.get("principalId") or "")
    if not role_def or not principal:
        raise ArmError(
            400,
            "InvalidRoleAssignmentRequest" if not role_def else "InvalidPrincipalId",
            "The request must carry properties.roleDefinitionId and properties.principalId.",
        )
    if not _GUID.match(rid.name or ""):
        raise ArmError(
            400,
            "InvalidRoleAssignmentId",
            f"The role assignment ID '{rid.name}' is not valid. The role assignment ID must be a GUID.",
        )
    role = _role_guid(role_def)
    if not role_exists(w, role):
        raise ArmError(
            400,
            "RoleDefinitionDoesNotExist",
            f"The specified role definition with ID '{role}' does not exist.",
        )
    if not _GUID.match(principal):
        raise ArmError(
            400, "InvalidPrincipalId", "A valid principal ID must be provided for role assignment."
        )
    known = principals(w).get(principal)
    # Without principalType ARM looks the principal up in the directory; a principal created less
    # than principal_delay ago (replication) or unknown is PrincipalNotFound.
    if not props.get("principalType") and (
        known is None or req.now - float(known["created"]) < req.config.principal_visible_after()
    ):
        raise ArmError(
            400,
            "PrincipalNotFound",
            f"Principal {principal.replace('-', '')} does not exist in "
            f"the directory {_tenant(req)}. Check that you have the correct principal ID. If you "
            "are creating this principal and then immediately assigning a role, this error might "
            "be related to a replication delay. In this case, set the role assignment principalType "
            "property to a value, such as ServicePrincipal, User, or Group.  See "
            "https://aka.ms/docs-principaltype",
        )
    scope = rid.scope
    for other in _assignments_at(w, scope):
        op = other.body["properties"]
        if (
            other.id.lower() != rid.id.lower()
            and op["principalId"].lower() == principal.lower()
            and _role_guid(op["roleDefinitionId"]) == role
        ):
            raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
    existing = w.get(rid.id)
    if existing is not None:
        ep = existing.body["properties"]
        if ep["principalId"].lower() != principal.lower() or _role_guid(ep["roleDefinitionId"]) != role:
            raise ArmError(
                400,
                "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            )
    stored = {
        "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{role}"
        if role in BUILTIN_ROLES
        else role_def,
        "principalId": principal,
        "principalType": props.get("principalType") or (known or {}).get("type", "ServicePrincipal"),
        "scope": scope,
        "condition": props.get("condition"),
        "conditionVersion": props.get("conditionVersion"),
        "createdOn": (existing.body["properties"].get("createdOn") if existing else None) or _iso(req.now),
        "updatedOn": _iso(req.now),
        "createdBy": None,
        "updatedBy": None,
        "delegatedManagedIdentityResourceId": None,
        "description": props.get("description"),
    }
    rec = w.upsert(existing.id if existing else rid.id, RA_TYPE, {"properties": stored})
    return Response(201 if existing is None else 200, render_assignment(w, rec))


def _iso(ts: float) -> str:
    from aks_lockdown.emulator.lro import iso

    return iso(ts)


def _tenant(req: Request) -> str:
    from aks_lockdown.arm.clients import EMULATOR_TENANT_ID

    return EMULATOR_TENANT_ID


def _assignments_at(world: World, scope: str) -> list[Record]:
    s = scope.rstrip("/").lower()
    return [r for r in world.list(RA_TYPE) if r.body["properties"]["scope"].rstrip("/").lower() == s]


def get_assignment(req: Request) -> Response:
    rec = req.world.get(req.rid.id)
    if rec is None:
        raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{req.rid.name}' is not found.")
    return Response(200, render_assignment(req.world, rec))


def delete_assignment(req: Request) -> Response:
    rec = req.world.get(req.rid.id)
    if rec is None:
        return Response(204)
    body = render_assignment(req.world, rec)
    req.world.remove(rec.id)
    return Response(200, body)


def list_assignments(req: Request) -> Response:
    """List for a scope: assignments at, above and below it; $filter=atScope() keeps those at or above,
    principalId eq '...' filters by principal (as the real API)."""
    scope = req.rid.scope.rstrip("/").lower()
    flt = req.query.get("$filter", "")
    out = []
    for rec in req.world.list(RA_TYPE):
        s = rec.body["properties"]["scope"].rstrip("/").lower()
        above = scope == s or scope.startswith(s + "/")
        below = s.startswith(scope + "/")
        if "atScope()" in flt:
            if not above:
                continue
        elif not (above or below):
            continue
        # principalId eq '...' and assignedTo('...') (no groups here, so the same test).
        m = re.search(r"principalId\s+eq\s+'([^']*)'", flt) or re.search(r"assignedTo\('([^']*)'\)", flt)
        if m and rec.body["properties"]["principalId"].lower() != m.group(1).lower():
            continue
        out.append(render_assignment(req.world, rec))
    return Response(200, {"value": out})


def assignments_for(world: World, principal_id: str) -> list[dict[str, Any]]:
    """Assignments of a principal (for the AKS part's permission checks): property dicts with scope."""
    return [
        dict(r.body["properties"])
        for r in world.list(RA_TYPE)
        if r.body["properties"]["principalId"].lower() == principal_id.lower()
    ]


def has_role_on(
    world: World, principal_id: str, resource_id: str, roles: tuple[str, ...] = NETWORK_WRITER_ROLES
) -> bool:
    """True when the principal holds one of `roles` at the resource or any scope above it."""
    target = resource_id.rstrip("/").lower()
    for props in assignments_for(world, principal_id):
        s = props["scope"].rstrip("/").lower()
        if (target == s or target.startswith(s + "/")) and _role_guid(props["roleDefinitionId"]) in roles:
            return True
    return False


def register(reg: Registry) -> None:
    reg.resource_type(
        RA_TYPE,
        put=put_assignment,
        get=get_assignment,
        delete=delete_assignment,
        list=list_assignments,
        render=render_assignment,
    )
    reg.resource_type(RD_TYPE, put=put_role_definition, get=get_role_definition, list=list_role_definitions)


__all__ = [
    "BUILTIN_ROLES",
    "NETWORK_WRITER_ROLES",
    "ResourceId",
    "assignments_for",
    "has_role_on",
    "not_found",
]

"""Step 7, "Role assignment": the cluster's identity and Network Contributor where AKS needs it.

A user-assigned managed identity (or, as in the seed, a service principal whose object ID is in the
config and whose secret is read from the environment by the cluster step, never here) gets Network
Contributor on the VNet, and on the route table for kubenet (which writes pod routes into it).

Assignment names are uuid5 of (scope, principal, role definition), so a rerun finds its own
assignment by GET. principalType=ServicePrincipal lets ARM skip the directory lookup that a freshly
created identity fails (PrincipalNotFound, which the engine retries). A 409 RoleAssignmentExists
means the same grant exists under another name: we find it and accept it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aks_lockdown.steps._common import (
    KNOWN_AFTER_APPLY,
    NETWORK_CONTRIBUTOR,
    change_for,
    delete_if_created,
    deterministic_uuid,
    get_or_none,
    is_ours,
    merged_tags,
    resource_id,
    same_id,
    tag_changes,
    to_json,
    unchanged,
)
from azure.core.exceptions import HttpResponseError

from aks_lockdown.engine.step import Diff, ResourceChange, Step
from aks_lockdown.errors import LockdownError

IDENTITY_KIND = "Microsoft.ManagedIdentity/userAssignedIdentities"
ASSIGNMENT_KIND = "Microsoft.Authorization/roleAssignments"


class ClusterIdentityStep(Step):
    name = "identity"
    title = "Role assignment"

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._identity: dict[str, Any] | None = None
        self._found: dict[str, str] = {}  # scope -> assignment id found in Azure

    @property
    def user_assigned(self) -> bool:
        return self.ctx.config.cluster.identity.type == "user-assigned"

    @property
    def identity_id(self) -> str:
        return resource_id(self.ctx, IDENTITY_KIND, self.ctx.config.identity_name)

    @property
    def role_definition_id(self) -> str:
        sub = self.ctx.clients.subscription_id
        return f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{NETWORK_CONTRIBUTOR}"

    def scopes(self) -> list[str]:
        cfg = self.ctx.config
        scopes = [resource_id(self.ctx, "Microsoft.Network/virtualNetworks", cfg.vnet_name)]
        if cfg.cluster.network_plugin == "kubenet":
            scopes.append(resource_id(self.ctx, "Microsoft.Network/routeTables", cfg.route_table_name))
        return scopes

    def _principal(self) -> str | None:
        if not self.user_assigned:
            return self.ctx.config.cluster.identity.object_id
        return ((self._identity or {}).get("properties") or {}).get("principalId")

    def assignment_name(self, scope: str, principal: str) -> str:
        return deterministic_uuid(scope, principal, self.role_definition_id)

    def assignment_id(self, scope: str, principal: str) -> str:
        name = self.assignment_name(scope, principal)
        return f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"

    def desired(self) -> Mapping[str, Any]:
        identity = self.ctx.config.cluster.identity
        principal = identity.object_id if not self.user_assigned else KNOWN_AFTER_APPLY
        return {
            "identity": {
                "type": identity.type,
                "name": self.ctx.config.identity_name if self.user_assigned else None,
            },
            "role_definition": NETWORK_CONTRIBUTOR,
            "scopes": self.scopes(),
            "principal": principal,
        }

    def resource_ids(self) -> list[str]:
        return [self.identity_id] if self.user_assigned else []

    def _read_identity(self) -> None:
        if self.user_assigned:
            identities = self.ctx.clients.msi.user_assigned_identities
            cfg = self.ctx.config
            found = get_or_none(lambda: identities.get(cfg.resource_group, cfg.identity_name))
            self._identity = to_json(found)

    def _find_assignment(self, scope: str, principal: str) -> str | None:
        """Our deterministic name first (one GET), then any assignment of the same grant."""
        assignments = self.ctx.clients.authorization.role_assignments
        own = get_or_none(lambda: assignments.get(scope, self.assignment_name(scope, principal)))
        if own is not None:
            return str(own.id)
        for existing in assignments.list_for_scope(scope, filter=f"assignedTo('{principal}')"):
            # Compare the role's GUID: ARM returns the definition ID with or without the subscription.
            role = str(existing.role_definition_id or "").rsplit("/", 1)[-1]
            mine = str(existing.principal_id or "").lower() == principal.lower()
            if mine and role.lower() == NETWORK_CONTRIBUTOR and same_id(existing.scope, scope):
                return str(existing.id)
        return None

    def _outputs(self) -> dict[str, Any]:
        props = (self._identity or {}).get("properties") or {}
        principal = self._principal()
        out: dict[str, Any] = {
            "type": self.ctx.config.cluster.identity.type,
            "principal_id": principal,
            "role_assignment_ids": [
                self._found.get(s) or self.assignment_id(s, principal or "") for s in self.scopes()
            ],
        }
        if self.user_assigned:
            out.update(identity_id=self.identity_id, client_id=props.get("clientId"))
        else:
            out["client_id"] = self.ctx.config.cluster.identity.client_id
        return out

    def check(self) -> Diff:
        self._read_identity()
        changes: list[ResourceChange] = []
        if self.user_assigned:
            fields = []
            if self._identity is not None:
                if is_ours(self.ctx, self.identity_id, self._identity):
                    fields = tag_changes(self.ctx, self._identity)
                else:
                    self.ctx.mark_adopted(self.identity_id)
            changes.append(change_for(self.identity_id, IDENTITY_KIND, self._identity, fields))
        principal = self._principal()
        self._found = {}
        for scope in self.scopes():
            if principal is None:  # the identity does not exist yet, so neither can its grants
                changes.append(ResourceChange("create", f"{scope} (Network Contributor)", ASSIGNMENT_KIND))
                continue
            found = self._find_assignment(scope, principal)
            rid = self.assignment_id(scope, principal)
            if found is None:
                changes.append(ResourceChange("create", rid, ASSIGNMENT_KIND, note="Network Contributor"))
            else:
                self._found[scope] = found
                changes.append(unchanged(rid, ASSIGNMENT_KIND, "Network Contributor"))
        diff = Diff(tuple(changes))
        return diff if diff.pending else Diff(diff.changes, self._outputs())

    def apply(self, diff: Diff) -> Mapping[str, Any]:
        cfg = self.ctx.config
        if self.user_assigned:
            if self._identity is None:
                self._read_identity()
            change = diff.changes[0]
            if change.action != "none":
                self._write_identity(change.action)
        principal = self._principal()
        if not principal:
            raise LockdownError(f"identity {cfg.identity_name} has no principal ID (Azure returned none)")
        for scope in self.scopes():
            if scope in self._found:
                continue
            # check() found none; a grant appearing since is caught by _assign's 409 handling.
            self._found[scope] = self._assign(scope, principal)
        return self._outputs()

    def _write_identity(self, action: str) -> None:
        from azure.mgmt.msi.models import Identity

        identities = self.ctx.clients.msi.user_assigned_identities
        cfg = self.ctx.config
        ours = self._identity is None or is_ours(self.ctx, self.identity_id, self._identity)
        tags = merged_tags(self.ctx, self._identity) if ours else dict(self._identity.get("tags") or {})
        location = (self._identity or {}).get("location") or cfg.azure.location
        result = self.ctx.write(
            self.identity_id,
            "create" if action == "create" else "update",
            # Synchronous PUT: begin() returns the identity (with its principal ID) directly.
            lambda: identities.create_or_update(
                cfg.resource_group, cfg.identity_name, Identity(location=location, tags=tags)
            ),
            description=f"managed identity {cfg.identity_name}",
        )
        self._identity = to_json(result)

    def _assign(self, scope: str, principal: str) -> str:
        from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

        assignments = self.ctx.clients.authorization.role_assignments
        name = self.assignment_name(scope, principal)
        params = RoleAssignmentCreateParameters(
            role_definition_id=self.role_definition_id,
            principal_id=principal,
            # Without it ARM looks the principal up in a directory that may not have replicated yet.
            principal_type="ServicePrincipal",
        )
        accepted: list[str] = []

        def create() -> Any:
            try:
                return assignments.create(scope, name, params)
            except HttpResponseError as exc:
                # The same grant under another name (created by hand or by another tool): accept it.
                if exc.status_code == 409 and _code(exc) == "RoleAssignmentExists":
                    match = self._find_assignment(scope, principal)
                    if match:
                        accepted.append(match)
                        return None
                raise  # PrincipalNotFound and friends: the engine's classifier decides on retries

        result = self.ctx.write(
            self.assignment_id(scope, principal), "create", create, description="Network Contributor"
        )
        if accepted:
            # Not marked adopted: it lives under our VNet, and an adopted child would (rightly) make the
            # engine refuse to delete the VNet at teardown. Our own name is simply absent (404 = done).
            return accepted[0]
        return str(getattr(result, "id", None) or self.assignment_id(scope, principal))

    def rollback(self) -> None:
        assignments = self.ctx.clients.authorization.role_assignments
        self._read_identity()
        principal = self._principal()
        if principal:
            for scope in reversed(self.scopes()):
                name = self.assignment_name(scope, principal)
                delete_if_created(
                    self.ctx,
                    self.assignment_id(scope, principal),
                    lambda scope=scope, name=name: assignments.get(scope, name),
                    lambda scope=scope, name=name: assignments.delete(scope, name),
                )
        if self.user_assigned:
            identities = self.ctx.clients.msi.user_assigned_identities
            cfg = self.ctx.config
            delete_if_created(
                self.ctx,
                self.identity_id,
                lambda: identities.get(cfg.resource_group, cfg.identity_name),
                lambda: identities.delete(cfg.resource_group, cfg.identity_name),
            )


def _code(exc: HttpResponseError) -> str:
    error = getattr(exc, "error", None)
    code = str(getattr(error, "code", "") or "")
    return code or ("RoleAssignmentExists" if "RoleAssignmentExists" in str(exc) else "")

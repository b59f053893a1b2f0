"""Microsoft.ManagedIdentity and Microsoft.Authorization through the pinned SDKs."""

from __future__ import annotations

import time
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

from aks_lockdown.arm.clients import ClientFactory
from aks_lockdown.emulator import Emulator
from aks_lockdown.emulator.authorization import has_role_on

NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"


def role_id(sub: str, guid: str = NETWORK_CONTRIBUTOR) -> str:
    return f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def test_identity_crud(clients: ClientFactory, rg: str) -> None:
    msi = clients.msi.user_assigned_identities
    a = msi.create_or_update(rg, "id1", {"location": "westus", "tags": {"k": "v"}})
    assert uuid.UUID(a.principal_id) and uuid.UUID(a.client_id) and uuid.UUID(a.tenant_id)
    assert a.type == "Microsoft.ManagedIdentity/userAssignedIdentities"
    b = msi.create_or_update(rg, "id1", {"location": "westus", "tags": {"k": "w"}})
    assert b.principal_id == a.principal_id and b.tags == {"k": "w"}  # stable ids on update
    assert msi.get(rg, "id1").client_id == a.client_id
    assert [i.name for i in msi.list_by_resource_group(rg)] == ["id1"]
    assert "id1" in [i.name for i in msi.list_by_subscription()]
    msi.delete(rg, "id1")
    with pytest.raises(ResourceNotFoundError):
        msi.get(rg, "id1")
    msi.delete(rg, "id1")  # 204 when absent: no error


def test_role_definitions(clients: ClientFactory, emu: Emulator) -> None:
    rd = clients.authorization.role_definitions
    scope = f"/subscriptions/{emu.subscription_id}"
    nc = rd.get(scope, NETWORK_CONTRIBUTOR)
    assert nc.role_name == "Network Contributor" and nc.role_type == "BuiltInRole"
    assert nc.id == role_id(emu.subscription_id)
    found = list(rd.list(scope, filter="roleName eq 'Contributor'"))
    assert [r.name for r in found] == ["b24988ac-6180-42a0-ab88-20f7382dd24c"]
    assert {r.role_name for r in rd.list(scope)} >= {"Owner", "Contributor", "Reader", "Network Contributor"}
    with pytest.raises(ResourceNotFoundError) as exc:
        rd.get(scope, str(uuid.uuid4()))
    assert exc.value.error.code == "RoleDefinitionDoesNotExist"


def test_role_assignment_lifecycle(clients: ClientFactory, rg: str, emu: Emulator) -> None:
    ra = clients.authorization.role_assignments
    mi = clients.msi.user_assigned_identities.create_or_update(rg, "id1", {"location": "westus"})
    vnet = clients.network.virtual_networks.begin_create_or_update(
        rg, "v", {"location": "westus", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}
    ).result()
    name = str(uuid.uuid5(uuid.NAMESPACE_URL, vnet.id + mi.principal_id))
    params = RoleAssignmentCreateParameters(
        role_definition_id=role_id(emu.subscription_id),
        principal_id=mi.principal_id,
        principal_type="ServicePrincipal",
    )
    created = ra.create(vnet.id, name, params)
    assert created.scope == vnet.id and created.principal_type == "ServicePrincipal"
    assert created.role_definition_id.endswith(NETWORK_CONTRIBUTOR)
    assert ra.create(vnet.id, name, params).id == created.id  # idempotent PUT: 200
    assert ra.get(vnet.id, name).principal_id == mi.principal_id
    assert [x.name for x in ra.list_for_scope(vnet.id, filter="atScope()")] == [name]
    assert [
        x.name
        for x in ra.list_for_scope(
            f"/subscriptions/{emu.subscription_id}/resourceGroups/{rg}",
            filter=f"principalId eq '{mi.principal_id}'",
        )
    ] == [name]
    # The tool's own lookup (steps/cluster_identity.py) filters with assignedTo().
    assert [x.name for x in ra.list_for_scope(vnet.id, filter=f"assignedTo('{mi.principal_id}')")] == [name]
    assert list(ra.list_for_scope(vnet.id, filter=f"assignedTo('{uuid.uuid4()}')")) == []
    assert has_role_on(emu.world, mi.principal_id, vnet.id + "/subnets/aks")
    # Same (scope, role, principal) under another name.
    with pytest.raises(ResourceExistsError) as exc:
        ra.create(vnet.id, str(uuid.uuid4()), params)
    assert exc.value.error.code == "RoleAssignmentExists"
    deleted = ra.delete(vnet.id, name)
    assert deleted.name == name
    assert ra.delete(vnet.id, name) is None  # 204
    with pytest.raises(ResourceNotFoundError):
        ra.get(vnet.id, name)


def test_principal_not_found_during_replication(tmp_path) -> None:
    with Emulator(tmp_path, principal_delay=0.6) as emu:
        c = ClientFactory(emu.target(), retry_total=0)
        c.resource.resource_groups.create_or_update("rg", {"location": "westus"})
        mi = c.msi.user_assigned_identities.create_or_update("rg", "id", {"location": "westus"})
        scope = f"/subscriptions/{emu.subscription_id}/resourceGroups/rg"
        # principal_type=None: the SDK model would otherwise send its default ("User").
        bare = RoleAssignmentCreateParameters(
            role_definition_id=role_id(emu.subscription_id), principal_id=mi.principal_id, principal_type=None
        )
        with pytest.raises(HttpResponseError) as exc:
            c.authorization.role_assignments.create(scope, str(uuid.uuid4()), bare)
        assert exc.value.status_code == 400 and exc.value.error.code == "PrincipalNotFound"
        # principalType given: no directory lookup, accepted at once.
        typed = RoleAssignmentCreateParameters(
            role_definition_id=role_id(emu.subscription_id),
            principal_id=mi.principal_id,
            principal_type="ServicePrincipal",
        )
        c.authorization.role_assignments.create(scope, str(uuid.uuid4()), typed)
        time.sleep(0.7)
        other_scope = f"{scope}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id"
        c.authorization.role_assignments.create(other_scope, str(uuid.uuid4()), bare)


def test_role_assignment_bad_role(clients: ClientFactory, rg: str, emu: Emulator) -> None:
    scope = f"/subscriptions/{emu.subscription_id}/resourceGroups/{rg}"
    params = RoleAssignmentCreateParameters(
        role_definition_id=role_id(emu.subscription_id, str(uuid.uuid4())),
        principal_id=str(uuid.uuid4()),
        principal_type="User",
    )
    with pytest.raises(HttpResponseError) as exc:
        clients.authorization.role_assignments.create(scope, str(uuid.uuid4()), params)
    assert exc.value.error.code == "RoleDefinitionDoesNotExist"

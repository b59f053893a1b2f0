"""Steps against the in-process ARM emulator through the real SDKs, with the test-only context:
creates, reruns that write nothing, adoption, drift, and rollbacks that delete only what was created."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aks_lockdown.steps._common import NETWORK_CONTRIBUTOR, AdoptionConflict
from aks_lockdown.steps.cluster_identity import ClusterIdentityStep
from aks_lockdown.steps.public_ips import PublicIpStep
from aks_lockdown.steps.resource_group import ResourceGroupStep
from aks_lockdown.steps.route_table import RouteTableStep
from aks_lockdown.steps.virtual_network import VirtualNetworkStep
from steps_helpers import FakeContext, converge, rollback

from aks_lockdown.config import Config

NETWORK = [ResourceGroupStep, VirtualNetworkStep]


def ctx_for(azure: Any, config: Config | None = None) -> FakeContext:
    return FakeContext(config or Config(), azure)


def fake_firewall(ctx: FakeContext, *public_ips: str, private_ip: str = "10.42.2.4") -> None:
    """Route table inputs without building a firewall: what the firewall step would output."""
    ctx.outputs["public_ips"] = {"addresses": list(public_ips)}
    ctx.outputs["firewall"] = {"private_ip": private_ip, "public_ips": list(public_ips)}


def test_resource_group_created_tagged_and_rerun_is_free(azure: Any) -> None:
    ctx = ctx_for(azure)
    converge(ctx, [ResourceGroupStep])
    assert [op for _, op in ctx.writes] == ["create"]
    group = azure.resource.resource_groups.get("aks-egress-rg")
    assert group.tags == ctx.tags
    ctx.writes.clear()
    diffs = converge(ctx, [ResourceGroupStep])
    assert ctx.writes == [] and not diffs["resource_group"].pending
    rollback(ctx, [ResourceGroupStep])
    assert [op for _, op in ctx.writes] == ["delete"]
    assert not azure.resource.resource_groups.check_existence("aks-egress-rg")


def test_existing_resource_group_is_adopted_untagged_and_never_deleted(azure: Any) -> None:
    azure.resource.resource_groups.create_or_update(
        "aks-egress-rg", {"location": "eastus", "tags": {"team": "x"}}
    )
    ctx = ctx_for(azure)
    diffs = converge(ctx, [ResourceGroupStep])
    assert ctx.writes == [] and ctx.outputs["resource_group"]["adopted"] is True
    assert "adopted" in diffs["resource_group"].changes[0].note
    rollback(ctx, [ResourceGroupStep])
    assert ctx.writes == []
    assert azure.resource.resource_groups.get("aks-egress-rg").tags == {"team": "x"}


def test_public_ips_count_and_addresses(azure: Any) -> None:
    config = Config.model_validate({"firewall": {"public_ip_count": 2}})
    ctx = ctx_for(azure, config)
    converge(ctx, [ResourceGroupStep, PublicIpStep])
    out = ctx.outputs["public_ips"]
    assert len(out["ids"]) == 2 and all(out["addresses"]) and len(set(out["addresses"])) == 2
    ip = azure.network.public_ip_addresses.get("aks-egress-rg", "aks-egress-fwpublicip-2")
    assert ip.sku.name == "Standard" and ip.public_ip_allocation_method == "Static"
    ctx.writes.clear()
    converge(ctx, [ResourceGroupStep, PublicIpStep])
    assert ctx.writes == []


def test_route_table_associates_and_vnet_rewrite_keeps_the_association(azure: Any) -> None:
    ctx = ctx_for(azure)
    fake_firewall(ctx, "20.1.2.3")
    converge(ctx, [*NETWORK, RouteTableStep])
    subnet = azure.network.subnets.get("aks-egress-rg", "aks-egress-vnet", "aks-subnet")
    assert subnet.route_table.id.lower().endswith("/routetables/aks-egress-fwrt")
    assert [op for _, op in ctx.writes] == ["create", "create", "create", "update"]

    # Someone strips our tag from the VNet: the VNet step rewrites it, without undoing the association.
    vnet = azure.network.virtual_networks.get("aks-egress-rg", "aks-egress-vnet")
    vnet.tags = {}
    azure.network.virtual_networks.begin_create_or_update("aks-egress-rg", "aks-egress-vnet", vnet).result()
    ctx.writes.clear()
    diffs = converge(ctx, [*NETWORK, RouteTableStep])
    [change] = diffs["vnet"].changes
    assert change.action == "update" and {f.path for f in change.fields} >= {"tags.aks-lockdown-deployment"}
    assert [op for _, op in ctx.writes] == ["update"]  # the VNet only; the association held
    subnet = azure.network.subnets.get("aks-egress-rg", "aks-egress-vnet", "aks-subnet")
    assert subnet.route_table is not None


def test_deleted_route_is_drift_named_by_field_and_restored(azure: Any) -> None:
    ctx = ctx_for(azure)
    fake_firewall(ctx, "20.1.2.3")
    converge(ctx, [*NETWORK, RouteTableStep])
    azure.network.routes.begin_delete("aks-egress-rg", "aks-egress-fwrt", "aks-egress-fwinternet").result()
    diff = RouteTableStep(ctx).check()
    table = diff.changes[0]
    assert table.action == "update"
    assert [f.path for f in table.fields] == ["properties.routes[aks-egress-fwinternet]"]
    ctx.writes.clear()
    converge(ctx, [RouteTableStep])
    assert len(ctx.writes) == 1
    routes = {r.name for r in azure.network.route_tables.get("aks-egress-rg", "aks-egress-fwrt").routes}
    assert routes == {"aks-egress-fwrn", "aks-egress-fwinternet"}


def test_failed_subnet_association_is_written_again(emulator: Any, azure: Any) -> None:
    from azure.core.exceptions import HttpResponseError

    ctx = ctx_for(azure)
    fake_firewall(ctx, "20.1.2.3")
    converge(ctx, NETWORK)
    emulator.add_fault(action="fail_operation", method="PUT", path="/subnets/aks-subnet", count=1,
                       code="InternalOperationError", message="injected")  # fmt: skip
    with pytest.raises(HttpResponseError):
        converge(ctx, [RouteTableStep])
    # Azure recorded the link, but the subnet is Failed: not done, so the association is written again.
    diff = RouteTableStep(ctx).check()
    assert [c.action for c in diff.changes] == ["none", "update"]
    assert "Failed" in diff.changes[1].note
    converge(ctx, [RouteTableStep])
    subnet = azure.network.subnets.get("aks-egress-rg", "aks-egress-vnet", "aks-subnet")
    assert subnet.provisioning_state == "Succeeded" and subnet.route_table is not None


def test_route_table_rollback_dissociates_first(azure: Any) -> None:
    ctx = ctx_for(azure)
    fake_firewall(ctx, "20.1.2.3")
    converge(ctx, [*NETWORK, RouteTableStep])
    ctx.writes.clear()
    RouteTableStep(ctx).rollback()
    assert [op for _, op in ctx.writes] == ["update", "delete"]
    subnet = azure.network.subnets.get("aks-egress-rg", "aks-egress-vnet", "aks-subnet")
    assert subnet.route_table is None
    rollback(ctx, NETWORK)
    assert not azure.resource.resource_groups.check_existence("aks-egress-rg")


def test_foreign_vnet_that_differs_is_reported_and_refused(azure: Any) -> None:
    azure.resource.resource_groups.create_or_update("aks-egress-rg", {"location": "eastus"})
    body = {
        "location": "eastus",
        "properties": {
            "addressSpace": {"addressPrefixes": ["10.99.0.0/16"]},
            "subnets": [{"name": "aks-subnet", "properties": {"addressPrefix": "10.99.1.0/24"}}],
        },
    }
    azure.network.virtual_networks.begin_create_or_update("aks-egress-rg", "aks-egress-vnet", body).result()
    ctx = ctx_for(azure)
    converge(ctx, [ResourceGroupStep])
    step = VirtualNetworkStep(ctx)
    diff = step.check()
    assert diff.changes[0].action == "update" and "not created by this deployment" in diff.changes[0].note
    with pytest.raises(AdoptionConflict, match=r"addressSpace|subnets"):
        step.apply(diff)
    assert ctx.writes == []


def test_identity_and_network_contributor_rerun_and_existing_grant(azure: Any) -> None:
    ctx = ctx_for(azure)
    converge(ctx, [*NETWORK, ClusterIdentityStep])
    out = ctx.outputs["identity"]
    assert out["principal_id"] and out["client_id"] and len(out["role_assignment_ids"]) == 1
    ctx.writes.clear()
    converge(ctx, [*NETWORK, ClusterIdentityStep])
    assert ctx.writes == []

    # The same grant under another name (made by hand): found at check, and accepted on a 409.
    scope = ClusterIdentityStep(ctx).scopes()[0]
    ours = out["role_assignment_ids"][0].rsplit("/", 1)[1]
    assignments = azure.authorization.role_assignments
    assignments.delete(scope, ours)
    role = f"/subscriptions/{azure.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

    params = RoleAssignmentCreateParameters(
        role_definition_id=role + NETWORK_CONTRIBUTOR,
        principal_id=out["principal_id"],
        principal_type="ServicePrincipal",
    )
    other = str(uuid.uuid4())
    assignments.create(scope, other, params)
    step = ClusterIdentityStep(ctx)
    diff = step.check()
    assert not diff.pending and diff.outputs["role_assignment_ids"][0].endswith(other)
    assert step._assign(scope, out["principal_id"]).endswith(other)  # the 409 path


@pytest.fixture
def slow_aks(tmp_path: Path) -> Iterator[Any]:
    """An emulator whose cluster create takes a few seconds: long enough to be found in flight."""
    from steps_helpers import aks_available, emulator_available

    if not (emulator_available() and aks_available()):
        pytest.fail("the ARM emulator's AKS is not usable")
    from aks_lockdown.arm.clients import ClientFactory
    from aks_lockdown.emulator import Emulator

    with Emulator(
        data_dir=tmp_path / "emu", profile="fast", durations={"managedClusters.create": 3.0}
    ) as emu:
        yield ClientFactory(emu.target(), polling_interval=0.05)


def test_cluster_found_creating_is_waited_for_not_written(slow_aks: Any) -> None:
    from aks_lockdown.steps.cluster import ClusterStep
    from aks_lockdown.steps.firewall import FirewallStep
    from aks_lockdown.steps.firewall_rules import FirewallRulesStep

    steps = [*NETWORK, PublicIpStep, FirewallRulesStep, FirewallStep, RouteTableStep, ClusterIdentityStep]
    ctx = ctx_for(slow_aks, Config.model_validate({"firewall": {"egress_edition": "current"}}))
    converge(ctx, steps)
    # A previous run started the create and died: the PUT is in flight in Azure.
    step = ClusterStep(ctx)
    body = step._body(None)
    slow_aks.containerservice.managed_clusters.begin_create_or_update("aks-egress-rg", "aks-egress", body)
    ctx.writes.clear()
    diff = ClusterStep(ctx).check()
    assert diff.changes[0].action == "wait" and "Creating" in diff.changes[0].note
    outputs = ClusterStep(ctx).apply(diff)
    assert ctx.writes == []  # waited, then found it Succeeded and as desired
    assert outputs["fqdn"] and outputs["node_resource_group"]
    assert (
        slow_aks.containerservice.managed_clusters.get("aks-egress-rg", "aks-egress").provisioning_state
        == "Succeeded"
    )

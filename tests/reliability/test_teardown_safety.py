"""Teardown deletes only what this deployment created: an adopted resource group and VNet, an unrelated
resource in the same group and another deployment's resource all survive, and no DELETE request ever
names a resource that did not carry this deployment's tag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rel_harness import (
    DEPLOYMENT_TAG,
    InProcess,
    duplicates,
    load,
    resources,
    run_cli,
    state_doc,
    tagged,
    write_config,
)

pytestmark = pytest.mark.reliability

RG = "aks-egress-rg"
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
VNET = "aks-egress-vnet"


def _precreate(emu: Any, *, vnet: bool) -> dict[str, str]:
    """What the operator had before the tool ran: untagged resources, one other deployment's resource,
    and on the adopted VNet a role assignment of someone else's (role assignments take no tags)."""
    from aks_lockdown.arm.clients import ClientFactory

    clients = ClientFactory(emu.target(), polling_interval=0.05)
    ids = {"rg": clients.resource.resource_groups.create_or_update(RG, {"location": "eastus"}).id}
    network = clients.network
    if vnet:
        body = {
            "location": "eastus",
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.42.0.0/16"]},
                "subnets": [
                    {"name": "aks-subnet", "properties": {"addressPrefix": "10.42.1.0/24"}},
                    {"name": "AzureFirewallSubnet", "properties": {"addressPrefix": "10.42.2.0/24"}},
                ],
            },
        }
        ids["vnet"] = network.virtual_networks.begin_create_or_update(RG, VNET, body).result().id
        # Network Contributor on the VNet for another team's principal: same scope and role as ours.
        definitions = (
            f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Authorization/roleDefinitions"
        )
        role = f"{definitions}/{NETWORK_CONTRIBUTOR}"
        assignment = {
            "properties": {
                "roleDefinitionId": role,
                "principalId": "0d2c9c1e-7a51-4f7e-9a55-3c1b2a4d5e6f",
                "principalType": "ServicePrincipal",
            }
        }
        ids["someone-elses-role-assignment"] = clients.authorization.role_assignments.create(
            ids["vnet"], "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b", assignment
        ).id
    pip = {
        "location": "eastus",
        "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static"},
    }
    ids["unrelated"] = (
        network.public_ip_addresses.begin_create_or_update(RG, "someone-elses-ip", pip).result().id
    )
    other = {
        "location": "eastus",
        "tags": {DEPLOYMENT_TAG: "another-deployment", "managed-by": "aks-lockdown"},
    }
    ids["other-deployment"] = network.route_tables.begin_create_or_update(RG, "other-fwrt", other).result().id
    return ids


def _ids(emu: Any) -> set[str]:
    return {r["id"].lower() for r in resources(emu)}


@pytest.mark.parametrize("adopt_vnet", [True, False], ids=["adopted-rg-and-vnet", "adopted-rg"])
def test_teardown_never_deletes_what_it_did_not_create(emu: Any, workdir: Path, adopt_vnet: bool) -> None:
    kept = _precreate(emu, vnet=adopt_vnet)
    config = write_config(workdir)
    InProcess(emu, load(config), workdir / "state").runner().deploy()
    state = state_doc(workdir / "state")
    adopted = {rid.lower() for rid, r in state.resources.items() if r.origin == "adopted"}
    assert kept["rg"].lower() in adopted
    if adopt_vnet:
        assert kept["vnet"].lower() in adopted
    ours = {rid.lower() for rid in tagged(emu)}
    assert ours and not ({k.lower() for k in kept.values()} & ours), "a pre-existing resource got our tag"
    # ARM role assignments take no tags: the deployment's own is the one granted to its (tagged) identity.
    principals = {
        (r.get("properties") or {}).get("principalId")
        for r in resources(emu)
        if r["id"].lower() in ours and r["type"].lower().endswith("userassignedidentities")
    }
    ours |= {
        r["id"].lower()
        for r in resources(emu)
        if r["type"].lower() == "microsoft.authorization/roleassignments"
        and (r.get("properties") or {}).get("principalId") in principals
    }
    assert not duplicates(emu)
    mark = len(emu.requests())

    result = run_cli(emu, "teardown", config)

    assert result.returncode == 0, result.stderr[-3000:]
    left = _ids(emu)
    for what, rid in kept.items():
        assert rid.lower() in left, f"teardown deleted the {what} it did not create: {rid}"
    assert tagged(emu) == [], "teardown left resources tagged with the deployment"
    deletes = [r["path"].lower() for r in emu.requests()[mark:] if r["method"] == "DELETE"]
    assert deletes, "teardown sent no DELETE at all"
    strangers = [p for p in deletes if p not in ours]
    assert strangers == [], f"DELETE sent for resources without this deployment's tag: {strangers}"
    # Nothing the steps wrote into the adopted VNet is left behind either (the route table link).
    if adopt_vnet:
        vnet = next(r for r in resources(emu) if r["id"].lower() == kept["vnet"].lower())
        for subnet in vnet["properties"]["subnets"]:
            assert "routeTable" not in subnet["properties"], subnet

"""Microsoft.Network through the pinned SDK: every type's create/get/update/delete and its constraints."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from aks_lockdown.arm.clients import ClientFactory
from aks_lockdown.emulator import Emulator, network


def vnet_body(*subnets: tuple[str, str], space: str = "10.0.0.0/16", **subnet_extra: Any) -> dict[str, Any]:
    return {
        "location": "westus",
        "properties": {
            "addressSpace": {"addressPrefixes": [space]},
            "subnets": [
                {"name": n, "properties": {"addressPrefix": p, **subnet_extra.get(n, {})}} for n, p in subnets
            ],
        },
    }


def make_hub(clients: ClientFactory, rg: str, *, fw_prefix: str = "10.0.1.0/26") -> dict[str, Any]:
    net = clients.network
    vnet = net.virtual_networks.begin_create_or_update(
        rg, "vnet", vnet_body(("AzureFirewallSubnet", fw_prefix), ("aks", "10.0.4.0/22"))
    ).result()
    pip = net.public_ip_addresses.begin_create_or_update(
        rg,
        "pip",
        {
            "location": "westus",
            "sku": {"name": "Standard"},
            "properties": {"publicIPAllocationMethod": "Static"},
        },
    ).result()
    policy = net.firewall_policies.begin_create_or_update(
        rg,
        "pol",
        {
            "location": "westus",
            "properties": {"sku": {"tier": "Standard"}, "dnsSettings": {"enableProxy": True}},
        },
    ).result()
    return {
        "vnet": vnet,
        "pip": pip,
        "policy": policy,
        "fw_subnet": f"{vnet.id}/subnets/AzureFirewallSubnet",
        "aks_subnet": f"{vnet.id}/subnets/aks",
    }


def fw_body(
    hub: dict[str, Any], *, policy: bool = True, subnet: str | None = None, pips: list[str] | None = None
) -> dict[str, Any]:
    pips = pips or [hub["pip"].id]
    configs = [
        {
            "name": f"ipc{i}",
            "properties": {
                "publicIPAddress": {"id": p},
                **({"subnet": {"id": subnet or hub["fw_subnet"]}} if i == 0 else {}),
            },
        }
        for i, p in enumerate(pips)
    ]
    props: dict[str, Any] = {
        "sku": {"name": "AZFW_VNet", "tier": "Standard"},
        "ipConfigurations": configs,
        "additionalProperties": {"Network.DNS.EnableProxy": "true"},
    }
    if policy:
        props["firewallPolicy"] = {"id": hub["policy"].id}
    return {"location": "westus", "properties": props}


GROUP = {
    "properties": {
        "priority": 200,
        "ruleCollections": [
            {
                "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                "name": "aks",
                "priority": 100,
                "action": {"type": "Allow"},
                "rules": [
                    {
                        "ruleType": "ApplicationRule",
                        "name": "aks",
                        "sourceAddresses": ["10.0.4.0/22"],
                        "protocols": [{"protocolType": "Https", "port": 443}],
                        "fqdnTags": ["AzureKubernetesService"],
                    }
                ],
            }
        ],
    }
}


# ---- virtual networks and subnets -------------------------------------------------------------------
def test_vnet_crud_with_inline_and_child_subnets(clients: ClientFactory, rg: str) -> None:
    net = clients.network
    v = net.virtual_networks.begin_create_or_update(rg, "v", vnet_body(("a", "10.0.0.0/24"))).result()
    assert v.provisioning_state == "Succeeded" and v.resource_guid and v.etag
    assert [s.name for s in v.subnets] == ["a"]
    s = net.subnets.begin_create_or_update(
        rg, "v", "b", {"properties": {"addressPrefix": "10.0.1.0/24"}}
    ).result()
    assert s.address_prefix == "10.0.1.0/24" and s.provisioning_state == "Succeeded"
    assert sorted(x.name for x in net.virtual_networks.get(rg, "v").subnets) == ["a", "b"]
    assert sorted(x.name for x in net.subnets.list(rg, "v")) == ["a", "b"]
    net.subnets.begin_delete(rg, "v", "b").result()
    with pytest.raises(ResourceNotFoundError):
        net.subnets.get(rg, "v", "b")
    # Update through the VNet (get, modify, put back) keeps what it sends.
    v = net.virtual_networks.get(rg, "v")
    v.tags = {"x": "y"}
    v = net.virtual_networks.begin_create_or_update(rg, "v", v).result()
    assert v.tags == {"x": "y"} and [s.name for s in v.subnets] == ["a"]
    assert [x.name for x in net.virtual_networks.list(rg)] == ["v"]
    net.virtual_networks.begin_delete(rg, "v").result()
    with pytest.raises(ResourceNotFoundError):
        net.virtual_networks.get(rg, "v")


@pytest.mark.parametrize(
    ("subnets", "code"),
    [
        ([("a", "10.1.0.0/24")], "NetcfgSubnetRangeOutsideVnet"),
        ([("a", "10.0.0.0/24"), ("b", "10.0.0.128/25")], "NetcfgSubnetRangesOverlap"),
        ([("a", "10.0.0.1/24")], "NetcfgInvalidSubnet"),
        ([("a", "10.0.0.0/33")], "InvalidCIDRNotation"),
    ],
)
def test_vnet_subnet_validation(clients: ClientFactory, rg: str, subnets: list, code: str) -> None:
    with pytest.raises(HttpResponseError) as exc:
        clients.network.virtual_networks.begin_create_or_update(rg, "v", vnet_body(*subnets))
    assert exc.value.error.code == code


def test_child_subnet_validation(clients: ClientFactory, rg: str) -> None:
    net = clients.network
    net.virtual_networks.begin_create_or_update(rg, "v", vnet_body(("a", "10.0.0.0/24"))).result()
    with pytest.raises(HttpResponseError) as exc:
        net.subnets.begin_create_or_update(rg, "v", "b", {"properties": {"addressPrefix": "10.0.0.0/25"}})
    assert exc.value.error.code == "NetcfgSubnetRangesOverlap"
    assert "'b'" in exc.value.error.message and "'a'" in exc.value.error.message
    with pytest.raises(HttpResponseError) as exc:
        net.subnets.begin_create_or_update(rg, "v", "b", {"properties": {"addressPrefix": "192.168.0.0/24"}})
    assert exc.value.error.code == "NetcfgSubnetRangeOutsideVnet"
    with pytest.raises(ResourceNotFoundError):
        net.subnets.begin_create_or_update(rg, "nope", "b", {"properties": {"addressPrefix": "10.0.0.0/25"}})


def test_subnet_route_table_association(clients: ClientFactory, rg: str, emu: Emulator) -> None:
    net = clients.network
    rt = net.route_tables.begin_create_or_update(
        rg,
        "rt",
        {
            "location": "westus",
            "properties": {
                "routes": [
                    {
                        "name": "default",
                        "properties": {
                            "addressPrefix": "0.0.0.0/0",
                            "nextHopType": "VirtualAppliance",
                            "nextHopIpAddress": "10.0.1.4",
                        },
                    }
                ]
            },
        },
    ).result()
    # Through a subnet PUT ...
    net.virtual_networks.begin_create_or_update(rg, "v", vnet_body(("a", "10.0.0.0/24"))).result()
    s = net.subnets.begin_create_or_update(
        rg, "v", "b", {"properties": {"addressPrefix": "10.0.1.0/24", "routeTable": {"id": rt.id}}}
    ).result()
    assert s.route_table.id == rt.id
    # ... and through the VNet PUT.
    v = net.virtual_networks.begin_create_or_update(
        rg, "v", vnet_body(("a", "10.0.0.0/24"), ("b", "10.0.1.0/24"), a={"routeTable": {"id": rt.id}})
    ).result()
    assert v.subnets[0].route_table.id == rt.id and v.subnets[1].route_table is None
    assert [x.id for x in net.route_tables.get(rg, "rt").subnets] == [v.subnets[0].id]
    view = network.subnet_route_table(emu.world, v.subnets[0].id)
    assert (
        view is not None and view["properties"]["routes"][0]["properties"]["nextHopIpAddress"] == "10.0.1.4"
    )
    with pytest.raises(HttpResponseError) as exc:
        net.route_tables.begin_delete(rg, "rt")
    assert exc.value.error.code == "InUseRouteTableCannotBeDeleted"
    with pytest.raises(HttpResponseError) as exc:
        net.subnets.begin_create_or_update(
            rg, "v", "c", {"properties": {"addressPrefix": "10.0.2.0/24", "routeTable": {"id": rt.id + "x"}}}
        )
    assert exc.value.error.code == "InvalidResourceReference"


# ---- public IPs --------------------------------------------------------------------------------
def test_public_ip_crud_and_unique_loopback(clients: ClientFactory, rg: str) -> None:
    net = clients.network
    body = {
        "location": "westus",
        "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static"},
    }
    a = net.public_ip_addresses.begin_create_or_update(rg, "a", body).result()
    b = net.public_ip_addresses.begin_create_or_update(rg, "b", body).result()
    assert a.ip_address.startswith("127.") and a.ip_address != b.ip_address
    assert not a.ip_address.startswith("127.0.0.")
    assert a.sku.name == "Standard" and a.public_ip_allocation_method == "Static"
    a2 = net.public_ip_addresses.begin_create_or_update(rg, "a", {**body, "tags": {"t": "1"}}).result()
    assert a2.ip_address == a.ip_address and a2.tags == {"t": "1"}  # stable across updates
    with pytest.raises(HttpResponseError) as exc:
        net.public_ip_addresses.begin_create_or_update(
            rg,
            "c",
            {
                "location": "westus",
                "sku": {"name": "Standard"},
                "properties": {"publicIPAllocationMethod": "Dynamic"},
            },
        )
    assert exc.value.error.code == "StandardSkuPublicIPAddressesMustBeStatic"
    net.public_ip_addresses.begin_delete(rg, "b").result()
    assert [p.name for p in net.public_ip_addresses.list(rg)] == ["a"]


# ---- route tables and routes -------------------------------------------------------------------
def test_route_table_and_routes(clients: ClientFactory, rg: str) -> None:
    net = clients.network
    rt = net.route_tables.begin_create_or_update(rg, "rt", {"location": "westus"}).result()
    assert rt.routes == [] and rt.disable_bgp_route_propagation is False and rt.resource_guid
    r = net.routes.begin_create_or_update(
        rg,
        "rt",
        "r1",
        {
            "properties": {
                "addressPrefix": "0.0.0.0/0",
                "nextHopType": "VirtualAppliance",
                "nextHopIpAddress": "10.0.1.4",
            }
        },
    ).result()
    assert r.next_hop_ip_address == "10.0.1.4" and r.type == "Microsoft.Network/routeTables/routes"
    assert [x.name for x in net.route_tables.get(rg, "rt").routes] == ["r1"]
    with pytest.raises(HttpResponseError) as exc:
        net.routes.begin_create_or_update(
            rg, "rt", "r2", {"properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance"}}
        )
    assert exc.value.error.code == "InvalidNextHopIpAddress"
    net.routes.begin_delete(rg, "rt", "r1").result()
    assert list(net.routes.list(rg, "rt")) == []
    net.route_tables.begin_delete(rg, "rt").result()
    assert list(net.route_tables.list(rg)) == []


# ---- firewall, policy, rule collection groups --------------------------------------------------
def test_firewall_with_policy_crud(clients: ClientFactory, rg: str, emu: Emulator) -> None:
    net = clients.network
    hub = make_hub(clients, rg)
    g = net.firewall_policy_rule_collection_groups.begin_create_or_update(rg, "pol", "aks", GROUP).result()
    assert g.priority == 200 and g.rule_collections[0].rules[0].fqdn_tags == ["AzureKubernetesService"]
    fw = net.azure_firewalls.begin_create_or_update(rg, "fw", fw_body(hub)).result()
    assert fw.provisioning_state == "Succeeded"
    assert fw.ip_configurations[0].private_ip_address == "10.0.1.4"
    assert fw.additional_properties == {"Network.DNS.EnableProxy": "true"}
    assert fw.firewall_policy.id == hub["policy"].id
    pol = net.firewall_policies.get(rg, "pol")
    assert [f.id for f in pol.firewalls] == [fw.id]
    assert [x.id for x in pol.rule_collection_groups] == [g.id]
    assert pol.dns_settings.enable_proxy is True
    assert net.public_ip_addresses.get(rg, "pip").ip_configuration.id.startswith(fw.id)
    assert network.firewall_by_private_ip(emu.world, "10.0.1.4")["id"] == fw.id
    assert [x["name"] for x in network.firewall_policy_groups(emu.world, fw.id)] == ["aks"]
    # Constraints while attached.
    with pytest.raises(HttpResponseError) as exc:
        net.firewall_policies.begin_delete(rg, "pol").result()
    assert exc.value.error.code == "FirewallPolicyInUse"
    with pytest.raises(HttpResponseError) as exc:
        net.public_ip_addresses.begin_delete(rg, "pip")
    assert exc.value.error.code == "PublicIPAddressInUse"
    with pytest.raises(HttpResponseError) as exc:
        net.subnets.begin_delete(rg, "vnet", "AzureFirewallSubnet")
    assert exc.value.error.code == "InUseSubnetCannotBeDeleted"
    with pytest.raises(HttpResponseError) as exc:
        net.virtual_networks.begin_delete(rg, "vnet")
    assert exc.value.error.code == "InUseSubnetCannotBeDeleted"
    # Teardown in dependency order works.
    net.azure_firewalls.begin_delete(rg, "fw").result()
    net.firewall_policy_rule_collection_groups.begin_delete(rg, "pol", "aks").result()
    net.firewall_policies.begin_delete(rg, "pol").result()
    net.public_ip_addresses.begin_delete(rg, "pip").result()
    net.virtual_networks.begin_delete(rg, "vnet").result()
    assert emu.world.list("Microsoft.Network/firewallPolicies") == []


def test_firewall_classic_rules_and_several_ip_configs(clients: ClientFactory, rg: str) -> None:
    net = clients.network
    hub = make_hub(clients, rg)
    pip2 = net.public_ip_addresses.begin_create_or_update(
        rg,
        "pip2",
        {
            "location": "westus",
            "sku": {"name": "Standard"},
            "properties": {"publicIPAllocationMethod": "Static"},
        },
    ).result()
    body = fw_body(hub, policy=False, pips=[hub["pip"].id, pip2.id])
    body["properties"]["networkRuleCollections"] = [
        {
            "name": "net",
            "properties": {
                "priority": 100,
                "action": {"type": "Allow"},
                "rules": [
                    {
                        "name": "ntp",
                        "protocols": ["UDP"],
                        "sourceAddresses": ["*"],
                        "destinationAddresses": ["*"],
                        "destinationPorts": ["123"],
                    }
                ],
            },
        }
    ]
    body["properties"]["applicationRuleCollections"] = [
        {
            "name": "app",
            "properties": {
                "priority": 100,
                "action": {"type": "Allow"},
                "rules": [{"name": "aks", "sourceAddresses": ["*"], "fqdnTags": ["AzureKubernetesService"]}],
            },
        }
    ]
    fw = net.azure_firewalls.begin_create_or_update(rg, "fw", body).result()
    assert len(fw.ip_configurations) == 2
    assert fw.ip_configurations[1].subnet is None and fw.ip_configurations[1].public_ip_address.id == pip2.id
    assert fw.network_rule_collections[0].rules[0].destination_ports == ["123"]
    assert fw.application_rule_collections[0].rules[0].fqdn_tags == ["AzureKubernetesService"]
    assert fw.firewall_policy is None
    fw.tags = {"a": "b"}
    assert net.azure_firewalls.begin_create_or_update(rg, "fw", fw).result().tags == {"a": "b"}
    assert [f.name for f in net.azure_firewalls.list(rg)] == ["fw"]


@pytest.mark.parametrize("case", ["subnet_name", "subnet_size", "pip_basic", "pip_missing", "policy_missing"])
def test_firewall_constraints(clients: ClientFactory, rg: str, case: str) -> None:
    net = clients.network
    hub = make_hub(clients, rg, fw_prefix="10.0.1.0/27" if case == "subnet_size" else "10.0.1.0/26")
    body = fw_body(hub)
    expected = {
        "subnet_name": "AzureFirewallSubnetNameInvalid",
        "subnet_size": "AzureFirewallSubnetMustBeAtLeastSize26",
        "pip_basic": "AzureFirewallPublicIpMustBeStandardSkuAndStatic",
        "pip_missing": "InvalidResourceReference",
        "policy_missing": "InvalidResourceReference",
    }[case]
    if case == "subnet_name":
        body["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"] = hub["aks_subnet"]
    elif case == "pip_basic":
        basic = net.public_ip_addresses.begin_create_or_update(
            rg,
            "basic",
            {
                "location": "westus",
                "sku": {"name": "Basic"},
                "properties": {"publicIPAllocationMethod": "Dynamic"},
            },
        ).result()
        body["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"]["id"] = basic.id
    elif case == "pip_missing":
        body["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"]["id"] += "-gone"
    elif case == "policy_missing":
        body["properties"]["firewallPolicy"]["id"] += "-gone"
    with pytest.raises(HttpResponseError) as exc:
        net.azure_firewalls.begin_create_or_update(rg, "fw", body)
    assert exc.value.error.code == expected


def test_rule_collection_group_validation(clients: ClientFactory, rg: str) -> None:
    net = clients.network
    make_hub(clients, rg)
    bad = {"properties": {**GROUP["properties"], "priority": 50}}
    with pytest.raises(HttpResponseError) as exc:
        net.firewall_policy_rule_collection_groups.begin_create_or_update(rg, "pol", "g", bad)
    assert exc.value.error.code == "FirewallPolicyRuleCollectionGroupInvalidPriorityValue"
    with pytest.raises(ResourceNotFoundError):
        net.firewall_policy_rule_collection_groups.begin_create_or_update(rg, "nopol", "g", GROUP)


def test_service_tags(clients: ClientFactory) -> None:
    tags = clients.network.service_tags.list("eastus").as_dict()
    names = {v["name"] for v in tags["values"]}
    assert {"AzureCloud", "AzureCloud.eastus", "AzureMonitor", "AzureMonitor.eastus"} <= names
    assert tags["cloud"] == "Public" and tags["type"] == "Microsoft.Network/serviceTags"
    assert {v["name"] for v in clients.network.service_tags.list("francecentral").as_dict()["values"]} >= {
        "AzureCloud.centralfrance"
    }


def test_conflict_409_when_policy_busy(tmp_path, rg_name: str = "rg1") -> None:
    """A write to a policy/group/firewall while one is in flight: 409 AnotherOperationInProgress (SDK:
    ResourceExistsError); the firewall shows Updating while its policy's group is written."""
    with Emulator(tmp_path, durations={"ruleCollectionGroups.put.attached": 1.0}) as emu:
        clients = ClientFactory(emu.target(), retry_total=0, polling_interval=0.05)
        clients.resource.resource_groups.create_or_update(rg_name, {"location": "westus"})
        net = clients.network
        hub = make_hub(clients, rg_name)
        net.azure_firewalls.begin_create_or_update(rg_name, "fw", fw_body(hub)).result()
        poller = net.firewall_policy_rule_collection_groups.begin_create_or_update(
            rg_name, "pol", "g1", GROUP
        )
        assert net.azure_firewalls.get(rg_name, "fw").provisioning_state == "Updating"
        assert (
            net.firewall_policy_rule_collection_groups.get(rg_name, "pol", "g1").provisioning_state
            == "Updating"
        )
        for write in (
            lambda: net.firewall_policy_rule_collection_groups.begin_create_or_update(
                rg_name, "pol", "g2", GROUP
            ),
            lambda: net.firewall_policies.begin_create_or_update(rg_name, "pol", {"location": "westus"}),
            lambda: net.azure_firewalls.begin_create_or_update(rg_name, "fw", fw_body(hub)),
        ):
            with pytest.raises(ResourceExistsError) as exc:
                write()
            assert exc.value.error.code == "AnotherOperationInProgress"
        poller.result()
        assert net.azure_firewalls.get(rg_name, "fw").provisioning_state == "Succeeded"
        net.firewall_policy_rule_collection_groups.begin_create_or_update(rg_name, "pol", "g2", GROUP)


def test_conflict_429_variant(tmp_path) -> None:
    with Emulator(tmp_path, durations={"routeTables.put": 1.0}, conflict_status=429) as emu:
        clients = ClientFactory(emu.target(), retry_total=0)
        clients.resource.resource_groups.create_or_update("rg", {"location": "westus"})
        clients.network.route_tables.begin_create_or_update("rg", "rt", {"location": "westus"})
        with pytest.raises(HttpResponseError) as exc:
            clients.network.route_tables.begin_create_or_update("rg", "rt", {"location": "westus"})
        assert exc.value.status_code == 429
        assert exc.value.error.code == "RetryableErrorDueToAnotherOperation"
        assert int(exc.value.response.headers["Retry-After"]) >= 1


def test_failed_group_update_leaves_firewall_failed(clients: ClientFactory, rg: str, emu: Emulator) -> None:
    net = clients.network
    hub = make_hub(clients, rg)
    net.azure_firewalls.begin_create_or_update(rg, "fw", fw_body(hub)).result()
    emu.add_fault(
        method="PUT",
        path="ruleCollectionGroups/g1$",
        count=1,
        action="fail_operation",
        code="AzureFirewallUpdateFailed",
        message="The firewall update failed.",
    )
    with pytest.raises(HttpResponseError) as exc:
        net.firewall_policy_rule_collection_groups.begin_create_or_update(rg, "pol", "g1", GROUP).result()
    assert "The firewall update failed." in str(exc.value)
    assert net.azure_firewalls.get(rg, "fw").provisioning_state == "Failed"
    # Writing the group again (the fault is spent) repairs both.
    net.firewall_policy_rule_collection_groups.begin_create_or_update(rg, "pol", "g1", GROUP).result()
    assert net.azure_firewalls.get(rg, "fw").provisioning_state == "Succeeded"

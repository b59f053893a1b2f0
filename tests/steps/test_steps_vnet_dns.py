"""Node DNS through the firewall's DNS proxy: the VNet's DNS servers are the firewall's private IP (the
fourth address of AzureFirewallSubnet), set in the one VNet PUT, diffed as an owned field, applied to an
adopted VNet, and checked by the firewall step against the address Azure really gave."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from aks_lockdown.steps._common import AdoptionConflict
from aks_lockdown.steps.firewall import FirewallAddressMismatch, FirewallStep
from aks_lockdown.steps.resource_group import ResourceGroupStep
from aks_lockdown.steps.virtual_network import (
    DNS_SERVERS_PATH,
    VirtualNetworkStep,
    firewall_private_ip,
)
from azure.mgmt.network.models import DhcpOptions
from steps_helpers import FakeContext, StubClients, converge, rollback, writes_of

from aks_lockdown.config import Config

NETWORK = [ResourceGroupStep, VirtualNetworkStep]
RG, VNET = "aks-egress-rg", "aks-egress-vnet"


def no_proxy() -> Config:
    return Config.model_validate({"firewall": {"dns_proxy": False}})


def dns_servers(azure: Any) -> list[str]:
    vnet = azure.network.virtual_networks.get(RG, VNET)
    return list((vnet.dhcp_options.dns_servers if vnet.dhcp_options else None) or [])


# --- offline -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("network", "address"),
    [
        ({}, "10.42.2.4"),
        ({"vnet_cidr": "10.0.0.0/8", "firewall_subnet_cidr": "10.0.0.64/26"}, "10.0.0.68"),
        (
            {
                "vnet_cidr": "172.16.0.0/16",
                "aks_subnet_cidr": "172.16.0.0/22",
                "firewall_subnet_cidr": "172.16.8.0/22",
            },
            "172.16.8.4",
        ),
    ],
)
def test_firewall_private_ip_is_the_fourth_address_of_its_subnet(network: dict, address: str) -> None:
    assert firewall_private_ip(Config.model_validate({"network": network})) == address


def test_desired_vnet_names_the_firewall_as_dns_server_only_with_the_proxy() -> None:
    props = VirtualNetworkStep(FakeContext(Config())).desired()["properties"]
    assert props["dhcpOptions"] == {"dnsServers": ["10.42.2.4"]}
    assert "dhcpOptions" not in VirtualNetworkStep(FakeContext(no_proxy())).desired()["properties"]


class _Firewalls:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def get(self, resource_group: str, name: str) -> dict[str, Any]:
        return self.body


def firewall_ctx(config: Config, private_ip: str) -> tuple[FakeContext, FirewallStep]:
    """A firewall as Azure would report it (matching the config), with the private IP it got."""
    ctx = FakeContext(config)
    ctx.outputs["public_ips"] = {"addresses": ["20.1.2.3"]}
    step = FirewallStep(ctx)
    props = step._properties()
    props["ipConfigurations"][0]["properties"]["privateIPAddress"] = private_ip
    props["provisioningState"] = "Succeeded"
    body = {"location": "eastus", "tags": dict(ctx.tags), "properties": props}
    ctx.clients = SimpleNamespace(
        subscription_id=StubClients.subscription_id,
        network=SimpleNamespace(azure_firewalls=_Firewalls(body)),
    )
    ctx.created.add(step.firewall_id.lower())
    return ctx, step


def test_firewall_step_fails_clearly_when_azure_gave_another_private_ip() -> None:
    _, step = firewall_ctx(Config(), "10.42.2.5")
    with pytest.raises(FirewallAddressMismatch) as err:
        step.check()
    text = err.value.one_line()
    assert "10.42.2.5" in text and "10.42.2.4" in text and "AzureFirewallSubnet" in text
    assert "DNS" in text
    # The expected address passes and is the output the route table uses.
    _, step = firewall_ctx(Config(), "10.42.2.4")
    diff = step.check()
    assert not diff.pending and diff.outputs["private_ip"] == "10.42.2.4"
    # Without the proxy the VNet does not depend on the address: nothing to object to.
    _, step = firewall_ctx(no_proxy(), "10.42.2.5")
    assert step.check().outputs["private_ip"] == "10.42.2.5"


# --- on the emulator ---------------------------------------------------------------------------------


def test_dns_servers_go_in_the_single_vnet_put_and_a_rerun_is_free(emulator: Any, azure: Any) -> None:
    ctx = FakeContext(Config(), azure)
    since = time.time()
    converge(ctx, NETWORK)
    vnet_writes = [w for w in writes_of(emulator, since) if "/virtualnetworks/" in w["path"].lower()]
    assert [w["method"] for w in vnet_writes] == ["PUT"]
    assert dns_servers(azure) == ["10.42.2.4"]
    ctx.writes.clear()
    diffs = converge(ctx, NETWORK)
    assert ctx.writes == [] and not diffs["vnet"].pending


def test_dns_server_drift_is_named_and_restored(azure: Any) -> None:
    ctx = FakeContext(Config(), azure)
    converge(ctx, NETWORK)
    vnet = azure.network.virtual_networks.get(RG, VNET)
    vnet.dhcp_options = None
    azure.network.virtual_networks.begin_create_or_update(RG, VNET, vnet).result()
    assert dns_servers(azure) == []

    [change] = VirtualNetworkStep(ctx).check().changes
    assert change.action == "update"
    assert [(f.path, f.current, f.desired) for f in change.fields] == [(DNS_SERVERS_PATH, [], ["10.42.2.4"])]
    ctx.writes.clear()
    converge(ctx, NETWORK)
    assert [op for _, op in ctx.writes] == ["update"]
    assert dns_servers(azure) == ["10.42.2.4"]


def test_turning_the_proxy_off_takes_the_firewall_out_of_the_vnet_dns(azure: Any) -> None:
    ctx = FakeContext(Config(), azure)
    converge(ctx, NETWORK)
    off = FakeContext(no_proxy(), azure)
    off.created = set(ctx.created)
    [change] = VirtualNetworkStep(off).check().changes
    assert change.action == "update"
    assert [(f.path, f.desired) for f in change.fields] == [(DNS_SERVERS_PATH, [])]
    converge(off, NETWORK)
    assert dns_servers(azure) == []
    off.writes.clear()
    converge(off, NETWORK)
    assert off.writes == []


def test_an_operators_dns_servers_are_left_alone_without_the_proxy(azure: Any) -> None:
    azure.resource.resource_groups.create_or_update(RG, {"location": "eastus"})
    ctx = FakeContext(no_proxy(), azure)
    converge(ctx, NETWORK)
    vnet = azure.network.virtual_networks.get(RG, VNET)
    vnet.dhcp_options = DhcpOptions(dns_servers=["10.42.1.53"])
    azure.network.virtual_networks.begin_create_or_update(RG, VNET, vnet).result()
    ctx.writes.clear()
    diffs = converge(ctx, NETWORK)
    assert ctx.writes == [] and not diffs["vnet"].pending
    assert dns_servers(azure) == ["10.42.1.53"]


def foreign_vnet(azure: Any, *, vnet_cidr: str = "10.42.0.0/16") -> None:
    """A VNet made by someone else, shaped as the config says, with its own tags and no DNS servers."""
    azure.resource.resource_groups.create_or_update(RG, {"location": "eastus"})
    body = {
        "location": "eastus",
        "tags": {"team": "net"},
        "properties": {
            "addressSpace": {"addressPrefixes": [vnet_cidr]},
            "subnets": [
                {"name": "aks-subnet", "properties": {"addressPrefix": "10.42.1.0/24"}},
                {"name": "AzureFirewallSubnet", "properties": {"addressPrefix": "10.42.2.0/24"}},
            ],
        },
    }
    azure.network.virtual_networks.begin_create_or_update(RG, VNET, body).result()


def test_adopted_vnet_gets_the_dns_servers_as_a_change_and_keeps_its_tags(azure: Any) -> None:
    foreign_vnet(azure)
    ctx = FakeContext(Config(), azure)
    converge(ctx, [ResourceGroupStep])
    step = VirtualNetworkStep(ctx)
    diff = step.check()
    [change] = diff.changes
    assert change.action == "update" and "adopted" in change.note
    assert [f.path for f in change.fields] == [DNS_SERVERS_PATH]
    assert step.vnet_id.lower() in ctx.adopted
    ctx.writes.clear()
    step.apply(diff)
    assert [op for _, op in ctx.writes] == ["update"]
    vnet = azure.network.virtual_networks.get(RG, VNET)
    assert vnet.dhcp_options.dns_servers == ["10.42.2.4"]
    # Our deployment tag would make it look ours to teardown: the operator's tags stay as they were.
    assert vnet.tags == {"team": "net"}
    # Converged: nothing more to do, and rollback never deletes it.
    ctx.writes.clear()
    assert not VirtualNetworkStep(ctx).check().pending
    rollback(ctx, [VirtualNetworkStep])
    assert ctx.writes == []
    assert azure.network.virtual_networks.get(RG, VNET).name == VNET


def test_adopted_vnet_of_another_shape_is_still_refused(azure: Any) -> None:
    foreign_vnet(azure, vnet_cidr="10.42.0.0/15")
    ctx = FakeContext(Config(), azure)
    converge(ctx, [ResourceGroupStep])
    step = VirtualNetworkStep(ctx)
    diff = step.check()
    [change] = diff.changes
    assert "will not be adopted" in change.note
    assert {f.path for f in change.fields} == {"properties.addressSpace.addressPrefixes", DNS_SERVERS_PATH}
    with pytest.raises(AdoptionConflict, match="addressSpace"):
        step.apply(diff)
    assert ctx.writes == []

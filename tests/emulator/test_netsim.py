"""netsim: routes, firewall evaluation through the shared evaluator, cluster bootstrap needs."""

from __future__ import annotations

from typing import Any

import pytest

from aks_lockdown.emulator import netsim

SUB = "/subscriptions/00000000-0000-0000-0000-0000000000aa"
RG = f"{SUB}/resourceGroups/aks-egress-rg"
NET = f"{RG}/providers/Microsoft.Network"
VNET = f"{NET}/virtualNetworks/aks-egress-vnet"
AKS_SUBNET = f"{VNET}/subnets/aks-subnet"
FW_SUBNET = f"{VNET}/subnets/AzureFirewallSubnet"
RT = f"{NET}/routeTables/aks-egress-fwrt"
FW = f"{NET}/azureFirewalls/aks-egress-fw"
PIP = f"{NET}/publicIPAddresses/aks-egress-fwpublicip"
POLICY = f"{NET}/firewallPolicies/aks-egress-fwpolicy"
FW_PRIVATE = "10.42.2.4"
FW_PUBLIC = "127.10.0.1"

# The seed's "Azure Global required FQDN / application rules" table, verbatim (2020).
SEED_FQDNS = [
    "*.hcp.eastus.azmk8s.io",
    "mcr.microsoft.com",
    "*.cdn.mscr.io",
    "*.data.mcr.microsoft.com",
    "management.azure.com",
    "login.microsoftonline.com",
    "packages.microsoft.com",
    "acs-mirror.azureedge.net",
]


def _tunnel_rules(src: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "ruleType": "NetworkRule",
            "name": "apiudp",
            "ipProtocols": ["UDP"],
            "sourceAddresses": src,
            "destinationAddresses": ["AzureCloud.eastus"],
            "destinationPorts": ["1194"],
        },
        {
            "ruleType": "NetworkRule",
            "name": "apitcp",
            "ipProtocols": ["TCP"],
            "sourceAddresses": src,
            "destinationAddresses": ["AzureCloud.eastus"],
            "destinationPorts": ["9000"],
        },
        {
            "ruleType": "NetworkRule",
            "name": "time",
            "ipProtocols": ["UDP"],
            "sourceAddresses": src,
            "destinationFqdns": ["ntp.ubuntu.com"],
            "destinationPorts": ["123"],
        },
    ]


def build_world(
    *,
    route: bool = True,
    fqdn_tag: bool = True,
    fqdns: list[str] | None = None,
    dns_proxy: bool = True,
    classic: bool = False,
    next_hop: str = FW_PRIVATE,
) -> netsim.DictWorld:
    """The seed's topology: a VNet with aks-subnet (UDR to the firewall) and AzureFirewallSubnet."""
    src = ["10.42.1.0/24"]
    subnet: dict[str, Any] = {
        "id": AKS_SUBNET,
        "name": "aks-subnet",
        "type": "Microsoft.Network/virtualNetworks/subnets",
        "properties": {"addressPrefix": "10.42.1.0/24"},
    }
    if route:
        subnet["properties"]["routeTable"] = {"id": RT}
    fw_subnet = {
        "id": FW_SUBNET,
        "name": "AzureFirewallSubnet",
        "type": "Microsoft.Network/virtualNetworks/subnets",
        "properties": {"addressPrefix": "10.42.2.0/24"},
    }
    vnet = {
        "id": VNET,
        "name": "aks-egress-vnet",
        "type": "Microsoft.Network/virtualNetworks",
        "location": "eastus",
        "properties": {"addressSpace": {"addressPrefixes": ["10.42.0.0/16"]}, "subnets": [subnet, fw_subnet]},
    }
    rt = {
        "id": RT,
        "name": "aks-egress-fwrt",
        "type": "Microsoft.Network/routeTables",
        "location": "eastus",
        "properties": {
            "routes": [
                {
                    "name": "aks-egress-fwrn",
                    "properties": {
                        "addressPrefix": "0.0.0.0/0",
                        "nextHopType": "VirtualAppliance",
                        "nextHopIpAddress": next_hop,
                    },
                },
                {
                    "name": "aks-egress-fwinternet",
                    "properties": {"addressPrefix": f"{FW_PUBLIC}/32", "nextHopType": "Internet"},
                },
            ]
        },
    }
    pip = {
        "id": PIP,
        "name": "aks-egress-fwpublicip",
        "type": "Microsoft.Network/publicIPAddresses",
        "location": "eastus",
        "sku": {"name": "Standard"},
        "properties": {"ipAddress": FW_PUBLIC, "publicIPAllocationMethod": "Static"},
    }
    app_rule: dict[str, Any] = {
        "ruleType": "ApplicationRule",
        "name": "fqdn",
        "sourceAddresses": src,
        "protocols": [{"protocolType": "Http", "port": 80}, {"protocolType": "Https", "port": 443}],
        "fqdnTags": ["AzureKubernetesService"] if fqdn_tag else [],
        "targetFqdns": list(fqdns or []),
    }
    fw_props: dict[str, Any] = {
        "sku": {"name": "AZFW_VNet", "tier": "Standard"},
        "ipConfigurations": [
            {
                "name": "aks-egress-fwconfig",
                "properties": {
                    "privateIPAddress": FW_PRIVATE,
                    "subnet": {"id": FW_SUBNET},
                    "publicIPAddress": {"id": PIP},
                },
            }
        ],
    }
    resources: list[dict[str, Any]] = [vnet, subnet, fw_subnet, rt, pip]
    if classic:
        fw_props["additionalProperties"] = {"Network.DNS.EnableProxy": "true" if dns_proxy else "false"}
        fw_props["networkRuleCollections"] = [
            {
                "name": "aksfwnr",
                "properties": {
                    "priority": 100,
                    "action": {"type": "Allow"},
                    "rules": [
                        {
                            "name": r["name"],
                            "protocols": r["ipProtocols"],
                            "sourceAddresses": r["sourceAddresses"],
                            "destinationAddresses": r.get("destinationAddresses", []),
                            "destinationFqdns": r.get("destinationFqdns", []),
                            "destinationPorts": r["destinationPorts"],
                        }
                        for r in _tunnel_rules(src)
                    ],
                },
            }
        ]
        fw_props["applicationRuleCollections"] = [
            {
                "name": "aksfwar",
                "properties": {
                    "priority": 100,
                    "action": {"type": "Allow"},
                    "rules": [
                        {
                            "name": "fqdn",
                            "sourceAddresses": src,
                            "protocols": app_rule["protocols"],
                            "fqdnTags": app_rule["fqdnTags"],
                            "targetFqdns": app_rule["targetFqdns"],
                        }
                    ],
                },
            }
        ]
    else:
        fw_props["firewallPolicy"] = {"id": POLICY}
        group_id = f"{POLICY}/ruleCollectionGroups/aks-egress"
        resources.append(
            {
                "id": POLICY,
                "name": "aks-egress-fwpolicy",
                "type": "Microsoft.Network/firewallPolicies",
                "location": "eastus",
                "properties": {
                    "sku": {"tier": "Standard"},
                    "dnsSettings": {"enableProxy": dns_proxy},
                    "ruleCollectionGroups": [{"id": group_id}],
                },
            }
        )
        resources.append(
            {
                "id": group_id,
                "name": "aks-egress",
                "type": "Microsoft.Network/firewallPolicies/ruleCollectionGroups",
                "properties": {
                    "priority": 200,
                    "ruleCollections": [
                        {
                            "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                            "name": "aksfwnr",
                            "priority": 100,
                            "action": {"type": "Allow"},
                            "rules": _tunnel_rules(src),
                        },
                        {
                            "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                            "name": "aksfwar",
                            "priority": 200,
                            "action": {"type": "Allow"},
                            "rules": [app_rule],
                        },
                    ],
                },
            }
        )
    resources.append(
        {
            "id": FW,
            "name": "aks-egress-fw",
            "type": "Microsoft.Network/azureFirewalls",
            "location": "eastus",
            "properties": fw_props,
        }
    )
    return netsim.DictWorld(resources)


def cluster(**extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "agentPoolProfiles": [
            {"name": "nodepool1", "count": 3, "vnetSubnetID": AKS_SUBNET, "osType": "Linux"}
        ],
        "networkProfile": {"outboundType": "userDefinedRouting"},
    }
    props.update(extra)
    return {
        "id": f"{RG}/providers/Microsoft.ContainerService/managedClusters/aks-egress",
        "location": "eastus",
        "properties": props,
    }


# ------------------------------------------------------------------ routing (no evaluator needed)


def test_no_route_table_reaches_internet_directly() -> None:
    sim = netsim.NetSim(build_world(route=False))
    r = sim.reach(AKS_SUBNET, "https://packages.aks.azure.com/")
    assert r.allowed
    assert r.hop.next_hop_type == "Internet"
    assert r.firewall_id is None


def test_longest_prefix_match_beats_default_route() -> None:
    w = build_world()
    # The seed's FW_PUBLIC_IP/32 -> Internet route wins over 0.0.0.0/0 -> firewall.
    hop = netsim.select_route(w, AKS_SUBNET, netsim.parse_destination(f"{FW_PUBLIC}:80"))
    assert hop.next_hop_type == "Internet"
    assert hop.route.endswith("aks-egress-fwinternet")
    hop = netsim.select_route(w, AKS_SUBNET, netsim.parse_destination("mcr.microsoft.com:443"))
    assert (hop.next_hop_type, hop.next_hop_ip) == ("VirtualAppliance", FW_PRIVATE)
    # Inside the VNet the system VnetLocal route (/16) beats 0.0.0.0/0.
    hop = netsim.select_route(w, AKS_SUBNET, netsim.parse_destination("10.42.2.10:443"))
    assert hop.next_hop_type == "VnetLocal"


def test_route_to_unknown_appliance_drops() -> None:
    sim = netsim.NetSim(build_world(next_hop="10.42.2.99"))
    r = sim.reach(AKS_SUBNET, "https://mcr.microsoft.com/")
    assert not r.allowed
    assert "no firewall's private IP" in r.reason


def test_parse_destination_forms() -> None:
    d = netsim.parse_destination("https://mcr.microsoft.com/v2/")
    assert (d.fqdn, d.port, d.protocol, d.scheme) == ("mcr.microsoft.com", 443, "TCP", "https")
    d = netsim.parse_destination("AzureCloud.eastus:1194/udp")
    assert d.service_tags == ("AzureCloud.eastus", "AzureCloud")
    assert (d.port, d.protocol, d.fqdn) == (1194, "UDP", None)
    d = netsim.parse_destination("x.hcp.eastus.azmk8s.io:443", location="eastus")
    assert "AzureCloud.eastus" in d.service_tags
    d = netsim.parse_destination("http://10.1.2.3:8080/")
    assert (d.ip, d.port) == ("10.1.2.3", 8080)


def test_row_destinations_reads_catalog_fields() -> None:
    row = {
        "kind": "network",
        "destination": "AzureCloud.<location>",
        "dest_type": "service-tag",
        "protocol": "UDP",
        "port": 1194,
    }
    (d,) = netsim.row_destinations(row, "eastus")
    assert d.service_tags[0] == "AzureCloud.eastus" and d.protocol == "UDP"
    row = {
        "kind": "application",
        "destination": "*.hcp.<location>.azmk8s.io",
        "dest_type": "fqdn",
        "protocol": "Https",
        "port": 443,
    }
    (d,) = netsim.row_destinations(row, "eastus")
    assert d.fqdn == "aks-lockdown-probe.hcp.eastus.azmk8s.io" and d.scheme == "https"
    assert netsim.row_destinations({"destination": "APIServerIP", "dest_type": "placeholder"}, "eastus") == []


def test_cluster_features_from_spec() -> None:
    c = cluster(addonProfiles={"omsagent": {"enabled": True}, "azurepolicy": {"enabled": False}})
    assert netsim.cluster_features(c) == ["monitor"]


# ------------------------------------------------------------------ firewall evaluation

try:
    import aks_lockdown.egress.evaluate  # noqa: F401

    HAVE_EVALUATOR = True
except ImportError:
    HAVE_EVALUATOR = False
# The evaluator is part of the product: its absence is a failure, not a reason to skip.
assert HAVE_EVALUATOR, "aks_lockdown.egress.evaluate must be importable"


def test_tag_rules_allow_todays_endpoints() -> None:
    sim = netsim.NetSim(build_world())
    r = sim.reach(AKS_SUBNET, "https://packages.aks.azure.com/")
    assert r.allowed, r.reason
    assert r.firewall_id == FW
    r = sim.reach(AKS_SUBNET, "https://example.com/")
    assert not r.allowed


def test_tunnel_port_is_a_service_tag_flow() -> None:
    sim = netsim.NetSim(build_world())
    assert sim.reach(AKS_SUBNET, "AzureCloud.eastus:1194/udp").allowed
    assert not sim.reach(AKS_SUBNET, "AzureCloud.westus:1194/udp").allowed


def test_explicit_fqdn_rules() -> None:
    sim = netsim.NetSim(build_world(fqdn_tag=False, fqdns=SEED_FQDNS))
    assert sim.reach(AKS_SUBNET, "https://mcr.microsoft.com/").allowed
    assert not sim.reach(AKS_SUBNET, "https://packages.aks.azure.com/").allowed


def test_dns_proxy_off_disables_fqdn_network_rules() -> None:
    on = netsim.NetSim(build_world(dns_proxy=True))
    off = netsim.NetSim(build_world(dns_proxy=False))
    assert on.reach(AKS_SUBNET, "ntp.ubuntu.com:123/udp").allowed
    assert not off.reach(AKS_SUBNET, "ntp.ubuntu.com:123/udp").allowed


def test_classic_firewall_rules() -> None:
    sim = netsim.NetSim(build_world(classic=True))
    assert sim.reach(AKS_SUBNET, "https://mcr.microsoft.com/").allowed
    assert sim.reach(AKS_SUBNET, "AzureCloud.eastus:9000").allowed
    assert not sim.reach(AKS_SUBNET, "https://example.com/").allowed


def test_bootstrap_tag_rules_pass() -> None:
    assert netsim.bootstrap_check(build_world(), cluster()) == []
    assert netsim.bootstrap_check(build_world(classic=True), cluster()) == []


def test_bootstrap_seed_explicit_fqdns_miss_packages_aks() -> None:
    blocked = netsim.bootstrap_check(build_world(fqdn_tag=False, fqdns=SEED_FQDNS), cluster())
    names = [b.endpoint for b in blocked]
    assert "packages.aks.azure.com:443" in names
    assert "mcr.microsoft.com:443" not in names


def test_bootstrap_without_custom_subnet_needs_nothing() -> None:
    c = cluster()
    del c["properties"]["agentPoolProfiles"][0]["vnetSubnetID"]
    assert netsim.bootstrap_check(build_world(fqdn_tag=False), c) == []


def test_bootstrap_direct_internet_passes() -> None:
    assert netsim.bootstrap_check(build_world(route=False, fqdn_tag=False), cluster()) == []


def _world_with_compiled_rules(**firewall: Any) -> netsim.DictWorld:
    """The seed topology carrying the rules the tool itself compiles for a config."""
    from aks_lockdown.config import Config
    from aks_lockdown.egress import compiler

    cfg = Config.model_validate({"firewall": firewall})
    ruleset = compiler.compile_rules(compiler.RuleInputs.from_config(cfg, firewall_public_ips=[FW_PUBLIC]))
    w = build_world(classic=cfg.firewall.rules == "classic", dns_proxy=cfg.firewall.dns_proxy)
    if cfg.firewall.rules == "classic":
        fw = w.get(FW)
        assert fw is not None
        fw["properties"].update(compiler.render_classic(ruleset).to_arm_json())
    else:
        w.delete(f"{POLICY}/ruleCollectionGroups/aks-egress")
        groups = compiler.policy_groups_to_json(compiler.render_policy_groups(ruleset))
        names = sorted(compiler.render_policy_groups(ruleset))
        for name, g in zip(names, groups, strict=True):
            w.put({**g, "id": f"{POLICY}/ruleCollectionGroups/{name}", "name": name,
                   "type": "Microsoft.Network/firewallPolicies/ruleCollectionGroups"})  # fmt: skip
    return w


@pytest.mark.parametrize("rules", ["policy", "classic"])
@pytest.mark.parametrize("edition", ["seed-2020", "current"])
def test_tools_tag_rules_bootstrap_in_every_edition(rules: str, edition: str) -> None:
    w = _world_with_compiled_rules(rules=rules, egress_edition=edition, fqdn_mode="tag")
    assert netsim.bootstrap_check(w, cluster()) == []


def test_tools_explicit_seed_rules_miss_packages_aks() -> None:
    w = _world_with_compiled_rules(egress_edition="seed-2020", fqdn_mode="explicit")
    blocked = [b.endpoint for b in netsim.bootstrap_check(w, cluster())]
    assert "packages.aks.azure.com:443" in blocked


def test_tools_explicit_current_rules_bootstrap() -> None:
    w = _world_with_compiled_rules(egress_edition="current", fqdn_mode="explicit")
    assert netsim.bootstrap_check(w, cluster()) == []

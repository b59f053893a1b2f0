"""The effective-rules evaluator, on REST JSON as ARM returns it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from aks_lockdown.config import Config
from aks_lockdown.egress import catalog
from aks_lockdown.egress.compiler import (
    RuleInputs,
    compile_rules,
    policy_groups_to_json,
    render_classic,
    render_policy_groups,
)
from aks_lockdown.egress.evaluate import EffectiveRules, Flow

NODE = "10.42.1.4"
FW_IP = "52.253.228.132"


def build(**firewall: Any) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
    cfg = Config.model_validate({"firewall": firewall})
    rs = compile_rules(RuleInputs.from_config(cfg, [FW_IP]))
    groups = policy_groups_to_json(render_policy_groups(rs))
    # What ARM returns: ids, etags and provisioning state on top of what was sent.
    for g in groups:
        g["id"] = (
            f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/firewallPolicies/p/ruleCollectionGroups/{g['name']}"
        )
        g["properties"]["provisioningState"] = "Succeeded"
    classic = {
        "name": "fw",
        "properties": {**render_classic(rs).to_arm_json(), "provisioningState": "Succeeded"},
    }
    return groups, classic, cfg.firewall.dns_proxy


def both(**firewall: Any) -> list[EffectiveRules]:
    groups, classic, proxy = build(**firewall)
    kw = {"dns_proxy": proxy, "cloud": "AzureCloud", "location": "eastus"}
    return [
        EffectiveRules.from_policy_groups(groups, **kw),
        EffectiveRules.from_classic_firewall(classic, **kw),
    ]


FLOWS = [
    (Flow(NODE, "HTTPS", 443, fqdn="mcr.microsoft.com"), True),
    (Flow(NODE, "HTTPS", 443, fqdn="eastus.data.mcr.microsoft.com"), True),
    (Flow(NODE, "HTTPS", 443, fqdn="data.mcr.microsoft.com"), False),  # "*.x" is subdomains only
    (Flow(NODE, "HTTPS", 443, fqdn="myaks-1234.hcp.eastus.azmk8s.io"), True),
    (Flow(NODE, "HTTPS", 443, fqdn="myaks-1234.hcp.westus.azmk8s.io"), False),
    (Flow(NODE, "HTTPS", 443, fqdn="packages.aks.azure.com"), True),
    (Flow(NODE, "HTTPS", 443, fqdn="example.com"), False),
    (Flow(NODE, "HTTP", 80, fqdn="mcr.microsoft.com"), False),  # explicit core rules are HTTPS only
    (Flow("10.99.0.4", "HTTPS", 443, fqdn="mcr.microsoft.com"), False),  # not from the AKS subnet
    (
        Flow(NODE, "UDP", 1194, ip="20.1.2.3", service_tags=frozenset({"AzureCloud.eastus", "AzureCloud"})),
        True,
    ),
    (
        Flow(NODE, "UDP", 1194, ip="40.1.2.3", service_tags=frozenset({"AzureCloud.westus", "AzureCloud"})),
        False,
    ),
    (Flow(NODE, "TCP", 9000, service_tags=frozenset({"AzureCloud.eastus"})), True),
    (Flow(NODE, "TCP", 22, service_tags=frozenset({"AzureCloud.eastus"})), False),
    (Flow(NODE, "TCP", 443, ip="8.8.8.8"), False),
]


@pytest.mark.parametrize(("flow", "expected"), FLOWS)
def test_policy_and_classic_agree(flow: Flow, expected: bool) -> None:
    policy, classic = both(fqdn_mode="explicit")
    v1, v2 = policy.allows(flow), classic.allows(flow)
    assert v1.allowed is expected, v1.reason
    assert v2.allowed is expected, v2.reason
    if expected:
        assert v1.rule and v1.rule.startswith("aks-lockdown-egress/")
        assert v2.rule and v2.rule.startswith("aksfw")
    else:
        assert v1.rule is None and "default deny" in v1.reason


def test_fqdn_tag_expansion() -> None:
    policy, classic = both(fqdn_mode="tag")
    for rules in (policy, classic):
        v = rules.allows(Flow(NODE, "HTTPS", 443, fqdn="packages.aks.azure.com"))
        assert v.allowed and v.rule is not None and v.rule.endswith("aks-fqdn-tag")
        assert rules.allows(Flow(NODE, "HTTP", 80, fqdn="mcr.microsoft.com")).allowed
        # Add-ons are not in the tag.
        assert not rules.allows(Flow(NODE, "HTTPS", 443, fqdn="dc.services.visualstudio.com")).allowed


def test_fqdn_network_rule_needs_dns_proxy() -> None:
    groups, classic, _ = build(egress_edition="seed-2020")  # has the NTP FQDN network rule
    ntp = Flow(NODE, "UDP", 123, fqdn="ntp.ubuntu.com")
    on = EffectiveRules.from_policy_groups(groups, dns_proxy=True, cloud="AzureCloud", location="eastus")
    assert on.allows(ntp).allowed
    assert on.allows(ntp).rule == "aks-lockdown-egress/aks-network/time"
    off = EffectiveRules.from_classic_firewall(
        classic, dns_proxy=False, cloud="AzureCloud", location="eastus"
    )
    v = off.allows(ntp)
    assert not v.allowed
    assert "DNS proxy" in v.reason and "aksfwnr/time" in v.reason
    assert [f.issue for f in off.audit()] == ["fqdn-without-dns-proxy"]


def test_deny_rule_and_priorities() -> None:
    groups, _, _ = build(fqdn_mode="explicit")
    deny = {
        "name": "blocklist",
        "properties": {
            "priority": 150,  # before the egress group (200)
            "ruleCollections": [
                {
                    "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                    "name": "deny-mcr",
                    "priority": 100,
                    "action": {"type": "Deny"},
                    "rules": [
                        {
                            "ruleType": "ApplicationRule",
                            "name": "no-mcr",
                            "sourceAddresses": ["*"],
                            "protocols": [{"protocolType": "Https", "port": 443}],
                            "targetFqdns": ["mcr.microsoft.com"],
                        }
                    ],
                }
            ],
        },
    }
    rules = EffectiveRules.from_policy_groups(
        [*groups, deny], dns_proxy=True, cloud="AzureCloud", location="eastus"
    )
    v = rules.allows(Flow(NODE, "HTTPS", 443, fqdn="mcr.microsoft.com"))
    assert not v.allowed and v.rule == "blocklist/deny-mcr/no-mcr" and v.reason.startswith("denied")
    # Network rules are evaluated before application rules, whatever the group priority.
    late = copy.deepcopy(deny)
    late["properties"]["priority"] = 900
    late["properties"]["ruleCollections"][0]["rules"] = [
        {
            "ruleType": "NetworkRule",
            "name": "no-tunnel",
            "ipProtocols": ["Any"],
            "sourceAddresses": ["*"],
            "destinationAddresses": ["*"],
            "destinationPorts": ["1-65535"],
        }
    ]
    rules = EffectiveRules.from_policy_groups(
        [*groups, late], dns_proxy=True, cloud="AzureCloud", location="eastus"
    )
    assert rules.allows(Flow(NODE, "UDP", 1194, service_tags=frozenset({"AzureCloud.eastus"}))).allowed
    v = rules.allows(Flow(NODE, "HTTPS", 443, fqdn="mcr.microsoft.com"))
    assert not v.allowed and v.rule == "blocklist/deny-mcr/no-tunnel"


def test_audit_open_rules() -> None:
    groups, _, _ = build(allow_any_source=True)
    loose = {
        "name": "loose",
        "properties": {
            "priority": 300,
            "ruleCollections": [
                {
                    "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                    "name": "c",
                    "priority": 100,
                    "action": {"type": "Allow"},
                    "rules": [
                        {
                            "ruleType": "NetworkRule",
                            "name": "any",
                            "ipProtocols": ["TCP"],
                            "sourceAddresses": ["10.42.1.0/24"],
                            "destinationAddresses": ["0.0.0.0/0"],
                            "destinationPorts": ["*"],
                        }
                    ],
                }
            ],
        },
    }
    rules = EffectiveRules.from_policy_groups(
        [*groups, loose], dns_proxy=True, cloud="AzureCloud", location="eastus"
    )
    assert rules.open_destination_rules() == ["loose/c/any"]
    assert "aks-lockdown-egress/aks-network/apiudp" in rules.any_source_rules()
    # The DNAT rule's "*" source is inbound internet traffic: not an egress finding.
    assert not any("dnat" in r for r in rules.any_source_rules())
    strict, _ = both()
    assert strict.audit() == []


def test_covers_catalog_rows() -> None:
    policy, classic = both(egress_edition="seed-2020", fqdn_mode="explicit")
    need = catalog.required_now("AzureCloud", "eastus")
    for rules in (policy, classic):
        verdicts = rules.covers(need, source_ip=NODE)
        missing = sorted(rid for rid, v in verdicts.items() if not v.allowed)
        assert missing == ["pub.fqdn.mcr-msedge", "pub.fqdn.packages-aks"]
    # Placeholder rows are not probed.
    seed = catalog.rows("AzureCloud", "seed-2020", (), "eastus")
    assert "pub.net.custom-dns" not in policy.covers(seed, source_ip=NODE)


def test_wildcard_row_needs_wildcard_rule() -> None:
    groups = [
        {
            "name": "g",
            "properties": {
                "priority": 100,
                "ruleCollections": [
                    {
                        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                        "name": "c",
                        "priority": 100,
                        "action": {"type": "Allow"},
                        "rules": [
                            {
                                "ruleType": "ApplicationRule",
                                "name": "one-host",
                                "sourceAddresses": ["*"],
                                "protocols": [{"protocolType": "Https", "port": 443}],
                                "targetFqdns": ["eastus.data.mcr.microsoft.com", "*.azk8s.cn"],
                            }
                        ],
                    }
                ],
            },
        }
    ]
    rules = EffectiveRules.from_policy_groups(
        groups, dns_proxy=True, cloud="AzureChinaCloud", location="chinaeast2"
    )
    rows = catalog.rows("AzureChinaCloud", "current", (), "chinaeast2")
    v = rules.covers(rows, source_ip=NODE)
    assert not v["cn.fqdn.mcr-data"].allowed  # one host does not cover *.data.mcr.microsoft.com
    assert v["cn.fqdn.hcp"].allowed  # *.azk8s.cn covers *.hcp.chinaeast2.cx.prod.service.azk8s.cn


def test_dnat_lookup() -> None:
    policy, classic = both()
    for rules in (policy, classic):
        target = rules.dnat(FW_IP, 80, "TCP")
        assert target is not None and target[:2] == ("10.42.1.250", 80)
        assert rules.dnat(FW_IP, 443, "TCP") is None
        assert rules.dnat("1.1.1.1", 80, "TCP") is None


def test_classic_without_properties_wrapper_and_ranges() -> None:
    fw = {
        "networkRuleCollections": [
            {
                "name": "n",
                "properties": {
                    "priority": 100,
                    "action": {"type": "Allow"},
                    "rules": [
                        {
                            "name": "r",
                            "protocols": ["Any"],
                            "sourceAddresses": ["10.42.1.0-10.42.1.9"],
                            "destinationAddresses": ["20.0.0.0/8"],
                            "destinationPorts": ["440-450"],
                        }
                    ],
                },
            }
        ]
    }
    rules = EffectiveRules.from_classic_firewall(fw, dns_proxy=False, cloud="AzureCloud", location="eastus")
    assert rules.allows(Flow("10.42.1.5", "TCP", 443, ip="20.5.5.5")).allowed
    assert not rules.allows(Flow("10.42.1.50", "TCP", 443, ip="20.5.5.5")).allowed
    assert not rules.allows(Flow("10.42.1.5", "TCP", 451, ip="20.5.5.5")).allowed
    with pytest.raises(ValueError):
        rules.allows(Flow("10.42.1.5", "SCTP", 1))


def test_list_response_wrapper() -> None:
    groups, _, _ = build()
    rules = EffectiveRules.from_policy_groups(
        {"value": groups, "nextLink": None}, dns_proxy=True, cloud="AzureCloud", location="eastus"
    )
    assert rules.allows(Flow(NODE, "HTTPS", 443, fqdn="mcr.microsoft.com")).allowed

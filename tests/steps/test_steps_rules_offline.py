"""The rules step's comparison of rule collection groups, offline (REST JSON in, field changes out)."""

from __future__ import annotations

import copy

from aks_lockdown.steps.firewall_rules import FirewallRulesStep, dnat_targets
from steps_helpers import FakeContext

from aks_lockdown.config import Config


def groups() -> dict[str, dict]:
    ctx = FakeContext(Config())
    ctx.outputs["public_ips"] = {"addresses": ["20.1.2.3"]}
    return FirewallRulesStep(ctx)._desired_groups()


def as_azure_returns(group: dict) -> dict:
    """What a GET gives back: read-only fields, Azure's defaults for fields we never set."""
    actual = copy.deepcopy(group)
    actual.update(
        id="/subscriptions/x/...",
        etag='W/"1"',
        type="Microsoft.Network/FirewallPolicies/RuleCollectionGroups",
    )
    actual["properties"]["provisioningState"] = "Succeeded"
    for coll in actual["properties"].get("ruleCollections", []):
        for rule in coll["rules"]:
            rule.setdefault("sourceIpGroups", [])
            rule.setdefault("description", None)
            if rule["ruleType"] == "ApplicationRule":
                rule.setdefault("terminateTLS", False)
    return actual


def test_a_group_azure_echoes_back_is_unchanged() -> None:
    for group in groups().values():
        assert FirewallRulesStep._group_changes(group, as_azure_returns(group)) == []


def test_a_rule_added_out_of_band_is_named() -> None:
    group = next(
        g for g in groups().values() if any("rules" in c for c in g["properties"].get("ruleCollections", []))
    )
    actual = as_azure_returns(group)
    coll = actual["properties"]["ruleCollections"][0]
    extra = copy.deepcopy(coll["rules"][0])
    extra["name"] = "sneaky"
    coll["rules"].append(extra)
    changes = FirewallRulesStep._group_changes(group, actual)
    assert [c.path for c in changes] == [f"properties.ruleCollections[{coll['name']}].rules[sneaky]"]


def test_an_emptied_dnat_group_is_a_change() -> None:
    desired = groups()
    dnat_name = next(
        n for n, g in desired.items() if dnat_targets(g["properties"].get("ruleCollections", []))
    )
    full = as_azure_returns(desired[dnat_name])
    empty = {
        "properties": {k: v for k, v in desired[dnat_name]["properties"].items() if k != "ruleCollections"}
    }
    assert FirewallRulesStep._group_changes(empty, full) != []


def test_dnat_targets_read_policy_and_classic_shapes() -> None:
    nat = {"name": "in", "translatedAddress": "10.0.0.9", "translatedPort": "80"}
    policy = [{"name": "c", "rules": [{**nat, "ruleType": "NatRule", "destinationAddresses": ["1.2.3.4"]}]}]
    classic = [{"name": "c", "properties": {"rules": [nat]}}]
    assert dnat_targets(policy)[0]["destination_addresses"] == ["1.2.3.4"]
    assert dnat_targets(classic)[0]["translated_port"] == "80"

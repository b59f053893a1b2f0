"""Compiler: least privilege, both renderings, all three clouds, DNS proxy, missing_required."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aks_lockdown.config import Config
from aks_lockdown.egress import compiler
from aks_lockdown.egress.compiler import (
    DNAT_GROUP,
    EGRESS_GROUP,
    RuleInputs,
    compile_rules,
    fingerprint,
    missing_required,
    policy_groups_to_json,
    render_classic,
    render_policy_groups,
    to_arm_json,
)
from aks_lockdown.errors import ConfigError

LOCATIONS = {"AzureCloud": "eastus", "AzureChinaCloud": "chinaeast2", "AzureUSGovernment": "usgovvirginia"}
FW_IP = "52.253.228.132"


def make_config(**firewall: Any) -> Config:
    cloud = firewall.pop("cloud", "AzureCloud")
    ingress = firewall.pop("ingress", None)
    data: dict[str, Any] = {
        "azure": {"cloud": cloud, "location": LOCATIONS[cloud]},
        "firewall": firewall,
    }
    if ingress is not None:
        data["ingress"] = ingress
    return Config.model_validate(data)


def ruleset(**firewall: Any) -> compiler.RuleSet:
    return compile_rules(RuleInputs.from_config(make_config(**firewall), [FW_IP, "20.0.0.2"]))


def all_sources(rs: compiler.RuleSet) -> set[str]:
    return {s for r in rs.network_rules + rs.application_rules for s in r.sources}


@pytest.mark.parametrize("cloud", list(LOCATIONS))
@pytest.mark.parametrize("edition", ["seed-2020", "current"])
def test_least_privilege(cloud: str, edition: str) -> None:
    rs = ruleset(cloud=cloud, egress_edition=edition, features=["os-updates", "monitor"], fqdn_mode="both")
    assert all_sources(rs) == {"10.42.1.0/24"}
    tag = f"AzureCloud.{LOCATIONS[cloud]}"
    tunnel = [r for r in rs.network_rules if r.ports[0] in ("1194", "9000", "22")]
    assert tunnel and all(r.destination_addresses == (tag,) for r in tunnel)
    for r in rs.network_rules + rs.application_rules:
        assert "*" not in r.destinations
        assert not any("<location>" in d for d in r.destinations)
    # Conditional rows (CustomDNSIP, APIServerIP) are never compiled.
    assert not any(d in ("CustomDNSIP", "APIServerIP") for r in rs.network_rules for d in r.destinations)


def test_china_has_tcp_22() -> None:
    for edition in ("seed-2020", "current"):
        rs = ruleset(cloud="AzureChinaCloud", egress_edition=edition)
        ssh = [r for r in rs.network_rules if r.ports == ("22",)]
        assert len(ssh) == 1
        assert ssh[0].protocols == ("TCP",)
        assert ssh[0].destination_addresses == ("AzureCloud.chinaeast2",)
        assert ssh[0].row_ids == ("cn.net.tunnel-tcp-22",)
    assert not [r for r in ruleset(cloud="AzureCloud").network_rules if r.ports == ("22",)]


def test_tunnel_ports_switch() -> None:
    assert [r.name for r in ruleset(tunnel_ports=True).network_rules] == ["apiudp", "apitcp"]
    assert ruleset(tunnel_ports=False).network_rules == ()


def test_seed_edition_reproduces_walkthrough_rules() -> None:
    rs = ruleset(egress_edition="seed-2020", fqdn_mode="tag")
    assert [r.name for r in rs.network_rules] == ["apiudp", "apitcp", "time"]
    time = rs.network_rules[2]
    assert time.destination_fqdns == ("ntp.ubuntu.com",) and time.protocols == ("UDP",)
    (tag_rule,) = rs.application_rules
    assert tag_rule.fqdn_tags == ("AzureKubernetesService",)
    assert tag_rule.protocols == (("Http", 80), ("Https", 443))


def test_fqdn_modes() -> None:
    tag = ruleset(fqdn_mode="tag", features=["gpu"])
    assert [r.name for r in tag.application_rules] == ["aks-fqdn-tag", "gpu-https"]
    explicit = ruleset(fqdn_mode="explicit", features=["gpu"])
    assert [r.name for r in explicit.application_rules] == ["aks-core-https", "gpu-https"]
    core = explicit.application_rules[0]
    assert "packages.aks.azure.com" in core.target_fqdns
    assert "*.hcp.eastus.azmk8s.io" in core.target_fqdns
    both = ruleset(fqdn_mode="both", features=["gpu"])
    assert [r.name for r in both.application_rules] == ["aks-fqdn-tag", "aks-core-https", "gpu-https"]


def test_china_seed_typo_compiled_as_wildcard() -> None:
    rs = ruleset(cloud="AzureChinaCloud", egress_edition="seed-2020", fqdn_mode="explicit")
    fqdns = {f for r in rs.application_rules for f in r.target_fqdns}
    assert "*.data.mcr.microsoft.com" in fqdns
    assert ".data.mcr.microsoft.com" not in fqdns


def test_dns_proxy_refusal() -> None:
    with pytest.raises(ConfigError) as exc:
        compile_rules(
            RuleInputs.from_config(
                make_config(egress_edition="seed-2020", dns_proxy=False), [FW_IP], config_file="x.toml"
            )
        )
    assert exc.value.field == "firewall.dns_proxy"
    assert "ntp.ubuntu.com" in str(exc.value)
    assert str(exc.value).startswith("x.toml: firewall.dns_proxy:")
    # Current edition has no FQDN network rules: fine without the proxy.
    ruleset(dns_proxy=False)
    extra = {
        "name": "github",
        "kind": "network",
        "protocols": ["TCP"],
        "destination_fqdns": ["ghcr.io"],
        "destination_ports": ["443"],
    }
    with pytest.raises(ConfigError, match=r"firewall\.dns_proxy"):
        ruleset(dns_proxy=False, extra_rules=[extra])


def test_allow_any_source() -> None:
    assert all_sources(ruleset(allow_any_source=True)) == {"*"}


def test_extra_rules_appended() -> None:
    extras = [
        {
            "name": "ubuntu-esm",
            "kind": "application",
            "protocols": ["Https:443"],
            "destination_fqdns": ["esm.ubuntu.com"],
        },
        {
            "name": "ntp",
            "kind": "network",
            "protocols": ["UDP"],
            "destination_addresses": ["168.61.215.74"],
            "destination_ports": ["123"],
            "source_addresses": ["10.42.1.10"],
        },
    ]
    rs = ruleset(extra_rules=extras)
    assert rs.application_rules[-1].name == "ubuntu-esm" and rs.application_rules[-1].extra
    assert rs.application_rules[-1].protocols == (("Https", 443),)
    assert rs.network_rules[-1].sources == ("10.42.1.10",)
    groups = policy_groups_to_json(render_policy_groups(rs))
    names = [c["name"] for c in groups[1]["properties"]["ruleCollections"]]
    assert names == ["aks-network", "aks-application", "extra-network", "extra-application"]
    classic = render_classic(rs).to_arm_json()
    assert [c["name"] for c in classic["networkRuleCollections"]] == ["aksfwnr", "aksfwnr-extra"]


def test_nat_rules() -> None:
    dnat = {
        "dnat": [
            {"name": "web", "firewall_port": 8080, "target_ip": "10.42.1.250", "target_port": 80},
            {
                "name": "dns",
                "protocol": "UDP",
                "firewall_port": 53,
                "target_ip": "10.42.1.251",
                "target_port": 53,
            },
        ]
    }
    rs = ruleset(ingress=dnat)
    web, dns = rs.nat_rules
    assert web.destination_addresses == (FW_IP,) and web.ports == ("8080",)
    assert web.translated_address == "10.42.1.250" and web.translated_port == "80"
    assert web.sources == ("*",) and dns.protocols == ("UDP",)
    # Without IPs yet (plan before deploy) a placeholder stands in.
    plan = compile_rules(RuleInputs.from_config(make_config(), []))
    assert plan.nat_rules[0].destination_addresses == (compiler.PUBLIC_IP_PLACEHOLDER,)


@pytest.mark.parametrize("cloud", list(LOCATIONS))
def test_policy_rendering(cloud: str) -> None:
    rs = ruleset(cloud=cloud, features=["monitor"], fqdn_mode="both")
    groups = render_policy_groups(rs)
    assert list(groups) == [DNAT_GROUP, EGRESS_GROUP]
    egress = to_arm_json(groups[EGRESS_GROUP])
    assert egress["name"] == EGRESS_GROUP and egress["properties"]["priority"] == 200
    colls = egress["properties"]["ruleCollections"]
    assert [c["ruleCollectionType"] for c in colls] == ["FirewallPolicyFilterRuleCollection"] * 2
    assert all(c["action"] == {"type": "Allow"} for c in colls)
    net = colls[0]["rules"]
    assert all(r["ruleType"] == "NetworkRule" for r in net)
    assert all(r["sourceAddresses"] == ["10.42.1.0/24"] for r in net)
    assert {
        "name": "apiudp",
        "ipProtocols": ["UDP"],
        "sourceAddresses": ["10.42.1.0/24"],
        "destinationAddresses": [f"AzureCloud.{LOCATIONS[cloud]}"],
        "destinationPorts": ["1194"],
        "ruleType": "NetworkRule",
    } in net
    app = colls[1]["rules"]
    assert app[0]["fqdnTags"] == ["AzureKubernetesService"]
    assert app[0]["protocols"] == [
        {"protocolType": "Http", "port": 80},
        {"protocolType": "Https", "port": 443},
    ]
    dnat = to_arm_json(groups[DNAT_GROUP])
    (nat_coll,) = dnat["properties"]["ruleCollections"]
    assert nat_coll["ruleCollectionType"] == "FirewallPolicyNatRuleCollection"
    assert nat_coll["action"] == {"type": "DNAT"}
    assert nat_coll["rules"][0]["destinationAddresses"] == [FW_IP]
    assert dnat["properties"]["priority"] == 100
    if cloud == "AzureChinaCloud":
        assert any(r["destinationPorts"] == ["22"] for r in net)


@pytest.mark.parametrize("cloud", list(LOCATIONS))
def test_classic_rendering(cloud: str) -> None:
    rs = ruleset(cloud=cloud, features=["windows"], fqdn_mode="explicit")
    classic = render_classic(rs)
    body = classic.to_arm_json()
    (net,) = body["networkRuleCollections"]
    assert net["name"] == "aksfwnr" and net["properties"]["priority"] == 100
    assert net["properties"]["action"] == {"type": "Allow"}
    ports = {r["destinationPorts"][0] for r in net["properties"]["rules"]}
    assert ports == ({"1194", "9000", "22"} if cloud == "AzureChinaCloud" else {"1194", "9000"})
    assert all(r["sourceAddresses"] == ["10.42.1.0/24"] for r in net["properties"]["rules"])
    (app,) = body["applicationRuleCollections"]
    rules = {r["name"]: r for r in app["properties"]["rules"]}
    assert set(rules) == {"aks-core-https", "windows-https", "windows-http"}
    assert rules["windows-http"]["protocols"] == [{"protocolType": "Http", "port": 80}]
    (nat,) = body["natRuleCollections"]
    assert nat["properties"]["action"] == {"type": "Dnat"}
    assert nat["properties"]["rules"][0]["translatedAddress"] == "10.42.1.250"


def test_dnat_group_always_rendered() -> None:
    rs = ruleset(ingress={"workload": "none", "dnat": []})
    groups = render_policy_groups(rs)
    assert to_arm_json(groups[DNAT_GROUP])["properties"]["ruleCollections"] == []
    assert render_classic(rs).nat == []


def test_deterministic_and_ingress_only_changes_dnat_group() -> None:
    a = render_policy_groups(ruleset(features=["gpu", "monitor"]))
    b = render_policy_groups(ruleset(features=["monitor", "gpu"]))  # same catalog order either way
    assert policy_groups_to_json(a) == policy_groups_to_json(b)
    assert fingerprint(a) == fingerprint(b)
    c = render_policy_groups(
        ruleset(features=["gpu", "monitor"], ingress={"dnat": [{"name": "x", "target_ip": "10.42.1.99"}]})
    )
    assert fingerprint(a[EGRESS_GROUP]) == fingerprint(c[EGRESS_GROUP])
    assert fingerprint(a[DNAT_GROUP]) != fingerprint(c[DNAT_GROUP])


def test_fingerprint_ignores_read_only_fields() -> None:
    groups = render_policy_groups(ruleset())
    body = to_arm_json(groups[EGRESS_GROUP])
    deployed = {"id": "/subscriptions/x/...", "etag": "w/1", **body}
    deployed["properties"] = {**body["properties"], "provisioningState": "Succeeded"}
    assert fingerprint(deployed) == fingerprint(groups[EGRESS_GROUP])


def test_row_ids_traceable() -> None:
    rs = ruleset(fqdn_mode="explicit", features=["monitor"])
    ids = {i for r in rs.network_rules + rs.application_rules for i in r.row_ids}
    assert set(rs.compiled_rows) == ids
    assert "pub.fqdn.packages-aks" in ids and "feat.monitor.service-tag" in ids


def test_missing_required() -> None:
    missing = missing_required(make_config(egress_edition="seed-2020", fqdn_mode="explicit"))
    assert {r.destination for r in missing} == {"packages.aks.azure.com", "mcr-0001.mcr-msedge.net"}
    assert missing_required(make_config(egress_edition="seed-2020", fqdn_mode="tag")) == []
    assert missing_required(make_config(fqdn_mode="explicit", features=["monitor", "gpu"])) == []
    # Seed's Azure Policy endpoints were replaced.
    policy = missing_required(make_config(egress_edition="seed-2020", features=["azure-policy"]))
    assert {r.destination for r in policy} == {
        "data.policy.core.windows.net",
        "store.policy.core.windows.net",
    }
    # China cannot do without its tunnel ports.
    china = missing_required(make_config(cloud="AzureChinaCloud", tunnel_ports=False))
    assert {(r.protocol, r.port) for r in china} == {("UDP", 1194), ("TCP", 9000), ("TCP", 22)}
    assert missing_required(make_config(cloud="AzureCloud", tunnel_ports=False)) == []


def test_renderers_import_sdk_lazily() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from aks_lockdown.egress import compiler, export, evaluate, catalog;"
        "print(any(m.startswith('azure') for m in sys.modules), 'rich' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_fingerprint_sees_action_type() -> None:
    body = to_arm_json(render_policy_groups(ruleset())[EGRESS_GROUP])
    denied = json.loads(json.dumps(body))
    denied["properties"]["ruleCollections"][0]["action"]["type"] = "Deny"
    assert fingerprint(body) != fingerprint(denied)
    typed = {**body, "type": "Microsoft.Network/FirewallPolicies/RuleCollectionGroups"}
    assert fingerprint(typed) == fingerprint(body)


def test_tag_mode_drops_rows_the_tag_does_not_carry() -> None:
    rs = ruleset(egress_edition="seed-2020", fqdn_mode="tag")
    assert "pub.fqdn.acs-mirror" not in rs.compiled_rows
    assert "pub.fqdn.mcr" in rs.compiled_rows


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {
                "name": "x",
                "kind": "network",
                "protocols": ["TCP"],
                "destination_addresses": ["1.1.1.1"],
                "destination_ports": ["53"],
                "source_addresses": ["*"],
            },
            "source '*'",
        ),
        ({"name": "x", "kind": "network", "protocols": ["TCP"], "destination_ports": ["53"]}, "destination"),
        (
            {"name": "x", "kind": "network", "protocols": ["TCP"], "destination_addresses": ["1.1.1.1"]},
            "ports",
        ),
        ({"name": "x", "kind": "application", "protocols": ["Https"]}, "destination_fqdns"),
        (
            {"name": "x", "kind": "application", "protocols": ["ftp:21"], "destination_fqdns": ["a.b"]},
            "protocol",
        ),
    ],
)
def test_bad_extra_rules_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        ruleset(extra_rules=[extra])
    assert exc.value.field == "firewall.extra_rules"
    assert message in exc.value.message and "'x'" in exc.value.message

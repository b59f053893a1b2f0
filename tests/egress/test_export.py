"""Every export format parses; the ARM template is a deployable rule collection group."""

from __future__ import annotations

import csv
import io
import json

import pytest

from aks_lockdown.egress import catalog, export

ROWS = catalog.rows("AzureChinaCloud", "current", ["gpu", "monitor"], "chinaeast2")


def test_json_round_trips() -> None:
    data = json.loads(export.render(ROWS, "json"))
    assert [d["id"] for d in data] == [r.id for r in ROWS]
    assert data[0]["destination"] == "AzureCloud.chinaeast2"
    assert data[0]["editions"] == ["seed-2020", "current"]


def test_csv_parses() -> None:
    reader = list(csv.DictReader(io.StringIO(export.render(ROWS, "csv"))))
    assert len(reader) == len(ROWS)
    assert {"id", "kind", "destination", "protocol", "port", "status", "purpose", "source"} <= set(reader[0])
    assert any(r["destination"] == "*.tun.chinaeast2.cx.prod.service.azk8s.cn" for r in reader)


def test_table_and_markdown() -> None:
    table = export.render(ROWS, "table")
    assert table.splitlines()[0].split()[:3] == ["ID", "KIND", "DESTINATION"]
    assert len(table.splitlines()) == len(ROWS) + 2
    assert "CustomDNSIP (if applicable)" in table
    md = export.render(ROWS, "markdown").splitlines()
    assert md[0].startswith("| id | kind |") and len(md) == len(ROWS) + 2


def test_arm_template() -> None:
    tpl = json.loads(export.render(ROWS, "arm", source_addresses=["10.1.0.0/24"]))
    assert tpl["$schema"].endswith("/2019-04-01/deploymentTemplate.json#")
    assert "firewallPolicyName" in tpl["parameters"]
    assert tpl["parameters"]["sourceAddresses"]["defaultValue"] == ["10.1.0.0/24"]
    (res,) = tpl["resources"]
    assert res["type"] == "Microsoft.Network/firewallPolicies/ruleCollectionGroups"
    assert res["name"].startswith("[") and "firewallPolicyName" in res["name"]
    net, app = res["properties"]["ruleCollections"]
    assert net["ruleCollectionType"] == app["ruleCollectionType"] == "FirewallPolicyFilterRuleCollection"
    ssh = next(r for r in net["rules"] if r["name"] == "cn.net.tunnel-tcp-22")
    assert ssh == {
        "ruleType": "NetworkRule",
        "name": "cn.net.tunnel-tcp-22",
        "ipProtocols": ["TCP"],
        "sourceAddresses": "[parameters('sourceAddresses')]",
        "destinationPorts": ["22"],
        "destinationAddresses": ["AzureCloud.chinaeast2"],
    }
    assert all(r["ruleType"] == "ApplicationRule" for r in app["rules"])
    assert tpl["metadata"]["omittedConditionalRows"] == ["cn.net.custom-dns", "cn.net.apiserver-ip"]
    rule_names = [r["name"] for c in res["properties"]["ruleCollections"] for r in c["rules"]]
    assert len(rule_names) == len(set(rule_names))


def test_arm_seed_flags_dns_proxy() -> None:
    rows = catalog.rows("AzureCloud", "seed-2020", (), "eastus")
    tpl = json.loads(export.render(rows, "arm"))
    assert tpl["metadata"]["needsDnsProxy"] == ["pub.net.ntp"]
    net = tpl["resources"][0]["properties"]["ruleCollections"][0]["rules"]
    assert {"destinationFqdns": ["ntp.ubuntu.com"]}.items() <= next(
        r for r in net if r["name"] == "pub.net.ntp"
    ).items()


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        export.render(ROWS, "yaml")

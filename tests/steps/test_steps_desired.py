"""desired() of every step, offline: deterministic, secret-free, and shaped as the walkthrough says."""

from __future__ import annotations

import base64
import io
import json
import textwrap
import zipfile
from pathlib import Path

import pytest
from aks_lockdown.steps._common import KNOWN_AFTER_APPLY
from aks_lockdown.steps.cluster import ClusterStep
from aks_lockdown.steps.cluster_identity import ClusterIdentityStep
from aks_lockdown.steps.firewall import FirewallStep
from aks_lockdown.steps.firewall_rules import FirewallRulesStep
from aks_lockdown.steps.public_ips import PublicIpStep
from aks_lockdown.steps.route_table import RouteTableStep
from aks_lockdown.steps.virtual_network import VirtualNetworkStep
from aks_lockdown.steps.workload import WorkloadStep, _zip_b64, voting_app_manifest
from steps_helpers import FakeContext

from aks_lockdown.config import Config, load_config, loads_config
from aks_lockdown.pipeline import build_steps

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def cfg(text: str = "") -> Config:
    return loads_config(textwrap.dedent(text).lstrip("\n"), file="case.toml").config


def with_ips(ctx: FakeContext, *ips: str, private: str = "10.42.2.4") -> FakeContext:
    ctx.outputs["public_ips"] = {"addresses": list(ips)}
    ctx.outputs["firewall"] = {"private_ip": private, "public_ips": list(ips)}
    return ctx


def test_pipeline_is_the_walkthrough_order() -> None:
    names = [s.name for s in build_steps(Config())]
    assert names == [
        "resource_group", "vnet", "public_ips", "rules", "firewall",
        "route_table", "identity", "cluster", "workload",
    ]  # fmt: skip
    assert [s.title for s in build_steps(Config())][2:4] == ["IP config", "Rules"]


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.toml")), ids=lambda p: p.name)
def test_every_desired_is_deterministic_json(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(path).config
    for cls in build_steps(config):
        a = json.dumps(cls(with_ips(FakeContext(config), "20.1.2.3")).desired(), sort_keys=True)
        b = json.dumps(cls(with_ips(FakeContext(config), "20.1.2.3")).desired(), sort_keys=True)
        assert a == b, cls.name


def test_vnet_has_the_firewall_subnets_and_basic_adds_management() -> None:
    subnets = VirtualNetworkStep(FakeContext(Config())).desired()["properties"]["subnets"]
    assert [s["name"] for s in subnets] == ["aks-subnet", "AzureFirewallSubnet"]
    basic = cfg('[firewall]\nsku = "Basic"\ndns_proxy = false\nfqdn_mode = "tag"\nrules = "policy"\n')
    subnets = VirtualNetworkStep(FakeContext(basic)).desired()["properties"]["subnets"]
    assert subnets[-1] == {
        "name": "AzureFirewallManagementSubnet",
        "properties": {"addressPrefix": "10.42.3.0/26"},
    }


def test_public_ips_are_standard_static_ipv4_and_counted() -> None:
    config = cfg("[firewall]\npublic_ip_count = 3\n")
    desired = PublicIpStep(FakeContext(config)).desired()["ips"]
    assert list(desired) == ["aks-egress-fwpublicip", "aks-egress-fwpublicip-2", "aks-egress-fwpublicip-3"]
    ip = desired["aks-egress-fwpublicip"]
    assert ip["sku"]["name"] == "Standard"
    assert ip["properties"] == {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"}


def test_firewall_is_one_body_with_every_ip_config_and_the_policy() -> None:
    config = cfg("[firewall]\npublic_ip_count = 2\n")
    props = FirewallStep(FakeContext(config)).desired()["properties"]
    first, second = props["ipConfigurations"]
    assert first["name"] == "aks-egress-fwconfig" and "subnet" in first["properties"]
    assert first["properties"]["subnet"]["id"].endswith(
        "/virtualNetworks/aks-egress-vnet/subnets/AzureFirewallSubnet"
    )
    assert second["name"] == "aks-egress-fwconfig-2" and "subnet" not in second["properties"]
    assert props["sku"] == {"name": "AZFW_VNet", "tier": "Standard"}
    assert props["firewallPolicy"]["id"].endswith("/firewallPolicies/aks-egress-fwpolicy")
    assert "additionalProperties" not in props  # DNS proxy lives in the policy in this mode


def test_classic_firewall_carries_collections_and_dns_proxy() -> None:
    config = cfg('[firewall]\nrules = "classic"\n')
    ctx = with_ips(FakeContext(config), "20.1.2.3")
    props = FirewallStep(ctx).desired()["properties"]
    assert props["additionalProperties"] == {"Network.DNS.EnableProxy": "true"}
    assert "firewallPolicy" not in props
    [nat] = props["natRuleCollections"]
    [rule] = nat["properties"]["rules"]
    assert rule["translatedAddress"] == "10.42.1.250" and rule["destinationAddresses"] == ["20.1.2.3"]
    assert props["applicationRuleCollections"] and props["networkRuleCollections"]


def test_policy_rules_desired_has_tier_dns_proxy_and_dnat_to_the_ingress_target() -> None:
    ctx = with_ips(FakeContext(Config()), "20.1.2.3")
    desired = FirewallRulesStep(ctx).desired()
    assert desired["policy"]["properties"] == {
        "sku": {"tier": "Standard"},
        "threatIntelMode": "Alert",
        "dnsSettings": {"enableProxy": True},
    }
    nat = [
        rule
        for group in desired["groups"].values()
        for coll in group["properties"].get("ruleCollections", [])
        for rule in coll["rules"]
        if rule.get("ruleType") == "NatRule"
    ]
    assert [(r["translatedAddress"], r["destinationAddresses"]) for r in nat] == [
        ("10.42.1.250", ["20.1.2.3"])
    ]


def test_route_table_routes_default_to_firewall_and_public_ips_to_internet() -> None:
    config = cfg("[firewall]\npublic_ip_count = 2\n")
    ctx = with_ips(FakeContext(config), "20.1.2.3", "20.1.2.4")
    desired = RouteTableStep(ctx).desired()
    routes = {r["name"]: r["properties"] for r in desired["properties"]["routes"]}
    assert routes == {
        "aks-egress-fwrn": {
            "addressPrefix": "0.0.0.0/0",
            "nextHopType": "VirtualAppliance",
            "nextHopIpAddress": "10.42.2.4",
        },
        "aks-egress-fwinternet": {"addressPrefix": "20.1.2.3/32", "nextHopType": "Internet"},
        "aks-egress-fwinternet-2": {"addressPrefix": "20.1.2.4/32", "nextHopType": "Internet"},
    }
    assert desired["association"]["subnet"].endswith("/subnets/aks-subnet")
    # Before the firewall exists (a plan of a fresh deploy), the unknowns say so.
    unknown = RouteTableStep(FakeContext(config)).desired()["properties"]["routes"][0]["properties"]
    assert unknown["nextHopIpAddress"] == KNOWN_AFTER_APPLY


def test_identity_scopes_add_the_route_table_for_kubenet() -> None:
    assert len(ClusterIdentityStep(FakeContext(Config())).scopes()) == 1
    kubenet = cfg('[cluster]\nnetwork_plugin = "kubenet"\n')
    scopes = ClusterIdentityStep(FakeContext(kubenet)).scopes()
    assert scopes[1].endswith("/routeTables/aks-egress-fwrt")


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        ("azure", {"networkPlugin": "azure"}),
        (
            "azure-overlay",
            {"networkPlugin": "azure", "networkPluginMode": "overlay", "podCidr": "10.244.0.0/16"},
        ),
        ("kubenet", {"networkPlugin": "kubenet", "podCidr": "10.244.0.0/16"}),
    ],
)
def test_cluster_network_profile(plugin: str, expected: dict[str, str]) -> None:
    config = cfg(f'[cluster]\nnetwork_plugin = "{plugin}"\n')
    profile = ClusterStep(FakeContext(config)).desired()["properties"]["networkProfile"]
    assert profile == {
        **expected,
        "serviceCidr": "10.41.0.0/16",
        "dnsServiceIP": "10.41.0.10",
        "outboundType": "userDefinedRouting",
    }
    assert "loadBalancerProfile" not in profile


def test_cluster_authorized_ranges_are_every_firewall_ip_plus_the_operators() -> None:
    ranges = '["203.0.113.7", "198.51.100.0/24"]'
    config = cfg(f"[firewall]\npublic_ip_count = 2\n[cluster]\nauthorized_ip_ranges = {ranges}\n")
    ctx = with_ips(FakeContext(config), "20.1.2.3", "20.1.2.4")
    props = ClusterStep(ctx).desired()["properties"]
    assert props["apiServerAccessProfile"] == {
        "authorizedIPRanges": ["20.1.2.3/32", "20.1.2.4/32", "203.0.113.7/32", "198.51.100.0/24"]
    }
    pool = props["agentPoolProfiles"][0]
    assert (pool["name"], pool["mode"], pool["count"]) == ("system", "System", 3)
    assert pool["vnetSubnetID"].endswith("/subnets/aks-subnet")
    private = cfg("[cluster]\nprivate_cluster = true\n")
    access = ClusterStep(FakeContext(private)).desired()["properties"]["apiServerAccessProfile"]
    assert access == {"enablePrivateCluster": True}


SP = """
[cluster.identity]
type = "service-principal"
client_id = "11111111-1111-4111-8111-111111111111"
object_id = "22222222-2222-4222-8222-222222222222"
secret_env = "STEPS_TEST_SP_SECRET"
"""


def test_service_principal_secret_only_in_the_put_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPS_TEST_SP_SECRET", "s3cr3t-value")
    step = ClusterStep(FakeContext(cfg(SP)))
    desired = json.dumps(step.desired())
    assert "s3cr3t-value" not in desired and "identity" not in step.desired()
    body = step._body(None)
    assert body["properties"]["servicePrincipalProfile"] == {
        "clientId": "11111111-1111-4111-8111-111111111111",
        "secret": "s3cr3t-value",
    }
    assert ClusterIdentityStep(FakeContext(cfg(SP)))._principal() == "22222222-2222-4222-8222-222222222222"


def test_service_principal_without_its_variable_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from aks_lockdown.errors import InputError

    monkeypatch.delenv("STEPS_TEST_SP_SECRET", raising=False)
    with pytest.raises(InputError, match="STEPS_TEST_SP_SECRET"):
        ClusterStep(FakeContext(cfg(SP)))._body(None)


def test_workload_manifest_pins_an_internal_lb_and_keeps_secrets_out_of_desired() -> None:
    step = WorkloadStep(FakeContext(Config()))
    desired = step.desired()
    assert desired["ip"] == "10.42.1.250" and len(desired["manifest_sha256"]) == 64
    manifest = voting_app_manifest("10.42.1.250", 80, "pw-one", "pw-two")
    assert 'service.beta.kubernetes.io/azure-load-balancer-internal: "true"' in manifest
    assert 'service.beta.kubernetes.io/azure-load-balancer-ipv4: "10.42.1.250"' in manifest
    assert base64.b64encode(b"pw-one").decode() in manifest and "pw-one" not in json.dumps(desired)
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(_zip_b64({"voting-app.yaml": manifest}))))
    assert archive.read("voting-app.yaml").decode() == manifest


def test_workload_none_is_skipped() -> None:
    step = WorkloadStep(FakeContext(cfg('[ingress]\nworkload = "none"\n')))
    diff = step.check()
    assert not diff.pending and diff.outputs == {"skipped": True} and step.resource_ids() == []


def test_reapplying_the_workload_leaves_the_secret_alone() -> None:
    full = voting_app_manifest("10.42.1.250", 80, "a", "b")
    update = voting_app_manifest("10.42.1.250", 80, "a", "b", with_secret=False)
    assert "kind: Secret" in full and "kind: Secret" not in update
    assert update.count("\nkind: ") + update.startswith("kind: ") == full.count("\nkind: ") - 1
    assert "kind: Service" in update and "voting-storage-secret" in update  # still referenced

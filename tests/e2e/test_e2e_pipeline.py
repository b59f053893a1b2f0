"""The walkthrough end to end: deploy, rerun (zero writes), plan (no change), teardown (nothing left),
for the shipped configs, asserting the Azure state the emulator holds rather than exit codes."""

from __future__ import annotations

import base64
import ipaddress
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import Deployment, load, now, writes_since

from aks_lockdown.config import Config
from aks_lockdown.egress.compiler import RuleInputs, compiled_rows
from aks_lockdown.egress.evaluate import EffectiveRules
from aks_lockdown.engine.events import WriteStarted
from aks_lockdown.errors import AzureOperationError, LockdownError

pytestmark = pytest.mark.e2e

NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"

CASES = {
    "eastus-seed-2020": ("eastus.toml", {}),
    "eastus-current": ("eastus.toml", {"firewall": {"egress_edition": "current"}}),
    "eastus-classic": ("eastus.toml", {"firewall": {"rules": "classic"}}),
    "chinaeast2": ("chinaeast2.toml", {}),
    "usgovvirginia": ("usgovvirginia.toml", {}),
    "production-premium-20-ips": ("production.toml", {}),
    "eastus-kubenet": ("eastus.toml", {"cluster": {"network_plugin": "kubenet"}}),
    "eastus-private": ("eastus.toml", {"cluster": {"private_cluster": True}}),
    # Basic: a management IP configuration in AzureFirewallManagementSubnet, and no DNS proxy.
    "eastus-basic": (
        "eastus.toml",
        {
            "firewall": {
                "sku": "Basic",
                "dns_proxy": False,
                "egress_edition": "current",
                "fqdn_mode": "explicit",
            }
        },
    ),
}


def props(resource: dict[str, Any] | None) -> dict[str, Any]:
    assert resource is not None
    return resource.get("properties") or {}


def assert_final_state(d: Deployment, outputs: dict[str, dict[str, Any]]) -> None:
    cfg = d.config
    public_ips = outputs["public_ips"]["addresses"]
    assert len(public_ips) == cfg.firewall.public_ip_count and all(public_ips)
    firewall = d.get(d.rid("Microsoft.Network/azureFirewalls", cfg.firewall_name))
    fw = props(firewall)
    private_ip = outputs["firewall"]["private_ip"]
    assert private_ip and private_ip == fw["ipConfigurations"][0]["properties"]["privateIPAddress"]
    assert len(fw["ipConfigurations"]) == cfg.firewall.public_ip_count
    if cfg.firewall.sku == "Basic":
        management = fw["managementIpConfiguration"]["properties"]
        assert management["subnet"]["id"].lower().endswith("/subnets/azurefirewallmanagementsubnet")
        assert management["publicIPAddress"]["id"] == outputs["public_ips"]["management_id"]

    # Routes and association.
    table_id = d.rid("Microsoft.Network/routeTables", cfg.route_table_name)
    routes = {r["name"]: r["properties"] for r in props(d.get(table_id))["routes"]}
    default = routes[f"{cfg.deployment.prefix}-fwrn"]
    assert (default["addressPrefix"], default["nextHopType"]) == ("0.0.0.0/0", "VirtualAppliance")
    assert default["nextHopIpAddress"] == private_ip
    internet = sorted(r["addressPrefix"] for r in routes.values() if r["nextHopType"] == "Internet")
    assert internet == sorted(f"{ip}/32" for ip in public_ips)
    vnet = props(d.get(d.rid("Microsoft.Network/virtualNetworks", cfg.vnet_name)))
    aks_subnet = next(s for s in vnet["subnets"] if s["name"] == cfg.network.aks_subnet_name)
    assert aks_subnet["properties"]["routeTable"]["id"].lower() == table_id

    # DNS proxy, and the DNAT target.
    if cfg.firewall.rules == "policy":
        policy_id = d.rid("Microsoft.Network/firewallPolicies", cfg.policy_name)
        assert bool(props(d.get(policy_id))["dnsSettings"].get("enableProxy")) is cfg.firewall.dns_proxy
        assert fw["firewallPolicy"]["id"].lower() == policy_id
        nat = [
            rule
            for rid, r in d.world().items()
            if rid.startswith(policy_id + "/rulecollectiongroups/")
            for coll in props(r).get("ruleCollections") or []
            for rule in coll.get("rules") or []
            if rule.get("ruleType") == "NatRule"
        ]
    else:
        assert fw["additionalProperties"]["Network.DNS.EnableProxy"] == "true"
        collections = [c.get("properties") or c for c in fw["natRuleCollections"]]
        nat = [rule.get("properties", rule) for c in collections for rule in c["rules"]]
    # Every catalog row the config compiles is allowed by the rules as Azure holds them.
    node_ip = str(next(ipaddress.ip_network(cfg.network.aks_subnet_cidr).hosts()) + 3)  # .4: the first NIC
    if cfg.firewall.rules == "policy":
        groups = [r for rid, r in d.world().items() if rid.startswith(policy_id + "/rulecollectiongroups/")]
        effective = EffectiveRules.from_policy_groups(
            groups, dns_proxy=cfg.firewall.dns_proxy, cloud=cfg.azure.cloud, location=cfg.azure.location
        )
    else:
        effective = EffectiveRules.from_classic_firewall(
            firewall, dns_proxy=cfg.firewall.dns_proxy, cloud=cfg.azure.cloud, location=cfg.azure.location
        )
    rows = compiled_rows(RuleInputs.from_config(cfg, firewall_public_ips=public_ips))
    if cfg.firewall.fqdn_mode == "tag":
        # The FQDN tag carries today's endpoints, not ones retired since the seed (*.cdn.mscr.io, ...).
        rows = [r for r in rows if r.kind != "application" or r.status in ("required", "optional")]
    verdicts = effective.covers(rows, source_ip=node_ip)
    assert verdicts and {row: v.reason for row, v in verdicts.items() if not v.allowed} == {}
    target = cfg.ingress.dnat[0]
    assert [(n["translatedAddress"], str(n["translatedPort"])) for n in nat] == [
        (target.target_ip, str(target.target_port))
    ]
    assert nat[0]["destinationAddresses"] == [public_ips[0]]

    # The cluster: network profile, authorized ranges, the identity.
    cluster = d.get(d.rid("Microsoft.ContainerService/managedClusters", cfg.cluster_name))
    cp = props(cluster)
    assert cp["provisioningState"] == "Succeeded"
    net = cp["networkProfile"]
    assert net["outboundType"] == "userDefinedRouting"
    assert (
        net["serviceCidr"] == cfg.cluster.service_cidr and net["dnsServiceIP"] == cfg.cluster.dns_service_ip
    )
    assert "loadBalancerProfile" not in net or not (net["loadBalancerProfile"] or {}).get(
        "managedOutboundIPs"
    )
    if cfg.cluster.network_plugin == "azure-overlay":
        assert net.get("networkPluginMode") == "overlay" and net["podCidr"] == cfg.effective_pod_cidr
    access = cp.get("apiServerAccessProfile") or {}
    if cfg.cluster.private_cluster:
        assert access.get("enablePrivateCluster") is True and not access.get("authorizedIPRanges")
    else:
        ranges = sorted(access["authorizedIPRanges"])
        assert ranges == sorted({f"{ip}/32" for ip in public_ips} | set(cfg.cluster.authorized_ip_ranges))
    if cfg.cluster.identity.type == "user-assigned":
        identity_id = d.rid("Microsoft.ManagedIdentity/userAssignedIdentities", cfg.identity_name)
        assert [k.lower() for k in cluster["identity"]["userAssignedIdentities"]] == [identity_id]
    else:
        assert cp["servicePrincipalProfile"]["clientId"] == cfg.cluster.identity.client_id

    # Network Contributor for the identity on the VNet (and the route table for kubenet).
    principal = outputs["identity"]["principal_id"]
    scopes = [d.rid("Microsoft.Network/virtualNetworks", cfg.vnet_name)]
    if cfg.cluster.network_plugin == "kubenet":
        scopes.append(table_id)
    for scope in scopes:
        grants = [
            r
            for rid, r in d.world().items()
            if rid.startswith(scope + "/providers/microsoft.authorization/roleassignments/")
        ]
        wanted = (principal, NETWORK_CONTRIBUTOR, "ServicePrincipal")
        found = [
            (
                props(g)["principalId"],
                props(g)["roleDefinitionId"].rsplit("/", 1)[-1],
                props(g).get("principalType"),
            )
            for g in grants
        ]
        assert wanted in found, scope

    # The workload answers at the DNAT target.
    assert outputs["workload"]["service_ip"] == target.target_ip
    assert outputs["workload"]["dnat_confirmed"] is True


def deploy_rerun_plan_teardown(d: Deployment) -> dict[str, dict[str, Any]]:
    result = d.runner().deploy()
    assert result.ok
    outputs = {k: dict(v) for k, v in result.outputs.items()}
    assert_final_state(d, outputs)
    assert d.tagged(), "every created resource carries the deployment tag"
    # The seed's "Validate connectivity": browse to the firewall's public IP, reach the voting app.
    rule = d.config.ingress.dnat[0]
    url = f"http://{outputs['public_ips']['addresses'][0]}:{rule.firewall_port}/"
    with urllib.request.urlopen(url, timeout=10) as page:
        assert page.status == 200 and "Azure Voting App" in page.read().decode()

    # A second deploy of the same config writes nothing.
    d.events.clear()
    since = now()
    again = d.runner().deploy()
    assert again.ok and not again.changed
    assert [e for e in d.events if isinstance(e, WriteStarted)] == []
    assert writes_since(d.emu, since) == []

    # And plan shows no change.
    plan = d.runner().plan()
    pending = [(name, c) for name, diff in plan for c in diff.changes if c.action != "none"]
    assert pending == []

    # Teardown leaves nothing tagged with the deployment.
    assert d.runner().teardown().ok
    assert d.tagged() == []
    return outputs


@pytest.mark.parametrize("case", list(CASES))
def test_deploy_rerun_plan_teardown(case: str, emulator_for: Callable[[str], Any], state_dir: Path) -> None:
    name, overrides = CASES[case]
    config = load(name, **overrides)
    emu = emulator_for(config.azure.cloud)
    deploy_rerun_plan_teardown(Deployment(emu, config, state_dir))


def test_policy_mode_writes_the_firewall_once_and_each_group_once(emu: Any, state_dir: Path) -> None:
    config = load("eastus.toml", firewall={"egress_edition": "current"})
    d = Deployment(emu, config, state_dir)
    since = now()
    assert d.runner().deploy().ok
    puts = [r for r in writes_since(emu, since) if r["method"] == "PUT"]
    firewall_puts = [r for r in puts if r["path"].lower().endswith(f"/azurefirewalls/{config.firewall_name}")]
    group_puts = [r for r in puts if "/rulecollectiongroups/" in r["path"].lower()]
    assert len(firewall_puts) == 1
    assert len(group_puts) == len({r["path"].lower() for r in group_puts}) == 2


def test_missing_required_endpoint_fails_the_cluster_then_the_fix_reconciles(
    emu: Any, state_dir: Path
) -> None:
    # The seed's 2020 list, spelled out (no FQDN tag): it predates packages.aks.azure.com.
    broken = load("eastus.toml", firewall={"egress_edition": "seed-2020", "fqdn_mode": "explicit"})
    d = Deployment(emu, broken, state_dir)
    with pytest.raises(AzureOperationError) as failure:
        d.runner().deploy()
    assert failure.value.step == "cluster"
    assert failure.value.code == "OutboundConnFailVMExtensionError"
    # Azure's own text, verbatim, names every blocked endpoint (the one-line summary may be shortened).
    assert "packages.aks.azure.com" in str(failure.value.__cause__)
    assert "blocked endpoint" in failure.value.message
    cluster_id = d.rid("Microsoft.ContainerService/managedClusters", broken.cluster_name)
    assert props(d.get(cluster_id))["provisioningState"] == "Failed"

    fixed: Config = load("eastus.toml", firewall={"egress_edition": "current", "fqdn_mode": "explicit"})
    d.config = fixed
    result = d.runner().deploy()
    assert result.ok
    assert props(d.get(cluster_id))["provisioningState"] == "Succeeded"
    assert_final_state(d, {k: dict(v) for k, v in result.outputs.items()})


def plan_changes(d: Deployment, config: Config) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [
        (name, c.action, c.resource_id.rsplit("/", 1)[-1], tuple(f.path for f in c.fields))
        for name, diff in d.runner(config).plan()
        for c in diff.changes
        if c.action != "none"
    ]


def test_config_changes_plan_exactly_that_and_deploy_with_the_fewest_writes(
    emu: Any, state_dir: Path
) -> None:
    base = load("eastus.toml", firewall={"egress_edition": "current"})
    d = Deployment(emu, base, state_dir)
    assert d.runner().deploy().ok

    # An operator range: the cluster's authorized ranges, one cluster PUT.
    more_ranges = load("eastus.toml", firewall={"egress_edition": "current"},
                       cluster={"authorized_ip_ranges": ["203.0.113.0/24"]})  # fmt: skip
    changes = plan_changes(d, more_ranges)
    assert changes == [
        ("cluster", "update", base.cluster_name, ("properties.apiServerAccessProfile.authorizedIPRanges",))
    ]
    since = now()
    d.config = more_ranges
    assert d.runner().deploy().ok
    assert [(r["method"], r["resource_type"]) for r in writes_since(emu, since)] == [
        ("PUT", "Microsoft.ContainerService/managedClusters")
    ]

    # The monitor feature: the egress rule collection group only.
    monitor = more_ranges.model_copy(
        update={"firewall": more_ranges.firewall.model_copy(update={"features": ["monitor"]})}
    )
    [(step, action, name, _)] = plan_changes(d, monitor)
    assert (step, action) == ("rules", "update") and name != "dnat"
    since = now()
    d.config = monitor
    assert d.runner().deploy().ok
    [write] = writes_since(emu, since)
    assert write["method"] == "PUT" and write["path"].lower().endswith(
        "/rulecollectiongroups/" + name.lower()
    )

    # A second DNAT rule: the DNAT group only; the firewall is never written again.
    from aks_lockdown.config import DnatRule

    extra = DnatRule(name="https", firewall_port=443, target_ip="10.42.1.250", target_port=80)
    dnat = monitor.model_copy(
        update={"ingress": monitor.ingress.model_copy(update={"dnat": [*monitor.ingress.dnat, extra]})}
    )
    [(step, action, dnat_group, _)] = plan_changes(d, dnat)
    assert (step, action) == ("rules", "update") and dnat_group != name
    since = now()
    d.config = dnat
    assert d.runner().deploy().ok
    [write] = writes_since(emu, since)
    assert write["path"].lower().endswith("/rulecollectiongroups/" + dnat_group.lower())
    assert plan_changes(d, dnat) == []


def test_adopted_resource_group_survives_teardown_and_nothing_tagged_remains(
    emu: Any, state_dir: Path
) -> None:
    from aks_lockdown.arm.clients import ClientFactory

    config = load("eastus.toml", firewall={"egress_edition": "current"})
    clients = ClientFactory(emu.target())
    clients.resource.resource_groups.create_or_update(config.resource_group, {"location": "eastus"})
    d = Deployment(emu, config, state_dir)
    result = d.runner().deploy()
    assert result.outputs["resource_group"]["adopted"] is True
    assert d.runner().teardown().ok
    # Every step rolled back in reverse (dissociate before deleting the route table, the firewall before
    # its policy and IPs, ...), and the group itself stays, empty.
    assert clients.resource.resource_groups.check_existence(config.resource_group)
    assert d.tagged() == []
    left = [rid for rid in d.world() if rid.startswith(d.rg_prefix() + "/")]
    assert left == []


def test_service_principal_mode_keeps_the_secret_out_of_state(
    emu: Any, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sp-secret-" + "x7Qz" * 4
    monkeypatch.setenv("E2E_SP_SECRET", secret)
    identity = {
        "type": "service-principal",
        "client_id": "3f0e7c1a-0000-4000-8000-00000000c11e",
        "object_id": "5b1d2e3f-0000-4000-8000-0000000000b1",
        "secret_env": "E2E_SP_SECRET",
    }
    base = load("eastus.toml", firewall={"egress_edition": "current"})
    config = base.model_copy(
        update={
            "cluster": base.cluster.model_copy(
                update={"identity": base.cluster.identity.model_copy(update=identity)}
            )
        }
    )
    d = Deployment(emu, config, state_dir)
    result = d.runner().deploy()
    assert_final_state(d, {k: dict(v) for k, v in result.outputs.items()})
    for path in state_dir.iterdir():
        assert secret not in path.read_text(errors="replace"), path
    since = now()
    assert not d.runner().deploy().changed
    assert writes_since(emu, since) == []


def test_teardown_from_a_failed_deploy_in_an_adopted_group(emu: Any, state_dir: Path) -> None:
    from aks_lockdown.arm.clients import ClientFactory

    broken = load("eastus.toml", firewall={"egress_edition": "seed-2020", "fqdn_mode": "explicit"})
    ClientFactory(emu.target()).resource.resource_groups.create_or_update(
        broken.resource_group, {"location": "eastus"}
    )
    d = Deployment(emu, broken, state_dir)
    with pytest.raises(AzureOperationError):
        d.runner().deploy()
    assert d.runner().teardown().ok  # the Failed cluster, then every earlier step, in reverse
    assert d.tagged() == []
    assert [rid for rid in d.world() if rid.startswith(d.rg_prefix() + "/")] == []
    assert d.get(d.rg_prefix()) is not None


def _voting_password(emu: Any, config: Config) -> str:
    from azure.mgmt.containerservice.models import RunCommandRequest

    from aks_lockdown.arm.clients import ClientFactory

    clusters = ClientFactory(emu.target(), polling_interval=0.05).containerservice.managed_clusters
    request = RunCommandRequest({"command": "kubectl get secret voting-storage-secret -o json"})
    result = clusters.begin_run_command(config.resource_group, config.cluster_name, request).result()
    return base64.b64decode(json.loads(result.properties.logs)["data"]["MYSQL_PASSWORD"]).decode()


def test_the_database_password_reaches_only_the_cluster(emu: Any, state_dir: Path) -> None:
    config = load("eastus.toml", firewall={"egress_edition": "current"})
    d = Deployment(emu, config, state_dir)
    assert d.runner().deploy().ok
    password = _voting_password(emu, config)
    assert len(password) >= 16 and password != "Password12"  # generated, not the seed's
    for path in state_dir.rglob("*"):
        if path.is_file():
            assert password not in path.read_text(errors="replace"), path
    assert password not in repr(d.events)


def test_a_new_service_port_reapplies_the_workload_and_keeps_the_password(
    emu: Any, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aks_lockdown.steps.workload as workload

    monkeypatch.setattr(workload, "ADDRESS_TIMEOUT", 5.0)  # the emulator answers at once, or never
    config = load("eastus.toml", firewall={"egress_edition": "current"})
    d = Deployment(emu, config, state_dir)
    assert d.runner().deploy().ok
    first = _voting_password(emu, config)

    rule = config.ingress.dnat[0].model_copy(update={"target_port": 8081})
    moved = config.model_copy(update={"ingress": config.ingress.model_copy(update={"dnat": [rule]})})
    d.config = moved
    changes = [(n, c.action) for n, diff in d.runner().plan() for c in diff.changes if c.action != "none"]
    assert changes == [("rules", "update"), ("workload", "update")]
    try:
        result = d.runner().deploy()
    except LockdownError:
        assert _voting_password(emu, config) == first  # the re-apply left the Secret alone
        raise
    assert result.outputs["workload"]["service_port"] == 8081 and result.outputs["workload"]["dnat_confirmed"]
    assert _voting_password(emu, config) == first

"""Drift: Azure changed out of band (through the SDK, as an operator or another tool would), and verify
names it. One deployed world for the module; each case breaks one thing, checks, and puts it back.

For each case the control-plane audit alone fails exactly the one check that should catch it, with a
message naming the change. The full run may fail one more check, a data-plane probe, where the change
is visible in traffic too (an allow-all rule lets the control set out): that is the probes doing their
job, so the test names that check as well, and no other may fail.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from verify_world import Deployed, load

from aks_lockdown.verify import VerifyReport, render_text

pytestmark = pytest.mark.e2e

EGRESS_GROUP = "aks-lockdown-egress"
DNAT_GROUP = "aks-lockdown-dnat"
OOB_GROUP = "out-of-band"


@pytest.fixture(scope="module")
def world(deploy: Any) -> Deployed:
    # The seed edition, FQDN tag mode: its NTP rule names an FQDN in a network rule (needs DNS proxy).
    world = deploy(load("eastus.toml"))
    assert world.config.firewall.fqdn_mode == "tag"
    assert world.verify().passed
    return world


@dataclass
class Names:
    rg: str
    route_table: str
    policy: str
    prefix: str
    subnet_cidr: str
    public_ip: str


def names(world: Deployed) -> Names:
    cfg = world.config
    return Names(
        cfg.resource_group,
        cfg.route_table_name,
        cfg.policy_name,
        cfg.deployment.prefix,
        cfg.network.aks_subnet_cidr,
        world.outputs["public_ips"]["addresses"][0],
    )


@contextmanager
def out_of_band(world: Deployed, change: Callable[[], Callable[[], None]]) -> Iterator[None]:
    """Apply ``change`` (which returns its undo), yield, undo, and prove the world is whole again."""
    undo = change()
    try:
        yield
    finally:
        undo()
    again = world.verify(data_plane=False)
    assert again.passed, "the undo left drift behind:\n" + render_text(again)


def failing(report: VerifyReport) -> set[str]:
    return {c.id for c in report.failed()}


def check_case(
    world: Deployed, change: Callable[[], Callable[[], None]], catcher: str, also: set[str], says: list[str]
) -> None:
    with out_of_band(world, change):
        audit = world.verify(data_plane=False)
        assert failing(audit) == {catcher}, render_text(audit)
        message = audit.get(catcher).message
        for text in says:
            assert text in message
        full = world.verify()
        assert failing(full) == {catcher} | also, render_text(full)
        assert full.exit_code == 1 and not full


# ---------------------------------------------------------------------------------------- changes


def delete_route(world: Deployed, route: str) -> Callable[[], None]:
    n = names(world)
    routes = world.clients.network.routes
    saved = routes.get(n.rg, n.route_table, route).as_dict()
    routes.begin_delete(n.rg, n.route_table, route).result()
    body = {"properties": {k: v for k, v in saved["properties"].items() if k != "provisioningState"}}
    return lambda: routes.begin_create_or_update(n.rg, n.route_table, route, body).result()


def add_group(world: Deployed, collection: dict[str, Any]) -> Callable[[], None]:
    n = names(world)
    groups = world.clients.network.firewall_policy_rule_collection_groups
    body = {"properties": {"priority": 300, "ruleCollections": [collection]}}
    groups.begin_create_or_update(n.rg, n.policy, OOB_GROUP, body).result()
    return lambda: groups.begin_delete(n.rg, n.policy, OOB_GROUP).result()


def edit_group(world: Deployed, name: str, edit: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
    n = names(world)
    groups = world.clients.network.firewall_policy_rule_collection_groups
    saved = groups.get(n.rg, n.policy, name).as_dict()
    saved["properties"].pop("provisioningState", None)
    changed = copy.deepcopy(saved)
    edit(changed["properties"])
    groups.begin_create_or_update(n.rg, n.policy, name, {"properties": changed["properties"]}).result()
    return lambda: groups.begin_create_or_update(
        n.rg, n.policy, name, {"properties": saved["properties"]}
    ).result()


def allow_collection(rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": "oob-allow",
        "priority": 100,
        "action": {"type": "Allow"},
        "rules": [rule],
    }


# ------------------------------------------------------------------------------------------ cases


def test_deleted_default_route(world: Deployed) -> None:
    n = names(world)
    private_ip = world.outputs["firewall"]["private_ip"]
    route = f"{n.prefix}-fwrn"
    # Without the UDR the nodes go straight to the Internet: the control set gets out too.
    check_case(
        world,
        lambda: delete_route(world, route),
        "route.default",
        {"probe.blocked"},
        [f"route '{route}' (0.0.0.0/0 -> {private_ip}) is missing from route table {n.route_table}"],
    )


def test_removed_firewall_ip_route(world: Deployed) -> None:
    n = names(world)
    route = f"{n.prefix}-fwinternet"
    check_case(
        world,
        lambda: delete_route(world, route),
        "route.firewall-ips",
        set(),
        [f"route '{route}' ({n.public_ip}/32 -> Internet) is missing from route table {n.route_table}"],
    )


def test_added_allow_all_network_rule(world: Deployed) -> None:
    n = names(world)
    rule = {
        "ruleType": "NetworkRule",
        "name": "allow-all",
        "ipProtocols": ["Any"],
        "sourceAddresses": [n.subnet_cidr],
        "destinationAddresses": ["*"],
        "destinationPorts": ["*"],
    }
    check_case(
        world,
        lambda: add_group(world, allow_collection(rule)),
        "firewall.open-destination",
        {"probe.blocked"},
        [f"network rule {OOB_GROUP}/oob-allow/allow-all allows *", "egress is no longer locked down"],
    )


def test_added_star_application_rule(world: Deployed) -> None:
    n = names(world)
    rule = {
        "ruleType": "ApplicationRule",
        "name": "any-fqdn",
        "sourceAddresses": [n.subnet_cidr],
        "protocols": [{"protocolType": "Https", "port": 443}, {"protocolType": "Http", "port": 80}],
        "targetFqdns": ["*"],
    }
    check_case(
        world,
        lambda: add_group(world, allow_collection(rule)),
        "firewall.open-destination",
        {"probe.blocked"},
        [f"application rule {OOB_GROUP}/oob-allow/any-fqdn allows FQDN *"],
    )


def test_fqdn_tag_removed(world: Deployed) -> None:
    def drop_tag(props: dict[str, Any]) -> None:
        props["ruleCollections"] = [
            c for c in props["ruleCollections"] if not any(r.get("fqdnTags") for r in c.get("rules") or [])
        ]

    # The sampled required endpoints stop answering inside the cluster as well.
    check_case(
        world,
        lambda: edit_group(world, EGRESS_GROUP, drop_tag),
        "firewall.required-egress",
        {"probe.required-egress"},
        ["the firewall's rules do not allow", "mcr.microsoft.com HTTPS:443"],
    )


def test_dns_proxy_off_with_fqdn_network_rules(world: Deployed) -> None:
    n = names(world)
    policies = world.clients.network.firewall_policies

    def switch_off() -> Callable[[], None]:
        saved = policies.get(n.rg, n.policy).as_dict()
        saved["properties"].pop("provisioningState", None)
        off = copy.deepcopy(saved)
        off["properties"]["dnsSettings"] = {**off["properties"].get("dnsSettings", {}), "enableProxy": False}
        body = {k: off[k] for k in ("location", "tags", "properties") if k in off}
        policies.begin_create_or_update(n.rg, n.policy, body).result()
        back = {k: saved[k] for k in ("location", "tags", "properties") if k in saved}
        return lambda: policies.begin_create_or_update(n.rg, n.policy, back).result()

    # The nodes resolve through the firewall (the VNet's DNS servers): with its proxy off, nothing
    # resolves, and the data-plane probe sees that too.
    check_case(
        world,
        switch_off,
        "firewall.dns-proxy",
        {"probe.dns"},
        [
            f"DNS proxy is off in firewall policy {n.policy}",
            "aks-lockdown-egress/aks-network/time (ntp.ubuntu.com)",
            "never match",
        ],
    )
    with out_of_band(world, switch_off):
        assert "does not resolve" in world.verify().get("probe.dns").message


PUBLIC_LB = """apiVersion: v1
kind: Service
metadata:
  name: web-public
  namespace: default
spec:
  type: LoadBalancer
  selector:
    app: web
  ports:
  - port: 80
"""


def test_public_load_balancer_service(world: Deployed) -> None:
    def apply() -> Callable[[], None]:
        files = {"svc.yaml": PUBLIC_LB}
        assert world.run_command("kubectl apply -f svc.yaml", files)["exitCode"] == 0
        return lambda: world.run_command("kubectl delete -f svc.yaml", files)

    check_case(
        world,
        apply,
        "ingress.no-public-lb",
        set(),
        ["default/web-public", "public LoadBalancers", "asymmetric routing"],
    )


def test_dnat_rule_to_an_address_without_service(world: Deployed) -> None:
    n = names(world)

    def add_rule(props: dict[str, Any]) -> None:
        props["ruleCollections"][0]["rules"].append(
            {
                "ruleType": "NatRule",
                "name": "oob-dnat",
                "ipProtocols": ["TCP"],
                "sourceAddresses": ["*"],
                "destinationAddresses": [n.public_ip],
                "destinationPorts": ["8080"],
                "translatedAddress": "10.42.1.200",
                "translatedPort": "80",
            }
        )

    # The GET to the new rule's port gets the firewall's 502: nothing answers behind it.
    check_case(
        world,
        lambda: edit_group(world, DNAT_GROUP, add_rule),
        "ingress.dnat-targets",
        {"probe.inbound"},
        [
            f"DNAT rule {DNAT_GROUP}/aks-dnat/oob-dnat forwards {n.public_ip}:8080 to 10.42.1.200:80, "
            "where no internal LoadBalancer Service listens",
            "default/voting-app 10.42.1.250:80",
        ],
    )


def point_vnet_dns(world: Deployed, servers: list[str]) -> Callable[[], None]:
    cfg = world.config
    vnets = world.clients.network.virtual_networks
    saved = vnets.get(cfg.resource_group, cfg.vnet_name).as_dict()
    changed = copy.deepcopy(saved)
    changed["properties"]["dhcpOptions"] = {"dnsServers": servers}
    vnets.begin_create_or_update(cfg.resource_group, cfg.vnet_name, changed).result()
    return lambda: vnets.begin_create_or_update(cfg.resource_group, cfg.vnet_name, saved).result()


def test_dns_through_the_proxy_passes_and_breaks_with_it(world: Deployed) -> None:
    private_ip = world.outputs["firewall"]["private_ip"]
    with out_of_band(world, lambda: point_vnet_dns(world, [private_ip])):
        dns = world.verify().get("probe.dns")
        assert dns.status == "pass", dns
        assert dns.details[0].startswith(f"nslookup mcr.microsoft.com (server {private_ip}): ")

        # Now the proxy off breaks resolution itself: the data plane sees it, beside the audit.
        n = names(world)
        policies = world.clients.network.firewall_policies
        saved = policies.get(n.rg, n.policy).as_dict()
        off = copy.deepcopy(saved)
        off["properties"]["dnsSettings"] = {"enableProxy": False}
        policies.begin_create_or_update(n.rg, n.policy, off).result()
        try:
            full = world.verify()
            assert failing(full) == {"firewall.dns-proxy", "probe.dns"}, render_text(full)
            assert "does not resolve" in full.get("probe.dns").message
        finally:
            policies.begin_create_or_update(n.rg, n.policy, saved).result()


def test_vnet_dns_past_the_firewall_fails(world: Deployed) -> None:
    with out_of_band(world, lambda: point_vnet_dns(world, ["10.42.1.53"])):
        full = world.verify()
        assert failing(full) == {"probe.dns"}, render_text(full)
        assert (
            "nodes resolve through 10.42.1.53, not the firewall's DNS proxy" in full.get("probe.dns").message
        )


def test_added_any_source_rule(world: Deployed) -> None:
    # Narrow destination, open source: only the source check may object.
    rule = {
        "ruleType": "ApplicationRule",
        "name": "mcr-from-anywhere",
        "sourceAddresses": ["*"],
        "protocols": [{"protocolType": "Https", "port": 443}],
        "targetFqdns": ["mcr.microsoft.com"],
    }
    check_case(
        world,
        lambda: add_group(world, allow_collection(rule)),
        "firewall.any-source",
        set(),
        [f"application rule {OOB_GROUP}/oob-allow/mcr-from-anywhere has source *"],
    )


def test_removed_role_assignment(world: Deployed) -> None:
    cfg = world.config
    assignments = world.clients.authorization.role_assignments
    vnet_id = f"/subscriptions/{world.clients.subscription_id}/resourceGroups/{cfg.resource_group}" + (
        f"/providers/Microsoft.Network/virtualNetworks/{cfg.vnet_name}"
    )

    def remove() -> Callable[[], None]:
        from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

        principal = world.outputs["identity"]["principal_id"]
        mine = [a for a in assignments.list_for_scope(vnet_id) if a.principal_id == principal]
        assert len(mine) == 1
        saved = mine[0]
        assignments.delete(vnet_id, saved.name)
        params = RoleAssignmentCreateParameters(
            role_definition_id=saved.role_definition_id,
            principal_id=saved.principal_id,
            principal_type="ServicePrincipal",
        )
        return lambda: assignments.create(vnet_id, saved.name, params)

    check_case(
        world,
        remove,
        "identity.network-contributor",
        set(),
        [
            f"managed identity {cfg.identity_name}",
            f"has no Network Contributor role assignment on VNet {cfg.vnet_name}",
        ],
    )

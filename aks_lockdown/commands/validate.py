"""``validate CONFIG``: every offline check, then a short account of what the config will build."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any

from aks_lockdown.commands._common import load


def run(args: argparse.Namespace) -> int:
    loaded = load(args.config)
    config = loaded.config
    warnings = list(loaded.warnings)
    warnings += [f"egress: {text}" for text in missing_required_lines(config, str(loaded.path))]
    print(f"{loaded.path}: valid")
    for line in describe(config):
        print(f"  {line}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def missing_required_lines(config: Any, config_file: str = "config") -> list[str]:
    """Rows today's requirements mark required that this config's rule set lacks (nodes would fail
    to bootstrap). Empty while the egress compiler is not in this build."""
    try:
        from aks_lockdown.egress.compiler import missing_required

        rows = missing_required(config, config_file=config_file)
    except ImportError:
        return []
    return [f"required now but missing from the rules: {row_text(row)}" for row in rows]


def row_text(row: Any) -> str:
    """A catalog row in one line, whatever its shape (a dataclass, a model or a mapping)."""

    def get(name: str) -> Any:
        return row.get(name) if isinstance(row, dict) else getattr(row, name, None)

    target = get("fqdn") or get("destination") or get("destinations") or get("address") or get("tag")
    if isinstance(target, (list, tuple)):
        target = ", ".join(map(str, target))
    proto, port = get("protocol"), get("port") or get("ports")
    purpose = get("purpose")
    if not target:
        return str(row)
    text = str(target)
    if proto or port:
        text += f" ({'/'.join(str(p) for p in (proto, port) if p)})"
    if purpose:
        text += f": {purpose}"
    return text


def _join(items: Iterable[str]) -> str:
    items = list(items)
    return ", ".join(items) if items else "none"


def describe(config: Any) -> list[str]:
    """What deploy would build, one resource kind per line, in walkthrough order."""
    net, fw, cl = config.network, config.firewall, config.cluster
    lines = [
        f"deployment {config.deployment.name} in {config.azure.cloud}/{config.azure.location}, "
        f"resource group {config.resource_group}",
    ]
    subnets = [
        f"{net.aks_subnet_name} {net.aks_subnet_cidr}",
        f"AzureFirewallSubnet {net.firewall_subnet_cidr}",
    ]
    if fw.sku == "Basic":
        subnets.append(f"AzureFirewallManagementSubnet {net.firewall_management_subnet_cidr}")
    lines.append(f"virtual network {config.vnet_name} {net.vnet_cidr}: {_join(subnets)}")
    ips = config.public_ip_names
    lines.append(f"public IPs: {len(ips)} ({ips[0]}{' ...' if len(ips) > 1 else ''})")
    rules = (
        f"policy {config.policy_name}" if fw.rules == "policy" else "classic rule collections on the firewall"
    )
    lines.append(
        f"firewall {config.firewall_name} ({fw.sku}, DNS proxy {'on' if fw.dns_proxy else 'off'}), "
        f"rules: {rules}; FQDNs by {fw.fqdn_mode}, edition {fw.egress_edition}, "
        f"features: {_join(fw.features)}, tunnel ports {'on' if fw.tunnel_ports else 'off'}, "
        f"{len(fw.extra_rules)} extra rule(s)"
    )
    lines.append(f"route table {config.route_table_name}: 0.0.0.0/0 -> the firewall's private IP")
    identity = cl.identity
    who = (
        f"user-assigned identity {config.identity_name}"
        if identity.type == "user-assigned"
        else f"service principal {identity.client_id} (secret from ${identity.secret_env})"
    )
    pods = f", pods {config.effective_pod_cidr}" if config.effective_pod_cidr else ""
    access = (
        "private API server"
        if cl.private_cluster
        else f"API server authorized for the firewall IPs + {_join(cl.authorized_ip_ranges)}"
        if cl.authorized_ip_ranges
        else "API server authorized for the firewall IPs only"
    )
    lines.append(
        f"cluster {config.cluster_name}: {cl.node_count} x {cl.node_vm_size}, {cl.network_plugin} plugin, "
        f"services {cl.service_cidr} (DNS {cl.dns_service_ip}){pods}, {who}, {access}"
    )
    dnat = [f"{r.protocol} :{r.firewall_port} -> {r.target_ip}:{r.target_port}" for r in config.ingress.dnat]
    lines.append(f"ingress: {_join(dnat)}; workload {config.ingress.workload}")
    where = config.state.directory if config.state.backend == "local" else config.state.account_url
    lines.append(f"state: {config.state.backend} ({where})")
    return lines

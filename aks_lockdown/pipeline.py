"""The walkthrough's order, as step classes: what `deploy` runs forwards and `teardown` backwards."""

from __future__ import annotations

from typing import Any

from aks_lockdown.engine.step import Step


def build_steps(config: Any) -> list[type[Step]]:
    """Every step, always in this order. A step with nothing to do for this config (classic rules
    write nothing, ingress.workload = "none") says so in its own check, so plans and state keep one
    shape for every config."""
    from aks_lockdown.steps.cluster import ClusterStep
    from aks_lockdown.steps.cluster_identity import ClusterIdentityStep
    from aks_lockdown.steps.firewall import FirewallStep
    from aks_lockdown.steps.firewall_rules import FirewallRulesStep
    from aks_lockdown.steps.public_ips import PublicIpStep
    from aks_lockdown.steps.resource_group import ResourceGroupStep
    from aks_lockdown.steps.route_table import RouteTableStep
    from aks_lockdown.steps.virtual_network import VirtualNetworkStep
    from aks_lockdown.steps.workload import WorkloadStep

    return [
        ResourceGroupStep,
        VirtualNetworkStep,
        PublicIpStep,
        FirewallRulesStep,
        FirewallStep,
        RouteTableStep,
        ClusterIdentityStep,
        ClusterStep,
        WorkloadStep,
    ]

"""The critical-path lower bound: the long operations that cannot overlap, from durations.json.

Dependencies (what must exist before what can be written):

    resource group -> VNet -> { public IPs  |  firewall policy -> its rule collection groups (one at a
    time: a policy refuses parallel writes) } -> firewall (needs the IPs, the subnet and the policy)
    -> route table (its default route names the firewall's private IP) -> subnet association
    -> cluster (UDR outbound needs the route on the subnet) -> run command (kubectl apply)

The identity and its role assignment depend only on the VNet, so they can run while the firewall is
being created: they are off the path. A resource group PUT is synchronous (not in the table: 0 s).

No client, however clever, deploys this faster than the sum below on the emulator's realistic profile.
"""

from __future__ import annotations

from typing import Any

from aks_lockdown.emulator.config import duration_table


def policy_group_count(config: Any) -> int:
    """How many rule collection groups the tool writes for this config (policy mode)."""
    if getattr(config.firewall, "rules", "policy") != "policy":
        return 0
    from aks_lockdown.egress import compiler

    inputs = compiler.RuleInputs.from_config(config, firewall_public_ips=["192.0.2.1"])
    return len(compiler.render_policy_groups(compiler.compile_rules(inputs)))


def lower_bound(config: Any, profile: str = "realistic") -> dict[str, Any]:
    """Seconds (unscaled, "Azure seconds") of the path, with each term, for the report."""
    table = duration_table()[profile]

    def d(key: str) -> float:
        return float(table.get(key, (0.0, ""))[0])

    groups = policy_group_count(config)
    ips = int(config.firewall.public_ip_count)
    rules_branch = d("firewallPolicies.put") + groups * d("ruleCollectionGroups.put") if groups else 0.0
    # Public IPs can be created in parallel with one another: one duration, whatever the count.
    ip_branch = d("publicIPAddresses.put") if ips else 0.0
    terms = [
        ("resource group PUT (synchronous)", 0.0),
        ("VNet with subnets", d("virtualNetworks.put")),
        (
            f"max(public IPs {ip_branch:.0f} s, policy + {groups} rule collection groups "
            f"{rules_branch:.0f} s)",
            max(ip_branch, rules_branch),
        ),
        ("firewall create", d("azureFirewalls.create")),
        ("route table", d("routeTables.put")),
        ("route table association (subnet PUT)", d("subnets.put")),
        ("AKS cluster create", d("managedClusters.create")),
        ("run command (kubectl apply)", d("runCommand")),
    ]
    off_path = [
        ("user-assigned identity (overlaps the firewall)", d("userAssignedIdentities.put")),
        ("role assignment (overlaps the firewall)", d("roleAssignments.put")),
    ]
    return {
        "seconds": sum(t for _, t in terms),
        "terms": [{"what": w, "seconds": t} for w, t in terms],
        "off_path": [{"what": w, "seconds": t} for w, t in off_path],
        "policy_groups": groups,
    }


def seed_sequence(profile: str = "realistic") -> dict[str, Any]:
    """What the seed's commands cost in operation time alone (they run one after another)."""
    table = duration_table()[profile]

    def d(key: str) -> float:
        return float(table.get(key, (0.0, ""))[0])

    terms = [
        ("vnet create", d("virtualNetworks.put")),
        ("subnet create (AzureFirewallSubnet)", d("subnets.put")),
        ("public-ip create", d("publicIPAddresses.put")),
        ("firewall create", d("azureFirewalls.create")),
        ("firewall ip-config create (update)", d("azureFirewalls.update")),
        ("route-table create", d("routeTables.put")),
        ("route create x2", 2 * d("routes.put")),
        ("network-rule create x3 (updates)", 3 * d("azureFirewalls.update")),
        ("application-rule create (update)", d("azureFirewalls.update")),
        ("subnet update (route table)", d("subnets.put")),
        ("aks create", d("managedClusters.create")),
        ("run command x2 (apply, get svc)", 2 * d("runCommand")),
        ("nat-rule create (update)", d("azureFirewalls.update")),
    ]
    return {"seconds": sum(t for _, t in terms), "terms": [{"what": w, "seconds": t} for w, t in terms]}


def iso_ts(text: str) -> float:
    """Epoch seconds of an operation time as the emulator writes it ("...T15:51:10.1234560Z")."""
    from datetime import UTC, datetime

    main, _, frac = text.rstrip("Z").partition(".")
    value = datetime.fromisoformat(main).replace(tzinfo=UTC).timestamp()
    return value + (float("0." + frac) if frac else 0.0)


def operations_busy(operations: list[dict[str, Any]], since: float | None = None) -> dict[str, Any]:
    """From the emulator's operation records: the summed durations of the long operations a run
    started, and the time covered by at least one of them (their union)."""
    ts = iso_ts

    spans = []
    for op in operations:
        if not op.get("startTime") or not op.get("endTime"):
            continue
        start, end = ts(op["startTime"]), ts(op["endTime"])
        if since is not None and start < since:
            continue
        spans.append((start, end, op.get("kind", "")))
    spans.sort()
    union = 0.0
    cur_start = cur_end = None
    for start, end, _ in spans:
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                union += cur_end - cur_start  # type: ignore[operator]
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        union += cur_end - cur_start  # type: ignore[operator]
    return {"count": len(spans), "sum": sum(e - s for s, e, _ in spans), "union": union}

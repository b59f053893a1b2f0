"""The control-plane audit: pure functions of what Azure says (an ``AzureView``), one check each.

Each check owns one question, so one out-of-band change fails the check that names it: a DNS proxy
switched off is the DNS proxy check's finding, not also a coverage failure of the rows whose network
rules need it (those are attributed to it instead).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from aks_lockdown.verify.azure import NETWORK_CONTRIBUTOR, AzureView, in_range, name_of, props, same_id
from aks_lockdown.verify.report import Check, Spec

if TYPE_CHECKING:
    from aks_lockdown.egress.catalog import EgressRow

OPEN = ("*", "0.0.0.0/0", "::/0", "Internet")


def control_plane(view: AzureView) -> list[Check]:
    return [
        subnet_association(view),
        default_route(view),
        firewall_ip_routes(view),
        dns_proxy(view),
        required_egress(view),
        open_destinations(view),
        any_sources(view),
        outbound_type(view),
        api_access(view),
        network_contributor(view),
    ]


def _missing(spec: Spec, what: str) -> Check:
    return spec.fail(f"{what} not found", f"{what} does not exist")


# ------------------------------------------------------------------------------------ routing


def subnet_association(view: AzureView) -> Check:
    cfg = view.config
    subnet, table = cfg.network.aks_subnet_name, cfg.route_table_name
    spec = Spec("route.association", "routing", "AKS subnet route table", f"{subnet} uses {table}")
    if view.subnet is None:
        return _missing(spec, f"subnet {subnet} of {cfg.vnet_name}")
    actual = (props(view.subnet).get("routeTable") or {}).get("id")
    if same_id(actual, view.route_table_id):
        return spec.ok(f"uses {table}")
    observed = f"uses {name_of(actual)}" if actual else "no route table"
    return spec.fail(
        observed,
        f"subnet {subnet} is not associated with route table {table} ({observed}): "
        "node traffic bypasses the firewall",
    )


def _routes(view: AzureView) -> list[dict[str, Any]]:
    return [{"name": r.get("name"), **props(r)} for r in props(view.route_table).get("routes") or []]


def default_route(view: AzureView) -> Check:
    cfg = view.config
    fw_ip = view.firewall_private_ip or "(firewall private IP)"
    name = f"{cfg.deployment.prefix}-fwrn"
    spec = Spec(
        "route.default", "routing", "Default route to firewall", f"0.0.0.0/0 -> VirtualAppliance {fw_ip}"
    )
    if view.route_table is None:
        return _missing(spec, f"route table {cfg.route_table_name}")
    routes = _routes(view)
    default = [r for r in routes if r.get("addressPrefix") == "0.0.0.0/0"]
    problems: list[str] = []
    if not default:
        problems.append(
            f"route '{name}' (0.0.0.0/0 -> {fw_ip}) is missing from route table {cfg.route_table_name}"
        )
    for r in default:
        hop, ip = r.get("nextHopType"), r.get("nextHopIpAddress")
        if hop != "VirtualAppliance" or ip != view.firewall_private_ip:
            where = f"{hop} {ip}" if ip else str(hop)
            problems.append(f"route '{r['name']}' sends 0.0.0.0/0 to {where}, not to the firewall {fw_ip}")
    # Anything else sent straight to the Internet, other than the firewall's own /32s, bypasses it.
    own = {f"{ip}/32" for _, ip in view.firewall_public_ips}
    for r in routes:
        prefix = r.get("addressPrefix")
        if r.get("nextHopType") == "Internet" and prefix != "0.0.0.0/0" and prefix not in own:
            problems.append(f"route '{r['name']}' sends {prefix} straight to the Internet, past the firewall")
    shown = [
        f"{r.get('addressPrefix')} -> {r.get('nextHopType')} {r.get('nextHopIpAddress') or ''}"
        for r in default
    ]
    observed = ", ".join(s.strip() for s in shown) or "no 0.0.0.0/0 route"
    return spec.fail(observed, "; ".join(problems)) if problems else spec.ok(observed)


def firewall_ip_routes(view: AzureView) -> Check:
    cfg = view.config
    ips = view.firewall_public_ips
    expected = ", ".join(f"{ip}/32 -> Internet" for _, ip in ips) or "a /32 Internet route per public IP"
    spec = Spec("route.firewall-ips", "routing", "Firewall public IP routes", expected)
    if view.route_table is None:
        return _missing(spec, f"route table {cfg.route_table_name}")
    if not ips:
        return spec.fail("no public IP", f"firewall {cfg.firewall_name} has no public IP address to route")
    routes = _routes(view)
    index = {n: i for i, n in enumerate(cfg.public_ip_names)}
    missing, found = [], []
    for pip_name, ip in ips:
        hit = [
            r for r in routes if r.get("addressPrefix") == f"{ip}/32" and r.get("nextHopType") == "Internet"
        ]
        if hit:
            found.append(f"{ip}/32 ({hit[0]['name']})")
            continue
        i = index.get(pip_name, 0)
        route = f"{cfg.deployment.prefix}-fwinternet" + ("" if i == 0 else f"-{i + 1}")
        missing.append(
            f"route '{route}' ({ip}/32 -> Internet) is missing from route table {cfg.route_table_name}"
        )
    observed = ", ".join(found) or "none"
    if missing:
        why = ": replies from the firewall's public IP would loop back into it (asymmetric routing)"
        return spec.fail(observed, "; ".join(missing) + why)
    return spec.ok(observed)


# ----------------------------------------------------------------------------------- firewall


def _fqdn_network_rules(view: AzureView) -> list[str]:
    return [
        f"{r.label} ({', '.join(r.destination_fqdns)})"
        for r in view.effective_rules().rules
        if r.kind == "network" and r.action.lower() == "allow" and r.destination_fqdns
    ]


def dns_proxy(view: AzureView) -> Check:
    cfg = view.config
    fqdn_rules = _fqdn_network_rules(view) if view.firewall is not None else []
    wanted = cfg.firewall.dns_proxy or bool(fqdn_rules)
    expected = "on" if wanted else "off (as configured; no network rule names an FQDN)"
    if fqdn_rules:
        expected += f" ({len(fqdn_rules)} network rule(s) name FQDNs)"
    spec = Spec("firewall.dns-proxy", "firewall", "DNS proxy", expected)
    if view.firewall is None:
        return _missing(spec, f"firewall {cfg.firewall_name}")
    observed = f"{'on' if view.dns_proxy else 'off'} in {view.dns_proxy_where}"
    if view.dns_proxy or not wanted:
        return spec.ok(observed, details=fqdn_rules)
    message = f"DNS proxy is off in {view.dns_proxy_where}"
    if fqdn_rules:
        message += (
            f"; network rule(s) {', '.join(fqdn_rules)} name FQDNs, which never match without it "
            "(traffic they should allow is dropped)"
        )
    return spec.fail(observed, message, fqdn_rules)


def required_rows(view: AzureView) -> list[EgressRow]:
    """Required catalog rows for the config's cloud, edition and features, plus what AKS needs today;
    the tunnel rows when the config asked for them (public clusters only: private ones skip them)."""
    from aks_lockdown.egress import catalog
    from aks_lockdown.egress.compiler import RuleInputs, compiled_rows

    cfg = view.config
    rows: dict[str, EgressRow] = {}
    for row in compiled_rows(RuleInputs.from_config(cfg)):
        if row.status == "required" or (row.gate == "tunnel_ports" and not cfg.cluster.private_cluster):
            rows.setdefault(row.id, row)
    for row in catalog.required_now(cfg.azure.cloud, cfg.azure.location, list(cfg.firewall.features)):
        if not row.conditional:
            rows.setdefault(row.id, row)
    return list(rows.values())


def node_source_ip(view: AzureView) -> str:
    """A node's address: the first one Azure hands out in the AKS subnet (it keeps .0-.3)."""
    net = ipaddress.ip_network(view.config.network.aks_subnet_cidr, strict=False)
    return str(net.network_address + 4)


def required_egress(view: AzureView) -> Check:
    cfg = view.config
    rows = required_rows(view)
    expected = f"{len(rows)} required endpoint(s) of {cfg.firewall.egress_edition} allowed"
    spec = Spec("firewall.required-egress", "firewall", "Required egress allowed", expected)
    if view.firewall is None:
        return _missing(spec, f"firewall {cfg.firewall_name}")
    src = node_source_ip(view)
    verdicts = view.effective_rules().covers(rows, source_ip=src)
    # Rows a DNS proxy would let through are the DNS proxy check's finding, not this one's.
    proxied = verdicts if view.dns_proxy else view.effective_rules(dns_proxy=True).covers(rows, source_ip=src)
    details, missing, via_proxy = [], [], []
    for row in rows:
        v = verdicts.get(row.id)
        if v is None:
            continue
        shown = f"{row.destination} {row.protocol.upper()}:{row.port}"
        if v.allowed:
            details.append(f"{shown}: allowed by {v.rule}")
        elif proxied[row.id].allowed:
            via_proxy.append(shown)
            details.append(f"{shown}: needs the DNS proxy ({proxied[row.id].rule})")
        else:
            missing.append(shown)
            details.append(f"{shown}: BLOCKED ({v.reason})")
    observed = f"{len(verdicts) - len(missing) - len(via_proxy)}/{len(verdicts)} allowed"
    if via_proxy:
        observed += f", {len(via_proxy)} depend on the DNS proxy"
    if missing:
        message = (
            f"the firewall's rules do not allow {len(missing)} required endpoint(s): {', '.join(missing)}"
        )
        return spec.fail(observed, message, details)
    return spec.ok(observed, details=details)


def open_destinations(view: AzureView) -> Check:
    spec = Spec(
        "firewall.open-destination",
        "firewall",
        "No allow-all destination",
        "no allow rule to *, 0.0.0.0/0 or Internet",
    )
    if view.firewall is None:
        return _missing(spec, f"firewall {view.config.firewall_name}")
    offenders = []
    for r in view.effective_rules().rules:
        if r.kind == "nat" or r.action.lower() != "allow":
            continue
        dests = [d for d in r.destination_addresses if d in OPEN]
        if "*" in r.target_fqdns:
            dests.append("FQDN *")
        if dests:
            offenders.append(f"{r.kind} rule {r.label} allows {', '.join(dests)}")
    if offenders:
        message = "; ".join(offenders) + ": egress is no longer locked down"
        return spec.fail(f"{len(offenders)} open rule(s)", message, offenders)
    return spec.ok("none")


def any_sources(view: AzureView) -> Check:
    cfg = view.config
    allowed = cfg.firewall.allow_any_source
    expected = (
        "any source allowed (firewall.allow_any_source)"
        if allowed
        else f"allow rules limited to sources like {cfg.network.aks_subnet_cidr}, never *"
    )
    spec = Spec("firewall.any-source", "firewall", "No any-source rule", expected)
    if view.firewall is None:
        return _missing(spec, f"firewall {cfg.firewall_name}")
    offenders = [
        f"{r.kind} rule {r.label} has source *"
        for r in view.effective_rules().rules
        if r.kind != "nat" and r.action.lower() == "allow" and ("*" in r.sources or "0.0.0.0/0" in r.sources)
    ]
    observed = f"{len(offenders)} rule(s) with source *"
    if offenders and not allowed:
        message = "; ".join(offenders) + ": any host routed through the firewall may use them"
        return spec.fail(observed, message, offenders)
    return spec.ok(observed, details=offenders)


# ------------------------------------------------------------------------------------ cluster


def outbound_type(view: AzureView) -> Check:
    cfg = view.config
    spec = Spec("cluster.outbound-type", "cluster", "Cluster outbound type", "userDefinedRouting")
    if view.cluster is None:
        return _missing(spec, f"cluster {cfg.cluster_name}")
    value = (props(view.cluster).get("networkProfile") or {}).get("outboundType") or "(unset: loadBalancer)"
    if value == "userDefinedRouting":
        return spec.ok(value)
    return spec.fail(
        value,
        f"cluster {cfg.cluster_name} has outbound type {value}: its egress does not follow the route table "
        "to the firewall",
    )


def api_access(view: AzureView) -> Check:
    cfg = view.config
    fw_ips = [ip for _, ip in view.firewall_public_ips]
    wanted = ", ".join(f"{ip}/32" for ip in fw_ips) or "the firewall's public IPs"
    spec = Spec(
        "cluster.api-access",
        "cluster",
        "API server access",
        f"private, or authorized ranges with {wanted} and never 0.0.0.0/0",
    )
    if view.cluster is None:
        return _missing(spec, f"cluster {cfg.cluster_name}")
    if view.private_cluster:
        return spec.ok("private cluster")
    ranges = list((props(view.cluster).get("apiServerAccessProfile") or {}).get("authorizedIPRanges") or [])
    observed = ", ".join(ranges) or "no authorized ranges (open to every address)"
    problems = []
    if not ranges:
        problems.append(
            f"cluster {cfg.cluster_name}'s API server accepts every address: no authorized ranges"
        )
    wide = [r for r in ranges if r.strip() in ("0.0.0.0/0", "0.0.0.0", "*")]
    if wide:
        problems.append(
            f"authorized ranges include {', '.join(wide)}: every address may reach the API server"
        )
    absent = [ip for ip in fw_ips if not in_range(ip, ranges)]
    if ranges and absent:
        problems.append(
            f"authorized ranges lack the firewall's public IP(s) {', '.join(absent)}: nodes, whose traffic "
            "leaves through the firewall, cannot reach the API server"
        )
    return spec.fail(observed, "; ".join(problems)) if problems else spec.ok(observed)


def network_contributor(view: AzureView) -> Check:
    cfg = view.config
    scopes = [("VNet", view.vnet_id, cfg.vnet_name)]
    if cfg.cluster.network_plugin == "kubenet":
        scopes.append(("route table", view.route_table_id, cfg.route_table_name))
    if cfg.cluster.identity.type == "user-assigned":
        who = f"managed identity {cfg.identity_name}"
    else:
        who = f"service principal {cfg.cluster.identity.object_id}"
    on = ", ".join(f"{kind} {name}" for kind, _, name in scopes)
    spec = Spec("identity.network-contributor", "identity", "Network Contributor", f"{who} on {on}")
    if not view.principal_id:
        return spec.fail("identity not found", f"{who} does not exist (or has no principal ID)")
    found, missing = [], []
    for kind, scope, name in scopes:
        grants = [
            a
            for a in view.role_assignments(scope)
            if str(props(a).get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower() == NETWORK_CONTRIBUTOR
        ]
        if not grants:
            missing.append(f"{kind} {name}")
            continue
        at = str(props(grants[0]).get("scope", ""))
        found.append(f"{kind} {name}" + ("" if same_id(at, scope) else f" (inherited from {at})"))
    observed = ("on " + ", ".join(found)) if found else "no Network Contributor assignment"
    if missing:
        return spec.fail(
            observed,
            f"{who} (principal {view.principal_id}) has no Network Contributor role assignment on "
            f"{', '.join(missing)}: AKS cannot manage its load balancers and routes there",
        )
    return spec.ok(observed)

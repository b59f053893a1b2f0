"""What can a node in a subnet reach: the emulator's egress simulation.

Given the emulator's world (ARM resource JSON as the Network RP returns it), a source subnet and a
destination, follow the subnet's route table (longest prefix match, as Azure's route selection
does), and when the chosen next hop is a VirtualAppliance at a firewall's private IP, evaluate that
firewall's effective rules with the shared evaluator (`aks_lockdown.egress.evaluate`, the same code
`verify` uses, so the emulator and the tool cannot disagree about what a rule means).

`bootstrap_check` is what a cluster create needs: today's required endpoints (the catalog's
`current` rows, whatever edition the deployment chose), each checked from the node subnet.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

FIREWALL_TYPE = "microsoft.network/azurefirewalls"
POLICY_TYPE = "microsoft.network/firewallpolicies"
GROUP_TYPE = "microsoft.network/firewallpolicies/rulecollectiongroups"

# Azure reserves the first four addresses of every subnet (network, gateway, 2x Azure DNS);
# the first address a VM NIC gets is .4.
FIRST_HOST_OFFSET = 4


class World(Protocol):
    """The slice of the emulator's resource store netsim reads (resource JSON dicts)."""

    def get(self, resource_id: str) -> dict[str, Any] | None: ...

    def list_type(self, resource_type: str) -> Iterable[dict[str, Any]]: ...


class DictWorld:
    """A World over a plain {id: resource} dict: unit tests, and an adapter for simple stores."""

    def __init__(self, resources: Iterable[dict[str, Any]] = ()):
        self.resources: dict[str, dict[str, Any]] = {}
        for r in resources:
            self.put(r)

    def put(self, resource: dict[str, Any]) -> None:
        self.resources[resource["id"].lower()] = resource

    def delete(self, resource_id: str) -> None:
        self.resources.pop(resource_id.lower(), None)

    def get(self, resource_id: str) -> dict[str, Any] | None:
        return self.resources.get(resource_id.lower())

    def list_type(self, resource_type: str) -> Iterator[dict[str, Any]]:
        want = resource_type.lower()
        for r in list(self.resources.values()):
            if str(r.get("type", "")).lower() == want:
                yield r


class CoreWorld:
    """Adapter over the emulator core's `World`: GET views (children merged, live
    provisioningState), which is exactly what a client of ARM would see."""

    def __init__(self, world: Any):
        self.world = world

    def get(self, resource_id: str) -> dict[str, Any] | None:
        return self.world.view(resource_id)

    def list_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [self.world.render(r) for r in self.world.list(resource_type)]


def as_world(world: Any) -> World:
    """Accept either a netsim World or the core's World."""
    if hasattr(world, "view") and hasattr(world, "ops"):
        return CoreWorld(world)
    return world


# ---------------------------------------------------------------- resource helpers


def props(resource: dict[str, Any] | None) -> dict[str, Any]:
    return (resource or {}).get("properties") or {}


def parent_id(resource_id: str, levels: int = 1) -> str:
    parts = resource_id.rstrip("/").split("/")
    return "/".join(parts[: len(parts) - 2 * levels])


def get_subnet(world: World, subnet_id: str) -> dict[str, Any] | None:
    """A subnet whether the store keeps it as its own resource or only inline in its VNet."""
    sub = world.get(subnet_id)
    if sub is not None:
        return sub
    vnet = world.get(parent_id(subnet_id))
    name = subnet_id.rstrip("/").rsplit("/", 1)[-1].lower()
    for s in props(vnet).get("subnets") or []:
        if str(s.get("name", "")).lower() == name:
            return s
    return None


def subnet_prefixes(subnet: dict[str, Any] | None) -> list[ipaddress.IPv4Network]:
    p = props(subnet)
    raw = [p["addressPrefix"]] if p.get("addressPrefix") else list(p.get("addressPrefixes") or [])
    out = []
    for r in raw:
        try:
            out.append(ipaddress.IPv4Network(r, strict=False))
        except ValueError:
            continue
    return out


def vnet_prefixes(vnet: dict[str, Any] | None) -> list[ipaddress.IPv4Network]:
    out = []
    for r in (props(vnet).get("addressSpace") or {}).get("addressPrefixes") or []:
        try:
            out.append(ipaddress.IPv4Network(r, strict=False))
        except ValueError:
            continue
    return out


def route_table_routes(world: World, route_table_id: str) -> list[dict[str, Any]]:
    rt = world.get(route_table_id)
    routes = list(props(rt).get("routes") or [])
    # Routes written as child resources may live only in the store, not inline.
    children = getattr(world, "list_type", None)
    if children is not None and not routes:
        prefix = route_table_id.lower() + "/routes/"
        routes = [
            r
            for r in world.list_type("Microsoft.Network/routeTables/routes")
            if r["id"].lower().startswith(prefix)
        ]
    return routes


def node_ip(world: World, subnet_id: str, index: int = 0) -> str | None:
    """The IP a node NIC would get: Azure hands out .4 first."""
    prefixes = subnet_prefixes(get_subnet(world, subnet_id))
    if not prefixes:
        return None
    return str(prefixes[0].network_address + FIRST_HOST_OFFSET + index)


def firewall_private_ips(firewall: dict[str, Any]) -> list[str]:
    ips = []
    for cfg in props(firewall).get("ipConfigurations") or []:
        ip = props(cfg).get("privateIPAddress")
        if ip:
            ips.append(ip)
    return ips


def firewall_public_ips(world: World, firewall: dict[str, Any]) -> list[str]:
    """The addresses of the firewall's public IP resources (127.x.y.z in the emulator)."""
    ips = []
    for cfg in props(firewall).get("ipConfigurations") or []:
        pip_ref = props(cfg).get("publicIPAddress") or {}
        pip = world.get(pip_ref["id"]) if pip_ref.get("id") else None
        addr = props(pip).get("ipAddress")
        if addr:
            ips.append(addr)
    return ips


def firewall_vnet_id(firewall: dict[str, Any]) -> str | None:
    for cfg in props(firewall).get("ipConfigurations") or []:
        sid = (props(cfg).get("subnet") or {}).get("id")
        if sid:
            return parent_id(sid)
    return None


def find_firewall_by_private_ip(world: World, ip: str, vnet_id: str | None = None) -> dict[str, Any] | None:
    """The firewall a next hop IP names. A next hop resolves in the source's own address space (its
    VNet and peers), so a firewall in the same VNet wins over another VNet's with the same IP."""
    found = [
        fw for fw in world.list_type("Microsoft.Network/azureFirewalls") if ip in firewall_private_ips(fw)
    ]
    if vnet_id is not None:
        same = [fw for fw in found if (firewall_vnet_id(fw) or "").lower() == vnet_id.lower()]
        if same:
            return same[0]
    return found[0] if found else None


def location_of(resource: dict[str, Any] | None) -> str:
    return str((resource or {}).get("location") or "").replace(" ", "").lower()


def firewall_dns_proxy(world: World, firewall: dict[str, Any]) -> bool:
    """DNS proxy is on via the policy's dnsSettings, or for classic rules the firewall's
    additionalProperties key `Network.DNS.EnableProxy` (what `--enable-dns-proxy true` writes)."""
    pol_ref = props(firewall).get("firewallPolicy") or {}
    if pol_ref.get("id"):
        pol = world.get(pol_ref["id"])
        return bool((props(pol).get("dnsSettings") or {}).get("enableProxy"))
    extra = props(firewall).get("additionalProperties") or {}
    return str(extra.get("Network.DNS.EnableProxy", "")).lower() == "true"


def policy_groups(world: World, policy_id: str, _seen: set[str] | None = None) -> list[dict[str, Any]]:
    """Every rule collection group of a policy and of its base policies (inherited rules apply)."""
    seen = _seen if _seen is not None else set()
    if policy_id.lower() in seen:
        return []
    seen.add(policy_id.lower())
    pol = world.get(policy_id)
    if pol is None:
        return []
    groups: list[dict[str, Any]] = []
    base = (props(pol).get("basePolicy") or {}).get("id")
    if base:
        groups.extend(policy_groups(world, base, seen))
    refs = [g.get("id") for g in props(pol).get("ruleCollectionGroups") or [] if g.get("id")]
    found = {r.lower() for r in refs}
    prefix = policy_id.lower() + "/rulecollectiongroups/"
    # The store is the truth: a group written a moment ago may not be in the policy's ref list yet.
    for g in world.list_type("Microsoft.Network/firewallPolicies/ruleCollectionGroups"):
        if g["id"].lower().startswith(prefix):
            found.add(g["id"].lower())
    for gid in sorted(found):
        g = world.get(gid)
        if g is not None:
            groups.append(g)
    return groups


# ---------------------------------------------------------------- destinations and flows


@dataclass(frozen=True)
class Destination:
    """Where a node wants to go: an FQDN or an IP, a port, a protocol, and the service tags the
    destination address belongs to (Azure's tag membership, which an FQDN alone does not say)."""

    protocol: str  # "TCP" | "UDP" | "ICMP"
    port: int
    fqdn: str | None = None
    ip: str | None = None
    service_tags: tuple[str, ...] = ()
    scheme: str | None = None  # "http" | "https" for URLs: application rules match on these

    def __str__(self) -> str:
        host = self.fqdn or self.ip or ",".join(self.service_tags) or "?"
        suffix = "" if self.protocol == "TCP" else f"/{self.protocol.lower()}"
        return f"{host}:{self.port}{suffix}"


def azure_tags_for_host(host: str, location: str) -> tuple[str, ...]:
    """Azure-owned hostnames whose addresses sit in a region's AzureCloud range.

    The API server (*.hcp.<loc>.azmk8s.io) and the tunnel front end are regional Azure addresses,
    so a network rule to AzureCloud.<region> covers them, as it does in Azure."""
    h = host.lower()
    loc = location.lower()
    if loc and (f".hcp.{loc}." in h or f".tun.{loc}." in h or h.endswith(f".{loc}.azmk8s.io")):
        try:
            from aks_lockdown.egress.catalog import service_tag_for_region

            # Some regions' tags do not follow the plain pattern (francecentral -> centralfrance).
            tag = service_tag_for_region("AzureCloud", loc)
        except (ImportError, ValueError):
            tag = f"AzureCloud.{loc}"
        return (tag, "AzureCloud")
    return ()


def parse_destination(dest: str, *, location: str = "") -> Destination:
    """`https://host/path`, `http://host:8080`, `host:port`, `host:port/udp`, or a service tag
    (`AzureCloud.eastus:1194/udp`)."""
    dest = dest.strip()
    if "://" in dest:
        u = urlsplit(dest)
        scheme = (u.scheme or "https").lower()
        host = u.hostname or ""
        port = u.port or (80 if scheme == "http" else 443)
        return _dest_for_host(host, port, "TCP", location, scheme=scheme)
    proto = "TCP"
    if "/" in dest:
        dest, p = dest.rsplit("/", 1)
        proto = p.upper()
    host, _, port_s = dest.rpartition(":")
    if not host:
        host, port_s = port_s, "443"
    return _dest_for_host(host, int(port_s), proto, location)


def _is_service_tag(text: str) -> bool:
    # Service tags are letters with an optional ".Region" suffix and never contain a dot-separated
    # domain of 3+ labels; FQDNs have a TLD. AzureCloud.eastus is a tag, mcr.microsoft.com is not.
    known = (
        "azurecloud",
        "azuremonitor",
        "azurecontainerregistry",
        "microsoftcontainerregistry",
        "storage",
        "azureactivedirectory",
        "azurekeyvault",
        "azurefrontdoor",
    )
    head = text.split(".", 1)[0].lower()
    return text.count(".") <= 1 and head in known


def _dest_for_host(
    host: str, port: int, proto: str, location: str, *, scheme: str | None = None
) -> Destination:
    try:
        ipaddress.ip_address(host)
        return Destination(protocol=proto, port=port, ip=host, scheme=scheme)
    except ValueError:
        pass
    if _is_service_tag(host):
        tags = (host,) + (("AzureCloud",) if host.lower().startswith("azurecloud.") else ())
        return Destination(protocol=proto, port=port, service_tags=tags, scheme=scheme)
    return Destination(
        protocol=proto,
        port=port,
        fqdn=host.lower(),
        service_tags=azure_tags_for_host(host, location),
        scheme=scheme,
    )


# ---------------------------------------------------------------- routing


@dataclass(frozen=True)
class Hop:
    next_hop_type: str  # VirtualAppliance | Internet | VnetLocal | None | VirtualNetworkGateway
    next_hop_ip: str | None
    route: str  # which route decided: "<route table>/<route>" or "system: default"


def select_route(world: World, subnet_id: str, dest: Destination) -> Hop:
    """Azure's route selection: longest prefix match over the subnet's UDRs and the system routes;
    a UDR beats a system route of the same prefix. Service-tag routes match by tag membership and
    rank above 0.0.0.0/0 (Azure: an explicit prefix wins over a tag route of equal prefix)."""
    subnet = get_subnet(world, subnet_id)
    vnet = world.get(parent_id(subnet_id))
    dest_ip = ipaddress.IPv4Address(dest.ip) if dest.ip and ":" not in dest.ip else None
    # (prefix length, is_udr) -> hop; the largest key wins.
    best: tuple[tuple[int, int], Hop] | None = None

    def consider(key: tuple[int, int], hop: Hop) -> None:
        nonlocal best
        if best is None or key > best[0]:
            best = (key, hop)

    consider((0, 0), Hop("Internet", None, "system: 0.0.0.0/0 -> Internet"))
    if dest_ip is not None:
        for net in vnet_prefixes(vnet):
            if dest_ip in net:
                consider((net.prefixlen, 0), Hop("VnetLocal", None, f"system: {net} -> VnetLocal"))
    rt_id = (props(subnet).get("routeTable") or {}).get("id")
    if rt_id:
        rt_name = rt_id.rstrip("/").rsplit("/", 1)[-1]
        for r in route_table_routes(world, rt_id):
            p = props(r)
            prefix = str(p.get("addressPrefix") or "")
            hop = Hop(
                str(p.get("nextHopType") or "None"), p.get("nextHopIpAddress"), f"{rt_name}/{r.get('name')}"
            )
            try:
                net = ipaddress.IPv4Network(prefix, strict=False)
            except ValueError:
                if prefix and prefix.lower() in {t.lower() for t in dest.service_tags}:
                    consider((8 if "." in prefix else 7, 1), hop)
                continue
            if net.prefixlen == 0 or (dest_ip is not None and dest_ip in net):
                consider((net.prefixlen, 1), hop)
    assert best is not None
    return best[1]


# ---------------------------------------------------------------- reachability


@dataclass(frozen=True)
class Reach:
    allowed: bool
    destination: Destination
    hop: Hop
    firewall_id: str | None = None
    rule: str | None = None
    reason: str = ""


def _effective_rules(world: World, firewall: dict[str, Any], cloud: str) -> Any:
    from aks_lockdown.egress import evaluate

    location = location_of(firewall)
    dns_proxy = firewall_dns_proxy(world, firewall)
    pol_ref = (props(firewall).get("firewallPolicy") or {}).get("id")
    if pol_ref:
        groups = policy_groups(world, pol_ref)
        return evaluate.EffectiveRules.from_policy_groups(
            groups, dns_proxy=dns_proxy, cloud=cloud, location=location
        )
    return evaluate.EffectiveRules.from_classic_firewall(
        firewall, dns_proxy=dns_proxy, cloud=cloud, location=location
    )


def _flow(source_ip: str, dest: Destination) -> Any:
    from aks_lockdown.egress import evaluate

    # The evaluator's Flow says HTTP/HTTPS for what application rules can see (a URL), and
    # TCP/UDP otherwise; network rules match HTTP(S) flows as TCP.
    protocol = dest.scheme.upper() if dest.scheme else dest.protocol
    return evaluate.Flow(
        source_ip=source_ip,
        protocol=protocol,
        port=dest.port,
        fqdn=dest.fqdn,
        ip=dest.ip,
        service_tags=frozenset(dest.service_tags),
    )


@dataclass
class NetSim:
    """Reachability from subnets of one world. `cloud` decides FQDN tag expansion."""

    world: World
    cloud: str = "AzureCloud"

    def __post_init__(self) -> None:
        self.world = as_world(self.world)

    def reach(self, subnet_id: str, destination: str | Destination, *, source_ip: str | None = None) -> Reach:
        subnet = get_subnet(self.world, subnet_id)
        vnet = self.world.get(parent_id(subnet_id))
        location = location_of(vnet)
        dest = (
            destination
            if isinstance(destination, Destination)
            else parse_destination(destination, location=location)
        )
        src = source_ip or node_ip(self.world, subnet_id) or "0.0.0.0"
        if subnet is None:
            return Reach(
                False, dest, Hop("None", None, "no subnet"), reason=f"subnet {subnet_id} does not exist"
            )
        hop = select_route(self.world, subnet_id, dest)
        t = hop.next_hop_type.lower()
        if t == "internet":
            return Reach(True, dest, hop, reason=f"direct to the internet ({hop.route})")
        if t == "vnetlocal":
            return Reach(True, dest, hop, reason=f"inside the virtual network ({hop.route})")
        if t == "none":
            return Reach(False, dest, hop, reason=f"dropped: route {hop.route} has next hop None")
        if t != "virtualappliance":
            return Reach(
                False,
                dest,
                hop,
                reason=f"next hop {hop.next_hop_type} does not lead to the internet in the emulator",
            )
        fw = find_firewall_by_private_ip(self.world, hop.next_hop_ip or "", parent_id(subnet_id))
        if fw is None:
            return Reach(
                False,
                dest,
                hop,
                reason=(
                    f"dropped: route {hop.route} sends traffic to {hop.next_hop_ip}, which is no "
                    "firewall's private IP"
                ),
            )
        rules = _effective_rules(self.world, fw, self.cloud)
        verdict = rules.allows(_flow(src, dest))
        fw_name = fw.get("name") or fw["id"].rsplit("/", 1)[-1]
        reason = getattr(verdict, "reason", "") or ""
        return Reach(
            bool(verdict.allowed),
            dest,
            hop,
            firewall_id=fw["id"],
            rule=getattr(verdict, "rule", None),
            reason=f"firewall {fw_name}: {reason}".rstrip(": "),
        )


# ---------------------------------------------------------------- DNS


@dataclass(frozen=True)
class DnsPath:
    server: str  # the resolver nodes use
    ok: bool
    reason: str


AZURE_DNS = "168.63.129.16"


def dns_for_subnet(world: World, subnet_id: str) -> DnsPath:
    """Which resolver a node in the subnet uses and whether it answers. Azure DNS (168.63.129.16) is
    platform traffic that no route table affects; a VNet whose DNS servers are a firewall's private IP
    needs that firewall's DNS proxy on (with it off, nothing listens on port 53 there)."""
    world = as_world(world)
    vnet = world.get(parent_id(subnet_id))
    servers = [str(x) for x in (props(vnet).get("dhcpOptions") or {}).get("dnsServers") or []]
    if not servers:
        return DnsPath(AZURE_DNS, True, "Azure-provided DNS")
    server = servers[0]
    fw = find_firewall_by_private_ip(world, server, parent_id(subnet_id))
    if fw is not None and not firewall_dns_proxy(world, fw):
        return DnsPath(
            server, False, f"{server} is firewall {fw.get('name')}'s private IP and its DNS proxy is off"
        )
    return DnsPath(
        server, True, "custom DNS server" if fw is None else f"firewall {fw.get('name')} DNS proxy"
    )


def fake_public_address(host: str) -> str:
    """A stable stand-in address for a public name (the emulator has no internet to ask)."""
    h = hashlib.sha256(host.lower().encode()).digest()
    return f"20.{h[0]}.{h[1]}.{max(1, h[2] % 255)}"


# ---------------------------------------------------------------- cluster bootstrap


@dataclass(frozen=True)
class BlockedEndpoint:
    endpoint: str  # e.g. "packages.aks.azure.com:443"
    reason: str
    row: Any = None


def cluster_features(cluster: dict[str, Any]) -> list[str]:
    """Config feature names (aks_lockdown.config.Feature) a cluster's spec turns on."""
    p = props(cluster)
    feats: list[str] = []
    addons = {k.lower(): v for k, v in (p.get("addonProfiles") or {}).items()}

    def on(name: str) -> bool:
        return bool((addons.get(name) or {}).get("enabled"))

    if on("omsagent") or (p.get("azureMonitorProfile") or {}).get("metrics", {}).get("enabled"):
        feats.append("monitor")
    if on("azurepolicy"):
        feats.append("azure-policy")
    pools = p.get("agentPoolProfiles") or []
    if any(str(ap.get("osType", "")).lower() == "windows" for ap in pools):
        feats.append("windows")
    # GPU VM sizes are the N family (Standard_NC*, ND*, NV*).
    if any(
        str(ap.get("vmSize", "")).lower().startswith(("standard_nc", "standard_nd", "standard_nv"))
        for ap in pools
    ):
        feats.append("gpu")
    return feats


def node_subnet_id(cluster: dict[str, Any]) -> str | None:
    for ap in props(cluster).get("agentPoolProfiles") or []:
        if ap.get("vnetSubnetID"):
            return str(ap["vnetSubnetID"])
    return None


def row_destinations(row: Any, location: str) -> list[Destination]:
    """The flow one catalog row stands for (fields as in aks_lockdown/egress/catalog.toml:
    kind, destination, dest_type fqdn|service-tag|placeholder, protocol, port). Placeholders
    (CustomDNSIP, APIServerIP) depend on things nodes do not need to bootstrap: none."""

    def g(name: str, default: Any = None) -> Any:
        if isinstance(row, dict):
            return row.get(name, default)
        return getattr(row, name, default)

    dest_type = str(g("dest_type", "fqdn") or "fqdn").lower()
    raw = str(g("destination") or g("compile_as") or "")
    if not raw or dest_type == "placeholder":
        return []
    host = raw.replace("<location>", location).replace("<Location>", location).replace("<region>", location)
    proto = str(g("protocol", "TCP") or "TCP")
    port = int(g("port", 443) or 443)
    scheme = None
    if proto.lower() in ("https", "http"):
        scheme, proto = proto.lower(), "TCP"
    proto = proto.upper()
    if dest_type == "service-tag":
        tags = (host,) + (("AzureCloud",) if host.lower().startswith("azurecloud.") else ())
        return [Destination(proto, port, service_tags=tags)]
    if host.startswith("*."):
        # A wildcard row stands for its hosts: test a representative one.
        host = PROBE_LABEL + host[1:]
    d = parse_destination(f"{host}:{port}/{proto}", location=location)
    return [Destination(d.protocol, d.port, d.fqdn, d.ip, d.service_tags, scheme)]


PROBE_LABEL = "aks-lockdown-probe"


def bootstrap_check(
    world: World, cluster: dict[str, Any], *, cloud: str = "AzureCloud"
) -> list[BlockedEndpoint]:
    """The required endpoints a new cluster's nodes cannot reach (empty: bootstrap succeeds).

    Uses the catalog's rows as AKS needs them today, regardless of the edition the deployment
    chose: Azure does not care what a 2020 document said."""
    from aks_lockdown.egress import catalog

    world = as_world(world)
    subnet_id = node_subnet_id(cluster)
    if subnet_id is None:
        # Without a custom subnet AKS makes its own VNet with direct internet egress.
        return []
    location = location_of(cluster)
    rows = catalog.required_now(cloud, location, cluster_features(cluster))
    private = bool((props(cluster).get("apiServerAccessProfile") or {}).get("enablePrivateCluster"))
    sim = NetSim(world, cloud=cloud)
    blocked: list[BlockedEndpoint] = []
    seen: set[str] = set()
    for row in rows:
        for dest in row_destinations(row, location):
            # A private cluster reaches its API server over a private endpoint, and does not
            # need the tunnel ports (Microsoft's egress doc: "not required for private clusters").
            if private and (dest.port in (1194, 9000) or (dest.fqdn and ".hcp." in dest.fqdn)):
                continue
            key = str(dest)
            if key in seen:
                continue
            seen.add(key)
            r = sim.reach(subnet_id, dest)
            if not r.allowed:
                shown = dest.fqdn.replace(PROBE_LABEL + ".", "*.") if dest.fqdn else None
                endpoint = f"{shown}:{dest.port}" if shown else key
                blocked.append(BlockedEndpoint(endpoint=endpoint, reason=r.reason, row=row))
    return blocked

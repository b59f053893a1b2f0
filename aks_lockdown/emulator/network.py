"""Microsoft.Network: virtual networks and subnets, public IPs, route tables and routes, service tags,
plus the walks other providers use (subnet -> route table, firewall by private IP ...). Firewalls and
firewall policies are in network_firewall.py."""

from __future__ import annotations

import ipaddress
import random
import socket
from typing import Any

from aks_lockdown.emulator import network_firewall, servicetags
from aks_lockdown.emulator.framework import ArmError, Registry, Request, Response, not_found
from aks_lockdown.emulator.generic import generic_delete
from aks_lockdown.emulator.lro import ensure_free
from aks_lockdown.emulator.netcommon import (
    NS,
    clean,
    ensure_ref,
    parse_prefix,
    prefixes_of,
    ref_id,
    referrers,
    render_base,
    require_location,
    resource_guid,
    start_put,
)
from aks_lockdown.emulator.world import Record, World

VNET = f"{NS}/virtualNetworks"
SUBNET = f"{NS}/virtualNetworks/subnets"
PIP = f"{NS}/publicIPAddresses"
RT = f"{NS}/routeTables"
ROUTE = f"{NS}/routeTables/routes"


# ---- walks for other providers (documented in README-internals.md) -----------------------------------
def subnet_route_table(world: World, subnet_id: str) -> dict[str, Any] | None:
    sub = world.get(subnet_id)
    if sub is None:
        return None
    rt = ref_id(sub.body.get("properties", {}).get("routeTable"))
    return world.view(rt) if rt else None


def firewall_by_private_ip(world: World, ip: str) -> dict[str, Any] | None:
    for rec in world.list(network_firewall.FIREWALL):
        view = world.render(rec)
        for cfg in view["properties"].get("ipConfigurations", []):
            if cfg["properties"].get("privateIPAddress") == ip:
                return view
    return None


firewall_policy_groups = network_firewall.firewall_policy_groups


def public_ip_address(world: World, pip_id: str) -> str | None:
    rec = world.get(pip_id)
    return rec.extra.get("ipAddress") if rec else None


PUBLIC_IP_BLOCK_KEY = "public_ip_block"
PUBLIC_IPS_PER_BLOCK = 250  # 127.B.C.1 .. 127.B.C.250


def _draw_public_ip_block() -> list[int]:
    """A random 127.B.C.0/24 among ~65k (B in 1..255, never 127.0.x: 127.0.0.1 is everyone's)."""
    rng = random.SystemRandom()
    return [rng.randint(1, 255), rng.randint(0, 255)]


def public_ip_block(world: World) -> list[int]:
    """The world's loopback block [B, C] for public IPs: drawn once, when the world is created, and
    persisted in `world.meta`, so a restart hands out (and listens on) the same addresses while two
    emulators running at once almost never share a block."""
    block = world.meta.get(PUBLIC_IP_BLOCK_KEY)
    if not (isinstance(block, list) and len(block) == 2 and 1 <= int(block[0]) <= 255):
        block = _draw_public_ip_block()
        world.meta[PUBLIC_IP_BLOCK_KEY] = block
        world.touch()
    return [int(block[0]), int(block[1])]


def _public_ip(block: list[int], n: int) -> str:
    """The n-th address of a world: 250 per /24, then the following /24s (B wraps within 1..255)."""
    b, c = block
    idx = (b - 1) * 256 + c + n // PUBLIC_IPS_PER_BLOCK
    b, c = 1 + (idx // 256) % 255, idx % 256
    return f"127.{b}.{c}.{n % PUBLIC_IPS_PER_BLOCK + 1}"


def _dnat_ports(world: World) -> set[int]:
    """The DNAT destination ports in the world: a new address must be free on those too."""
    try:
        from aks_lockdown.emulator import dnat, netsim
    except ImportError:  # the AKS part is optional
        return set()
    try:
        return {r.port for r in dnat.dnat_rules(netsim.as_world(world))}
    except Exception:  # a half-built world must not stop an allocation
        return set()


def address_free(ip: str, ports: set[int] | frozenset[int] = frozenset({80})) -> bool:
    """A quick bind test: False when something on this machine (another emulator's DNAT listener)
    already listens on ip:port for one of the ports. Permission errors (ports below 1024 without
    root) say nothing about a collision and count as free."""
    for port in sorted(ports)[:16]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the DNAT listener binds
            try:
                s.bind((ip, port))
            except PermissionError:
                continue
            except OSError:
                return False
    return True


def allocate_public_ip(world: World) -> str:
    """A fresh loopback address 127.B.C.x in the world's own block (see `public_ip_block`), skipping
    any address already listened on (port 80 or a DNAT port of the world) by someone else."""
    block = public_ip_block(world)
    n = int(world.meta.get("next_public_ip", 0))
    taken = {str(r.extra.get("ipAddress")) for r in world.list(PIP) if r.extra.get("ipAddress")}
    ports = {80} | _dnat_ports(world)
    first = None
    for i in range(n, n + 4 * PUBLIC_IPS_PER_BLOCK):
        ip = _public_ip(block, i)
        if ip in taken:
            continue
        if first is None:
            first = (i, ip)
        if address_free(ip, ports):
            world.meta["next_public_ip"] = i + 1
            world.touch()
            return ip
    # Everything tried is busy (not expected): hand out the next unused one; its DNAT reports it.
    i, ip = first if first is not None else (n, _public_ip(block, n))
    world.meta["next_public_ip"] = i + 1
    world.touch()
    return ip


# ---- virtual networks and subnets ---------------------------------------------------------------
def _vnet_prefixes(vnet_body: dict[str, Any], owner: str) -> list[Any]:
    space = (vnet_body.get("properties") or {}).get("addressSpace") or {}
    return [parse_prefix(p, owner) for p in space.get("addressPrefixes") or []]


def _check_subnets(vnet_id: str, vnet_prefixes: list[Any], subnets: list[tuple[str, dict[str, Any]]]) -> None:
    """Each subnet inside the VNet's space and no two overlapping (real codes and wording)."""
    vnet_name = vnet_id.rsplit("/", 1)[-1]
    seen: list[tuple[str, Any]] = []
    for name, props in subnets:
        nets = []
        for p in prefixes_of(props):
            net = parse_prefix(p, f"{vnet_id}/subnets/{name}")
            try:
                ipaddress.ip_network(p, strict=True)
            except ValueError:
                # Host bits set (10.0.0.1/24): parseable but not a valid subnet.
                raise ArmError(
                    400,
                    "NetcfgInvalidSubnet",
                    f"Subnet '{name}' is not valid in virtual network '{vnet_name}'.",
                ) from None
            nets.append(net)
        if not nets:
            raise ArmError(
                400,
                "NetcfgInvalidSubnet",
                f"Subnet '{name}' is not valid in virtual network '{vnet_name}': it has no address prefix.",
            )
        for net in nets:
            if not any(net.version == v.version and net.subnet_of(v) for v in vnet_prefixes):
                raise ArmError(
                    400,
                    "NetcfgSubnetRangeOutsideVnet",
                    f"Subnet '{name}' is not valid because its IP address range is outside the IP address "
                    f"range of virtual network '{vnet_name}'.",
                )
            for other_name, other in seen:
                if net.version == other.version and net.overlaps(other):
                    raise ArmError(
                        400,
                        "NetcfgSubnetRangesOverlap",
                        f"Subnet '{name}' is not valid because its IP address range overlaps with that of an "
                        f"existing subnet '{other_name}' in virtual network '{vnet_name}'.",
                    )
            seen.append((name, net))


def _subnet_props(world: World, subnet_id: str, raw: dict[str, Any]) -> dict[str, Any]:
    props = clean({"properties": raw}, drop_props=("ipConfigurations",))["properties"]
    ensure_ref(world, ref_id(props.get("routeTable")), subnet_id)
    # NSGs are not modelled: a reference to one is stored, not checked.
    return props


def _in_use_subnet(world: World, subnet_id: str, vnet_id: str) -> None:
    users = referrers(world, subnet_id, skip_under=vnet_id)
    if users:
        name = subnet_id.rsplit("/", 1)[-1]
        raise ArmError(
            400,
            "InUseSubnetCannotBeDeleted",
            f"Subnet {name} is in use by {users[0].id} and cannot be deleted. In order to delete the subnet, "
            "delete all the resources within the subnet. See aka.ms/deletesubnet.",
        )


def put_vnet(req: Request) -> Response:
    w, rid = req.world, req.rid
    existing = w.get(rid.id)
    body = clean(req.body)
    location = require_location(req, body, existing)
    body["location"] = location
    props = body["properties"]
    vnet_id = existing.id if existing else rid.id
    prefixes = _vnet_prefixes(body, vnet_id)
    if not prefixes:
        raise ArmError(
            400, "InvalidRequestFormat", "Cannot parse the request: addressSpace.addressPrefixes is required."
        )
    # A VNet PUT is a full replacement: subnets missing from it are deleted (as real ARM does).
    wanted = [(str(s.get("name")), dict(s.get("properties") or {})) for s in props.pop("subnets", None) or []]
    _check_subnets(vnet_id, prefixes, wanted)
    ensure_free(req, [vnet_id, *[r.id for r in w.children(vnet_id, "subnets")]])
    names = {n.lower() for n, _ in wanted}
    for child in w.children(vnet_id, "subnets"):
        if child.id.rsplit("/", 1)[-1].lower() not in names:
            _in_use_subnet(w, child.id, vnet_id)
    stored_subnets = [(n, _subnet_props(w, f"{vnet_id}/subnets/{n}", p)) for n, p in wanted]
    for child in w.children(vnet_id, "subnets"):
        if child.id.rsplit("/", 1)[-1].lower() not in names:
            w.remove(child.id)
    props.setdefault("enableDdosProtection", False)
    props.setdefault("virtualNetworkPeerings", [])
    rec = w.upsert(vnet_id, VNET, body, extra={"resourceGuid": resource_guid(existing)})
    touched = []
    for name, sprops in stored_subnets:
        sid = f"{vnet_id}/subnets/{name}"
        old = w.get(sid)
        srec = w.upsert(old.id if old else sid, SUBNET, {"properties": sprops})
        touched.append(srec.id)
    return start_put(
        req,
        rec,
        created=existing is None,
        key="virtualNetworks.put",
        location=location,
        locks=[vnet_id, *touched],
        also_updating=touched,
    )


def render_vnet(world: World, rec: Record) -> dict[str, Any]:
    out = render_base(world, rec)
    props = out["properties"]
    subnets = [render_subnet(world, s) for s in world.children(rec.id, "subnets")]
    # Keep ARM's property order: addressSpace, provisioningState, resourceGuid, subnets, peerings.
    ordered = {
        "addressSpace": props.pop("addressSpace", {}),
        "provisioningState": props.pop("provisioningState"),
    }
    if "resourceGuid" in props:
        ordered["resourceGuid"] = props.pop("resourceGuid")
    ordered["subnets"] = subnets
    ordered.update(props)
    out["properties"] = ordered
    return out


def render_subnet(world: World, rec: Record) -> dict[str, Any]:
    out = render_base(world, rec, with_location=False)
    users = [
        u
        for u in referrers(world, rec.id, skip_under=rec.id.rsplit("/subnets/", 1)[0])
        if u.type.lower() != SUBNET.lower()
    ]
    ipcfgs = []
    for u in users:
        for cfg in (u.body.get("properties") or {}).get("ipConfigurations") or []:
            if (ref_id((cfg.get("properties") or {}).get("subnet")) or "").lower() == rec.id.lower():
                ipcfgs.append({"id": f"{u.id}/azureFirewallIpConfigurations/{cfg.get('name')}"})
    if ipcfgs:
        out["properties"]["ipConfigurations"] = ipcfgs
    return out


def put_subnet(req: Request) -> Response:
    w, rid = req.world, req.rid
    vnet = w.get(rid.parent or "")
    if vnet is None:
        raise not_found(rid)
    existing = w.get(rid.id)
    sid = existing.id if existing else f"{vnet.id}/subnets/{rid.name}"
    raw = dict((req.body or {}).get("properties") or {})
    siblings = [
        (r.id.rsplit("/", 1)[-1], r.body["properties"])
        for r in w.children(vnet.id, "subnets")
        if r.id.lower() != sid.lower()
    ]
    _check_subnets(vnet.id, _vnet_prefixes(vnet.body, vnet.id), [*siblings, (str(rid.name), raw)])
    ensure_free(req, [vnet.id, sid])
    props = _subnet_props(w, sid, raw)
    rec = w.upsert(sid, SUBNET, {"properties": props})
    return start_put(
        req,
        rec,
        created=existing is None,
        key="subnets.put",
        location=str(vnet.body.get("location")),
        locks=[vnet.id, sid],
    )


def delete_subnet(req: Request) -> Response:
    rec = req.world.get(req.rid.id)
    if rec is None:
        return Response(204)
    vnet_id = req.rid.parent or ""
    _in_use_subnet(req.world, rec.id, vnet_id)
    return generic_delete(req, key="subnets.delete", locks=[vnet_id, rec.id])


def delete_vnet(req: Request) -> Response:
    rec = req.world.get(req.rid.id)
    if rec is None:
        return Response(204)
    for child in req.world.children(rec.id, "subnets"):
        _in_use_subnet(req.world, child.id, rec.id)
    return generic_delete(
        req,
        key="virtualNetworks.delete",
        locks=[rec.id, *[c.id for c in req.world.children(rec.id, "subnets")]],
    )


# ---- public IP addresses ---------------------------------------------------------------------------
def put_pip(req: Request) -> Response:
    w, rid = req.world, req.rid
    existing = w.get(rid.id)
    body = clean(req.body, drop_props=("ipAddress", "ipConfiguration"))
    location = require_location(req, body, existing)
    body["location"] = location
    props = body["properties"]
    # No sku: Basic, as the 2026-03-01 PublicIpAddressCreateDefaults example answers.
    sku = body.setdefault("sku", {"name": "Basic", "tier": "Regional"})
    sku.setdefault("tier", "Regional")
    # Standard SKU addresses are always static (real RP rejects Dynamic with Standard).
    default_alloc = "Static" if sku.get("name") == "Standard" else "Dynamic"
    props.setdefault("publicIPAllocationMethod", default_alloc)
    if sku.get("name") == "Standard" and props["publicIPAllocationMethod"] != "Static":
        raise ArmError(
            400,
            "StandardSkuPublicIPAddressesMustBeStatic",
            f"Standard sku publicIp {rid.id} must have AllocationMethod set to Static.",
        )
    if existing is not None and (existing.body.get("sku") or {}).get("name") != sku.get("name"):
        # Code unverified (emulator's name; see README-internals "error codes and their sources"). The
        # condition is real for a downgrade: "Sku property is set at creation time and cannot be changed
        # from Standard to Basic on resource update" (Azure/azure-cli#12570); Basic -> Standard is an
        # upgrade Azure allows (Azure/azure-cli#17482), which the emulator does not model.
        raise ArmError(
            400, "CannotChangePublicIpSku", f"Cannot change the sku of public IP address {rid.id}."
        )
    props.setdefault("publicIPAddressVersion", "IPv4")
    props.setdefault("idleTimeoutInMinutes", 4)
    props.setdefault("ipTags", [])
    props.setdefault("ddosSettings", {"protectionMode": "VirtualNetworkInherited"})
    extra = dict(existing.extra) if existing else {}
    extra["resourceGuid"] = resource_guid(existing)
    if "ipAddress" not in extra:
        extra["ipAddress"] = allocate_public_ip(w)
    rec = w.upsert(existing.id if existing else rid.id, PIP, body, extra=extra)
    return start_put(req, rec, created=existing is None, key="publicIPAddresses.put", location=location)


def render_pip(world: World, rec: Record) -> dict[str, Any]:
    out = render_base(world, rec)
    props = out["properties"]
    users = referrers(world, rec.id)
    for u in users:
        for cfg in (u.body.get("properties") or {}).get("ipConfigurations") or []:
            if (ref_id((cfg.get("properties") or {}).get("publicIPAddress")) or "").lower() == rec.id.lower():
                props["ipConfiguration"] = {"id": f"{u.id}/azureFirewallIpConfigurations/{cfg.get('name')}"}
    # Static: the address is allocated at create; Dynamic: only while attached to something.
    if props.get("publicIPAllocationMethod") == "Static" or "ipConfiguration" in props:
        props["ipAddress"] = rec.extra.get("ipAddress")
    return out


def delete_pip(req: Request) -> Response:
    rec = req.world.get(req.rid.id)
    if rec is None:
        return Response(204)
    users = referrers(req.world, rec.id)
    if users:
        raise ArmError(
            400,
            "PublicIPAddressInUse",
            f"Public IP address {rec.id} can not be deleted since it is still allocated to resource "
            f"{users[0].id}. In order to delete the public IP, disassociate/detach the Public IP address "
            "from the resource.",
        )
    return generic_delete(req, key="publicIPAddresses.delete")


# ---- route tables and routes -------------------------------------------------------------------
def _route_props(raw: dict[str, Any], owner: str) -> dict[str, Any]:
    props = clean({"properties": raw})["properties"]
    if not props.get("addressPrefix") or not props.get("nextHopType"):
        raise ArmError(400, "InvalidRequestFormat", f"Route {owner} needs addressPrefix and nextHopType.")
    if props["nextHopType"] == "VirtualAppliance" and not props.get("nextHopIpAddress"):
        # Code unverified (emulator's name); the message is Azure's as quoted in
        # Azure/terraform-azurerm-hubnetworking#48 ("NextHopIpAddress cannot be Null or Empty in route
        # when NextHopType is VirtualAppliance").
        raise ArmError(
            400,
            "InvalidNextHopIpAddress",
            f"NextHopIpAddress cannot be Null or Empty in route {owner} when NextHopType is "
            "VirtualAppliance.",
        )
    props.setdefault("hasBgpOverride", False)
    return props


def put_route_table(req: Request) -> Response:
    w, rid = req.world, req.rid
    existing = w.get(rid.id)
    body = clean(req.body, drop_props=("subnets",))
    location = require_location(req, body, existing)
    body["location"] = location
    props = body["properties"]
    rt_id = existing.id if existing else rid.id
    routes = [
        (str(r.get("name")), _route_props(dict(r.get("properties") or {}), f"{rt_id}/routes/{r.get('name')}"))
        for r in props.pop("routes", None) or []
    ]
    props.setdefault("disableBgpRoutePropagation", False)
    ensure_free(req, [rt_id])
    names = {n.lower() for n, _ in routes}
    for child in w.children(rt_id, "routes"):
        if child.id.rsplit("/", 1)[-1].lower() not in names:
            w.remove(child.id)
    rec = w.upsert(rt_id, RT, body, extra={"resourceGuid": resource_guid(existing)})
    touched = []
    for name, rprops in routes:
        old = w.get(f"{rt_id}/routes/{name}")
        touched.append(
            w.upsert(old.id if old else f"{rt_id}/routes/{name}", ROUTE, {"properties": rprops}).id
        )
    return start_put(
        req,
        rec,
        created=existing is None,
        key="routeTables.put",
        location=location,
        locks=[rt_id, *touched],
        also_updating=touched,
    )


def render_route_table(world: World, rec: Record) -> dict[str, Any]:
    out = render_base(world, rec)
    props = out["properties"]
    props["routes"] = [render_base(world, r, with_location=False) for r in world.children(rec.id, "routes")]
    subnets = [u for u in referrers(world, rec.id) if u.type.lower() == SUBNET.lower()]
    if subnets:
        props["subnets"] = [{"id": s.id} for s in subnets]
    return out


def put_route(req: Request) -> Response:
    w, rid = req.world, req.rid
    rt = w.get(rid.parent or "")
    if rt is None:
        raise not_found(rid)
    existing = w.get(rid.id)
    route_id = existing.id if existing else f"{rt.id}/routes/{rid.name}"
    props = _route_props(dict((req.body or {}).get("properties") or {}), route_id)
    ensure_free(req, [rt.id, route_id])
    rec = w.upsert(route_id, ROUTE, {"properties": props})
    return start_put(
        req,
        rec,
        created=existing is None,
        key="routes.put",
        location=str(rt.body.get("location")),
        locks=[rt.id, route_id],
    )


def delete_route_table(req: Request) -> Response:
    rec = req.world.get(req.rid.id)
    if rec is None:
        return Response(204)
    users = [u for u in referrers(req.world, rec.id) if u.type.lower() == SUBNET.lower()]
    if users:
        raise ArmError(
            400,
            "InUseRouteTableCannotBeDeleted",
            f"Route table {rec.id} is in use and cannot be deleted. In order to delete the route table, "
            f"disassociate it from the subnet(s) {', '.join(u.id for u in users)}.",
        )
    return generic_delete(req, key="routeTables.delete")


def delete_route(req: Request) -> Response:
    rec = req.world.get(req.rid.id)
    if rec is None:
        return Response(204)
    return generic_delete(req, key="routes.delete", locks=[req.rid.parent or "", rec.id])


def _child_render(world: World, rec: Record) -> dict[str, Any]:
    return render_base(world, rec, with_location=False)


def register(reg: Registry) -> None:
    reg.resource_type(VNET, put=put_vnet, delete=delete_vnet, render=render_vnet)
    reg.resource_type(SUBNET, put=put_subnet, delete=delete_subnet, render=render_subnet)
    reg.resource_type(PIP, put=put_pip, delete=delete_pip, render=render_pip)
    reg.resource_type(RT, put=put_route_table, delete=delete_route_table, render=render_route_table)
    reg.resource_type(ROUTE, put=put_route, delete=delete_route, render=_child_render)
    servicetags.register(reg)
    network_firewall.register(reg)

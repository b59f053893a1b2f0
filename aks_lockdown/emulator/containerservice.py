"""Microsoft.ContainerService/managedClusters for the emulator: PUT/GET/DELETE as long operations,
agent pools, listClusterUserCredential, runCommand and its results.

Property names and shapes follow the official examples (azure-specs/containerservice/*.json) and the
recorded session (recordings/test_mgmt_aks.test_managed_clusters.yaml): 201 Creating / 200 Updating
with an Azure-AsyncOperation at .../providers/Microsoft.ContainerService/locations/<loc>/operations/<id>;
DELETE 202 with Location and Azure-AsyncOperation (204 when absent); runCommand 202 with a Location
at .../commandResults/<id>.

What real AKS checks, this checks, with the codes AKS answers (sources in each error's comment):
outbound type userDefinedRouting needs a custom subnet whose route table sends 0.0.0.0/0 to a
VirtualAppliance; no load balancer profile with UDR; service CIDR clear of the VNet; DNS service IP
inside the service CIDR; authorized IP ranges well formed; the cluster identity's rights on the subnet
(and route table for kubenet); and, during the create, whether the nodes can reach what they need
today through the egress path (netsim.bootstrap_check): if not, the operation ends Failed with
OutboundConnFailVMExtensionError and the cluster stays Failed until a PUT after the rules are fixed.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from aks_lockdown.emulator import lro, netsim
from aks_lockdown.emulator.dnat import DnatHook
from aks_lockdown.emulator.framework import ArmError, Registry, Request, Response, not_found
from aks_lockdown.emulator.kube import DEFAULT_MAX_PODS, Kube, KubeEnv, KubeState
from aks_lockdown.emulator.world import Operation, Record, World

NS = "Microsoft.ContainerService"
MC_TYPE = "Microsoft.ContainerService/managedClusters"
POOL_TYPE = "Microsoft.ContainerService/managedClusters/agentPools"
RESULT_TYPE = "Microsoft.ContainerService/managedClusters/commandResults"
RG_TYPE = "Microsoft.Resources/resourceGroups"
PIP_TYPE = "Microsoft.Network/publicIPAddresses"
MSI_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"

DEFAULT_K8S_VERSION = "1.33.5"
NODE_IMAGE = "AKSUbuntu-2204gen2containerd-202611.04.0"
# Roles that let the cluster identity join the subnet / write the route table (built-in ids).
NETWORK_WRITER_ROLES = (
    "4d97b98b-1d4f-4787-a291-c67834d212e7",  # Network Contributor
    "b24988ac-6180-42a0-ab88-20f7382dd24c",  # Contributor
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",  # Owner
)
DNS_PREFIX = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,52}[a-zA-Z0-9]$|^[a-zA-Z0-9]$")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _h(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.lower().encode()).hexdigest()[:n]


def _bad(code: str, message: str, target: str | None = None) -> ArmError:
    return ArmError(400, code, message, target=target)


def _rg_of(resource_id: str) -> str:
    return "/".join(resource_id.split("/")[:5])


def node_rg_id(cluster: Record | dict[str, Any]) -> str:
    body = cluster.body if isinstance(cluster, Record) else cluster
    cid = cluster.id if isinstance(cluster, Record) else cluster["id"]
    sub = cid.split("/")[2]
    return f"/subscriptions/{sub}/resourceGroups/{netsim.props(body).get('nodeResourceGroup')}"


# ---------------------------------------------------------------- validation (synchronous, 400)


def _networks(values: list[str] | None) -> list[ipaddress.IPv4Network]:
    out = []
    for v in values or []:
        try:
            out.append(ipaddress.IPv4Network(v, strict=False))
        except ValueError:
            continue
    return out


def validate_spec(world: World, cluster_id: str, body: dict[str, Any], existing: Record | None) -> None:
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise _bad("InvalidParameter", "The value of parameter properties is invalid.", "properties")
    pools = props.get("agentPoolProfiles") or []
    if existing is None:
        if not pools:
            raise _bad(
                "InvalidParameter",
                "The value of parameter agentPoolProfile is invalid. Please see "
                "https://aka.ms/aks-naming-rules "
                "for more details.",
                "agentPoolProfiles",
            )
        prefix = props.get("dnsPrefix") or props.get("fqdnSubdomain")
        if prefix and not DNS_PREFIX.match(str(prefix)):
            # AKS: "The value of parameter dnsPrefix is invalid" (aka.ms/aks-naming-rules).
            raise _bad(
                "InvalidDnsPrefix",
                f"The DNS prefix '{prefix}' is invalid. It must contain between 1 and 54 characters, "
                "letters, "
                "numbers and hyphens, and start and end with a letter or a number.",
                "dnsPrefix",
            )
    for p in pools:
        if not re.match(r"^[a-z][a-z0-9]{0,11}$", str(p.get("name", ""))):
            raise _bad(
                "InvalidParameter",
                f"The value of parameter agentPoolProfile.name is invalid: '{p.get('name')}'. Agent pool "
                "names must "
                "start with a lowercase letter, have max length of 12, and only have characters a-z0-9.",
                "agentPoolProfile.name",
            )
    net = props.get("networkProfile") or {}
    outbound = str(net.get("outboundType") or "loadBalancer")
    subnet_ids = {str(p["vnetSubnetID"]) for p in pools if p.get("vnetSubnetID")}
    for sid in subnet_ids:
        if netsim.get_subnet(netsim.CoreWorld(world), sid) is None:
            # AKS answers InvalidParameter naming the subnet when it cannot find it.
            raise _bad(
                "InvalidSubnet" if "/subnets/" in sid.lower() else "InvalidParameter",
                f"Subnet '{sid}' is not found or not accessible. Please check that the subnet exists.",
                "agentPoolProfile.vnetSubnetID",
            )
    if outbound.lower() == "userdefinedrouting":
        if net.get("loadBalancerProfile"):
            # azure-hazards.md; bicep-registry-modules #5727, Azure/AKS #1875.
            raise _bad(
                "InvalidUserDefinedRoutingWithLoadBalancerProfile",
                "UserDefinedRouting and load balancer profile are mutually exclusive. Please refer to "
                "http://aka.ms/aks/outboundtype for more details",
                "networkProfile.loadBalancerProfile",
            )
        if not subnet_ids:
            raise _bad(
                "InvalidParameter",
                "The value of parameter agentPoolProfile.vnetSubnetID is invalid: outboundType "
                "userDefinedRouting "
                "requires a custom subnet with a route table (see http://aka.ms/aks/outboundtype).",
                "agentPoolProfile.vnetSubnetID",
            )
        for sid in sorted(subnet_ids):
            _check_udr_subnet(world, sid)
    _check_cidrs(world, props, net, subnet_ids)
    _check_access_profile(props)


def _check_udr_subnet(world: World, subnet_id: str) -> None:
    cw = netsim.CoreWorld(world)
    subnet = netsim.get_subnet(cw, subnet_id)
    rt_id = (netsim.props(subnet).get("routeTable") or {}).get("id")
    if not rt_id:
        # Code and message start as quoted in real AKS create failures (Terraform output, e.g.
        # `Code="ExistingRouteTableNotAssociatedWithSubnet" Message="An existing route table has not been
        # associated with subnet /subscriptions/...`), see README-internals "error codes and their sources".
        raise _bad(
            "ExistingRouteTableNotAssociatedWithSubnet",
            f"An existing route table has not been associated with subnet {subnet_id}. Please update the "
            "route "
            "table association. Outbound type userDefinedRouting needs the subnet's route table to send "
            "0.0.0.0/0 "
            "to your egress device (http://aka.ms/aks/outboundtype).",
            "agentPoolProfile.vnetSubnetID",
        )
    default = None
    for r in netsim.route_table_routes(cw, rt_id):
        if str(netsim.props(r).get("addressPrefix")) == "0.0.0.0/0":
            default = netsim.props(r)
    if default is None:
        # Code and wording as reported from AKS: MicrosoftDocs/azure-docs #108240.
        raise _bad(
            "RouteTableMissingDefaultRouteError", f"Default route 0.0.0.0/0 missing from route table {rt_id}"
        )
    hop = str(default.get("nextHopType") or "")
    if hop.lower() not in ("virtualappliance", "virtualnetworkgateway"):
        # Wording as reported from AKS: terraform-provider-azurerm #8609.
        raise _bad(
            "RouteTableInvalidNextHop",
            f"Default route 0.0.0.0/0 has a next hop of {hop} but only next hops of VirtualAppliance or "
            "VirtualNetworkGateway are allowed. Please see http://aka.ms/aks/outboundtype for more details",
        )


def _check_cidrs(world: World, props: dict[str, Any], net: dict[str, Any], subnet_ids: set[str]) -> None:
    service_cidr = net.get("serviceCidr")
    dns_ip = net.get("dnsServiceIP")
    if service_cidr:
        try:
            svc = ipaddress.IPv4Network(service_cidr, strict=False)
        except ValueError:
            raise _bad(
                "InvalidCIDRNotation",
                f"The provided service CIDR '{service_cidr}' is not in valid CIDR format.",
                "networkProfile.serviceCidr",
            ) from None
        for sid in sorted(subnet_ids):
            vnet = world.view(netsim.parent_id(sid))
            for vp in netsim.vnet_prefixes(vnet):
                if svc.overlaps(vp):
                    subs = [
                        s
                        for s in netsim.props(vnet).get("subnets") or []
                        if any(svc.overlaps(n) for n in netsim.subnet_prefixes(s))
                    ]
                    what = netsim.props(subs[0]).get("addressPrefix") if subs else str(vp)
                    # Code, message and target as in Azure/azure-cli#20810 and Azure/AKS#3551.
                    raise _bad(
                        "ServiceCidrOverlapExistingSubnetsCidr",
                        f"The specified service CIDR {service_cidr} is conflicted with an existing "
                        f"subnet CIDR {what}",
                        "networkProfile.serviceCIDR",
                    )
        if dns_ip:
            _check_dns_service_ip(dns_ip, svc, service_cidr)
    elif dns_ip:
        # Unverified code: no public answer for dnsServiceIP without serviceCidr was found.
        raise _bad(
            "InvalidDNSServiceIP",
            "dnsServiceIP is set but serviceCidr is not: both or neither must be given.",
            "networkProfile.dnsServiceIP",
        )


def _check_dns_service_ip(dns_ip: str, svc: ipaddress.IPv4Network, service_cidr: str) -> None:
    """AKS's own codes (see README-internals "error codes and their sources"): DnsServiceIpParseError,
    DnsServiceIpOutOfServiceCidr (code, message and target as in the AKS troubleshooting article
    "Troubleshoot the DnsServiceIpOutOfServiceCidr error code"), DnsServiceIpConflicting (the API
    server's first address), DnsBroadcastAddressConflicting."""
    target = "networkProfile.dnsServiceIP"
    try:
        ip = ipaddress.IPv4Address(dns_ip)
    except ValueError:
        raise _bad(
            "DnsServiceIpParseError", f"The DNS service IP {dns_ip} is not a valid IP address.", target
        ) from None
    if ip not in svc:
        raise _bad(
            "DnsServiceIpOutOfServiceCidr",
            f"The DNS service IP {dns_ip} is out of the range defined by service CIDR {service_cidr}.",
            target,
        )
    if ip == svc.broadcast_address:
        raise _bad(
            "DnsBroadcastAddressConflicting",
            f"The DNS service IP {dns_ip} conflicts with the broadcast address of service CIDR "
            f"{service_cidr}.",
            target,
        )
    if ip in (svc.network_address, svc.network_address + 1):
        # .1 is the kubernetes API service's address; the network address (.0) is refused too
        # (Azure/AKS#2579, fixed), under which code is not public: DnsServiceIpConflicting assumed.
        raise _bad(
            "DnsServiceIpConflicting",
            f"The DNS service IP {dns_ip} conflicts with the kubernetes API server IP "
            f"{svc.network_address + 1} of service CIDR {service_cidr}.",
            target,
        )


def _check_access_profile(props: dict[str, Any]) -> None:
    ap = props.get("apiServerAccessProfile") or {}
    ranges = ap.get("authorizedIPRanges") or []
    for r in ranges:
        try:
            ipaddress.IPv4Network(str(r), strict=False)
        except ValueError:
            raise _bad(
                "InvalidParameter",
                f"The value of parameter apiServerAccessProfile.authorizedIPRanges is invalid: '{r}' is "
                "not a valid "
                "IPv4 address or CIDR.",
                "apiServerAccessProfile.authorizedIPRanges",
            ) from None
    if len(ranges) > 200:
        raise _bad(
            "InvalidParameter",
            "The value of parameter apiServerAccessProfile.authorizedIPRanges is invalid: at most 200 "
            "ranges are "
            "allowed.",
            "apiServerAccessProfile.authorizedIPRanges",
        )
    if ap.get("enablePrivateCluster") and ranges and not ap.get("enableVnetIntegration"):
        # AKS docs (api-server-authorized-ip-ranges.md): authorized IP ranges apply to the public API
        # server endpoint; a private cluster has none (unless API server VNet integration is used).
        raise _bad(
            "InvalidParameter",
            "The value of parameter apiServerAccessProfile.authorizedIPRanges is invalid: authorized IP "
            "ranges "
            "are not supported on a private cluster.",
            "apiServerAccessProfile.authorizedIPRanges",
        )
    if ranges and any(str(r).strip() in ("0.0.0.0/0",) for r in ranges):
        raise _bad(
            "InvalidParameter",
            "The value of parameter apiServerAccessProfile.authorizedIPRanges is invalid: 0.0.0.0/0 "
            "opens the API "
            "server to every address; leave the list empty instead.",
            "apiServerAccessProfile.authorizedIPRanges",
        )


# ---------------------------------------------------------------- building the stored body


def _network_plugin(net: dict[str, Any]) -> str:
    plugin = str(net.get("networkPlugin") or "kubenet").lower()
    if plugin == "azure" and str(net.get("networkPluginMode") or "").lower() == "overlay":
        return "overlay"
    return plugin


def build_body(req: Request, body: dict[str, Any], existing: Record | None) -> dict[str, Any]:
    rid = req.rid
    old = copy.deepcopy(existing.body) if existing else {}
    old_props = old.get("properties") or {}
    props = copy.deepcopy(body.get("properties") or {})
    location = str(body.get("location") or old.get("location") or "").replace(" ", "").lower()
    name = rid.name or "cluster"
    rg = rid.resource_group or ""
    sub = rid.subscription or ""
    version = props.get("kubernetesVersion") or old_props.get("kubernetesVersion") or DEFAULT_K8S_VERSION
    if re.match(r"^\d+\.\d+$", str(version)):
        version = f"{version}.5"  # AKS resolves a minor version to its latest patch
    prefix = props.get("dnsPrefix") or old_props.get("dnsPrefix") or f"{name[:10]}-{rg[:16]}-{sub[:6]}"
    unique = (
        old_props.get("fqdn", "").split(".", 1)[0].rsplit("-", 1)[-1] if old_props.get("fqdn") else _h(rid.id)
    )
    props["dnsPrefix"] = prefix
    props["kubernetesVersion"] = version
    props["currentKubernetesVersion"] = version
    props["fqdn"] = f"{prefix}-{unique}.hcp.{location}.azmk8s.io"
    props["azurePortalFQDN"] = f"{prefix}-{unique}.portal.hcp.{location}.azmk8s.io"
    ap = props.get("apiServerAccessProfile") or {}
    if ap.get("enablePrivateCluster"):
        props["privateFQDN"] = (
            f"{prefix}-{unique}.{_h(rid.id + 'private', 32)}.privatelink.{location}.azmk8s.io"
        )
        ap.setdefault("privateDNSZone", "system")
        ap.setdefault("enablePrivateClusterPublicFQDN", True)
    props["nodeResourceGroup"] = (
        old_props.get("nodeResourceGroup") or props.get("nodeResourceGroup") or f"MC_{rg}_{name}_{location}"
    )
    props["powerState"] = {"code": "Running"}
    props.setdefault("enableRBAC", True)
    props.setdefault("supportPlan", "KubernetesOfficial")
    props["maxAgentPools"] = 100
    net = props.setdefault("networkProfile", {})
    plugin = _network_plugin(net)
    net.setdefault("networkPlugin", "kubenet")
    net.setdefault("outboundType", "loadBalancer")
    net.setdefault("loadBalancerSku", "standard")
    net.setdefault("serviceCidr", "10.0.0.0/16")
    net.setdefault("dnsServiceIP", "10.0.0.10")
    net["serviceCidrs"] = [net["serviceCidr"]]
    net.setdefault("ipFamilies", ["IPv4"])
    if plugin in ("kubenet", "overlay"):
        net.setdefault("podCidr", "10.244.0.0/16")
        net["podCidrs"] = [net["podCidr"]]
    if net["outboundType"] == "loadBalancer":
        lbp = net.setdefault("loadBalancerProfile", {})
        lbp.setdefault("managedOutboundIPs", {"count": 1})
        lbp.setdefault("allocatedOutboundPorts", 0)
        lbp.setdefault("idleTimeoutInMinutes", 30)
        old_eff = ((old_props.get("networkProfile") or {}).get("loadBalancerProfile") or {}).get(
            "effectiveOutboundIPs"
        )
        if old_eff:
            lbp["effectiveOutboundIPs"] = old_eff
    pools = []
    old_pools = {p.get("name"): p for p in old_props.get("agentPoolProfiles") or []}
    for p in props.get("agentPoolProfiles") or []:
        pools.append(_pool_defaults(p, old_pools.get(p.get("name")), version, plugin))
    props["agentPoolProfiles"] = pools
    # The secret is write-only: AKS never returns it (example responses carry clientId only).
    sp = props.get("servicePrincipalProfile")
    identity = body.get("identity") or old.get("identity")
    if sp:
        props["servicePrincipalProfile"] = {"clientId": sp.get("clientId")}
    elif identity:
        props["servicePrincipalProfile"] = {"clientId": "msi"}
    props.pop("provisioningState", None)
    # Write-only secrets are never returned (the examples' responses drop them).
    if isinstance(props.get("windowsProfile"), dict):
        props["windowsProfile"].pop("adminPassword", None)
    out: dict[str, Any] = {"location": location, "properties": props}
    for k in ("tags", "sku", "kind", "extendedLocation"):
        if k in body:
            out[k] = body[k]
        elif k in old:
            out[k] = old[k]
    out.setdefault("sku", {"name": "Base", "tier": "Free"})
    if identity:
        out["identity"] = _identity(req.world, identity, old.get("identity"), rid.id)
        if "identityProfile" in old_props:
            props["identityProfile"] = old_props["identityProfile"]
        else:
            kubelet = f"{name}-agentpool"
            props["identityProfile"] = {
                "kubeletidentity": {
                    "resourceId": f"/subscriptions/{sub}/resourcegroups/{props['nodeResourceGroup']}"
                    f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{kubelet}",
                    "clientId": str(uuid.UUID(_h(rid.id + "kubelet-client", 32))),
                    "objectId": str(uuid.UUID(_h(rid.id + "kubelet-object", 32))),
                }
            }
    return out


def _pool_defaults(
    p: dict[str, Any], old: dict[str, Any] | None, version: str, plugin: str
) -> dict[str, Any]:
    out = copy.deepcopy(p)
    out.setdefault("type", "VirtualMachineScaleSets")
    out.setdefault("count", 3)
    out.setdefault("vmSize", "Standard_D2s_v5")
    out.setdefault("osDiskSizeGB", 128)
    out.setdefault("osDiskType", "Managed")
    out.setdefault("kubeletDiskType", "OS")
    out.setdefault("maxPods", DEFAULT_MAX_PODS.get(plugin, 110))
    out.setdefault("osType", "Linux")
    out.setdefault("osSKU", "Ubuntu")
    out.setdefault("mode", "System")
    out.setdefault("enableNodePublicIP", False)
    out.setdefault("enableAutoScaling", False)
    out.setdefault("upgradeSettings", {"maxSurge": "10%"})  # AKS's default surge for new pools
    out["orchestratorVersion"] = out.get("orchestratorVersion") or version
    out["currentOrchestratorVersion"] = out["orchestratorVersion"]
    out["nodeImageVersion"] = (old or {}).get("nodeImageVersion") or NODE_IMAGE
    out["powerState"] = {"code": "Running"}
    out.pop("provisioningState", None)
    return out


def _identity(
    world: World, identity: dict[str, Any], old: dict[str, Any] | None, cluster_id: str
) -> dict[str, Any]:
    kind = str(identity.get("type") or "")
    out: dict[str, Any] = {"type": kind}
    if kind.lower() == "userassigned":
        uais = {}
        for uid in identity.get("userAssignedIdentities") or {}:
            rec = world.get(uid)
            if rec is None:
                # AKS: the identity must exist (it reads clientId/principalId from it).
                raise _bad(
                    "InvalidParameter",
                    "The value of parameter identity.userAssignedIdentities is invalid: the user "
                    "assigned identity "
                    f"'{uid}' was not found.",
                    "identity.userAssignedIdentities",
                )
            p = rec.body.get("properties") or {}
            uais[rec.id] = {"clientId": p.get("clientId"), "principalId": p.get("principalId")}
        out["userAssignedIdentities"] = uais
    elif kind.lower() == "systemassigned":
        out["principalId"] = (old or {}).get("principalId") or str(uuid.UUID(_h(cluster_id + "system", 32)))
        out["tenantId"] = (
            (old or {}).get("tenantId")
            or world.meta.get("tenant_id")
            or "72f988bf-0000-4000-8000-00000000e700"
        )
    return out


# ---------------------------------------------------------------- render


def render_cluster(world: World, rec: Record) -> dict[str, Any]:
    body = copy.deepcopy(rec.body)
    state = world.provisioning_state(rec)
    out: dict[str, Any] = {
        "id": rec.id,
        "location": body.pop("location", None),
        "name": rec.id.rsplit("/", 1)[-1],
    }
    out["type"] = MC_TYPE
    out.update(body)
    out["eTag"] = rec.etag.split('"')[1] if '"' in rec.etag else rec.etag
    props = out.setdefault("properties", {})
    props["provisioningState"] = state
    for p in props.get("agentPoolProfiles") or []:
        p["provisioningState"] = state
        p["eTag"] = _h(rec.etag + str(p.get("name")), 8)
    return out


# ---------------------------------------------------------------- handlers


def _conflict(req: Request, rec: Record) -> None:
    op = req.world.ops.busy(rec.id, req.now)
    if op is not None:
        # AKS answers 409 OperationNotAllowed while another operation runs on the cluster.
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"Operation is not allowed because there's an in progress {op.kind.split('.')[-1]} managed "
            "cluster "
            f"operation on the managed cluster '{rec.id.rsplit('/', 1)[-1]}' started at "
            f"{_iso(op.start)}. Please "
            "wait for it to finish before retrying.",
        )


def put_cluster(req: Request) -> Response:
    body = req.body if isinstance(req.body, dict) else None
    if body is None:
        raise _bad("InvalidRequestContent", "The request content was invalid and could not be deserialized.")
    existing = req.world.get(req.rid.id)
    if existing is None and not body.get("location"):
        raise _bad("LocationRequired", "The location property is required for this definition.")
    if existing is not None:
        _conflict(req, existing)
        loc = str(body.get("location") or existing.body.get("location")).replace(" ", "").lower()
        if loc != existing.body.get("location"):
            # ARM's own answer to a PUT of an existing name in another location.
            raise ArmError(
                409,
                "InvalidResourceLocation",
                f"The resource '{req.rid.name}' already exists in location "
                f"'{existing.body.get('location')}' in "
                f"resource group '{req.rid.resource_group}'. A resource with the same name cannot be "
                "created in "
                f"location '{loc}'. Please select a new resource name.",
            )
        old_p = existing.body.get("properties") or {}
        new_p = body.get("properties") or {}
        for prop in ("dnsPrefix", "nodeResourceGroup", "fqdnSubdomain"):
            if new_p.get(prop) and old_p.get(prop) and str(new_p[prop]).lower() != str(old_p[prop]).lower():
                # AKS refuses changes to create-only properties with this code and wording.
                raise _bad(
                    "PropertyChangeNotAllowed",
                    f"Changing property '{prop}' is not allowed.",
                    f"properties.{prop}",
                )
    validate_spec(req.world, req.rid.id, body, existing)
    stored = build_body(req, body, existing)
    was_failed = existing is not None and existing.failed
    old_count = (
        sum(
            int(p.get("count", 0))
            for p in (existing.body.get("properties") or {}).get("agentPoolProfiles") or []
        )
        if existing
        else 0
    )
    new_count = sum(int(p.get("count", 0)) for p in stored["properties"]["agentPoolProfiles"])
    extra = existing.extra if existing is not None else {}
    rec = req.world.upsert(existing.id if existing else req.rid.id, MC_TYPE, stored, extra=extra)
    # AKS makes the node resource group (and managed outbound IPs) as the create starts: the 201
    # already lists effectiveOutboundIPs (ManagedClustersCreate_PrivateClusterFQDNSubdomain.json).
    _ensure_node_rg(req.world, rec)
    creating = existing is None
    op = req.world.ops.start(
        resource_id=rec.id,
        kind="managedClusters.create" if creating else "managedClusters.update",
        duration=req.config.duration("managedClusters.create" if creating else "managedClusters.update"),
        in_flight="Creating" if creating else "Updating",
        on_complete="aks.reconcile",
        namespace=NS,
        location=stored["location"],
        locks=[rec.id],
        # New nodes run the bootstrap (CSE) again: a create, a re-PUT of a Failed cluster, a scale-up.
        data={"bootstrap": creating or was_failed or new_count > old_count, "cloud": req.config.cloud},
    )
    resp = lro.put_response(req, rec, op, created=creating)
    # The PUT's own answer is always the accepted, non-terminal state (201 Creating / 200 Updating in
    # the examples and the recording), even when the fast profile finishes the work at once.
    in_flight = "Creating" if creating else "Updating"
    resp.body["properties"]["provisioningState"] = in_flight
    for p in resp.body["properties"].get("agentPoolProfiles") or []:
        p["provisioningState"] = in_flight
    return resp


def delete_cluster(req: Request) -> Response:
    rec = req.world.get(req.rid.id)
    if rec is None:
        return Response(204)
    op = req.world.ops.busy(rec.id, req.now)
    if op is None or not op.is_delete:
        # A delete may start while a create/update runs: AKS cancels it (Canceled) and deletes.
        if op is not None:
            op.settled = True
            op.error = {
                "code": "Canceled",
                "message": "The operation was canceled by a delete of the managed cluster.",
                "details": [],
            }
        op = req.world.ops.start(
            resource_id=rec.id,
            kind="managedClusters.delete",
            duration=req.config.duration("managedClusters.delete"),
            namespace=NS,
            location=str(rec.body.get("location")),
            locks=[rec.id],
            is_delete=True,
            on_complete="aks.delete",
        )
    headers = lro.lro_headers(req, op)
    # AKS's Location is .../operationresults/<id> (lower case: ManagedClustersDelete.json, the recording).
    headers["Location"] = lro.result_url(req, op, "operationresults")
    return Response(202, None, headers)


# ---------------------------------------------------------------- completions


def _principals(world: World, rec: Record) -> tuple[list[str], str]:
    """The principal ids that act for the cluster on the network, and how to name them."""
    body = rec.body
    ident = body.get("identity") or {}
    if str(ident.get("type", "")).lower() == "userassigned":
        ids = [
            v.get("principalId")
            for v in (ident.get("userAssignedIdentities") or {}).values()
            if v.get("principalId")
        ]
        return ids, ids[0] if ids else ""
    if str(ident.get("type", "")).lower() == "systemassigned":
        return [], ""  # created by AKS with the cluster: AKS grants it what it needs on the subnet itself
    client_id = str((netsim.props(body).get("servicePrincipalProfile") or {}).get("clientId") or "")
    if not client_id or client_id == "msi":
        return [], ""
    # The tool assigns roles to the SP's object id, which the emulator cannot map from its client id
    # (no directory): accept the client id itself or any principal that is not a managed identity.
    msi_principals = {str(k).lower() for k in (world.meta.get("principals") or {})}
    others = set()
    from aks_lockdown.emulator import authorization

    for ra in world.list(authorization.RA_TYPE):
        pid = str(ra.body.get("properties", {}).get("principalId", ""))
        if pid.lower() not in msi_principals:
            others.add(pid)
    return [client_id, *sorted(others)], client_id


def check_identity_rights(world: World, rec: Record) -> None:
    from aks_lockdown.emulator import authorization

    principals, shown = _principals(world, rec)
    if not shown:
        return
    props = netsim.props(rec.body)
    subnets = sorted(
        {str(p["vnetSubnetID"]) for p in props.get("agentPoolProfiles") or [] if p.get("vnetSubnetID")}
    )
    if not subnets:
        return

    def ok(scope: str) -> bool:
        return any(authorization.has_role_on(world, pid, scope, NETWORK_WRITER_ROLES) for pid in principals)

    pool = (props.get("agentPoolProfiles") or [{}])[0].get("name", "nodepool1")
    vmss = (
        f"{node_rg_id(rec)}/providers/Microsoft.Compute/virtualMachineScaleSets/"
        f"aks-{pool}-{int(_h(rec.id), 16) % 10**8:08d}-vmss"
    )
    for sid in subnets:
        if not ok(sid):
            # The text AKS surfaces when the cluster identity cannot join the subnet while creating the
            # node VMSS (aad-pod-identity #511/#550 quote it verbatim; Azure/AKS #614).
            raise ArmError(
                403,
                "LinkedAuthorizationFailed",
                f"The client '{shown}' with object id '{shown}' has permission to perform action "
                f"'Microsoft.Compute/virtualMachineScaleSets/write' on scope '{vmss}'; however, it does "
                "not have "
                "permission to perform action 'Microsoft.Network/virtualNetworks/subnets/join/action' "
                "on the linked "
                f"scope(s) '{sid}' or the linked scope(s) are invalid.",
            )
        if _network_plugin(props.get("networkProfile") or {}) == "kubenet":
            rt = (netsim.props(netsim.get_subnet(netsim.CoreWorld(world), sid)).get("routeTable") or {}).get(
                "id"
            )
            if rt and not ok(rt):
                # kubenet writes pod routes into the route table (seed: "you'll need to give the AKS service
                # principal or managed identity permissions to the pre-created route table").
                raise ArmError(
                    403,
                    "AuthorizationFailed",
                    f"The client '{shown}' with object id '{shown}' does not have authorization to "
                    "perform action "
                    f"'Microsoft.Network/routeTables/write' over scope '{rt}' or the scope is invalid. "
                    "If access was "
                    "recently granted, please refresh your credentials.",
                )


def outbound_failure(blocked: list[netsim.BlockedEndpoint]) -> ArmError:
    names = ", ".join(b.endpoint for b in blocked)
    first = blocked[0]
    return ArmError(
        400,
        "OutboundConnFailVMExtensionError",
        "Unable to establish outbound connection from agents, please see "
        "https://learn.microsoft.com/en-us/troubleshoot/azure/azure-kubernetes/"
        "error-code-outboundconnfailvmextensionerror "
        "and https://aka.ms/aks-required-ports-and-addresses for more information. Details: VM has "
        "reported a failure "
        "when processing extension 'vmssCSE' (publisher 'Microsoft.Azure.Extensions' and type "
        "'CustomScript'). "
        'Error message: "Enable failed: failed to execute command: command terminated with exit status=50". '
        f"The nodes' outbound connectivity check failed; blocked endpoint: {first.endpoint} ({first.reason})"
        + (f"; all blocked required endpoints: {names}" if len(blocked) > 1 else "")
        + ". (aks_lockdown emulator: required endpoints are the egress catalog's current rows.)",
    )


def finish_reconcile(world: World, op: Operation) -> None:
    rec = world.get(op.resource_id)
    if rec is None:
        return
    check_identity_rights(world, rec)
    if op.data.get("bootstrap"):
        blocked = netsim.bootstrap_check(
            world, world.render(rec), cloud=str(op.data.get("cloud") or "AzureCloud")
        )
        if blocked:
            raise outbound_failure(blocked)
    _ensure_node_rg(world, rec)
    state = KubeState.from_json(rec.extra.get("kube"))
    state.ensure_system(_env(world, rec, str(op.data.get("cloud") or "AzureCloud")))
    rec.extra["kube"] = state.to_json()
    world.touch()


def _ensure_node_rg(world: World, rec: Record) -> None:
    rg = node_rg_id(rec)
    if world.get(rg) is None:
        world.upsert(
            rg,
            RG_TYPE,
            {
                "location": rec.body.get("location"),
                "managedBy": rec.id,
                "tags": {
                    "aks-managed-cluster-name": rec.id.rsplit("/", 1)[-1],
                    "aks-managed-cluster-rg": rec.id.split("/")[4],
                },
            },
        )
    net = netsim.props(rec.body).get("networkProfile") or {}
    if net.get("outboundType") == "loadBalancer":
        lbp = net.setdefault("loadBalancerProfile", {})
        if not lbp.get("effectiveOutboundIPs"):
            ips = []
            for i in range(int((lbp.get("managedOutboundIPs") or {}).get("count", 1))):
                name = str(uuid.UUID(_h(f"{rec.id}/outbound/{i}", 32)))
                ips.append(
                    {"id": _new_public_ip(world, rec, name, {"aks-managed-type": "managedOutboundIPs"})}
                )
            lbp["effectiveOutboundIPs"] = ips


def finish_delete(world: World, op: Operation) -> None:
    rec = world.get(op.resource_id)
    if rec is not None:
        rg = node_rg_id(rec)
        world.remove(rg)  # the node resource group and everything in it (LB IPs, ...)
    world.remove(op.resource_id)


# ---------------------------------------------------------------- public IPs in the node RG


def _allocate_address(world: World) -> str:
    try:
        from aks_lockdown.emulator.network import allocate_public_ip
    except ImportError:
        allocate_public_ip = None
    if allocate_public_ip is not None:
        return str(allocate_public_ip(world))
    # Fallback while the core's allocator is absent: a counter in 127.200.0.0/16.
    n = int(world.meta.get("aks_pip_counter", 0)) + 1
    world.meta["aks_pip_counter"] = n
    return f"127.200.{n // 250}.{n % 250 + 1}"


def _new_public_ip(world: World, rec: Record, name: str, tags: dict[str, str]) -> str:
    """A Standard static public IP in the node resource group, as the cloud provider makes for a
    public LoadBalancer service or the managed outbound IPs. The address lives where the core's
    network provider keeps it (Record.extra["ipAddress"]), so GETs render it."""
    rg = node_rg_id(rec)
    if world.get(rg) is None:
        world.upsert(rg, RG_TYPE, {"location": rec.body.get("location"), "managedBy": rec.id})
    pid = f"{rg}/providers/Microsoft.Network/publicIPAddresses/{name}"
    if world.get(pid) is None:
        world.upsert(
            pid,
            PIP_TYPE,
            {
                "location": rec.body.get("location"),
                "sku": {"name": "Standard", "tier": "Regional"},
                "tags": tags,
                "properties": {
                    "publicIPAllocationMethod": "Static",
                    "publicIPAddressVersion": "IPv4",
                    "idleTimeoutInMinutes": 4,
                    "ipTags": [],
                },
            },
            extra={"ipAddress": _allocate_address(world), "resourceGuid": str(uuid.uuid4())},
        )
    return pid


def _public_ip_address(world: World, pid: str) -> str:
    rec = world.get(pid)
    return str((rec.extra.get("ipAddress") if rec else None) or "")


def _env(world: World, rec: Record, cloud: str = "AzureCloud") -> KubeEnv:
    props = netsim.props(rec.body)
    pools = props.get("agentPoolProfiles") or [{}]
    net = props.get("networkProfile") or {}
    subnet_id = netsim.node_subnet_id(rec.body)
    cw = netsim.CoreWorld(world)
    cidr = None
    if subnet_id:
        prefixes = netsim.subnet_prefixes(netsim.get_subnet(cw, subnet_id))
        cidr = str(prefixes[0]) if prefixes else None
    taken: set[str] = set()
    for other in world.list(MC_TYPE):
        if (
            other.id.lower() != rec.id.lower()
            and subnet_id
            and (netsim.node_subnet_id(other.body) or "").lower() == subnet_id.lower()
        ):
            taken |= KubeState.from_json(other.extra.get("kube")).lb_addresses()

    def alloc(name: str) -> str:
        pid = _new_public_ip(
            world, rec, name, {"k8s-azure-cluster-name": "kubernetes", "k8s-azure-service": name}
        )
        return _public_ip_address(world, pid)

    def subnet_cidr(name: str) -> str | None:
        if not subnet_id:
            return None
        prefixes = netsim.subnet_prefixes(
            netsim.get_subnet(cw, f"{netsim.parent_id(subnet_id)}/subnets/{name}")
        )
        return str(prefixes[0]) if prefixes else None

    def release(name: str) -> None:
        world.remove(f"{node_rg_id(rec)}/providers/Microsoft.Network/publicIPAddresses/{name}")

    return KubeEnv(
        cluster_name=rec.id.rsplit("/", 1)[-1],
        node_subnet_id=subnet_id,
        node_subnet_cidr=cidr,
        service_cidr=str(net.get("serviceCidr") or "10.0.0.0/16"),
        dns_service_ip=str(net.get("dnsServiceIP") or "10.0.0.10"),
        node_count=sum(int(p.get("count", 0)) for p in pools),
        max_pods=int(pools[0].get("maxPods") or 30),
        network_plugin=_network_plugin(net),
        kubernetes_version=str(props.get("kubernetesVersion") or DEFAULT_K8S_VERSION),
        node_pool_name=str(pools[0].get("name") or "nodepool1"),
        taken_ips=taken,
        netsim=netsim.NetSim(world, cloud=cloud),
        allocate_public_ip=alloc,
        release_public_ip=release,
        subnet_cidr=subnet_cidr,
        now=lambda: datetime.fromtimestamp(world.clock(), UTC),
    )


# ---------------------------------------------------------------- credentials


def _kubeconfig(rec: Record, user: str) -> str:
    props = netsim.props(rec.body)
    server = props.get("privateFQDN") or props.get("fqdn")
    name = rec.id.rsplit("/", 1)[-1]
    rg = rec.id.split("/")[4]
    # A placeholder token: the emulator has no API server to authenticate to, and must never hand
    # out anything that looks like a real secret.
    token = "aks-lockdown-emulator-placeholder-" + _h(rec.id + user, 24)
    ca = base64.b64encode(b"aks-lockdown emulator: no cluster CA (placeholder)").decode()
    return (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {ca}\n"
        f"    server: https://{server}:443\n"
        f"  name: {name}\n"
        "contexts:\n"
        "- context:\n"
        f"    cluster: {name}\n"
        f"    user: {user}_{rg}_{name}\n"
        f"  name: {name}\n"
        f"current-context: {name}\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        f"- name: {user}_{rg}_{name}\n"
        "  user:\n"
        f"    token: {token}\n"
    )


def _credentials(kind: str, user: str) -> Any:
    def handler(req: Request) -> Response:
        rec = req.world.get(req.rid.parent_id_for_action())
        if rec is None:
            raise not_found(req.rid)
        value = base64.b64encode(_kubeconfig(rec, user).encode()).decode()
        return Response(200, {"kubeconfigs": [{"name": kind, "value": value}]})

    return handler


# ---------------------------------------------------------------- runCommand


def run_command(req: Request) -> Response:
    cluster_id = req.rid.parent_id_for_action()
    rec = req.world.get(cluster_id)
    if rec is None:
        raise not_found(req.rid)
    body = req.body if isinstance(req.body, dict) else {}
    command = str(body.get("command") or "").strip()
    if not command:
        raise _bad(
            "InvalidParameter", "The value of parameter command is invalid: it must not be empty.", "command"
        )
    busy = req.world.ops.busy(rec.id, req.now)
    if busy is not None and busy.kind == "managedClusters.create":
        raise ArmError(
            409,
            "OperationNotAllowed",
            "Operation is not allowed because the managed cluster is being created. Please wait for it "
            "to finish.",
        )
    cmd_id = uuid.uuid4().hex
    result_id = f"{rec.id}/commandResults/{cmd_id}"
    # The operation sits on the command result, not the cluster: a command does not put the
    # cluster into Updating, nor lock it.
    op = req.world.ops.start(
        resource_id=result_id,
        kind="runCommand",
        duration=req.config.duration("runCommand"),
        in_flight="Running",
        on_complete="aks.runCommand",
        namespace=NS,
        location=str(rec.body.get("location")),
        locks=[],
        data={
            "cluster": rec.id,
            "command": command,
            "context": body.get("context") or "",
            "cloud": req.config.cloud,
        },
        op_id=cmd_id,
    )
    location = f"{req.base_url}{result_id}?api-version={req.api_version}"
    return lro.action_response(req, op, location=location)


def finish_run_command(world: World, op: Operation) -> None:
    rec = world.get(str(op.data.get("cluster")))
    started = _iso(op.start)
    if rec is None:
        op.result = _result(op.id, 1, "error: the managed cluster no longer exists\n", started, _iso(op.end))
        return
    state = KubeState.from_json(rec.extra.get("kube"))
    out = Kube(state, _env(world, rec, str(op.data.get("cloud") or "AzureCloud"))).run(
        str(op.data.get("command")), str(op.data.get("context") or "")
    )
    rec.extra["kube"] = state.to_json()
    op.data.pop("context", None)  # the zip is not needed any more; keep world.json small
    op.result = _result(op.id, out.exit_code, out.logs, started, _iso(op.end))
    world.touch()


def _result(cmd_id: str, code: int, logs: str, started: str, finished: str) -> dict[str, Any]:
    # Shape and casing as RunCommandResultSucceed.json ("provisioningState": "succeeded").
    return {
        "id": cmd_id,
        "properties": {
            "provisioningState": "succeeded",
            "exitCode": code,
            "startedAt": started,
            "finishedAt": finished,
            "logs": logs,
        },
    }


def get_command_result(req: Request) -> Response:
    op = req.world.ops.get(req.rid.name or "")
    if (
        op is None
        or op.kind != "runCommand"
        or str(op.data.get("cluster", "")).lower() != (req.rid.parent or "").lower()
    ):
        raise not_found(req.rid)
    if op.status(req.now) == "InProgress":
        return Response(
            202,
            None,
            {
                "Location": f"{req.base_url}{req.path}?api-version={req.api_version}",
                **lro.retry_after(req, op),
            },
        )
    if op.error is not None:
        return Response(
            200,
            {"id": op.id, "properties": {"provisioningState": "failed", "reason": op.error.get("message")}},
        )
    return Response(200, op.result)


# ---------------------------------------------------------------- agent pools (views of the cluster)


def _pool_view(world: World, rec: Record, pool: dict[str, Any]) -> dict[str, Any]:
    p = copy.deepcopy(pool)
    name = p.pop("name", "")
    p["provisioningState"] = world.provisioning_state(rec)
    return {"id": f"{rec.id}/agentPools/{name}", "name": name, "type": POOL_TYPE, "properties": p}


def _find_pool(rec: Record, name: str) -> dict[str, Any] | None:
    for p in netsim.props(rec.body).get("agentPoolProfiles") or []:
        if str(p.get("name", "")).lower() == name.lower():
            return p
    return None


def get_pool(req: Request) -> Response:
    rec = req.world.get(req.rid.parent or "")
    pool = _find_pool(rec, req.rid.name or "") if rec else None
    if rec is None or pool is None:
        raise not_found(req.rid)
    return Response(200, _pool_view(req.world, rec, pool))


def list_pools(req: Request) -> Response:
    rec = req.world.get(req.rid.parent_id_for_action())
    if rec is None:
        raise not_found(req.rid)
    return Response(
        200,
        {
            "value": [
                _pool_view(req.world, rec, p) for p in netsim.props(rec.body).get("agentPoolProfiles") or []
            ]
        },
    )


def put_pool(req: Request) -> Response:
    rec = req.world.get(req.rid.parent or "")
    if rec is None:
        raise not_found(req.rid)
    _conflict(req, rec)
    body = req.body if isinstance(req.body, dict) else {}
    name = req.rid.name or ""
    pool = {"name": name, **copy.deepcopy(body.get("properties") or {})}
    if not re.match(r"^[a-z][a-z0-9]{0,11}$", name):
        raise _bad(
            "InvalidParameter", f"The value of parameter agentPoolProfile.name is invalid: '{name}'.", "name"
        )
    props = rec.body.setdefault("properties", {})
    pools = props.setdefault("agentPoolProfiles", [])
    old = _find_pool(rec, name)
    old_count = int((old or {}).get("count", 0))
    net = props.get("networkProfile") or {}
    new = _pool_defaults(
        pool, old, str(props.get("kubernetesVersion") or DEFAULT_K8S_VERSION), _network_plugin(net)
    )
    if (
        str(net.get("outboundType", "")).lower() == "userdefinedrouting"
        and new.get("vnetSubnetID")
        and not any((p.get("vnetSubnetID") or "").lower() == new["vnetSubnetID"].lower() for p in pools)
    ):
        _check_udr_subnet(req.world, new["vnetSubnetID"])
    if old is None:
        pools.append(new)
    else:
        pools[pools.index(old)] = new
    req.world.upsert(rec.id, MC_TYPE, rec.body)
    op = req.world.ops.start(
        resource_id=rec.id,
        kind="agentPools.put",
        duration=req.config.duration("agentPools.put"),
        in_flight="Creating" if old is None else "Updating",
        on_complete="aks.reconcile",
        namespace=NS,
        location=str(rec.body.get("location")),
        locks=[rec.id],
        data={"bootstrap": int(new.get("count", 0)) > old_count, "cloud": req.config.cloud},
    )
    view = _pool_view(req.world, rec, new)
    return Response(201 if old is None else 200, view, lro.lro_headers(req, op))


def delete_pool(req: Request) -> Response:
    rec = req.world.get(req.rid.parent or "")
    pool = _find_pool(rec, req.rid.name or "") if rec else None
    if rec is None or pool is None:
        return Response(204)
    _conflict(req, rec)
    props = rec.body["properties"]
    if (
        pool.get("mode", "System") == "System"
        and sum(1 for p in props["agentPoolProfiles"] if p.get("mode", "System") == "System") == 1
    ):
        raise _bad(
            "OperationNotAllowed",
            "A cluster must have at least one system agent pool: the last system pool cannot be deleted.",
        )
    props["agentPoolProfiles"] = [p for p in props["agentPoolProfiles"] if p is not pool]
    req.world.upsert(rec.id, MC_TYPE, rec.body)
    op = req.world.ops.start(
        resource_id=rec.id,
        kind="agentPools.delete",
        duration=req.config.duration("agentPools.delete"),
        in_flight="Updating",
        namespace=NS,
        location=str(rec.body.get("location")),
        locks=[rec.id],
    )
    headers = lro.lro_headers(req, op)
    headers["Location"] = lro.result_url(req, op, "operationresults")
    return Response(202, None, headers)


# ---------------------------------------------------------------- upgrade profile, egress dependencies


def _next_minor(version: str) -> list[str]:
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        return []
    return [f"{major}.{minor + 1}.{p}" for p in (3, 5)]


def get_upgrade_profile(req: Request) -> Response:
    """managedClusters/{name}/upgradeProfiles/default, shaped as in the recorded session."""
    rec = req.world.get(req.rid.parent or "")
    if rec is None or (req.rid.name or "").lower() != "default":
        raise not_found(req.rid)
    props = netsim.props(rec.body)
    version = str(props.get("kubernetesVersion") or DEFAULT_K8S_VERSION)
    upgrades = [{"kubernetesVersion": v} for v in _next_minor(version)]
    return Response(
        200,
        {
            "id": f"{rec.id}/upgradeprofiles/default",
            "name": "default",
            "type": "Microsoft.ContainerService/managedClusters/upgradeprofiles",
            "properties": {
                "controlPlaneProfile": {
                    "kubernetesVersion": version,
                    "osType": "Linux",
                    "upgrades": upgrades,
                },
                "agentPoolProfiles": [
                    {
                        "name": p.get("name"),
                        "kubernetesVersion": p.get("orchestratorVersion") or version,
                        "osType": p.get("osType", "Linux"),
                        "upgrades": upgrades,
                    }
                    for p in props.get("agentPoolProfiles") or []
                ],
            },
        },
    )


def list_outbound_dependencies(req: Request) -> Response:
    """What the cluster's nodes must reach, as AKS lists it: today's required endpoints for the
    cluster's cloud, location and features (the same rows bootstrap_check enforces)."""
    from aks_lockdown.egress import catalog

    rec = req.world.get(req.rid.parent_id_for_action())
    if rec is None:
        raise not_found(req.rid)
    location = str(rec.body.get("location") or "")
    rows = catalog.required_now(req.config.cloud, location, netsim.cluster_features(rec.body))
    by_category: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.dest_type != "fqdn":
            continue
        category = (
            "azure-kubernetes-service" if not row.feature else f"azure-kubernetes-service-{row.feature}"
        )
        by_category.setdefault(category, []).append(
            {
                "domainName": row.destination,
                "endpointDetails": [{"port": row.port, "protocol": row.protocol, "description": row.purpose}],
            }
        )
    value = [{"category": c, "endpoints": e} for c, e in sorted(by_category.items())]
    return Response(200, {"value": value})


# ---------------------------------------------------------------- registration


def register(reg: Registry) -> None:
    reg.resource_type(
        MC_TYPE,
        put=put_cluster,
        get=None,
        delete=delete_cluster,
        actions={
            "listClusterUserCredential": _credentials("clusterUser", "clusterUser"),
            "listClusterAdminCredential": _credentials("clusterAdmin", "clusterAdmin"),
            "listClusterMonitoringUserCredential": _credentials(
                "clusterMonitoringUser", "clusterMonitoringUser"
            ),
            "runCommand": run_command,
        },
        render=render_cluster,
    )
    reg.resource_type(POOL_TYPE, put=put_pool, get=get_pool, delete=delete_pool, list=list_pools)
    reg.resource_type(RESULT_TYPE, get=get_command_result)
    reg.resource_type(f"{MC_TYPE}/upgradeProfiles", get=get_upgrade_profile)
    reg.resource_type(f"{MC_TYPE}/outboundNetworkDependenciesEndpoints", list=list_outbound_dependencies)
    reg.on_complete("aks.reconcile", finish_reconcile)
    reg.on_complete("aks.delete", finish_delete)
    reg.on_complete("aks.runCommand", finish_run_command)
    reg.hook(DnatHook())

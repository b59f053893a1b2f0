"""Microsoft.Network: Azure Firewall, firewall policies and rule collection groups.

One write at a time per firewall, its policy and the policy's groups (409 AnotherOperationInProgress or
429 RetryableErrorDueToAnotherOperation); a write to an attached policy or group puts the firewall into
Updating for the firewall update's duration.

Error codes for the firewall subnet/public IP checks are not in any public example; the conditions are
real (docs: "AzureFirewallSubnet", at least /26, Standard static public IPs) and the codes below are the
emulator's best names for them.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from aks_lockdown.emulator.framework import ArmError, Registry, Request, Response
from aks_lockdown.emulator.generic import generic_delete
from aks_lockdown.emulator.lro import ensure_free
from aks_lockdown.emulator.netcommon import (
    NS,
    clean,
    ensure_ref,
    prefixes_of,
    ref_id,
    render_base,
    require_location,
    resource_guid,
    start_put,
)
from aks_lockdown.emulator.world import Record, World

FIREWALL = f"{NS}/azureFirewalls"
POLICY = f"{NS}/firewallPolicies"
GROUP = f"{NS}/firewallPolicies/ruleCollectionGroups"
GROUP_TYPE_AS_SENT = "Microsoft.Network/FirewallPolicies/ruleCollectionGroups"  # ARM's casing for groups
CLASSIC = ("applicationRuleCollections", "natRuleCollections", "networkRuleCollections")


# ---- walks -----------------------------------------------------------------------------------------
def firewalls_using_policy(world: World, policy_id: str) -> list[Record]:
    p = policy_id.lower()
    return [
        f
        for f in world.list(FIREWALL)
        if (ref_id(f.body["properties"].get("firewallPolicy")) or "").lower() == p
    ]


def policy_groups(world: World, policy_id: str) -> list[dict[str, Any]]:
    groups = [world.render(g) for g in world.children(policy_id, "ruleCollectionGroups")]
    return sorted(groups, key=lambda g: int(g["properties"].get("priority") or 0))


def firewall_policy_groups(world: World, firewall_id: str) -> list[dict[str, Any]]:
    """Rule collection group views that apply to a firewall: its base policy's groups, then its policy's,
    each in priority order ([] for a classic firewall: its rules are in its own view)."""
    fw = world.get(firewall_id)
    if fw is None:
        return []
    pid = ref_id(fw.body["properties"].get("firewallPolicy"))
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    chain = []
    while pid and pid.lower() not in seen:
        seen.add(pid.lower())
        chain.append(pid)
        pol = world.get(pid)
        pid = ref_id(pol.body["properties"].get("basePolicy")) if pol else None
    for p in reversed(chain):
        out.extend(policy_groups(world, p))
    return out


def _policy_family(world: World, policy_id: str) -> list[str]:
    """Ids that serialize with a policy write: the policy, its groups, the firewalls using it."""
    return [
        policy_id,
        *[g.id for g in world.children(policy_id, "ruleCollectionGroups")],
        *[f.id for f in firewalls_using_policy(world, policy_id)],
    ]


# ---- firewalls -------------------------------------------------------------------------------------
def _check_ip_configs(req: Request, fw_id: str, configs: list[dict[str, Any]]) -> None:
    w = req.world
    with_subnet = [c for c in configs if ref_id((c.get("properties") or {}).get("subnet"))]
    if len(with_subnet) > 1:
        raise ArmError(
            400,
            "AzureFirewallMultipleIpConfigurationsWithSubnet",
            f"Azure Firewall {fw_id} has more than one IP configuration referencing a subnet; only the "
            "first may.",
        )
    if configs and not with_subnet:
        raise ArmError(
            400,
            "AzureFirewallIpConfigurationMissingSubnet",
            f"The first IP configuration of Azure Firewall {fw_id} must reference AzureFirewallSubnet.",
        )
    for cfg in configs:
        props = cfg.get("properties") or {}
        sid = ref_id(props.get("subnet"))
        if sid:
            sub = ensure_ref(w, sid, fw_id)
            assert sub is not None
            if sid.rstrip("/").rsplit("/", 1)[-1] != "AzureFirewallSubnet":
                # Code unverified (emulator's name); condition real: the firewall's subnet must be named
                # AzureFirewallSubnet (learn.microsoft.com/azure/firewall/tutorial-firewall-deploy-portal).
                raise ArmError(
                    400,
                    "AzureFirewallSubnetNameInvalid",
                    f"Subnet {sid} referenced by Azure Firewall {fw_id} must be named AzureFirewallSubnet.",
                )
            nets = [ipaddress.ip_network(p, strict=False) for p in prefixes_of(sub.body["properties"])]
            if not nets or nets[0].prefixlen > 26:
                # Code unverified (emulator's name); condition real: /26 minimum (learn.microsoft.com
                # /azure/firewall/firewall-faq#why-does-azure-firewall-need-a--26-subnet-size).
                raise ArmError(
                    400,
                    "AzureFirewallSubnetMustBeAtLeastSize26",
                    f"Subnet AzureFirewallSubnet of Azure Firewall {fw_id} must be at least of size /26 "
                    f"(it is {nets[0] if nets else 'empty'}).",
                )
        pid = ref_id(props.get("publicIPAddress"))
        if pid:
            pip = ensure_ref(w, pid, fw_id)
            assert pip is not None
            if (pip.body.get("sku") or {}).get("name") != "Standard" or (
                pip.body["properties"].get("publicIPAllocationMethod") != "Static"
            ):
                # Code unverified (emulator's name); condition real: Standard SKU public IPs only
                # (MicrosoftDocs/azure-docs#62703; learn.microsoft.com/azure/virtual-network/ip-services
                # /public-ip-addresses).
                raise ArmError(
                    400,
                    "AzureFirewallPublicIpMustBeStandardSkuAndStatic",
                    f"Public IP {pid} of Azure Firewall {fw_id} must be of Standard SKU with static "
                    "allocation.",
                )
            for other in w.list(FIREWALL):
                if other.id.lower() != fw_id.lower() and f'"{pid.lower()}"' in json.dumps(other.body).lower():
                    raise ArmError(
                        400, "PublicIPAddressInUse", f"Public IP address {pid} is already used by {other.id}."
                    )


def put_firewall(req: Request) -> Response:
    w, rid = req.world, req.rid
    existing = w.get(rid.id)
    fw_id = existing.id if existing else rid.id
    body = clean(req.body, drop_props=("hubIPAddresses", "ipGroups"))
    location = require_location(req, body, existing)
    body["location"] = location
    props = body["properties"]
    props.setdefault("sku", {"name": "AZFW_VNet", "tier": "Standard"})
    props.setdefault("threatIntelMode", "Alert")
    props.setdefault("additionalProperties", {})
    for k in CLASSIC:
        props.setdefault(k, [])
    policy_id = ref_id(props.get("firewallPolicy"))
    ensure_ref(w, policy_id, fw_id)
    configs = props.setdefault("ipConfigurations", [])
    for cfg in configs:
        (cfg.setdefault("properties", {})).pop("privateIPAddress", None)
        cfg["properties"].pop("provisioningState", None)
        for k in ("id", "etag", "type"):
            cfg.pop(k, None)
    _check_ip_configs(req, fw_id, configs)
    old_policy = ref_id(existing.body["properties"].get("firewallPolicy")) if existing else None
    busy = [fw_id]
    for pid in {p for p in (policy_id, old_policy) if p}:
        busy += _policy_family(w, pid)
    ensure_free(req, busy)
    rec = w.upsert(fw_id, FIREWALL, body, extra={"resourceGuid": resource_guid(existing)})
    key = "azureFirewalls.create" if existing is None else "azureFirewalls.update"
    locks = [fw_id, *([policy_id] if policy_id else [])]
    return start_put(req, rec, created=existing is None, key=key, location=location, locks=locks)


def render_firewall(world: World, rec: Record) -> dict[str, Any]:
    out = render_base(world, rec)
    props = out["properties"]
    props.pop("resourceGuid", None)  # firewalls do not show one
    state = props["provisioningState"]
    private_ip = None
    for cfg in props.get("ipConfigurations", []):
        cp = cfg.setdefault("properties", {})
        cfg["id"] = f"{rec.id}/azureFirewallIpConfigurations/{cfg.get('name')}"
        cfg["etag"] = rec.etag
        cfg["type"] = f"{FIREWALL}/azureFirewallIpConfigurations"
        cp["provisioningState"] = state
        sid = ref_id(cp.get("subnet"))
        sub = world.get(sid) if sid else None
        if sub is not None:
            nets = prefixes_of(sub.body["properties"])
            if nets:
                # Azure reserves .0-.3; the firewall takes the fourth address (x.x.x.4).
                private_ip = str(ipaddress.ip_network(nets[0], strict=False).network_address + 4)
                cp["privateIPAddress"] = private_ip
    for k in CLASSIC:
        for coll in props.get(k, []):
            coll["id"] = f"{rec.id}/{k}/{coll.get('name')}"
            coll.setdefault("properties", {})["provisioningState"] = state
    props.setdefault("ipGroups", [])
    sku = props.get("sku") or {}
    if sku.get("name") == "AZFW_Hub":
        pips = [
            world.get(ref_id((c.get("properties") or {}).get("publicIPAddress")) or "")
            for c in props.get("ipConfigurations", [])
        ]
        addrs = [{"address": p.extra.get("ipAddress")} for p in pips if p is not None]
        props["hubIPAddresses"] = {
            "privateIPAddress": private_ip,
            "publicIPs": {"addresses": addrs, "count": len(addrs)},
        }
    return out


def delete_firewall(req: Request) -> Response:
    rec = req.world.get(req.rid.id)
    if rec is None:
        return Response(204)
    policy_id = ref_id(rec.body["properties"].get("firewallPolicy"))
    busy = [rec.id, *(_policy_family(req.world, policy_id) if policy_id else [])]
    ensure_free(req, busy)
    return generic_delete(req, key="azureFirewalls.delete", locks=[rec.id])


# ---- firewall policies -----------------------------------------------------------------------------
def put_policy(req: Request) -> Response:
    w, rid = req.world, req.rid
    existing = w.get(rid.id)
    pol_id = existing.id if existing else rid.id
    body = clean(req.body, drop_props=("ruleCollectionGroups", "firewalls", "childPolicies", "size"))
    location = require_location(req, body, existing)
    body["location"] = location
    props = body["properties"]
    props.setdefault("sku", {"tier": "Standard"})
    props.setdefault("threatIntelMode", "Alert")
    ensure_ref(w, ref_id(props.get("basePolicy")), pol_id)
    family = _policy_family(w, pol_id) if existing else [pol_id]
    ensure_free(req, family)
    fws = [f.id for f in firewalls_using_policy(w, pol_id)]
    rec = w.upsert(pol_id, POLICY, body)
    key = "firewallPolicies.put.attached" if fws else "firewallPolicies.put"
    return start_put(
        req,
        rec,
        created=existing is None,
        key=key,
        location=location,
        locks=[pol_id, *fws],
        also_updating=fws,
        nfv=True,
    )


def _size(obj: Any) -> str:
    return f"{len(json.dumps(obj)) / 1024 / 1024:.3f}MB"


def render_policy(world: World, rec: Record) -> dict[str, Any]:
    out = render_base(world, rec)
    props = out["properties"]
    props["childPolicies"] = [
        {"id": c.id}
        for c in world.list(POLICY)
        if (ref_id(c.body["properties"].get("basePolicy")) or "").lower() == rec.id.lower()
    ]
    props["ruleCollectionGroups"] = [{"id": g.id} for g in world.children(rec.id, "ruleCollectionGroups")]
    props["firewalls"] = [{"id": f.id} for f in firewalls_using_policy(world, rec.id)]
    props["size"] = _size(rec.body)
    return out


def delete_policy(req: Request) -> Response:
    """Synchronous 200 as in the recorded session; refused while a firewall uses the policy."""
    w = req.world
    rec = w.get(req.rid.id)
    if rec is None:
        return Response(204)
    fws = firewalls_using_policy(w, rec.id)
    if fws:
        # Code unverified (emulator's name); condition real: a policy in use by a firewall cannot be
        # deleted (hashicorp/terraform-provider-azurerm#12212, #29114).
        raise ArmError(
            400,
            "FirewallPolicyInUse",
            f"Firewall policy {rec.id} cannot be deleted because it is "
            f"associated with Azure Firewall {fws[0].id}.",
        )
    ensure_free(req, _policy_family(w, rec.id))
    w.remove(rec.id)
    return Response(200)


# ---- rule collection groups ------------------------------------------------------------------------
def put_group(req: Request) -> Response:
    w, rid = req.world, req.rid
    pol = w.get(rid.parent or "")
    assert pol is not None  # the server checked the parent exists
    existing = w.get(rid.id)
    gid = existing.id if existing else f"{pol.id}/ruleCollectionGroups/{rid.name}"
    body = clean(req.body, drop_props=("size",))
    props = body["properties"]
    prio = props.get("priority")
    if not isinstance(prio, int) or not 100 <= prio <= 65000:
        raise ArmError(
            400,
            "FirewallPolicyRuleCollectionGroupInvalidPriorityValue",
            f"Rule Collection Group {gid} has invalid priority {prio}: it must be between 100 and 65000.",
        )
    props.setdefault("ruleCollections", [])
    names = [c.get("name") for c in props["ruleCollections"]]
    if len(names) != len(set(names)):
        raise ArmError(
            400,
            "FirewallPolicyRuleCollectionGroupDuplicateRuleCollectionName",
            f"Rule Collection Group {gid} has rule collections with the same name.",
        )
    ensure_free(req, _policy_family(w, pol.id))
    fws = [f.id for f in firewalls_using_policy(w, pol.id)]
    body.pop("location", None)
    rec = w.upsert(gid, GROUP, body)
    key = "ruleCollectionGroups.put.attached" if fws else "ruleCollectionGroups.put"
    return start_put(
        req,
        rec,
        created=existing is None,
        key=key,
        location=str(pol.body.get("location")),
        locks=[pol.id, gid, *fws],
        also_updating=fws,
        nfv=True,
    )


def render_group(world: World, rec: Record) -> dict[str, Any]:
    out = render_base(world, rec, with_location=False)
    out["type"] = GROUP_TYPE_AS_SENT
    out["properties"]["size"] = _size(rec.body)
    return out


def delete_group(req: Request) -> Response:
    w = req.world
    rec = w.get(req.rid.id)
    if rec is None:
        return Response(204)
    pol_id = req.rid.parent or ""
    ensure_free(req, _policy_family(w, pol_id))
    fws = [f.id for f in firewalls_using_policy(w, pol_id)]
    resp = generic_delete(
        req,
        key="ruleCollectionGroups.delete.attached" if fws else "ruleCollectionGroups.delete",
        locks=[pol_id, rec.id, *fws],
    )
    op = w.ops.get(w.get(rec.id).op_id or "") if w.get(rec.id) else None
    if op is not None:
        op.data["nfv"] = True
        op.data["also_updating"] = list(fws)
        for f in fws:
            frec = w.get(f)
            if frec is not None:
                frec.op_id = op.id
        resp.headers.update(_nfv_headers(req, op))
    return resp


def _nfv_headers(req: Request, op: Any) -> dict[str, str]:
    from aks_lockdown.emulator.lro import lro_headers

    return lro_headers(req, op, location=True)


def register(reg: Registry) -> None:
    reg.resource_type(FIREWALL, put=put_firewall, delete=delete_firewall, render=render_firewall)
    reg.resource_type(POLICY, put=put_policy, delete=delete_policy, render=render_policy)
    reg.resource_type(GROUP, put=put_group, delete=delete_group, render=render_group)

"""Conformance with the official REST examples in ../shared/azure-specs: each example's request is
accepted, and the answer carries the property names of the example's answer.

The world an example presumes (the VNet/subnet, public IP, policy or route table its ids point at) is
created first from the ids found in the example. Some names in an example answer describe things the
emulator does not model; they are listed in EXCUSED with the reason."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from aks_lockdown.emulator import Emulator

from .conftest import Raw

SPECS = Path("/work/shared/azure-specs")
if not SPECS.exists():
    SPECS = Path(__file__).resolve().parents[3] / "shared" / "azure-specs"
EXAMPLE_SUBS = (
    "00000000-0000-0000-0000-000000000000",
    "12345678-1234-5678-9012-123456789012",
    "a925f2f7-5c63-4b7b-8799-25a5f97bc3b2",
    "subid",
    "subId",
    "subID",
)
NET = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Network"
CUSTOM_ROLE = "0b5fe924-9a61-425c-96af-cfe6e287ca2d"  # the examples' (non built-in) role definition

# file -> (method, path template, body parameter name)
EXAMPLES: dict[str, tuple[str, str, str | None]] = {
    "network/AzureFirewallPut.json": ("PUT", NET + "/azureFirewalls/{azureFirewallName}", "parameters"),
    "network/AzureFirewallPutWithAdditionalProperties.json": (
        "PUT",
        NET + "/azureFirewalls/{azureFirewallName}",
        "parameters",
    ),
    "network/AzureFirewallGet.json": ("GET", NET + "/azureFirewalls/{azureFirewallName}", None),
    "network/AzureFirewallGetWithZones.json": ("GET", NET + "/azureFirewalls/{azureFirewallName}", None),
    "network/AzureFirewallDelete.json": ("DELETE", NET + "/azureFirewalls/{azureFirewallName}", None),
    "network/FirewallPolicyPut.json": ("PUT", NET + "/firewallPolicies/{firewallPolicyName}", "parameters"),
    "network/FirewallPolicyGet.json": ("GET", NET + "/firewallPolicies/{firewallPolicyName}", None),
    "network/FirewallPolicyRuleCollectionGroupPut.json": (
        "PUT",
        NET + "/firewallPolicies/{firewallPolicyName}/ruleCollectionGroups/{ruleCollectionGroupName}",
        "parameters",
    ),
    "network/FirewallPolicyNatRuleCollectionGroupPut.json": (
        "PUT",
        NET + "/firewallPolicies/{firewallPolicyName}/ruleCollectionGroups/{ruleCollectionGroupName}",
        "parameters",
    ),
    "network/PublicIpAddressCreateDefaults.json": (
        "PUT",
        NET + "/publicIPAddresses/{publicIpAddressName}",
        "parameters",
    ),
    "network/PublicIpAddressCreateCustomizedValues.json": (
        "PUT",
        NET + "/publicIPAddresses/{publicIpAddressName}",
        "parameters",
    ),
    "network/PublicIpAddressGet.json": ("GET", NET + "/publicIPAddresses/{publicIpAddressName}", None),
    "network/PublicIpAddressDelete.json": ("DELETE", NET + "/publicIPAddresses/{publicIpAddressName}", None),
    "network/RouteTableCreateWithRoute.json": ("PUT", NET + "/routeTables/{routeTableName}", "parameters"),
    "network/RouteTableGet.json": ("GET", NET + "/routeTables/{routeTableName}", None),
    "network/RouteTableDelete.json": ("DELETE", NET + "/routeTables/{routeTableName}", None),
    "network/RouteTableRouteCreate.json": (
        "PUT",
        NET + "/routeTables/{routeTableName}/routes/{routeName}",
        "routeParameters",
    ),
    "network/ServiceTagsList.json": (
        "GET",
        "/subscriptions/{subscriptionId}/providers/Microsoft.Network/locations/{location}/serviceTags",
        None,
    ),
    "network/SubnetCreate.json": (
        "PUT",
        NET + "/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}",
        "subnetParameters",
    ),
    "network/SubnetGet.json": (
        "GET",
        NET + "/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}",
        None,
    ),
    "network/VirtualNetworkCreateSubnet.json": (
        "PUT",
        NET + "/virtualNetworks/{virtualNetworkName}",
        "parameters",
    ),
    "network/VirtualNetworkGet.json": ("GET", NET + "/virtualNetworks/{virtualNetworkName}", None),
    "network/VirtualNetworkDelete.json": ("DELETE", NET + "/virtualNetworks/{virtualNetworkName}", None),
    "resources/CreateResourceGroup.json": (
        "PUT",
        "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}",
        "parameters",
    ),
    "resources/ForceDeleteVMsInResourceGroup.json": (
        "DELETE",
        "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}",
        None,
    ),
    "msi/IdentityCreate.json": (
        "PUT",
        "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/{resourceName}",
        "parameters",
    ),
    "msi/IdentityGet.json": (
        "GET",
        "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/{resourceName}",
        None,
    ),
    "msi/IdentityDelete.json": (
        "DELETE",
        "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/{resourceName}",
        None,
    ),
    "authorization/GetRoleDefinitionByName.json": (
        "GET",
        "/{scope}/providers/Microsoft.Authorization/roleDefinitions/{roleDefinitionId}",
        None,
    ),
    "authorization/RoleAssignments_CreateForResource.json": (
        "PUT",
        "/{scope}/providers/Microsoft.Authorization/roleAssignments/{roleAssignmentName}",
        "parameters",
    ),
    "authorization/RoleAssignments_CreateForResourceGroup.json": (
        "PUT",
        "/{scope}/providers/Microsoft.Authorization/roleAssignments/{roleAssignmentName}",
        "parameters",
    ),
    "authorization/RoleAssignments_Get.json": (
        "GET",
        "/{scope}/providers/Microsoft.Authorization/roleAssignments/{roleAssignmentName}",
        None,
    ),
    "authorization/RoleAssignments_Delete.json": (
        "DELETE",
        "/{scope}/providers/Microsoft.Authorization/roleAssignments/{roleAssignmentName}",
        None,
    ),
    "authorization/RoleAssignments_ListForScope.json": (
        "GET",
        "/{scope}/providers/Microsoft.Authorization/roleAssignments",
        None,
    ),
}

# Names in example answers that describe what the emulator does not model, with the reason.
NIC_REFS = "ipConfiguration(s) of NICs / load balancers, which the emulator does not model"
EXCUSED: dict[str, tuple[str, ...]] = {
    # NIC_REFS
    "network/PublicIpAddressCreateDefaults.json": (
        "properties.ipConfiguration",
        "properties.ipConfiguration.id",
    ),
    "network/PublicIpAddressCreateCustomizedValues.json": (
        "properties.ipConfiguration",
        "properties.ipConfiguration.id",
        # the example puts zones among the operation's parameters, not in the request body
        "zones",
    ),
    "network/PublicIpAddressGet.json": ("properties.ipConfiguration", "properties.ipConfiguration.id"),
    "network/VirtualNetworkGet.json": (
        "properties.subnets[].properties.ipConfigurations",
        "properties.subnets[].properties.ipConfigurations[].id",
    ),
    # afcManaged: set by Azure Firewall Manager sync, not modelled
    "network/FirewallPolicyPut.json": ("properties.afcManaged",),
    "network/FirewallPolicyGet.json": ("properties.afcManaged",),
}


def _keys(obj: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{prefix}.{k}" if prefix else k
            out.add(p)
            out |= _keys(v, p)
    elif isinstance(obj, list):
        for v in obj:
            out |= _keys(v, prefix + "[]")
    return out


def _load(name: str, sub: str) -> dict[str, Any]:
    text = (SPECS / name).read_text()
    for s in EXAMPLE_SUBS:
        text = re.sub(rf"subscriptions/{s}\b", f"subscriptions/{sub}", text).replace(f'"{s}"', f'"{sub}"')
    text = text.replace(f"/subscriptions/{sub}/resourcegroups/", f"/subscriptions/{sub}/resourceGroups/")
    return json.loads(text)


ID_RE = re.compile(
    r"/subscriptions/[^/\"]+/resourceGroups/([^/\"]+)/providers/Microsoft\.Network/"
    r"(virtualNetworks/[^/\"]+/subnets/[^/\"]+|publicIPAddresses/[^/\"]+|firewallPolicies/[^/\"]+|routeTables/[^/\"]+)"
)


def _prepare(raw: Raw, emu: Emulator, example: dict[str, Any], path: str, method: str) -> None:
    """Create the resource groups and the referenced network resources an example presumes."""
    sub = emu.subscription_id
    text = json.dumps(example)
    groups = set(re.findall(r"/resourceGroups/([^/\"]+)", text))
    params = example["parameters"]
    if "resourceGroupName" in params:
        groups.add(params["resourceGroupName"])
    for g in groups:
        if method == "PUT" and path.lower() == f"/subscriptions/{sub}/resourcegroups/{g}".lower():
            continue  # the group under test
        raw("PUT", f"/subscriptions/{sub}/resourcegroups/{g}?api-version=2025-04-01", {"location": "westus"})
    q = "?api-version=2026-03-01"
    subnet_n = 0
    for m in sorted(set(ID_RE.findall(text)), key=lambda x: "subnets" not in x[1]):
        rg, rest = m
        rid = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/{rest}"
        kind = rest.split("/")[0]
        if rid.lower().startswith(path.lower() + "/"):
            continue  # a child of the resource under test: created after it (see _children)
        if path.lower() == rid.lower():
            if kind == "virtualNetworks":  # a subnet under test needs its VNet
                raw(
                    "PUT",
                    rid.split("/subnets/")[0] + q,
                    {
                        "location": "westus",
                        "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/8"]}},
                    },
                )
            continue
        if kind == "virtualNetworks":
            vnet = rid.split("/subnets/")[0]
            if raw("GET", vnet + q).status_code == 404:
                raw(
                    "PUT",
                    vnet + q,
                    {
                        "location": "westus",
                        "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/8"]}},
                    },
                )
            raw("PUT", rid + q, {"properties": {"addressPrefix": f"10.{100 + subnet_n}.0.0/24"}})
            subnet_n += 1
        elif kind == "publicIPAddresses":
            raw(
                "PUT",
                rid + q,
                {
                    "location": "westus",
                    "sku": {"name": "Standard"},
                    "properties": {"publicIPAllocationMethod": "Static"},
                },
            )
        elif kind == "firewallPolicies":
            raw("PUT", rid.split("/ruleCollectionGroups")[0] + q, {"location": "westus"})
        elif kind == "routeTables":
            raw("PUT", rid.split("/routes/")[0] + q, {"location": "westus"})
    if "/Microsoft.Authorization/" in path:
        raw(
            "PUT",
            f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{CUSTOM_ROLE}"
            "?api-version=2022-04-01",
            {"properties": {"roleName": "example role", "permissions": []}},
        )


def _children(raw: Raw, example: dict[str, Any], path: str) -> None:
    """Children of the resource under test that its example answer lists (e.g. a policy's groups)."""
    q = "?api-version=2026-03-01"
    ids = set(
        re.findall(re.escape(path) + r"/ruleCollectionGroups/[^/\"]+", json.dumps(example), re.IGNORECASE)
    )
    for n, gid in enumerate(sorted(ids)):
        raw("PUT", gid + q, {"properties": {"priority": 1000 + n, "ruleCollections": []}})


def _fill(template: str, params: dict[str, Any], sub: str) -> str:
    values = {k: str(v) for k, v in params.items() if isinstance(v, str | int)}
    values["subscriptionId"] = sub
    if values.get("scope") == "scope":  # GetRoleDefinitionByName's placeholders
        values["scope"] = f"subscriptions/{sub}"
        values["roleDefinitionId"] = "4d97b98b-1d4f-4787-a291-c67834d212e7"
    path = template.format(**values).replace("//", "/")
    query = f"?api-version={params.get('api-version', '2026-03-01')}"
    if params.get("forceDeletionTypes"):
        query += f"&forceDeletionTypes={params['forceDeletionTypes']}"
    return path + query


def _seed_body(resp_body: dict[str, Any]) -> dict[str, Any]:
    """A PUT body that recreates what a GET example shows (read-only parts are dropped by the server)."""
    return {k: v for k, v in resp_body.items() if k not in ("id", "name", "type", "etag")}


def _seed(raw: Raw, url: str, example: dict[str, Any], name: str) -> None:
    """Create what a GET or DELETE example acts on: from its 200 answer when it has one, else minimal."""
    path = url.split("?")[0]
    body = (example["responses"].get("200") or {}).get("body")
    if path.endswith("/roleAssignments"):  # a list: create each listed assignment
        for item in body["value"]:
            raw("PUT", f"{item['id']}?api-version=2022-04-01", {"properties": item["properties"]})
        return
    if "/roleDefinitions/" in path or ("/resourcegroups/" in path.lower() and "/providers/" not in path):
        return  # built-in role / the group itself: already there
    if body is None:  # a DELETE example without an answer body
        body = {"location": "westus", "properties": {}}
        if "/roleAssignments/" in path:
            body = {
                "properties": {
                    "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{CUSTOM_ROLE}",
                    "principalId": "ce2ce14e-85d7-4629-bdbc-454d0519d987",
                    "principalType": "User",
                }
            }
        elif "virtualNetworks" in path:
            space = {"addressPrefixes": ["10.0.0.0/16"]}
            body["properties"] = {"addressSpace": space}
        elif "publicIPAddresses" in path:
            body["sku"] = {"name": "Standard"}
    if "/subnets/" in path:
        vnet_body = {
            "location": "westus",
            "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/8"]}},
        }
        raw("PUT", path.split("/subnets/")[0] + "?" + url.split("?")[1], vnet_body)
    r = raw("PUT", url, _seed_body(body))
    assert r.status_code in (200, 201), (name, r.text[:400])


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example(name: str, emu: Emulator, raw: Raw) -> None:
    example = _load(name, emu.subscription_id)
    method, template, body_param = EXAMPLES[name]
    params = example["parameters"]
    url = _fill(template, params, emu.subscription_id)
    _prepare(raw, emu, example, url.split("?")[0], method)
    if method in ("GET", "DELETE") and "serviceTags" not in url:
        _seed(raw, url, example, name)
        _children(raw, example, url.split("?")[0])
    body = params.get(body_param) if body_param else None
    r = raw(method, url, body)
    if method == "PUT":
        _children(raw, example, url.split("?")[0])
    codes = sorted(int(c) for c in example["responses"])
    assert r.status_code in codes, (name, r.status_code, r.text[:500])
    if method == "PUT":
        # Twice: the second answer is the "existing resource" one (200).
        assert r.status_code in (200, 201)
        second = raw(method, url, body)
        assert second.status_code == 200, (name, second.text[:400])
        r = raw("GET", url) if "roleAssignments" not in url else second
    elif method == "DELETE":
        again = raw(method, url)
        assert (
            again.status_code in (204, 404) if "resourcegroups" in url.lower() else again.status_code == 204
        )
        return
    want_body = (example["responses"].get(str(r.status_code)) or example["responses"].get("200") or {}).get(
        "body"
    )
    if not want_body:
        return
    missing = sorted(_keys(want_body) - _keys(r.json()) - set(EXCUSED.get(name, ())))
    assert not missing, f"{name}: names in the example answer missing from ours: {missing}"


def test_every_example_is_covered() -> None:
    files = {
        f"{d}/{p.name}"
        for d in ("network", "resources", "msi", "authorization")
        for p in (SPECS / d).glob("*.json")
    }
    assert files == set(EXAMPLES)

"""Step 2, virtual network: the AKS subnet and AzureFirewallSubnet (plus AzureFirewallManagementSubnet
for the Basic SKU), written inline in one VNet PUT.

The route table step later associates a route table with the AKS subnet, and Azure adds read-only
links (IP configurations of the firewall, the cluster's NICs). This step compares only what it owns
(address space, subnet prefixes, tags) and, when it writes the VNet again, carries every existing
subnet's other properties over, so it never undoes the association.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aks_lockdown.steps._common import (
    AdoptionConflict,
    change_for,
    delete_if_created,
    get_or_none,
    is_ours,
    merged_tags,
    owned_changes,
    resource_id,
    strip_read_only,
    tag_changes,
    to_json,
    unchanged,
)

from aks_lockdown.engine.step import Diff, ResourceChange, Step

KIND = "Microsoft.Network/virtualNetworks"
FIREWALL_SUBNET = "AzureFirewallSubnet"
FIREWALL_MANAGEMENT_SUBNET = "AzureFirewallManagementSubnet"
# Subnet properties Azure maintains (links from NICs, endpoints, services): never sent back.
SUBNET_READ_ONLY = frozenset(
    {
        "provisioningState",
        "ipConfigurations",
        "ipConfigurationProfiles",
        "privateEndpoints",
        "resourceNavigationLinks",
        "serviceAssociationLinks",
        "purpose",
        "etag",
        "type",
    }
)


class VirtualNetworkStep(Step):
    name = "vnet"
    title = "Virtual network"

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._actual: dict[str, Any] | None = None

    @property
    def vnet_id(self) -> str:
        return resource_id(self.ctx, KIND, self.ctx.config.vnet_name)

    def subnet_id(self, subnet: str) -> str:
        return f"{self.vnet_id}/subnets/{subnet}"

    def _subnets(self) -> list[tuple[str, str]]:
        net = self.ctx.config.network
        subnets = [(net.aks_subnet_name, net.aks_subnet_cidr), (FIREWALL_SUBNET, net.firewall_subnet_cidr)]
        if self.ctx.config.firewall.sku == "Basic":
            # Basic firewalls send their management traffic through a subnet of their own.
            subnets.append((FIREWALL_MANAGEMENT_SUBNET, net.firewall_management_subnet_cidr))
        return subnets

    def desired(self) -> Mapping[str, Any]:
        return {
            "location": self.ctx.config.azure.location,
            "properties": {
                "addressSpace": {"addressPrefixes": [self.ctx.config.network.vnet_cidr]},
                "subnets": [{"name": n, "properties": {"addressPrefix": p}} for n, p in self._subnets()],
            },
        }

    def resource_ids(self) -> list[str]:
        return [self.vnet_id]

    def _read(self) -> dict[str, Any] | None:
        vnets = self.ctx.clients.network.virtual_networks
        cfg = self.ctx.config
        self._actual = to_json(get_or_none(lambda: vnets.get(cfg.resource_group, cfg.vnet_name)))
        return self._actual

    def _field_changes(self, actual: Mapping[str, Any]) -> list[Any]:
        desired = dict(self.desired())
        desired.pop("location")  # a VNet cannot move; a different location is not a diff we can apply
        props = actual.get("properties") or {}
        # Azure may report a single prefix as addressPrefixes: normalise before comparing.
        subnets = []
        for subnet in props.get("subnets") or []:
            sp = dict(subnet.get("properties") or {})
            if "addressPrefix" not in sp and len(sp.get("addressPrefixes") or []) == 1:
                sp["addressPrefix"] = sp["addressPrefixes"][0]
            subnets.append({**subnet, "properties": sp})
        normalised = {**actual, "properties": {**props, "subnets": subnets}}
        return owned_changes(desired, normalised)

    def _outputs(self) -> dict[str, Any]:
        out = {"id": self.vnet_id, "name": self.ctx.config.vnet_name}
        out["aks_subnet_id"] = self.subnet_id(self.ctx.config.network.aks_subnet_name)
        out["firewall_subnet_id"] = self.subnet_id(FIREWALL_SUBNET)
        if self.ctx.config.firewall.sku == "Basic":
            out["firewall_management_subnet_id"] = self.subnet_id(FIREWALL_MANAGEMENT_SUBNET)
        return out

    def check(self) -> Diff:
        actual = self._read()
        if actual is None:
            return Diff((ResourceChange("create", self.vnet_id, KIND),))
        fields = self._field_changes(actual)
        if not is_ours(self.ctx, self.vnet_id, actual):
            if fields:
                # Not ours and not as configured: say so in plan; apply refuses to reshape it.
                note = "exists, not created by this deployment, and differs: will not be adopted"
                return Diff((ResourceChange("update", self.vnet_id, KIND, tuple(fields), note),))
            self.ctx.mark_adopted(self.vnet_id)
            return Diff((unchanged(self.vnet_id, KIND, "exists and matches: adopted"),), self._outputs())
        change = change_for(self.vnet_id, KIND, actual, [*fields, *tag_changes(self.ctx, actual)])
        return Diff((change,), self._outputs() if change.action == "none" else {})

    def _body(self, actual: Mapping[str, Any] | None) -> dict[str, Any]:
        """The desired VNet, carried over an existing one: other subnets and subnet properties
        (routeTable, NSG, delegations) survive the PUT."""
        props = dict(strip_read_only((actual or {}).get("properties") or {}))
        existing = {s["name"].lower(): s for s in (actual or {}).get("properties", {}).get("subnets") or []}
        subnets = []
        for name, prefix in self._subnets():
            old = existing.pop(name.lower(), {})
            sp = {k: v for k, v in (old.get("properties") or {}).items() if k not in SUBNET_READ_ONLY}
            sp.pop("addressPrefixes", None)
            sp["addressPrefix"] = prefix
            subnets.append({"name": name, "properties": sp})
        for old in existing.values():  # subnets someone else added stay
            sp = {k: v for k, v in (old.get("properties") or {}).items() if k not in SUBNET_READ_ONLY}
            subnets.append({"name": old["name"], "properties": sp})
        props["addressSpace"] = {"addressPrefixes": [self.ctx.config.network.vnet_cidr]}
        props["subnets"] = subnets
        location = (actual or {}).get("location") or self.ctx.config.azure.location
        return {"location": location, "tags": merged_tags(self.ctx, actual), "properties": props}

    def apply(self, diff: Diff) -> Mapping[str, Any]:
        change = diff.changes[0]
        # A fresh instance (apply without check) reads again: the body must carry Azure's subnets over.
        actual = None if change.action == "create" else (self._actual or self._read())
        if actual is not None and not is_ours(self.ctx, self.vnet_id, actual):
            fields = ", ".join(f.path for f in change.fields)
            raise AdoptionConflict(
                f"virtual network {self.vnet_id} exists, was not created by deployment "
                f"{self.ctx.deployment}, and differs from the config ({fields}): fix the config "
                "(network.vnet_name, CIDRs) or the VNet, then deploy again"
            )
        if change.action != "none":
            cfg = self.ctx.config
            vnets = self.ctx.clients.network.virtual_networks
            body = self._body(actual)
            self.ctx.write(
                self.vnet_id,
                "create" if change.action == "create" else "update",
                lambda: vnets.begin_create_or_update(cfg.resource_group, cfg.vnet_name, body),
                description=f"virtual network {cfg.vnet_name}",
            )
        return self._outputs()

    def rollback(self) -> None:
        cfg = self.ctx.config
        vnets = self.ctx.clients.network.virtual_networks
        delete_if_created(
            self.ctx,
            self.vnet_id,
            lambda: vnets.get(cfg.resource_group, cfg.vnet_name),
            lambda: vnets.begin_delete(cfg.resource_group, cfg.vnet_name),
        )

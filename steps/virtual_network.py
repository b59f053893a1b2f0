"""Step 2, virtual network: the AKS subnet and AzureFirewallSubnet (plus AzureFirewallManagementSubnet
for the Basic SKU), written inline in one VNet PUT.

With ``firewall.dns_proxy`` on, the same PUT sets the VNet's DNS servers to the firewall's private IP,
so the nodes resolve through the firewall's DNS proxy (Azure's requirement for FQDNs in network rules).
The firewall does not exist yet, but its address is known: Azure gives it the fourth address of
AzureFirewallSubnet (``firewall_private_ip``); the firewall step fails if Azure ever gives another.

The route table step later associates a route table with the AKS subnet, and Azure adds read-only
links (IP configurations of the firewall, the cluster's NICs). This step compares only what it owns
(address space, subnet prefixes, DNS servers, tags) and, when it writes the VNet again, carries every
existing subnet's other properties over, so it never undoes the association.
"""

from __future__ import annotations

import ipaddress
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

from aks_lockdown.engine.step import Diff, FieldChange, ResourceChange, Step

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
DNS_SERVERS_PATH = "properties.dhcpOptions.dnsServers"


def firewall_private_ip(config: Any) -> str:
    """The private IP Azure gives the firewall: the fourth address (x.x.x.4) of AzureFirewallSubnet.

    Azure reserves the first four addresses of every subnet (.0 network, .1 gateway, .2-.3 Azure DNS);
    the firewall's first IP configuration takes the next one, deterministically (AKS-Construction
    computes it the same way). The VNet step points the VNet's DNS servers at it before the firewall
    exists; the firewall step checks Azure agreed."""
    subnet = ipaddress.ip_network(config.network.firewall_subnet_cidr, strict=False)
    return str(subnet.network_address + 4)


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

    def _dns_servers(self) -> list[str] | None:
        """The VNet's DNS servers: the firewall's DNS proxy when it is on; None when not ours to set."""
        return [firewall_private_ip(self.ctx.config)] if self.ctx.config.firewall.dns_proxy else None

    def desired(self) -> Mapping[str, Any]:
        properties: dict[str, Any] = {
            "addressSpace": {"addressPrefixes": [self.ctx.config.network.vnet_cidr]},
            "subnets": [{"name": n, "properties": {"addressPrefix": p}} for n, p in self._subnets()],
        }
        servers = self._dns_servers()
        if servers is not None:
            properties["dhcpOptions"] = {"dnsServers": servers}
        return {"location": self.ctx.config.azure.location, "properties": properties}

    def resource_ids(self) -> list[str]:
        return [self.vnet_id]

    def _read(self) -> dict[str, Any] | None:
        vnets = self.ctx.clients.network.virtual_networks
        cfg = self.ctx.config
        self._actual = to_json(get_or_none(lambda: vnets.get(cfg.resource_group, cfg.vnet_name)))
        return self._actual

    def _field_changes(self, actual: Mapping[str, Any]) -> list[FieldChange]:
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
        # No DNS servers set reads as an empty list, so the drift is always named by the same field.
        dhcp = {**(props.get("dhcpOptions") or {})}
        dhcp["dnsServers"] = list(dhcp.get("dnsServers") or [])
        normalised = {**actual, "properties": {**props, "subnets": subnets, "dhcpOptions": dhcp}}
        fields = owned_changes(desired, normalised)
        if self._dns_servers() is None:
            # DNS proxy off: a VNet still pointing at the firewall would resolve nothing; only our own
            # entry goes (an operator's DNS servers are not ours to judge).
            firewall_ip = firewall_private_ip(self.ctx.config)
            if firewall_ip in dhcp["dnsServers"]:
                kept = [s for s in dhcp["dnsServers"] if s != firewall_ip]
                fields.append(FieldChange(DNS_SERVERS_PATH, dhcp["dnsServers"], kept))
        return fields

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
            if _shape_changes(fields):
                # Not ours and not as configured: say so in plan; apply refuses to reshape it.
                note = "exists, not created by this deployment, and differs: will not be adopted"
                return Diff((ResourceChange("update", self.vnet_id, KIND, tuple(fields), note),))
            self.ctx.mark_adopted(self.vnet_id)
            if fields:
                # Its shape matches; only the DNS servers differ: a change to apply like any owned field.
                note = "exists and matches: adopted; its DNS servers will be set for the firewall's DNS proxy"
                return Diff((ResourceChange("update", self.vnet_id, KIND, tuple(fields), note),))
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
        servers = self._dns_servers()
        if servers is None:
            current = list((props.get("dhcpOptions") or {}).get("dnsServers") or [])
            firewall_ip = firewall_private_ip(self.ctx.config)
            if firewall_ip in current:  # sent explicitly, even when empty: the PUT must clear it
                props["dhcpOptions"] = {"dnsServers": [s for s in current if s != firewall_ip]}
        else:
            props["dhcpOptions"] = {**(props.get("dhcpOptions") or {}), "dnsServers": servers}
        location = (actual or {}).get("location") or self.ctx.config.azure.location
        # An adopted VNet keeps its tags: our deployment tag would make teardown take it for ours.
        ours = actual is None or is_ours(self.ctx, self.vnet_id, actual)
        tags = merged_tags(self.ctx, actual) if ours else dict((actual or {}).get("tags") or {})
        return {"location": location, "tags": tags, "properties": props}

    def apply(self, diff: Diff) -> Mapping[str, Any]:
        change = diff.changes[0]
        # A fresh instance (apply without check) reads again: the body must carry Azure's subnets over.
        actual = None if change.action == "create" else (self._actual or self._read())
        if (
            actual is not None
            and not is_ours(self.ctx, self.vnet_id, actual)
            and _shape_changes(self._field_changes(actual))
        ):
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


def _shape_changes(fields: list[FieldChange]) -> list[FieldChange]:
    """The differences that reshape a VNet (address space, subnets): never applied to one we adopted.
    Its DNS servers are not: they are set on an adopted VNet as on ours."""
    return [f for f in fields if not f.path.startswith("properties.dhcpOptions")]

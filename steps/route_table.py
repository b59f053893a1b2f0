"""Step 6, route table: everything leaving the AKS subnet goes to the firewall, and the firewall's own
public IPs go straight to the Internet (the seed's guard against asymmetric routing), then the table
is associated with the AKS subnet.

BGP route propagation is disabled: a gateway in the VNet could otherwise advertise prefixes more
specific than 0.0.0.0/0 and carry node traffic past the firewall.

With kubenet, AKS writes its pod routes into this same table: they are not ours, so the diff ignores
them and a rewrite keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aks_lockdown.steps._common import (
    KNOWN_AFTER_APPLY,
    change_for,
    delete_if_created,
    get_or_none,
    is_ours,
    merged_tags,
    owned_changes,
    provisioning_state,
    resource_id,
    same_id,
    tag_changes,
    to_json,
    unchanged,
)

from aks_lockdown.engine.step import Diff, FieldChange, ResourceChange, Step

KIND = "Microsoft.Network/routeTables"
SUBNET_KIND = "Microsoft.Network/virtualNetworks/subnets"
# Properties of a subnet Azure computes; the association PUT sends the rest back unchanged.
SUBNET_READ_ONLY = frozenset(
    {
        "provisioningState",
        "ipConfigurations",
        "ipConfigurationProfiles",
        "privateEndpoints",
        "resourceNavigationLinks",
        "serviceAssociationLinks",
        "purpose",
    }
)


class RouteTableStep(Step):
    name = "route_table"
    title = "Route table"

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._table: dict[str, Any] | None = None
        self._subnet: dict[str, Any] | None = None

    @property
    def table_id(self) -> str:
        return resource_id(self.ctx, KIND, self.ctx.config.route_table_name)

    @property
    def subnet_id(self) -> str:
        vnet = resource_id(self.ctx, "Microsoft.Network/virtualNetworks", self.ctx.config.vnet_name)
        return f"{vnet}/subnets/{self.ctx.config.network.aks_subnet_name}"

    def _routes(self) -> list[dict[str, Any]]:
        prefix = self.ctx.config.deployment.prefix
        firewall = self.ctx.outputs.get("firewall") or {}
        private_ip = firewall.get("private_ip") or KNOWN_AFTER_APPLY
        public_ips = list(
            firewall.get("public_ips") or (self.ctx.outputs.get("public_ips") or {}).get("addresses") or []
        )
        if not public_ips:
            public_ips = [KNOWN_AFTER_APPLY] * self.ctx.config.firewall.public_ip_count
        routes = [
            {
                "name": f"{prefix}-fwrn",
                "properties": {
                    "addressPrefix": "0.0.0.0/0",
                    "nextHopType": "VirtualAppliance",
                    "nextHopIpAddress": private_ip,
                },
            }
        ]
        for i, ip in enumerate(public_ips):
            name = f"{prefix}-fwinternet" if i == 0 else f"{prefix}-fwinternet-{i + 1}"
            address = ip if ip == KNOWN_AFTER_APPLY else f"{ip}/32"
            routes.append({"name": name, "properties": {"addressPrefix": address, "nextHopType": "Internet"}})
        return routes

    def _properties(self) -> dict[str, Any]:
        return {"disableBgpRoutePropagation": True, "routes": self._routes()}

    def desired(self) -> Mapping[str, Any]:
        return {
            "location": self.ctx.config.azure.location,
            "properties": self._properties(),
            "association": {"subnet": self.subnet_id},
        }

    def resource_ids(self) -> list[str]:
        return [self.table_id]

    def _read(self) -> None:
        network = self.ctx.clients.network
        cfg = self.ctx.config
        self._table = to_json(
            get_or_none(lambda: network.route_tables.get(cfg.resource_group, cfg.route_table_name))
        )
        self._subnet = to_json(
            get_or_none(
                lambda: network.subnets.get(cfg.resource_group, cfg.vnet_name, cfg.network.aks_subnet_name)
            )
        )

    def _table_fields(self, actual: Mapping[str, Any]) -> list[FieldChange]:
        # Named routes are matched by name and only ours are compared: AKS's kubenet routes are not drift.
        # A route of ours that is missing shows as "properties.routes[<name>]": None -> the route.
        return owned_changes(self._properties(), actual.get("properties") or {}, "properties")

    def _associated(self) -> bool:
        route_table = ((self._subnet or {}).get("properties") or {}).get("routeTable") or {}
        return same_id(route_table.get("id"), self.table_id)

    def _outputs(self) -> dict[str, Any]:
        return {
            "id": self.table_id,
            "subnet_id": self.subnet_id,
            "routes": [r["name"] for r in self._routes()],
        }

    def check(self) -> Diff:
        self._read()
        fields: list[FieldChange] = []
        if self._table is not None:
            fields = self._table_fields(self._table)
            if is_ours(self.ctx, self.table_id, self._table):
                fields += tag_changes(self.ctx, self._table)
            else:
                self.ctx.mark_adopted(self.table_id)
        changes = [change_for(self.table_id, KIND, self._table, fields)]
        subnet_state = provisioning_state(self._subnet)
        if self._associated() and subnet_state != "Failed":
            changes.append(unchanged(self.subnet_id, SUBNET_KIND, "route table associated"))
        elif self._associated():
            # The link is recorded but the subnet's last operation failed: write it again to reconcile.
            field = FieldChange("properties.provisioningState", subnet_state, "Succeeded")
            note = "subnet found Failed: association written again"
            changes.append(ResourceChange("update", self.subnet_id, SUBNET_KIND, (field,), note))
        else:
            current = ((self._subnet or {}).get("properties") or {}).get("routeTable")
            field = FieldChange("properties.routeTable.id", (current or {}).get("id"), self.table_id)
            changes.append(
                ResourceChange("update", self.subnet_id, SUBNET_KIND, (field,), "associate route table")
            )
        diff = Diff(tuple(changes))
        return diff if diff.pending else Diff(diff.changes, self._outputs())

    def apply(self, diff: Diff) -> Mapping[str, Any]:
        if self._table is None and self._subnet is None:
            self._read()
        network = self.ctx.clients.network
        cfg = self.ctx.config
        table_change, subnet_change = diff.changes[0], diff.changes[1]
        if table_change.action != "none":
            ours = self._table is None or is_ours(self.ctx, self.table_id, self._table)
            props = self._properties()
            # Keep routes that are not ours (kubenet's pod routes, an operator's on-prem route).
            names = {r["name"].lower() for r in props["routes"]}
            for route in ((self._table or {}).get("properties") or {}).get("routes") or []:
                if route.get("name", "").lower() not in names:
                    props["routes"].append({"name": route["name"], "properties": _route_props(route)})
            body = {
                "location": (self._table or {}).get("location") or cfg.azure.location,
                "tags": merged_tags(self.ctx, self._table) if ours else dict(self._table.get("tags") or {}),
                "properties": props,
            }
            self.ctx.write(
                self.table_id,
                "create" if table_change.action == "create" else "update",
                lambda: network.route_tables.begin_create_or_update(
                    cfg.resource_group, cfg.route_table_name, body
                ),
                description=f"route table {cfg.route_table_name} ({len(props['routes'])} routes)",
            )
        if subnet_change.action != "none":
            self._set_association(self.table_id, "associate route table with the AKS subnet")
        return self._outputs()

    def _set_association(self, table_id: str | None, description: str) -> None:
        """PUT the AKS subnet with routeTable set (or removed), every other property as Azure has it."""
        network = self.ctx.clients.network
        cfg = self.ctx.config
        subnet = (
            to_json(network.subnets.get(cfg.resource_group, cfg.vnet_name, cfg.network.aks_subnet_name)) or {}
        )
        props = {k: v for k, v in (subnet.get("properties") or {}).items() if k not in SUBNET_READ_ONLY}
        if table_id is None:
            props.pop("routeTable", None)
        else:
            props["routeTable"] = {"id": table_id}
        body = {"name": cfg.network.aks_subnet_name, "properties": props}
        self.ctx.write(
            self.subnet_id,
            "update",
            lambda: network.subnets.begin_create_or_update(
                cfg.resource_group, cfg.vnet_name, cfg.network.aks_subnet_name, body
            ),
            description=description,
        )

    def rollback(self) -> None:
        if not self.ctx.created_by_deployment(self.table_id):
            return
        self._read()
        # Dissociate first: Azure refuses to delete a table in use (InUseRouteTableCannotBeDeleted).
        if self._subnet is not None and self._associated():
            self._set_association(None, "dissociate route table from the AKS subnet")
        network = self.ctx.clients.network
        cfg = self.ctx.config
        delete_if_created(
            self.ctx,
            self.table_id,
            lambda: network.route_tables.get(cfg.resource_group, cfg.route_table_name),
            lambda: network.route_tables.begin_delete(cfg.resource_group, cfg.route_table_name),
        )


def _route_props(route: Mapping[str, Any]) -> dict[str, Any]:
    props = dict(route.get("properties") or {})
    props.pop("provisioningState", None)
    return props

"""Step 3, "IP config": the firewall's front-end public IPs (Standard, Static, IPv4).

The seed creates one; production wants about 20 (SNAT ports: 2,496 per IP per firewall instance), so
the count comes from config. A Basic firewall also needs a public IP for its management
configuration: "<first name>-mgmt".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aks_lockdown.steps._common import (
    change_for,
    delete_if_created,
    get_or_none,
    is_ours,
    merged_tags,
    owned_changes,
    resource_id,
    tag_changes,
    to_json,
)

from aks_lockdown.engine.step import Diff, PlannedWrite, Step

KIND = "Microsoft.Network/publicIPAddresses"


class PublicIpStep(Step):
    name = "public_ips"
    title = "IP config"

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._actual: dict[str, dict[str, Any] | None] = {}

    def names(self) -> list[str]:
        names = list(self.ctx.config.public_ip_names)
        if self.ctx.config.firewall.sku == "Basic":
            names.append(management_ip_name(self.ctx.config))
        return names

    def ip_id(self, name: str) -> str:
        return resource_id(self.ctx, KIND, name)

    def _desired_ip(self) -> dict[str, Any]:
        return {
            "location": self.ctx.config.azure.location,
            "sku": {"name": "Standard", "tier": "Regional"},
            "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"},
        }

    def desired(self) -> Mapping[str, Any]:
        return {"ips": {name: self._desired_ip() for name in self.names()}}

    def resource_ids(self) -> list[str]:
        return [self.ip_id(n) for n in self.names()]

    def _read(self) -> dict[str, dict[str, Any] | None]:
        ips = self.ctx.clients.network.public_ip_addresses
        rg = self.ctx.config.resource_group
        # Bind name per iteration (a late-binding lambda would read the last name every time).
        self._actual = {n: to_json(get_or_none(lambda n=n: ips.get(rg, n))) for n in self.names()}
        return self._actual

    def _outputs(self, actual: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Any]:
        def address(name: str) -> str | None:
            return ((actual.get(name) or {}).get("properties") or {}).get("ipAddress")

        front = self.ctx.config.public_ip_names
        out: dict[str, Any] = {
            "ids": [self.ip_id(n) for n in front],
            "addresses": [address(n) for n in front],
        }
        if self.ctx.config.firewall.sku == "Basic":
            mgmt = management_ip_name(self.ctx.config)
            out["management_id"] = self.ip_id(mgmt)
            out["management_address"] = address(mgmt)
        return out

    def check(self) -> Diff:
        actual = self._read()
        desired = self._desired_ip()
        desired.pop("location")
        changes = []
        for name in self.names():
            ip = actual[name]
            rid = self.ip_id(name)
            fields = []
            if ip is not None:
                fields = owned_changes(desired, ip)
                if is_ours(self.ctx, rid, ip):
                    fields += tag_changes(self.ctx, ip)
                else:
                    self.ctx.mark_adopted(rid)
            changes.append(change_for(rid, KIND, ip, fields))
        diff = Diff(tuple(changes))
        return diff if diff.pending else Diff(diff.changes, self._outputs(actual))

    def apply(self, diff: Diff) -> Mapping[str, Any]:
        actual = self._actual or self._read()
        ips = self.ctx.clients.network.public_ip_addresses
        rg = self.ctx.config.resource_group
        names: list[str] = []
        writes: list[PlannedWrite] = []
        for change in diff.changes:
            if change.action == "none":
                continue
            name = change.resource_id.rsplit("/", 1)[1]
            old = actual.get(name)
            body = self._desired_ip()
            if old is not None:
                body["location"] = old.get("location") or body["location"]
            # Adopted IPs keep their tags: we must not mark what we did not create as ours.
            ours = old is None or is_ours(self.ctx, change.resource_id, old)
            body["tags"] = merged_tags(self.ctx, old) if ours else dict(old.get("tags") or {})
            names.append(name)
            writes.append(
                PlannedWrite(
                    change.resource_id,
                    "create" if change.action == "create" else "update",
                    lambda name=name, body=body: ips.begin_create_or_update(rg, name, body),
                    description=f"public IP {name}",
                )
            )
        # Public IPs are independent of one another: 20 of them are created together, not one by one.
        for name, result in zip(names, self.ctx.write_many(writes), strict=True):
            actual[name] = to_json(result)
        return self._outputs(actual)

    def rollback(self) -> None:
        ips = self.ctx.clients.network.public_ip_addresses
        rg = self.ctx.config.resource_group
        for name in reversed(self.names()):
            delete_if_created(
                self.ctx,
                self.ip_id(name),
                lambda name=name: ips.get(rg, name),
                lambda name=name: ips.begin_delete(rg, name),
            )


def management_ip_name(config: Any) -> str:
    return f"{config.public_ip_names[0]}-mgmt"

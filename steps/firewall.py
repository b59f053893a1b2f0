"""Step 5, firewall: one PUT carrying everything (the hazard: each firewall update takes minutes and
refuses to run beside another).

Every IP configuration (the first with AzureFirewallSubnet), the policy reference or the classic
collections, the SKU and DNS proxy go in that single write; a rerun with nothing changed writes nothing.

With the DNS proxy on, the VNet step has already pointed the VNet's DNS servers at the address Azure
gives the firewall (``firewall_private_ip``: the fourth of AzureFirewallSubnet). This step checks the
firewall really got it and fails, naming both addresses, if not: nodes would resolve through nothing.
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
    provisioning_state,
    resource_id,
    state_for_wait,
    strip_read_only,
    tag_changes,
    to_json,
)
from aks_lockdown.steps.firewall_rules import CLASSIC_KEYS, POLICY_KIND, classic_collections_json
from aks_lockdown.steps.public_ips import management_ip_name
from aks_lockdown.steps.virtual_network import (
    FIREWALL_MANAGEMENT_SUBNET,
    FIREWALL_SUBNET,
    firewall_private_ip,
)

from aks_lockdown.engine.step import TERMINAL_STATES, Diff, FieldChange, ResourceChange, Step
from aks_lockdown.errors import LockdownError

KIND = "Microsoft.Network/azureFirewalls"
DNS_PROXY_KEY = "Network.DNS.EnableProxy"


class FirewallAddressMismatch(LockdownError):
    """The firewall's private IP is not the one the VNet's DNS servers point at."""


class FirewallStep(Step):
    name = "firewall"
    title = "Firewall"

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._actual: dict[str, Any] | None = None

    @property
    def firewall_id(self) -> str:
        return resource_id(self.ctx, KIND, self.ctx.config.firewall_name)

    def _subnet_id(self, subnet: str) -> str:
        vnet = resource_id(self.ctx, "Microsoft.Network/virtualNetworks", self.ctx.config.vnet_name)
        return f"{vnet}/subnets/{subnet}"

    def _ip_id(self, name: str) -> str:
        return resource_id(self.ctx, "Microsoft.Network/publicIPAddresses", name)

    def _classic(self) -> dict[str, Any]:
        # The rules step computed them; recompute only when it has not run (a plan of a fresh deploy).
        rules = self.ctx.outputs.get("rules") or {}
        return dict(rules.get("classic") or classic_collections_json(self.ctx))

    def _properties(self) -> dict[str, Any]:
        cfg = self.ctx.config
        base = cfg.ip_config_name
        ip_configs = []
        for i, ip_name in enumerate(cfg.public_ip_names):
            props: dict[str, Any] = {"publicIPAddress": {"id": self._ip_id(ip_name)}}
            if i == 0:
                # Only the first configuration names the subnet; Azure rejects it on the others.
                props = {"subnet": {"id": self._subnet_id(FIREWALL_SUBNET)}, **props}
            ip_configs.append({"name": base if i == 0 else f"{base}-{i + 1}", "properties": props})
        properties: dict[str, Any] = {
            "sku": {"name": "AZFW_VNet", "tier": cfg.firewall.sku},
            "ipConfigurations": ip_configs,
        }
        if cfg.firewall.sku == "Basic":
            properties["managementIpConfiguration"] = {
                "name": f"{base}-mgmt",
                "properties": {
                    "subnet": {"id": self._subnet_id(FIREWALL_MANAGEMENT_SUBNET)},
                    "publicIPAddress": {"id": self._ip_id(management_ip_name(cfg))},
                },
            }
        if cfg.firewall.rules == "policy":
            # DNS proxy and threat intelligence live in the policy in this mode.
            properties["firewallPolicy"] = {"id": resource_id(self.ctx, POLICY_KIND, cfg.policy_name)}
        else:
            properties.update(self._classic())
            properties["threatIntelMode"] = "Alert"
            if cfg.firewall.dns_proxy:
                properties["additionalProperties"] = {DNS_PROXY_KEY: "true"}
        return properties

    def desired(self) -> Mapping[str, Any]:
        return {"location": self.ctx.config.azure.location, "properties": self._properties()}

    def resource_ids(self) -> list[str]:
        return [self.firewall_id]

    def _read(self) -> dict[str, Any] | None:
        firewalls = self.ctx.clients.network.azure_firewalls
        cfg = self.ctx.config
        self._actual = to_json(get_or_none(lambda: firewalls.get(cfg.resource_group, cfg.firewall_name)))
        return self._actual

    def _field_changes(self, actual: Mapping[str, Any]) -> list[FieldChange]:
        desired = self._properties()
        props = strip_read_only(actual.get("properties") or {})
        fields: list[FieldChange] = []
        for key, value in desired.items():
            # Named lists are strict: an extra IP configuration or rule collection is drift.
            strict = key == "ipConfigurations" or key in CLASSIC_KEYS
            fields += owned_changes(value, props.get(key), f"properties.{key}", strict_names=strict)
        if self.ctx.config.firewall.rules == "policy":
            for key in CLASSIC_KEYS:  # left over from classic mode: the PUT clears them
                if props.get(key):
                    fields.append(FieldChange(f"properties.{key}", props[key], []))
        elif not self.ctx.config.firewall.dns_proxy:
            current = (props.get("additionalProperties") or {}).get(DNS_PROXY_KEY)
            if str(current).lower() == "true":
                fields.append(FieldChange(f"properties.additionalProperties.{DNS_PROXY_KEY}", current, None))
        return fields

    def _outputs(self, actual: Mapping[str, Any]) -> dict[str, Any]:
        configs = (actual.get("properties") or {}).get("ipConfigurations") or []
        first = next((c for c in configs if c.get("name") == self.ctx.config.ip_config_name), None)
        private_ip = ((first or {}).get("properties") or {}).get("privateIPAddress")
        self._check_private_ip(private_ip)
        ips = self.ctx.outputs.get("public_ips") or {}
        return {
            "id": self.firewall_id,
            "private_ip": private_ip,
            "public_ips": list(ips.get("addresses") or []),
            "public_ip_ids": [self._ip_id(n) for n in self.ctx.config.public_ip_names],
        }

    def _check_private_ip(self, private_ip: str | None) -> None:
        """With the DNS proxy on, the VNet sends the nodes' DNS to ``firewall_private_ip``: the
        firewall must be there, or nothing resolves. Azure has always given that address; if it ever
        does not, stop here rather than let the cluster come up unable to resolve a name."""
        cfg = self.ctx.config
        if not cfg.firewall.dns_proxy or not private_ip:
            return
        expected = firewall_private_ip(cfg)
        if private_ip != expected:
            raise FirewallAddressMismatch(
                f"firewall {cfg.firewall_name} has private IP {private_ip}, but the VNet's DNS servers "
                f"point at {expected} (the fourth address of {FIREWALL_SUBNET} "
                f"{cfg.network.firewall_subnet_cidr}, where Azure places the firewall): the nodes would "
                "not reach the firewall's DNS proxy, so the deployment stops before the cluster. Free "
                f"{expected} in {FIREWALL_SUBNET} and recreate the firewall (teardown, then deploy)"
            )

    def check(self) -> Diff:
        actual = self._read()
        if actual is None:
            return Diff((ResourceChange("create", self.firewall_id, KIND),))
        fields = self._field_changes(actual)
        if is_ours(self.ctx, self.firewall_id, actual):
            fields += tag_changes(self.ctx, actual)
        else:
            self.ctx.mark_adopted(self.firewall_id)
        state = provisioning_state(actual)
        if fields and state and state not in TERMINAL_STATES:
            note = f"found {state}: waiting for the operation in flight before writing"
            return Diff((ResourceChange("wait", self.firewall_id, KIND, tuple(fields), note),))
        change = change_for(self.firewall_id, KIND, actual, fields)
        return Diff((change,), self._outputs(actual) if change.action == "none" else {})

    def apply(self, diff: Diff) -> Mapping[str, Any]:
        cfg = self.ctx.config
        firewalls = self.ctx.clients.network.azure_firewalls
        change = diff.changes[0]
        if change.action == "wait":
            self.ctx.wait_for(
                self.firewall_id, lambda: state_for_wait(self._read()), description="firewall busy"
            )
            change = self.check().changes[0]
        actual = None if change.action == "create" else (self._actual or self._read())
        if change.action == "none":
            return self._outputs(actual or {})
        ours = actual is None or is_ours(self.ctx, self.firewall_id, actual)
        body = {
            "location": (actual or {}).get("location") or cfg.azure.location,
            "tags": merged_tags(self.ctx, actual) if ours else dict((actual or {}).get("tags") or {}),
            "properties": self._properties(),
        }
        if (actual or {}).get("zones"):
            body["zones"] = actual["zones"]  # zones cannot change after create
        n_ips = len(cfg.public_ip_names)
        result = self.ctx.write(
            self.firewall_id,
            "create" if change.action == "create" else "update",
            lambda: firewalls.begin_create_or_update(cfg.resource_group, cfg.firewall_name, body),
            description=f"firewall {cfg.firewall_name}: {n_ips} IP config(s), {cfg.firewall.rules} rules",
        )
        self._actual = to_json(result)
        return self._outputs(self._actual or {})

    def rollback(self) -> None:
        cfg = self.ctx.config
        firewalls = self.ctx.clients.network.azure_firewalls
        delete_if_created(
            self.ctx,
            self.firewall_id,
            lambda: firewalls.get(cfg.resource_group, cfg.firewall_name),
            lambda: firewalls.begin_delete(cfg.resource_group, cfg.firewall_name),
        )

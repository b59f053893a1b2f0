"""What verify reads from Azure: GETs only, as REST JSON (camelCase, as on the wire).

Everything is read once and cached, so the audit's checks are pure functions of this view. A resource
that does not exist reads as None (the checks then say it is missing); any other error propagates.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from aks_lockdown.arm.clients import ClientFactory
    from aks_lockdown.config import Config
    from aks_lockdown.egress.evaluate import EffectiveRules

T = TypeVar("T")
JSON = dict[str, Any]

NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"


def to_json(obj: Any) -> JSON | None:
    """REST JSON of an SDK model: typespec models (network, containerservice) or msrest ones."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        as_dict = getattr(obj, "as_dict", None)
        return as_dict() if callable(as_dict) else dict(obj)
    serialize = getattr(obj, "serialize", None)
    if callable(serialize):
        return serialize(keep_readonly=True)
    raise TypeError(f"not an SDK model: {type(obj).__name__}")


def props(resource: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict((resource or {}).get("properties") or {})


def get_or_none(read: Callable[[], T]) -> T | None:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    try:
        return read()
    except ResourceNotFoundError:
        return None
    except HttpResponseError as exc:
        if exc.status_code == 404:
            return None
        raise


def name_of(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def rg_of(resource_id: str) -> str:
    parts = resource_id.split("/")
    lower = [p.lower() for p in parts]
    return parts[lower.index("resourcegroups") + 1] if "resourcegroups" in lower else ""


def same_id(a: str | None, b: str | None) -> bool:
    return (a or "").rstrip("/").lower() == (b or "").rstrip("/").lower()


@dataclass
class AzureView:
    """The deployment as Azure has it now, by the config's derived names."""

    config: Config
    clients: ClientFactory
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # ---------------------------------------------------------------------------------- ids
    @cached_property
    def rg_id(self) -> str:
        return f"/subscriptions/{self.clients.subscription_id}/resourceGroups/{self.config.resource_group}"

    def rid(self, provider_type: str, name: str) -> str:
        return f"{self.rg_id}/providers/{provider_type}/{name}"

    @property
    def vnet_id(self) -> str:
        return self.rid("Microsoft.Network/virtualNetworks", self.config.vnet_name)

    @property
    def subnet_id(self) -> str:
        return f"{self.vnet_id}/subnets/{self.config.network.aks_subnet_name}"

    @property
    def route_table_id(self) -> str:
        return self.rid("Microsoft.Network/routeTables", self.config.route_table_name)

    # -------------------------------------------------------------------------------- reads
    @cached_property
    def vnet(self) -> JSON | None:
        cfg, net = self.config, self.clients.network
        return to_json(get_or_none(lambda: net.virtual_networks.get(cfg.resource_group, cfg.vnet_name)))

    @cached_property
    def subnet(self) -> JSON | None:
        cfg, net = self.config, self.clients.network
        return to_json(
            get_or_none(
                lambda: net.subnets.get(cfg.resource_group, cfg.vnet_name, cfg.network.aks_subnet_name)
            )
        )

    @cached_property
    def route_table(self) -> JSON | None:
        cfg, net = self.config, self.clients.network
        return to_json(get_or_none(lambda: net.route_tables.get(cfg.resource_group, cfg.route_table_name)))

    @cached_property
    def firewall(self) -> JSON | None:
        cfg, net = self.config, self.clients.network
        return to_json(get_or_none(lambda: net.azure_firewalls.get(cfg.resource_group, cfg.firewall_name)))

    @cached_property
    def firewall_private_ip(self) -> str | None:
        for cfg in props(self.firewall).get("ipConfigurations") or []:
            ip = props(cfg).get("privateIPAddress")
            if ip:
                return str(ip)
        return None

    @cached_property
    def firewall_public_ips(self) -> list[tuple[str, str]]:
        """(public IP resource name, address) of each of the firewall's frontends, in order."""
        net = self.clients.network
        refs = [
            str((props(c).get("publicIPAddress") or {}).get("id") or "")
            for c in props(self.firewall).get("ipConfigurations") or []
        ]
        refs = [r for r in refs if r]
        # One list call for the resource group rather than a GET per IP (production has 20 or more).
        listed = get_or_none(lambda: list(net.public_ip_addresses.list(self.config.resource_group))) or []
        known = {str(j.get("id", "")).lower(): j for p in listed if (j := to_json(p)) is not None}
        out: list[tuple[str, str]] = []
        for pip_id in refs:
            pip = known.get(pip_id.lower())
            if pip is None:  # a frontend from another resource group
                pip = to_json(get_or_none(lambda i=pip_id: net.public_ip_addresses.get(rg_of(i), name_of(i))))
            address = props(pip).get("ipAddress")
            if address:
                out.append((name_of(pip_id), str(address)))
        return out

    @property
    def policy_id(self) -> str | None:
        return (props(self.firewall).get("firewallPolicy") or {}).get("id")

    @cached_property
    def policy(self) -> JSON | None:
        if not self.policy_id:
            return None
        return self._policy(self.policy_id)

    def _policy(self, policy_id: str) -> JSON | None:
        net = self.clients.network
        return to_json(get_or_none(lambda: net.firewall_policies.get(rg_of(policy_id), name_of(policy_id))))

    @cached_property
    def policy_groups(self) -> list[JSON]:
        """Rule collection groups of the firewall's policy and of its base policies (inherited rules)."""
        groups: list[JSON] = []
        seen: set[str] = set()
        policy_id = self.policy_id
        while policy_id and policy_id.lower() not in seen:
            seen.add(policy_id.lower())
            pol = self.policy if same_id(policy_id, self.policy_id) else self._policy(policy_id)
            if pol is None:
                break
            listing = self.clients.network.firewall_policy_rule_collection_groups.list(
                rg_of(policy_id), name_of(policy_id)
            )
            groups.extend(j for g in listing if (j := to_json(g)) is not None)
            policy_id = (props(pol).get("basePolicy") or {}).get("id")
        return groups

    @cached_property
    def dns_proxy(self) -> bool:
        if self.policy_id:
            return bool((props(self.policy).get("dnsSettings") or {}).get("enableProxy"))
        extra = props(self.firewall).get("additionalProperties") or {}
        return str(extra.get("Network.DNS.EnableProxy", "")).lower() == "true"

    @property
    def dns_proxy_where(self) -> str:
        """Where the DNS proxy setting lives, for messages."""
        if self.policy_id:
            return f"firewall policy {name_of(self.policy_id)} (dnsSettings.enableProxy)"
        return f"firewall {self.config.firewall_name} (additionalProperties Network.DNS.EnableProxy)"

    def effective_rules(self, *, dns_proxy: bool | None = None) -> EffectiveRules:
        """The rules as the firewall applies them (the shared evaluator reads ARM JSON)."""
        from aks_lockdown.egress.evaluate import EffectiveRules

        proxy = self.dns_proxy if dns_proxy is None else dns_proxy
        key = f"rules:{proxy}"
        if key not in self._cache:
            cloud, location = self.config.azure.cloud, self.config.azure.location
            if self.policy_id:
                rules = EffectiveRules.from_policy_groups(
                    self.policy_groups, dns_proxy=proxy, cloud=cloud, location=location
                )
            else:
                rules = EffectiveRules.from_classic_firewall(
                    self.firewall or {}, dns_proxy=proxy, cloud=cloud, location=location
                )
            self._cache[key] = rules
        return self._cache[key]

    @cached_property
    def cluster(self) -> JSON | None:
        cfg, cs = self.config, self.clients.containerservice
        return to_json(get_or_none(lambda: cs.managed_clusters.get(cfg.resource_group, cfg.cluster_name)))

    @property
    def private_cluster(self) -> bool:
        return bool((props(self.cluster).get("apiServerAccessProfile") or {}).get("enablePrivateCluster"))

    @cached_property
    def principal_id(self) -> str | None:
        """The cluster identity's object ID: the managed identity's principal, or the config's SP."""
        identity = self.config.cluster.identity
        if identity.type == "service-principal":
            return identity.object_id
        cfg, msi = self.config, self.clients.msi
        found = to_json(
            get_or_none(lambda: msi.user_assigned_identities.get(cfg.resource_group, cfg.identity_name))
        )
        return props(found).get("principalId")

    def role_assignments(self, scope: str) -> list[JSON]:
        """The principal's assignments that apply at ``scope`` (made there or at a scope above it)."""
        principal = self.principal_id
        if not principal:
            return []
        assignments = self.clients.authorization.role_assignments
        query = f"principalId eq '{principal}'"
        # A scope that does not exist (VNet deleted) has no assignments rather than being an error.
        listing = get_or_none(lambda: list(assignments.list_for_scope(scope, filter=query))) or []
        out = []
        target = scope.rstrip("/").lower()
        for item in listing:
            data = to_json(item) or {}
            p = props(data)
            at = str(p.get("scope") or "").rstrip("/").lower()
            if str(p.get("principalId", "")).lower() != principal.lower():
                continue
            if target == at or target.startswith(at + "/"):
                out.append(data)
        return out


def in_range(address: str, ranges: list[str]) -> bool:
    """True when ``address`` falls in one of ``ranges`` (CIDRs or plain addresses)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for r in ranges:
        try:
            if ip in ipaddress.ip_network(r, strict=False):
                return True
        except ValueError:
            continue
    return False

"""Catalog + config -> one neutral rule model -> Azure Firewall Policy groups or classic collections.

Least privilege: sources are the AKS subnet (never `*` unless `firewall.allow_any_source`), tunnel
ports go to the region's `AzureCloud.<region>` service tag, placeholders are filled, and conditional
catalog rows (custom DNS IP, API server IP, workload registries) are never compiled.

Rendered names and priorities (stable, so a re-run compares equal and updates in place):

  Firewall Policy rule collection groups
    aks-lockdown-dnat    priority 100   collection aks-dnat (DNAT, 100)
    aks-lockdown-egress  priority 200   collections aks-network (Allow, 100), aks-application
                                        (Allow, 200), extra-network (Allow, 300),
                                        extra-application (Allow, 400)
  DNAT lives in its own group so an ingress change rewrites only that group. Empty collections are
  left out; the DNAT group is always rendered (with no collections when there is no DNAT rule) so
  removing the last DNAT rule clears it.

  Classic firewall collections (priorities are per rule type there)
    network aksfwnr (100), application aksfwar (100), nat aksfwdnat (100),
    extras: network aksfwnr-extra (200), application aksfwar-extra (200)

The Azure SDK is imported inside the renderers only: building a RuleSet stays cheap.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aks_lockdown.egress import catalog
from aks_lockdown.egress.catalog import AKS_FQDN_TAG, EgressRow
from aks_lockdown.errors import ConfigError

if TYPE_CHECKING:
    from azure.mgmt.network.models import FirewallPolicyRuleCollectionGroup

    from aks_lockdown.config import Config

EGRESS_GROUP = "aks-lockdown-egress"
EGRESS_GROUP_PRIORITY = 200
DNAT_GROUP = "aks-lockdown-dnat"
DNAT_GROUP_PRIORITY = 100

# (name, priority) of each rendered collection.
POLICY_COLLECTIONS = {
    "network": ("aks-network", 100),
    "application": ("aks-application", 200),
    "extra-network": ("extra-network", 300),
    "extra-application": ("extra-application", 400),
    "dnat": ("aks-dnat", 100),
}
CLASSIC_COLLECTIONS = {
    "network": ("aksfwnr", 100),
    "application": ("aksfwar", 100),
    "extra-network": ("aksfwnr-extra", 200),
    "extra-application": ("aksfwar-extra", 200),
    "dnat": ("aksfwdnat", 100),
}

# Used as the NAT destination when the firewall's public IPs are not known yet (plan before deploy).
PUBLIC_IP_PLACEHOLDER = "<firewall-public-ip>"


# ------------------------------------------------------------------------------------ the model
@dataclass(frozen=True)
class NetworkRuleSpec:
    name: str
    sources: tuple[str, ...]
    destination_addresses: tuple[str, ...]  # IPs, CIDRs, service tags
    destination_fqdns: tuple[str, ...]  # need the firewall's DNS proxy
    ports: tuple[str, ...]
    protocols: tuple[str, ...]  # TCP | UDP | ICMP | Any
    row_ids: tuple[str, ...] = ()
    extra: bool = False  # from config.firewall.extra_rules

    @property
    def destinations(self) -> tuple[str, ...]:
        return self.destination_addresses + self.destination_fqdns


@dataclass(frozen=True)
class ApplicationRuleSpec:
    name: str
    sources: tuple[str, ...]
    target_fqdns: tuple[str, ...]
    fqdn_tags: tuple[str, ...]
    protocols: tuple[tuple[str, int], ...]  # (Http | Https, port)
    row_ids: tuple[str, ...] = ()
    extra: bool = False

    @property
    def destinations(self) -> tuple[str, ...]:
        return self.target_fqdns + self.fqdn_tags

    @property
    def ports(self) -> tuple[str, ...]:
        return tuple(str(p) for _, p in self.protocols)


@dataclass(frozen=True)
class NatRuleSpec:
    name: str
    sources: tuple[str, ...]
    destination_addresses: tuple[str, ...]  # the firewall's public IP
    ports: tuple[str, ...]
    protocols: tuple[str, ...]
    translated_address: str
    translated_port: str
    row_ids: tuple[str, ...] = ()

    @property
    def destinations(self) -> tuple[str, ...]:
        return self.destination_addresses


@dataclass(frozen=True)
class RuleSet:
    cloud: str
    location: str
    network_rules: tuple[NetworkRuleSpec, ...]
    application_rules: tuple[ApplicationRuleSpec, ...]
    nat_rules: tuple[NatRuleSpec, ...]
    compiled_rows: tuple[str, ...]  # catalog row ids the rules allow, in catalog order

    def all_rules(self) -> tuple[NetworkRuleSpec | ApplicationRuleSpec | NatRuleSpec, ...]:
        return self.network_rules + self.application_rules + self.nat_rules


# ----------------------------------------------------------------------------------- the inputs
@dataclass(frozen=True)
class ExtraRuleSpec:
    name: str
    kind: str  # network | application
    protocols: tuple[str, ...]
    destination_addresses: tuple[str, ...] = ()
    destination_fqdns: tuple[str, ...] = ()
    destination_ports: tuple[str, ...] = ()
    source_addresses: tuple[str, ...] = ()  # empty: the AKS subnet


@dataclass(frozen=True)
class DnatSpec:
    name: str
    protocol: str
    firewall_port: int
    target_ip: str
    target_port: int


@dataclass(frozen=True)
class RuleInputs:
    cloud: str
    location: str
    edition: str
    features: tuple[str, ...]
    fqdn_mode: str  # tag | explicit | both
    tunnel_ports: bool
    dns_proxy: bool
    aks_subnet_cidr: str
    allow_any_source: bool = False
    extra_rules: tuple[ExtraRuleSpec, ...] = ()
    dnat: tuple[DnatSpec, ...] = ()
    firewall_public_ips: tuple[str, ...] = ()
    # Named in ConfigError messages only; not part of what is compiled.
    config_file: str = field(default="config", compare=False)

    @classmethod
    def from_config(
        cls,
        config: Config,
        firewall_public_ips: list[str] | tuple[str, ...] = (),
        *,
        config_file: str = "config",
    ) -> RuleInputs:
        fw = config.firewall
        extras = tuple(
            ExtraRuleSpec(
                name=r.name,
                kind=r.kind,
                protocols=tuple(r.protocols),
                destination_addresses=tuple(r.destination_addresses),
                destination_fqdns=tuple(r.destination_fqdns),
                destination_ports=tuple(r.destination_ports),
                source_addresses=tuple(r.source_addresses),
            )
            for r in fw.extra_rules
        )
        dnat = tuple(
            DnatSpec(d.name, d.protocol, d.firewall_port, d.target_ip, d.target_port)
            for d in config.ingress.dnat
        )
        return cls(
            cloud=config.azure.cloud,
            location=config.azure.location,
            edition=fw.egress_edition,
            features=tuple(fw.features),
            fqdn_mode=fw.fqdn_mode,
            tunnel_ports=fw.tunnel_ports,
            dns_proxy=fw.dns_proxy,
            aks_subnet_cidr=config.network.aks_subnet_cidr,
            allow_any_source=fw.allow_any_source,
            extra_rules=extras,
            dnat=dnat,
            firewall_public_ips=tuple(firewall_public_ips),
            config_file=config_file,
        )

    @property
    def sources(self) -> tuple[str, ...]:
        return ("*",) if self.allow_any_source else (self.aks_subnet_cidr,)


# -------------------------------------------------------------------------------- the compiler
def compiled_rows(inputs: RuleInputs) -> list[EgressRow]:
    """The catalog rows that become rules: edition + features, minus conditional and gated-off rows."""
    out = []
    for row in catalog.rows(inputs.cloud, inputs.edition, inputs.features, inputs.location):
        if row.conditional:
            continue
        if row.gate == "tunnel_ports" and not inputs.tunnel_ports:
            continue
        out.append(row)
    return out


def compile_rules(inputs: RuleInputs) -> RuleSet:
    rows = compiled_rows(inputs)
    src = inputs.sources
    net = [_network_rule(r, src) for r in rows if r.kind == "network"]
    app = _application_rules([r for r in rows if r.kind == "application"], inputs)
    net_extra, app_extra = _extra_rules(inputs)
    nat = _nat_rules(inputs)
    ruled = {i for r in net + app for i in r.row_ids}
    ruleset = RuleSet(
        cloud=inputs.cloud,
        location=inputs.location,
        network_rules=tuple(net + net_extra),
        application_rules=tuple(app + app_extra),
        nat_rules=tuple(nat),
        # Only rows some rule actually allows: in "tag" mode, edition rows the tag does not carry
        # (the seed's *.cdn.mscr.io, acs-mirror) are dropped, which missing_required then reports
        # if today's requirements still need them.
        compiled_rows=tuple(r.id for r in rows if r.id in ruled),
    )
    _check_dns_proxy(ruleset, inputs)
    return ruleset


def _network_rule(row: EgressRow, sources: tuple[str, ...]) -> NetworkRuleSpec:
    is_fqdn = row.dest_type == "fqdn"
    return NetworkRuleSpec(
        name=row.rule_name or row.id.rsplit(".", 1)[-1],
        sources=sources,
        destination_addresses=() if is_fqdn else (row.target,),
        destination_fqdns=(row.target,) if is_fqdn else (),
        ports=(str(row.port),),
        protocols=(row.protocol,),
        row_ids=(row.id,),
    )


def _application_rules(rows: list[EgressRow], inputs: RuleInputs) -> list[ApplicationRuleSpec]:
    src = inputs.sources
    core = [r for r in rows if not r.feature]
    out: list[ApplicationRuleSpec] = []
    if inputs.fqdn_mode in ("tag", "both"):
        members = catalog.fqdn_tag_members(AKS_FQDN_TAG, inputs.cloud, inputs.location)
        covered = tuple(r.id for r in core if any(fqdn_matches(m, r.target) for m in members))
        # Http:80 as well, as the seed's walkthrough does: the tag's endpoints are on both.
        out.append(
            ApplicationRuleSpec(
                "aks-fqdn-tag", src, (), (AKS_FQDN_TAG,), (("Http", 80), ("Https", 443)), covered
            )
        )
    explicit = core if inputs.fqdn_mode in ("explicit", "both") else []
    # Feature rows are always explicit: the FQDN tag covers only core AKS.
    explicit = explicit + [r for r in rows if r.feature]
    groups: dict[tuple[str, str, int], list[EgressRow]] = {}
    for r in explicit:
        groups.setdefault((r.feature or "aks-core", r.protocol, r.port), []).append(r)
    for (feature, proto, port), members_rows in groups.items():
        fqdns = tuple(dict.fromkeys(r.target for r in members_rows))
        out.append(
            ApplicationRuleSpec(
                name=f"{feature}-{proto.lower()}",
                sources=src,
                target_fqdns=fqdns,
                fqdn_tags=(),
                protocols=((proto, port),),
                row_ids=tuple(r.id for r in members_rows),
            )
        )
    return out


def _extra_rules(inputs: RuleInputs) -> tuple[list[NetworkRuleSpec], list[ApplicationRuleSpec]]:
    net: list[NetworkRuleSpec] = []
    app: list[ApplicationRuleSpec] = []
    for x in inputs.extra_rules:
        _check_extra(x, inputs)
        src = x.source_addresses or inputs.sources
        if x.kind == "network":
            net.append(
                NetworkRuleSpec(
                    name=x.name,
                    sources=src,
                    destination_addresses=x.destination_addresses,
                    destination_fqdns=x.destination_fqdns,
                    ports=x.destination_ports,
                    protocols=x.protocols,
                    extra=True,
                )
            )
        else:
            protos = tuple(_parse_app_protocol(p, inputs.config_file, x.name) for p in x.protocols)
            app.append(ApplicationRuleSpec(x.name, src, x.destination_fqdns, (), protos, extra=True))
    return net, app


def _check_extra(x: ExtraRuleSpec, inputs: RuleInputs) -> None:
    def refuse(message: str) -> ConfigError:
        return ConfigError(inputs.config_file, "firewall.extra_rules", f"rule {x.name!r}: {message}")

    if "*" in x.source_addresses and not inputs.allow_any_source:
        raise refuse(
            "source '*' opens egress to every host; name the subnet or set firewall.allow_any_source"
        )
    if x.kind == "network" and not (x.destination_addresses or x.destination_fqdns):
        raise refuse("a network rule needs destination_addresses or destination_fqdns")
    if x.kind == "network" and not x.destination_ports:
        raise refuse("a network rule needs destination_ports")
    if x.kind == "application" and not x.destination_fqdns:
        raise refuse("an application rule needs destination_fqdns")


def _parse_app_protocol(text: str, config_file: str, rule: str) -> tuple[str, int]:
    # "Https:443" / "http=80" (the az CLI spelling) / "https".
    name, _, port = text.replace("=", ":").partition(":")
    proto = {"http": "Http", "https": "Https", "mssql": "Mssql"}.get(name.strip().lower())
    if proto is None or (port and not port.strip().isdigit()):
        raise ConfigError(config_file, "firewall.extra_rules", f"rule {rule!r}: bad protocol {text!r}")
    default = {"Http": 80, "Https": 443, "Mssql": 1433}[proto]
    return proto, int(port) if port else default


def _nat_rules(inputs: RuleInputs) -> list[NatRuleSpec]:
    # The first public IP: the one the seed's walkthrough uses and operators browse to. Any of the
    # firewall's IPs would work for DNAT; using one keeps the rule set stable when IPs are added.
    dest = inputs.firewall_public_ips[0] if inputs.firewall_public_ips else PUBLIC_IP_PLACEHOLDER
    return [
        NatRuleSpec(
            name=d.name,
            sources=("*",),  # inbound from the internet: any source is the point of a public service
            destination_addresses=(dest,),
            ports=(str(d.firewall_port),),
            protocols=(d.protocol,),
            translated_address=d.target_ip,
            translated_port=str(d.target_port),
        )
        for d in inputs.dnat
    ]


def _check_dns_proxy(ruleset: RuleSet, inputs: RuleInputs) -> None:
    if inputs.dns_proxy:
        return
    offenders = [r for r in ruleset.network_rules if r.destination_fqdns]
    if offenders:
        names = ", ".join(f"{r.name} ({', '.join(r.destination_fqdns)})" for r in offenders)
        raise ConfigError(
            inputs.config_file,
            "firewall.dns_proxy",
            f"network rules with FQDN destinations need the firewall's DNS proxy: {names}; "
            "set firewall.dns_proxy = true",
        )


# --------------------------------------------------------------------------- FQDN matching
def fqdn_matches(pattern: str, fqdn: str) -> bool:
    """Azure Firewall FQDN matching: exact (case-insensitive), `*` anything, `*.x` any subdomain of x.

    A wildcard pattern also matches a wildcard fqdn under it ("*.x" covers "*.a.x"), so coverage
    of catalog rows can be checked pattern against pattern.
    """
    p, f = pattern.lower().rstrip("."), fqdn.lower().rstrip(".")
    if p == "*" or p == f:
        return True
    if p.startswith("*."):
        suffix = p[1:]  # ".x"
        return f.endswith(suffix) and len(f) > len(suffix)
    return False


# ------------------------------------------------------------------------------- renderers
def render_policy_groups(ruleset: RuleSet) -> dict[str, FirewallPolicyRuleCollectionGroup]:
    """Exactly two rule collection groups: egress (allow) and DNAT, keyed by name."""
    from azure.mgmt.network import models as m

    def net_rule(r: NetworkRuleSpec) -> Any:
        return m.NetworkRule(
            name=r.name,
            ip_protocols=list(r.protocols),
            source_addresses=list(r.sources),
            destination_addresses=_opt(r.destination_addresses),
            destination_fqdns=_opt(r.destination_fqdns),
            destination_ports=list(r.ports),
        )

    def app_rule(r: ApplicationRuleSpec) -> Any:
        return m.ApplicationRule(
            name=r.name,
            source_addresses=list(r.sources),
            protocols=[
                m.FirewallPolicyRuleApplicationProtocol(protocol_type=t, port=p) for t, p in r.protocols
            ],
            target_fqdns=_opt(r.target_fqdns),
            fqdn_tags=_opt(r.fqdn_tags),
        )

    def nat_rule(r: NatRuleSpec) -> Any:
        return m.NatRule(
            name=r.name,
            ip_protocols=list(r.protocols),
            source_addresses=list(r.sources),
            destination_addresses=_opt(r.destination_addresses),
            destination_ports=list(r.ports),
            translated_address=r.translated_address,
            translated_port=r.translated_port,
        )

    def filter_collection(key: str, rules: list[Any]) -> Any:
        name, prio = POLICY_COLLECTIONS[key]
        return m.FirewallPolicyFilterRuleCollection(
            name=name,
            priority=prio,
            action=m.FirewallPolicyFilterRuleCollectionAction(type="Allow"),
            rules=rules,
        )

    collections = []
    parts = (
        ("network", [net_rule(r) for r in ruleset.network_rules if not r.extra]),
        ("application", [app_rule(r) for r in ruleset.application_rules if not r.extra]),
        ("extra-network", [net_rule(r) for r in ruleset.network_rules if r.extra]),
        ("extra-application", [app_rule(r) for r in ruleset.application_rules if r.extra]),
    )
    for key, rules in parts:
        if rules:
            collections.append(filter_collection(key, rules))
    egress = m.FirewallPolicyRuleCollectionGroup(
        name=EGRESS_GROUP,
        properties=m.FirewallPolicyRuleCollectionGroupProperties(
            priority=EGRESS_GROUP_PRIORITY, rule_collections=collections
        ),
    )
    nat_collections = []
    if ruleset.nat_rules:
        name, prio = POLICY_COLLECTIONS["dnat"]
        nat_collections.append(
            m.FirewallPolicyNatRuleCollection(
                name=name,
                priority=prio,
                action=m.FirewallPolicyNatRuleCollectionAction(type="DNAT"),
                rules=[nat_rule(r) for r in ruleset.nat_rules],
            )
        )
    dnat = m.FirewallPolicyRuleCollectionGroup(
        name=DNAT_GROUP,
        properties=m.FirewallPolicyRuleCollectionGroupProperties(
            priority=DNAT_GROUP_PRIORITY, rule_collections=nat_collections
        ),
    )
    return {DNAT_GROUP: dnat, EGRESS_GROUP: egress}


@dataclass
class ClassicCollections:
    """Rule collections for a classic (non-policy) azureFirewalls resource."""

    network: list[Any] = field(default_factory=list)  # AzureFirewallNetworkRuleCollection
    application: list[Any] = field(default_factory=list)  # AzureFirewallApplicationRuleCollection
    nat: list[Any] = field(default_factory=list)  # AzureFirewallNatRuleCollection

    def to_arm_json(self) -> dict[str, list[dict[str, Any]]]:
        """The three arrays of an azureFirewalls body's `properties`, in REST (camelCase) form."""
        return {
            "networkRuleCollections": [c.as_dict() for c in self.network],
            "applicationRuleCollections": [c.as_dict() for c in self.application],
            "natRuleCollections": [c.as_dict() for c in self.nat],
        }


def render_classic(ruleset: RuleSet) -> ClassicCollections:
    from azure.mgmt.network import models as m

    def net_rule(r: NetworkRuleSpec) -> Any:
        return m.AzureFirewallNetworkRule(
            name=r.name,
            protocols=list(r.protocols),
            source_addresses=list(r.sources),
            destination_addresses=_opt(r.destination_addresses),
            destination_fqdns=_opt(r.destination_fqdns),
            destination_ports=list(r.ports),
        )

    def app_rule(r: ApplicationRuleSpec) -> Any:
        return m.AzureFirewallApplicationRule(
            name=r.name,
            source_addresses=list(r.sources),
            protocols=[
                m.AzureFirewallApplicationRuleProtocol(protocol_type=t, port=p) for t, p in r.protocols
            ],
            target_fqdns=_opt(r.target_fqdns),
            fqdn_tags=_opt(r.fqdn_tags),
        )

    out = ClassicCollections()
    for key, extra in (("network", False), ("extra-network", True)):
        rules = [net_rule(r) for r in ruleset.network_rules if r.extra is extra]
        if rules:
            name, prio = CLASSIC_COLLECTIONS[key]
            out.network.append(
                m.AzureFirewallNetworkRuleCollection(
                    name=name, priority=prio, action=m.AzureFirewallRCAction(type="Allow"), rules=rules
                )
            )
    for key, extra in (("application", False), ("extra-application", True)):
        rules = [app_rule(r) for r in ruleset.application_rules if r.extra is extra]
        if rules:
            name, prio = CLASSIC_COLLECTIONS[key]
            out.application.append(
                m.AzureFirewallApplicationRuleCollection(
                    name=name, priority=prio, action=m.AzureFirewallRCAction(type="Allow"), rules=rules
                )
            )
    if ruleset.nat_rules:
        name, prio = CLASSIC_COLLECTIONS["dnat"]
        rules = [
            m.AzureFirewallNatRule(
                name=r.name,
                protocols=list(r.protocols),
                source_addresses=list(r.sources),
                destination_addresses=_opt(r.destination_addresses),
                destination_ports=list(r.ports),
                translated_address=r.translated_address,
                translated_port=r.translated_port,
            )
            for r in ruleset.nat_rules
        ]
        out.nat.append(
            m.AzureFirewallNatRuleCollection(
                name=name, priority=prio, action=m.AzureFirewallNatRCAction(type="Dnat"), rules=rules
            )
        )
    return out


def _opt(values: tuple[str, ...]) -> list[str] | None:
    # Unset rather than []: requests stay minimal and read like the az CLI's.
    return list(values) or None


# ------------------------------------------------------------------------------- REST JSON
def to_arm_json(model: Any) -> dict[str, Any]:
    """REST (camelCase) JSON of one SDK model, a ClassicCollections, or a dict of groups.

    azure-mgmt-network 33 models are typespec-generated: they have no msrest `serialize()`;
    `as_dict()` returns the wire form (camelCase keys, read-only fields omitted when unset).
    """
    if isinstance(model, ClassicCollections):
        return model.to_arm_json()
    if isinstance(model, dict):
        return {name: to_arm_json(g) for name, g in sorted(model.items())}
    return model.as_dict()


def policy_groups_to_json(groups: dict[str, Any]) -> list[dict[str, Any]]:
    """The groups as a list of resource bodies, ordered by name (what the evaluator reads)."""
    return [groups[name].as_dict() for name in sorted(groups)]


_READ_ONLY = frozenset({"id", "etag", "provisioningState", "size"})


def normalize(data: Any) -> Any:
    """Drop what ARM adds on read (ids, etags, provisioning state, empty arrays) so desired and
    deployed JSON compare equal when the rules are the same."""
    if isinstance(data, dict):
        out = {
            k: normalize(v)
            for k, v in data.items()
            # "type" is read-only as a resource type ("Microsoft.Network/..."), not as an action type.
            if k not in _READ_ONLY and not (k == "type" and isinstance(v, str) and "/" in v)
        }
        return {k: v for k, v in out.items() if v not in (None, [], {})}
    if isinstance(data, list):
        return [normalize(v) for v in data]
    return data


def fingerprint(obj: Any) -> str:
    """A stable hash of rendered rules (SDK models, dicts of them, or REST JSON), after `normalize`."""
    if isinstance(obj, dict) and obj and all(hasattr(v, "as_dict") for v in obj.values()):
        data: Any = to_arm_json(obj)
    elif hasattr(obj, "as_dict") or isinstance(obj, ClassicCollections):
        data = to_arm_json(obj)
    else:
        data = obj
    text = json.dumps(normalize(data), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------ missing_required
def missing_required(config: Config, *, config_file: str = "config") -> list[EgressRow]:
    """Rows today's requirements mark required that the config's rule set would not allow.

    A warning for validate/plan: real nodes behind such a firewall would fail to bootstrap.
    Raises ConfigError when the config cannot be compiled at all (FQDN network rules without DNS proxy).
    """
    from aks_lockdown.egress.evaluate import EffectiveRules

    inputs = RuleInputs.from_config(config, firewall_public_ips=[], config_file=config_file)
    ruleset = compile_rules(inputs)
    effective = EffectiveRules.from_ruleset(ruleset, dns_proxy=inputs.dns_proxy)
    needed = catalog.required_now(inputs.cloud, inputs.location, inputs.features)
    verdicts = effective.covers(needed, source_ip=representative_source(inputs.aks_subnet_cidr))
    return [r for r in needed if r.id in verdicts and not verdicts[r.id].allowed]


def representative_source(cidr: str) -> str:
    """A node address in the subnet: the first one Azure hands out (it reserves the first four)."""
    net = ipaddress.ip_network(cidr, strict=False)
    return str(net.network_address + 4) if net.num_addresses > 4 else str(net.network_address)

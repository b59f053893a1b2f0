"""Effective Azure Firewall rules: does a flow get out? Shared by the emulator's egress simulation
and `verify`, so both read rules exactly as ARM returns them (REST JSON, camelCase).

Semantics modelled on Azure Firewall:
- DNAT first, then network rules, then application rules; within a kind, by rule collection group
  priority, then collection priority, then rule order. The first matching rule decides (Allow or
  Deny). Nothing matches: deny.
- Network rules match source (CIDR / IP / range / `*`), protocol (TCP, UDP, Any), destination
  port (`*`, single, range) and destination: address, CIDR, `*`, service tag, or FQDN. FQDNs in
  network rules resolve only through the firewall's DNS proxy; without it they never match, and
  the verdict says so.
- Application rules match HTTP/HTTPS flows by FQDN: exact, `*`, or `*.x` for any subdomain of x,
  or by FQDN tag (expanded through the catalog).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aks_lockdown.egress import catalog
from aks_lockdown.egress.compiler import fqdn_matches

if TYPE_CHECKING:
    from aks_lockdown.egress.catalog import EgressRow
    from aks_lockdown.egress.compiler import RuleSet

_L4 = {"TCP": "TCP", "UDP": "UDP", "HTTP": "TCP", "HTTPS": "TCP", "ICMP": "ICMP"}


@dataclass(frozen=True)
class Flow:
    source_ip: str
    protocol: str  # TCP | UDP | HTTP | HTTPS
    port: int
    fqdn: str | None = None
    ip: str | None = None
    service_tags: frozenset[str] = frozenset()  # tags the destination belongs to, e.g. AzureCloud.eastus


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: str | None  # "group/collection/rule" (classic: "collection/rule")
    reason: str


@dataclass(frozen=True)
class _Rule:
    kind: str  # network | application | nat
    label: str
    action: str  # Allow | Deny | Dnat
    order: tuple[int, int, int]
    sources: tuple[str, ...]
    protocols: tuple[str, ...] = ()  # network / NAT
    app_protocols: tuple[tuple[str, int], ...] = ()  # application
    destination_addresses: tuple[str, ...] = ()
    destination_fqdns: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    target_fqdns: tuple[str, ...] = ()
    fqdn_tags: tuple[str, ...] = ()
    translated_address: str = ""
    translated_port: str = ""


@dataclass(frozen=True)
class AuditFinding:
    rule: str
    issue: str  # open-destination | any-source | fqdn-without-dns-proxy


@dataclass
class EffectiveRules:
    rules: list[_Rule]
    dns_proxy: bool
    cloud: str
    location: str
    _tag_cache: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        kind_rank = {"nat": 0, "network": 1, "application": 2}
        self.rules = sorted(self.rules, key=lambda r: (kind_rank[r.kind], r.order))

    # ----------------------------------------------------------------------- constructors
    @classmethod
    def from_policy_groups(
        cls,
        groups_json: Iterable[Mapping[str, Any]] | Mapping[str, Any],
        *,
        dns_proxy: bool,
        cloud: str,
        location: str,
    ) -> EffectiveRules:
        """From ruleCollectionGroups resources (GET bodies, or the list's `value`)."""
        if isinstance(groups_json, Mapping):  # a list response: {"value": [...], "nextLink": ...}
            groups_json = groups_json.get("value") or []
        out: list[_Rule] = []
        for g in groups_json:
            props = g.get("properties", g)
            gprio = int(props.get("priority", 0))
            for ci, coll in enumerate(props.get("ruleCollections") or []):
                action = (coll.get("action") or {}).get("type", "Allow")
                cprio = int(coll.get("priority", 0))
                for ri, rule in enumerate(coll.get("rules") or []):
                    label = f"{g.get('name', '?')}/{coll.get('name', ci)}/{rule.get('name', ri)}"
                    kind = {"NetworkRule": "network", "ApplicationRule": "application", "NatRule": "nat"}.get(
                        rule.get("ruleType", ""), "network"
                    )
                    out.append(_parse_rule(kind, rule, label, action, (gprio, cprio, ri), "ipProtocols"))
        return cls(out, dns_proxy, cloud, location)

    @classmethod
    def from_classic_firewall(
        cls, firewall_json: Mapping[str, Any], *, dns_proxy: bool, cloud: str, location: str
    ) -> EffectiveRules:
        """From an azureFirewalls resource body (or just its `properties`)."""
        props = firewall_json.get("properties", firewall_json)
        out: list[_Rule] = []
        for key, kind in (
            ("natRuleCollections", "nat"),
            ("networkRuleCollections", "network"),
            ("applicationRuleCollections", "application"),
        ):
            for ci, coll in enumerate(props.get(key) or []):
                cprops = coll.get("properties", coll)
                action = (cprops.get("action") or {}).get("type", "Allow")
                cprio = int(cprops.get("priority", 0))
                for ri, rule in enumerate(cprops.get("rules") or []):
                    label = f"{coll.get('name', ci)}/{rule.get('name', ri)}"
                    out.append(_parse_rule(kind, rule, label, action, (0, cprio, ri), "protocols"))
        return cls(out, dns_proxy, cloud, location)

    @classmethod
    def from_ruleset(cls, ruleset: RuleSet, *, dns_proxy: bool) -> EffectiveRules:
        """From a compiled RuleSet directly (no SDK): what `missing_required` checks."""
        from aks_lockdown.egress import compiler as c

        out: list[_Rule] = []
        for i, r in enumerate(ruleset.network_rules):
            coll, prio = c.POLICY_COLLECTIONS["extra-network" if r.extra else "network"]
            out.append(
                _Rule(
                    kind="network",
                    label=f"{c.EGRESS_GROUP}/{coll}/{r.name}",
                    action="Allow",
                    order=(c.EGRESS_GROUP_PRIORITY, prio, i),
                    sources=r.sources,
                    protocols=r.protocols,
                    destination_addresses=r.destination_addresses,
                    destination_fqdns=r.destination_fqdns,
                    ports=r.ports,
                )
            )
        for i, a in enumerate(ruleset.application_rules):
            coll, prio = c.POLICY_COLLECTIONS["extra-application" if a.extra else "application"]
            out.append(
                _Rule(
                    "application",
                    f"{c.EGRESS_GROUP}/{coll}/{a.name}",
                    "Allow",
                    (c.EGRESS_GROUP_PRIORITY, prio, i),
                    a.sources,
                    app_protocols=a.protocols,
                    target_fqdns=a.target_fqdns,
                    fqdn_tags=a.fqdn_tags,
                )
            )
        return cls(out, dns_proxy, ruleset.cloud, ruleset.location)

    # -------------------------------------------------------------------------- verdicts
    def allows(self, flow: Flow) -> Verdict:
        l4 = _L4.get(flow.protocol.upper())
        if l4 is None:
            raise ValueError(f"unknown flow protocol {flow.protocol!r}")
        notes: list[str] = []
        for rule in self.rules:
            if rule.kind == "nat" or not _source_ok(rule.sources, flow.source_ip):
                continue
            if rule.kind == "network":
                hit = self._network_match(rule, flow, l4, notes)
            else:
                hit = self._application_match(rule, flow)
            if hit:
                allowed = rule.action.lower() == "allow"
                verb = "allowed" if allowed else "denied"
                return Verdict(allowed, rule.label, f"{verb} by {rule.kind} rule {rule.label}")
        what = flow.fqdn or flow.ip or "/".join(sorted(flow.service_tags)) or "?"
        reason = (
            f"no rule allows {flow.protocol.upper()} {flow.port} to {what} from {flow.source_ip} "
            "(default deny)"
        )
        if notes:
            reason += "; " + "; ".join(dict.fromkeys(notes))
        return Verdict(False, None, reason)

    def _network_match(self, rule: _Rule, flow: Flow, l4: str, notes: list[str]) -> bool:
        if not any(p.upper() in ("ANY", l4) for p in rule.protocols):
            return False
        if not _port_ok(rule.ports, flow.port):
            return False
        if any(_address_ok(d, flow) for d in rule.destination_addresses):
            return True
        if flow.fqdn and any(f.lower() == flow.fqdn.lower().rstrip(".") for f in rule.destination_fqdns):
            if self.dns_proxy:
                return True
            notes.append(
                f"network rule {rule.label} names {flow.fqdn} but FQDNs in network rules need the "
                "firewall's DNS proxy, which is off"
            )
        return False

    def _application_match(self, rule: _Rule, flow: Flow) -> bool:
        if flow.protocol.upper() not in ("HTTP", "HTTPS") or not flow.fqdn:
            return False
        if not any(t.upper() == flow.protocol.upper() and p == flow.port for t, p in rule.app_protocols):
            return False
        if any(fqdn_matches(t, flow.fqdn) for t in rule.target_fqdns):
            return True
        return any(fqdn_matches(m, flow.fqdn) for tag in rule.fqdn_tags for m in self._tag(tag))

    def _tag(self, tag: str) -> list[str]:
        if tag not in self._tag_cache:
            self._tag_cache[tag] = catalog.fqdn_tag_members(tag, self.cloud, self.location)
        return self._tag_cache[tag]

    def dnat(self, public_ip: str, port: int, protocol: str) -> tuple[str, int, str] | None:
        """Where inbound traffic to a firewall public IP is translated to: (address, port, rule)."""
        for rule in self.rules:
            if rule.kind != "nat" or not any(p.upper() in ("ANY", protocol.upper()) for p in rule.protocols):
                continue
            if _port_ok(rule.ports, port) and any(_ip_in(d, public_ip) for d in rule.destination_addresses):
                return rule.translated_address, int(rule.translated_port or port), rule.label
        return None

    # ----------------------------------------------------------------------------- audit
    def audit(self) -> list[AuditFinding]:
        """What verify flags: allow rules open to any destination or any source, dead FQDN rules."""
        findings: list[AuditFinding] = []
        for r in self.rules:
            if r.kind == "nat" or r.action.lower() != "allow":
                continue
            if any(d in ("*", "0.0.0.0/0", "::/0", "Internet") for d in r.destination_addresses) or (
                "*" in r.target_fqdns
            ):
                findings.append(AuditFinding(r.label, "open-destination"))
            if "*" in r.sources or "0.0.0.0/0" in r.sources:
                findings.append(AuditFinding(r.label, "any-source"))
            if r.destination_fqdns and not self.dns_proxy:
                findings.append(AuditFinding(r.label, "fqdn-without-dns-proxy"))
        return findings

    def open_destination_rules(self) -> list[str]:
        return [f.rule for f in self.audit() if f.issue == "open-destination"]

    def any_source_rules(self) -> list[str]:
        return [f.rule for f in self.audit() if f.issue == "any-source"]

    def covers(self, rows: Iterable[EgressRow], *, source_ip: str) -> dict[str, Verdict]:
        """Which catalog rows these rules allow, probed from `source_ip` (a node address).

        Rows with placeholder destinations (custom DNS IP, API server IP) cannot be probed and are
        left out. Wildcard rows are probed as the wildcard itself: covered only by a rule at least as
        wide.
        """
        out: dict[str, Verdict] = {}
        for row in rows:
            flow = row_flow(row, source_ip, self.location)
            if flow is not None:
                out[row.id] = self.allows(flow)
        return out


def row_flow(row: EgressRow, source_ip: str, location: str = "") -> Flow | None:
    """The flow a node makes to satisfy a catalog row."""
    if row.dest_type == "placeholder":
        return None
    dest = row.target
    if "<location>" in dest:
        dest = (
            catalog.service_tag_for_region(row.cloud, location)
            if row.dest_type == "service-tag"
            else dest.replace("<location>", location)
        )
    if row.kind == "application":
        return Flow(source_ip, row.protocol.upper(), row.port, fqdn=dest)
    if row.dest_type == "service-tag":
        return Flow(source_ip, row.protocol, row.port, service_tags=frozenset({dest, dest.split(".")[0]}))
    return Flow(source_ip, row.protocol, row.port, fqdn=dest)


# ---------------------------------------------------------------------------- matching
def _parse_rule(
    kind: str, rule: Mapping[str, Any], label: str, action: str, order: tuple[int, int, int], proto_key: str
) -> _Rule:
    def strs(key: str) -> tuple[str, ...]:
        return tuple(str(x) for x in rule.get(key) or ())

    if kind == "application":
        protos = tuple(
            (str(p.get("protocolType", "")), int(p.get("port", 0) or 0)) for p in rule.get("protocols") or ()
        )
        return _Rule(
            kind,
            label,
            action,
            order,
            strs("sourceAddresses"),
            app_protocols=protos,
            target_fqdns=strs("targetFqdns"),
            fqdn_tags=strs("fqdnTags"),
        )
    return _Rule(
        kind,
        label,
        action,
        order,
        strs("sourceAddresses"),
        protocols=strs(proto_key),
        destination_addresses=strs("destinationAddresses"),
        destination_fqdns=strs("destinationFqdns"),
        ports=strs("destinationPorts"),
        translated_address=str(rule.get("translatedAddress") or ""),
        translated_port=str(rule.get("translatedPort") or ""),
    )


def _port_ok(ports: tuple[str, ...], port: int) -> bool:
    for p in ports:
        p = p.strip()
        if p == "*":
            return True
        lo, _, hi = p.partition("-")
        try:
            if int(lo) <= port <= int(hi or lo):
                return True
        except ValueError:
            continue
    return False


def _ip_in(spec: str, ip: str) -> bool:
    """`spec` is `*`, an address, a CIDR or a range a-b; False when `ip` or `spec` is not an address."""
    if spec == "*":
        return True
    try:
        addr = ipaddress.ip_address(ip)
        if "-" in spec:
            lo, hi = (ipaddress.ip_address(s.strip()) for s in spec.split("-", 1))
            return lo <= addr <= hi
        return addr in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return False


def _source_ok(sources: tuple[str, ...], ip: str) -> bool:
    return any(_ip_in(s, ip) for s in sources)


def _address_ok(dest: str, flow: Flow) -> bool:
    if dest == "*":
        return True
    if flow.ip and _ip_in(dest, flow.ip):
        return True
    # Anything that is not an address is a service tag name.
    return any(dest.lower() == t.lower() for t in flow.service_tags)

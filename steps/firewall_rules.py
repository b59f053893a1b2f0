"""Step 4, "Rules": the egress (and DNAT) rules compiled from the egress catalog.

Policy mode: a Firewall Policy (tier from the SKU, DNS proxy, threat intelligence in Alert mode) and
its rule collection groups, each written only when its REST JSON differs from Azure's, one write at
a time (a policy refuses parallel writes with AnotherOperationInProgress). The DNAT translated
address is the ingress target IP from config, known before the cluster exists, so the firewall
never needs a second write for it; a later ingress change rewrites only the DNAT group.

Classic mode: no Azure writes here; the compiled classic collections become this step's outputs and
the firewall step carries them in its one PUT.
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
    strip_read_only,
    tag_changes,
    to_json,
)

from aks_lockdown.engine.step import Diff, FieldChange, ResourceChange, Step

POLICY_KIND = "Microsoft.Network/firewallPolicies"
GROUP_KIND = "Microsoft.Network/firewallPolicies/ruleCollectionGroups"
# Read-only back-references on a policy: never sent back.
POLICY_READ_ONLY = ("ruleCollectionGroups", "firewalls", "childPolicies", "provisioningState")
CLASSIC_KEYS = ("applicationRuleCollections", "networkRuleCollections", "natRuleCollections")


def firewall_public_ips(ctx: Any) -> list[str]:
    """The front-end addresses from the IP config step (empty in a plan before they exist)."""
    addresses = (ctx.outputs.get("public_ips") or {}).get("addresses") or []
    return [a for a in addresses if a]


def compiled_rules(ctx: Any) -> Any:
    from aks_lockdown.egress import compiler

    inputs = compiler.RuleInputs.from_config(ctx.config, firewall_public_ips=firewall_public_ips(ctx))
    return compiler.compile_rules(inputs)


def classic_collections_json(ctx: Any) -> dict[str, list[dict[str, Any]]]:
    """render_classic's collections as the REST JSON an azureFirewalls PUT carries."""
    from aks_lockdown.egress import compiler

    arm = compiler.render_classic(compiled_rules(ctx)).to_arm_json()
    return {key: [strip_read_only(c) for c in arm.get(key) or []] for key in CLASSIC_KEYS}


def _normalized(value: Any) -> Any:
    """REST JSON without read-only fields, nulls, empty lists and false flags (Azure adds those)."""
    if isinstance(value, Mapping):
        out = {k: _normalized(v) for k, v in strip_read_only(value).items() if v is not False}
        return {k: v for k, v in out.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def dnat_targets(rule_collections: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every DNAT rule (policy NatRule or classic NAT collection rule) as a plain record."""
    targets = []
    for collection in rule_collections:
        props = collection.get("properties") or collection
        for rule in props.get("rules") or []:
            rp = rule.get("properties") or rule
            if rule.get("ruleType") not in (None, "NatRule") or "translatedAddress" not in rp:
                continue
            targets.append(
                {
                    "name": rule.get("name"),
                    "translated_address": rp.get("translatedAddress"),
                    "translated_port": rp.get("translatedPort"),
                    "destination_addresses": rp.get("destinationAddresses") or [],
                    "destination_ports": rp.get("destinationPorts") or [],
                }
            )
    return targets


class FirewallRulesStep(Step):
    name = "rules"
    title = "Rules"

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._policy: dict[str, Any] | None = None
        self._groups: dict[str, dict[str, Any]] = {}

    @property
    def classic(self) -> bool:
        return self.ctx.config.firewall.rules == "classic"

    @property
    def policy_id(self) -> str:
        return resource_id(self.ctx, POLICY_KIND, self.ctx.config.policy_name)

    def group_id(self, name: str) -> str:
        return f"{self.policy_id}/ruleCollectionGroups/{name}"

    def _desired_policy(self) -> dict[str, Any]:
        fw = self.ctx.config.firewall
        return {
            "location": self.ctx.config.azure.location,
            "properties": {
                "sku": {"tier": fw.sku},
                "threatIntelMode": "Alert",
                "dnsSettings": {"enableProxy": fw.dns_proxy},
            },
        }

    def _desired_groups(self) -> dict[str, dict[str, Any]]:
        from aks_lockdown.egress import compiler

        groups = compiler.render_policy_groups(compiled_rules(self.ctx))
        return {
            name: {"properties": strip_read_only(to_json(g).get("properties"))} for name, g in groups.items()
        }

    def desired(self) -> Mapping[str, Any]:
        if self.classic:
            return {"mode": "classic", "collections": classic_collections_json(self.ctx)}
        return {"mode": "policy", "policy": self._desired_policy(), "groups": self._desired_groups()}

    def resource_ids(self) -> list[str]:
        if self.classic:
            return []
        return [self.policy_id, *(self.group_id(n) for n in sorted(self._desired_groups()))]

    def _read(self) -> None:
        network = self.ctx.clients.network
        rg, name = self.ctx.config.resource_group, self.ctx.config.policy_name
        self._policy = to_json(get_or_none(lambda: network.firewall_policies.get(rg, name)))
        self._groups = {}
        if self._policy is not None:
            # One list instead of a GET per group: a rerun costs one read for all of them.
            for group in network.firewall_policy_rule_collection_groups.list(rg, name):
                data = to_json(group) or {}
                self._groups[str(data.get("name"))] = data

    def _outputs(self, groups: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        collections = [
            c for g in groups.values() for c in (g.get("properties") or {}).get("ruleCollections") or []
        ]
        return {
            "mode": "policy",
            "policy_id": self.policy_id,
            "group_ids": [self.group_id(n) for n in sorted(groups)],
            "dnat": dnat_targets(collections),
        }

    def check(self) -> Diff:
        if self.classic:
            collections = classic_collections_json(self.ctx)
            return Diff((), self._classic_outputs(collections))
        self._read()
        desired_policy = self._desired_policy()
        desired_policy.pop("location")
        policy_fields: list[Any] = []
        if self._policy is not None:
            policy_fields = owned_changes(desired_policy, self._policy)
            if is_ours(self.ctx, self.policy_id, self._policy):
                policy_fields += tag_changes(self.ctx, self._policy)
            else:
                self.ctx.mark_adopted(self.policy_id)
        changes = [change_for(self.policy_id, POLICY_KIND, self._policy, policy_fields)]
        desired_groups = self._desired_groups()
        for name, group in sorted(desired_groups.items()):
            actual = self._groups.get(name)
            fields = [] if actual is None else self._group_changes(group, actual)
            changes.append(change_for(self.group_id(name), GROUP_KIND, actual, fields))
        for name in sorted(set(self._groups) - set(desired_groups)):
            # A group this deployment wrote under a name the compiler no longer produces.
            if self.ctx.created_by_deployment(self.group_id(name)):
                changes.append(
                    ResourceChange("delete", self.group_id(name), GROUP_KIND, note="no longer compiled")
                )
        diff = Diff(tuple(changes))
        if diff.pending:
            return diff
        return Diff(diff.changes, self._outputs({n: self._groups[n] for n in desired_groups}))

    @staticmethod
    def _group_changes(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> list[Any]:
        """A group is ours entirely: its REST JSON must equal the compiled one (read-only fields and
        Azure's empty/false defaults aside). The fields named are the ones that differ."""
        want = _normalized(desired["properties"])
        have = _normalized(actual.get("properties") or {})
        if want == have:
            return []
        # Strict on names: a rule or collection added out of band is drift too.
        fields = owned_changes(want, have, "properties", strict_names=True)
        return fields or [FieldChange("properties", have, want)]

    def _classic_outputs(self, collections: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "mode": "classic",
            "classic": dict(collections),
            "dnat": dnat_targets(collections["natRuleCollections"]),
        }

    def apply(self, diff: Diff) -> Mapping[str, Any]:
        if self.classic:
            return self._classic_outputs(classic_collections_json(self.ctx))
        if self._policy is None and not self._groups:
            self._read()
        network = self.ctx.clients.network
        rg, policy = self.ctx.config.resource_group, self.ctx.config.policy_name
        by_id = {c.resource_id.lower(): c for c in diff.changes}
        policy_change = by_id.get(self.policy_id.lower())
        if policy_change is not None and policy_change.action != "none":
            body = self._policy_body()
            self.ctx.write(
                self.policy_id,
                policy_change.action if policy_change.action in ("create", "update") else "update",
                lambda: network.firewall_policies.begin_create_or_update(rg, policy, body),
                description=f"firewall policy {policy} ({self.ctx.config.firewall.sku})",
            )
        groups = dict(self._groups)
        desired_groups = self._desired_groups()
        # Sequential on purpose: ctx.write waits for each group before the next one starts.
        for name, group in sorted(desired_groups.items()):
            change = by_id.get(self.group_id(name).lower())
            if change is None or change.action == "none":
                continue
            result = self.ctx.write(
                self.group_id(name),
                "create" if change.action == "create" else "update",
                lambda name=name, group=group: (
                    network.firewall_policy_rule_collection_groups.begin_create_or_update(
                        rg, policy, name, group
                    )
                ),
                description=f"rule collection group {name}",
            )
            groups[name] = to_json(result) or {"name": name, **group}
        for change in diff.changes:
            if change.action == "delete" and change.kind == GROUP_KIND:
                name = change.resource_id.rsplit("/", 1)[1]
                self.ctx.write(
                    change.resource_id,
                    "delete",
                    lambda name=name: network.firewall_policy_rule_collection_groups.begin_delete(
                        rg, policy, name
                    ),
                )
                groups.pop(name, None)
        return self._outputs({n: groups[n] for n in desired_groups if n in groups})

    def _policy_body(self) -> dict[str, Any]:
        """The desired policy over Azure's (an operator's IDPS or TLS settings survive)."""
        actual = self._policy or {}
        ours = actual == {} or is_ours(self.ctx, self.policy_id, actual)
        props = {k: v for k, v in (actual.get("properties") or {}).items() if k not in POLICY_READ_ONLY}
        desired = self._desired_policy()
        props.update(desired["properties"])
        tags = merged_tags(self.ctx, actual) if ours else dict(actual.get("tags") or {})
        return {"location": actual.get("location") or desired["location"], "tags": tags, "properties": props}

    def rollback(self) -> None:
        if self.classic:
            return
        network = self.ctx.clients.network
        rg, policy = self.ctx.config.resource_group, self.ctx.config.policy_name
        # The firewall step has already been rolled back, so the policy is no longer in use.
        if self.ctx.created_by_deployment(self.policy_id):
            # Deleting the policy deletes its groups: one long operation instead of one per group.
            delete_if_created(
                self.ctx,
                self.policy_id,
                lambda: network.firewall_policies.get(rg, policy),
                lambda: network.firewall_policies.begin_delete(rg, policy),
            )
            return
        # An adopted policy stays; only the groups this deployment wrote go, one at a time.
        if get_or_none(lambda: network.firewall_policies.get(rg, policy)) is None:
            return
        for group in list(network.firewall_policy_rule_collection_groups.list(rg, policy)):
            name = str(group.name)
            delete_if_created(
                self.ctx,
                self.group_id(name),
                lambda name=name: network.firewall_policy_rule_collection_groups.get(rg, policy, name),
                lambda name=name: network.firewall_policy_rule_collection_groups.begin_delete(
                    rg, policy, name
                ),
            )

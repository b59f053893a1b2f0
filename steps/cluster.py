"""Step 8, cluster: AKS in the AKS subnet with outbound type userDefinedRouting.

No load balancer outbound settings (with UDR they fail: InvalidUserDefinedRoutingWithLoadBalancerProfile).
The API server accepts only the firewall's public IPs (node traffic leaves through them) and the
operator's ranges, or is private. A cluster found Failed is written again with the same spec (AKS
no longer repairs itself); one found Creating/Updating is waited for, never written over. A failure
reaches the operator as Azure worded it (OutboundConnFailVMExtensionError names the blocked endpoint).

The service principal secret (service-principal mode) is read from the environment only when the PUT
is built: it is never part of desired(), outputs, state or a diff.
"""

from __future__ import annotations

import ipaddress
import os
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
    state_for_wait,
    tag_changes,
    to_json,
)

from aks_lockdown.engine.step import TERMINAL_STATES, Diff, FieldChange, ResourceChange, Step
from aks_lockdown.errors import InputError, LockdownError

KIND = "Microsoft.ContainerService/managedClusters"
SYSTEM_POOL = "system"


def _cidr(text: str) -> str:
    """ "1.2.3.4" and "1.2.3.4/32" are the same range: compare them as AKS stores them."""
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return text


class ClusterStep(Step):
    name = "cluster"
    title = "Cluster"

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._actual: dict[str, Any] | None = None

    @property
    def cluster_id(self) -> str:
        return resource_id(self.ctx, KIND, self.ctx.config.cluster_name)

    def authorized_ranges(self) -> list[str]:
        firewall = self.ctx.outputs.get("firewall") or {}
        ips = list(
            firewall.get("public_ips") or (self.ctx.outputs.get("public_ips") or {}).get("addresses") or []
        )
        if not ips:
            ips = [KNOWN_AFTER_APPLY] * self.ctx.config.firewall.public_ip_count
        ranges = [ip if ip == KNOWN_AFTER_APPLY else f"{ip}/32" for ip in ips]
        for extra in self.ctx.config.cluster.authorized_ip_ranges:
            if _cidr(extra) not in ranges:
                ranges.append(_cidr(extra))
        return ranges

    def _subnet_id(self) -> str:
        vnet = resource_id(self.ctx, "Microsoft.Network/virtualNetworks", self.ctx.config.vnet_name)
        return f"{vnet}/subnets/{self.ctx.config.network.aks_subnet_name}"

    def _identity_id(self) -> str:
        return resource_id(
            self.ctx, "Microsoft.ManagedIdentity/userAssignedIdentities", self.ctx.config.identity_name
        )

    def _network_profile(self) -> dict[str, Any]:
        c = self.ctx.config.cluster
        profile: dict[str, Any] = {
            "networkPlugin": "kubenet" if c.network_plugin == "kubenet" else "azure",
            "serviceCidr": c.service_cidr,
            "dnsServiceIP": c.dns_service_ip,
            "outboundType": "userDefinedRouting",
        }
        if c.network_plugin == "azure-overlay":
            profile["networkPluginMode"] = "overlay"
        if self.ctx.config.effective_pod_cidr:
            profile["podCidr"] = self.ctx.config.effective_pod_cidr
        # docker_bridge_cidr is accepted by config for the seed's sake, but AKS removed the field.
        return profile

    def desired(self) -> Mapping[str, Any]:
        """The cluster spec without the service principal secret."""
        cfg = self.ctx.config
        c = cfg.cluster
        props: dict[str, Any] = {
            "dnsPrefix": cfg.cluster_name,
            "agentPoolProfiles": [
                {
                    "name": SYSTEM_POOL,
                    "mode": "System",
                    "count": c.node_count,
                    "vmSize": c.node_vm_size,
                    "vnetSubnetID": self._subnet_id(),
                    "type": "VirtualMachineScaleSets",
                    "osType": "Linux",
                }
            ],
            "networkProfile": self._network_profile(),
        }
        if c.kubernetes_version:
            props["kubernetesVersion"] = c.kubernetes_version
        if c.private_cluster:
            props["apiServerAccessProfile"] = {"enablePrivateCluster": True}
        else:
            props["apiServerAccessProfile"] = {"authorizedIPRanges": self.authorized_ranges()}
        doc: dict[str, Any] = {"location": cfg.azure.location, "properties": props}
        if c.identity.type == "user-assigned":
            doc["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {self._identity_id(): {}}}
        else:
            props["servicePrincipalProfile"] = {"clientId": c.identity.client_id}
        return doc

    def resource_ids(self) -> list[str]:
        return [self.cluster_id]

    def _read(self) -> dict[str, Any] | None:
        clusters = self.ctx.clients.containerservice.managed_clusters
        cfg = self.ctx.config
        self._actual = to_json(get_or_none(lambda: clusters.get(cfg.resource_group, cfg.cluster_name)))
        return self._actual

    def _field_changes(self, actual: Mapping[str, Any]) -> list[FieldChange]:
        desired = self.desired()
        props = dict(desired["properties"])
        actual_props = actual.get("properties") or {}
        fields: list[FieldChange] = []
        # Set semantics and AKS's normalisation for the ranges; a version prefix ("1.30" matches 1.30.5).
        access = props.pop("apiServerAccessProfile")
        actual_access = actual_props.get("apiServerAccessProfile") or {}
        if "authorizedIPRanges" in access:
            want = sorted(access["authorizedIPRanges"])
            have = sorted(_cidr(r) for r in actual_access.get("authorizedIPRanges") or [])
            if want != have:
                fields.append(FieldChange("properties.apiServerAccessProfile.authorizedIPRanges", have, want))
        if bool(actual_access.get("enablePrivateCluster")) != bool(access.get("enablePrivateCluster")):
            fields.append(
                FieldChange(
                    "properties.apiServerAccessProfile.enablePrivateCluster",
                    actual_access.get("enablePrivateCluster"),
                    access.get("enablePrivateCluster", False),
                )
            )
        version = props.pop("kubernetesVersion", None)
        if version and not str(actual_props.get("kubernetesVersion") or "").startswith(version):
            fields.append(
                FieldChange("properties.kubernetesVersion", actual_props.get("kubernetesVersion"), version)
            )
        props.pop("dnsPrefix")  # immutable after create; AKS may also have normalised it
        fields += owned_changes(props, actual_props, "properties")
        if "identity" in desired:
            want_ids = {k.lower() for k in desired["identity"]["userAssignedIdentities"]}
            have = actual.get("identity") or {}
            have_ids = {k.lower() for k in (have.get("userAssignedIdentities") or {})}
            if have.get("type") != "UserAssigned" or want_ids != have_ids:
                fields.append(FieldChange("identity", have, desired["identity"]))
        return fields

    def _outputs(self, actual: Mapping[str, Any]) -> dict[str, Any]:
        props = actual.get("properties") or {}
        return {
            "id": self.cluster_id,
            "name": self.ctx.config.cluster_name,
            "fqdn": props.get("fqdn") or props.get("privateFQDN"),
            "private_fqdn": props.get("privateFQDN"),
            "node_resource_group": props.get("nodeResourceGroup"),
            # Later steps (the workload) read readiness here instead of GETting the cluster again.
            "provisioning_state": props.get("provisioningState"),
            "authorized_ip_ranges": list(
                (props.get("apiServerAccessProfile") or {}).get("authorizedIPRanges") or []
            ),
        }

    def check(self) -> Diff:
        actual = self._read()
        if actual is None:
            return Diff((ResourceChange("create", self.cluster_id, KIND),))
        state = provisioning_state(actual)
        if state and state not in TERMINAL_STATES:
            note = f"found {state}: a previous operation is still running; waiting for it, not writing"
            return Diff((ResourceChange("wait", self.cluster_id, KIND, note=note),))
        fields = self._field_changes(actual)
        if is_ours(self.ctx, self.cluster_id, actual):
            fields += tag_changes(self.ctx, actual)
        else:
            self.ctx.mark_adopted(self.cluster_id)
        change = change_for(self.cluster_id, KIND, actual, fields)
        return Diff((change,), self._outputs(actual) if change.action == "none" else {})

    def _body(self, actual: Mapping[str, Any] | None) -> dict[str, Any]:
        body = self.desired()
        body = {**body, "properties": dict(body["properties"])}
        ours = actual is None or is_ours(self.ctx, self.cluster_id, actual)
        body["tags"] = merged_tags(self.ctx, actual) if ours else dict((actual or {}).get("tags") or {})
        if actual is not None:
            body["location"] = actual.get("location") or body["location"]
            node_rg = (actual.get("properties") or {}).get("nodeResourceGroup")
            if node_rg:
                body["properties"]["nodeResourceGroup"] = node_rg  # cannot change after create
            body["properties"]["dnsPrefix"] = (actual.get("properties") or {}).get(
                "dnsPrefix"
            ) or self.ctx.config.cluster_name
        identity = self.ctx.config.cluster.identity
        if identity.type == "service-principal":
            # Read at the last moment, sent once over TLS, never kept.
            secret = os.environ.get(identity.secret_env or "")
            if not secret:
                raise InputError(
                    f"cluster.identity.secret_env: environment variable {identity.secret_env!r} is not set "
                    "(it must hold the service principal secret)"
                )
            body["properties"]["servicePrincipalProfile"] = {"clientId": identity.client_id, "secret": secret}
        return body

    def apply(self, diff: Diff) -> Mapping[str, Any]:
        cfg = self.ctx.config
        clusters = self.ctx.clients.containerservice.managed_clusters
        change = diff.changes[0]
        if change.action == "wait":
            state = self.ctx.wait_for(
                self.cluster_id,
                lambda: state_for_wait(self._read()),
                description=f"cluster {cfg.cluster_name}: operation in flight",
            )
            self.ctx.progress(f"cluster {cfg.cluster_name} reached {state}", resource_id=self.cluster_id)
            change = self.check().changes[0]
            if change.action == "wait":
                state = provisioning_state(self._actual)
                raise LockdownError(f"cluster {cfg.cluster_name} is still {state}: run deploy again later")
        actual = None if change.action == "create" else (self._actual or self._read())
        if change.action == "none":
            return self._outputs(actual or {})
        body = self._body(actual)
        if provisioning_state(actual) == "Failed":
            self.ctx.progress(
                f"cluster {cfg.cluster_name} is Failed: writing it again", resource_id=self.cluster_id
            )
        result = self.ctx.write(
            self.cluster_id,
            "create" if change.action == "create" else "update",
            lambda: clusters.begin_create_or_update(cfg.resource_group, cfg.cluster_name, body),
            description=f"AKS cluster {cfg.cluster_name}",
        )
        self._actual = to_json(result)
        return self._outputs(self._actual or {})

    def rollback(self) -> None:
        cfg = self.ctx.config
        clusters = self.ctx.clients.containerservice.managed_clusters
        delete_if_created(
            self.ctx,
            self.cluster_id,
            lambda: clusters.get(cfg.resource_group, cfg.cluster_name),
            lambda: clusters.begin_delete(cfg.resource_group, cfg.cluster_name),
        )

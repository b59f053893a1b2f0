"""The deployment config: TOML on disk, pydantic models in memory.

Field names here are the contract every other module codes against. Defaults reproduce the seed
walkthrough's own values (prefix aks-egress, eastus, 10.42.0.0/16, ...).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Cloud = Literal["AzureCloud", "AzureChinaCloud", "AzureUSGovernment"]
Feature = Literal["os-updates", "gpu", "windows", "monitor", "azure-policy", "dev-spaces"]


class _Section(BaseModel):
    # Unknown keys are errors (with a "did you mean"), never silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeploymentSection(_Section):
    name: str = "aks-egress"
    prefix: str = "aks-egress"


class AzureSection(_Section):
    cloud: Cloud = "AzureCloud"
    subscription_id: str | None = None  # else AZURE_SUBSCRIPTION_ID
    location: str = "eastus"
    tenant_id: str | None = None


class NetworkSection(_Section):
    resource_group: str | None = None  # default "<prefix>-rg"
    vnet_name: str | None = None  # default "<prefix>-vnet"
    vnet_cidr: str = "10.42.0.0/16"
    aks_subnet_name: str = "aks-subnet"
    aks_subnet_cidr: str = "10.42.1.0/24"
    firewall_subnet_cidr: str = "10.42.2.0/24"
    # Only for the Basic SKU, which needs AzureFirewallManagementSubnet.
    firewall_management_subnet_cidr: str = "10.42.3.0/26"
    route_table_name: str | None = None  # default "<prefix>-fwrt"


class ExtraRule(_Section):
    name: str
    kind: Literal["network", "application"]
    protocols: list[str]  # network: TCP/UDP/ICMP/Any; application: "Https:443", "Http:80"
    destination_addresses: list[str] = Field(default_factory=list)
    destination_fqdns: list[str] = Field(default_factory=list)
    destination_ports: list[str] = Field(default_factory=list)  # network rules only
    source_addresses: list[str] = Field(default_factory=list)  # default: the AKS subnet


class FirewallSection(_Section):
    name: str | None = None  # default "<prefix>-fw"
    sku: Literal["Standard", "Premium", "Basic"] = "Standard"
    public_ip_count: int = 1
    public_ip_name: str | None = None  # default "<prefix>-fwpublicip"; later ones get "-2", "-3", ...
    ip_config_name: str | None = None  # default "<prefix>-fwconfig"
    dns_proxy: bool = True
    rules: Literal["policy", "classic"] = "policy"
    policy_name: str | None = None  # default "<prefix>-fwpolicy"
    fqdn_mode: Literal["tag", "explicit", "both"] = "tag"
    features: list[Feature] = Field(default_factory=list)
    egress_edition: Literal["seed-2020", "current"] = "current"
    tunnel_ports: bool = True
    allow_any_source: bool = False  # rules use the AKS subnet as source unless this is set
    extra_rules: list[ExtraRule] = Field(default_factory=list)


class IdentitySection(_Section):
    type: Literal["user-assigned", "service-principal"] = "user-assigned"
    name: str | None = None  # managed identity name, default "<prefix>-identity"
    client_id: str | None = None  # service-principal mode
    object_id: str | None = None  # service-principal mode
    secret_env: str | None = None  # NAME of the environment variable holding the SP secret


class ClusterSection(_Section):
    name: str | None = None  # default "<prefix>"
    kubernetes_version: str | None = None
    node_count: int = 3
    node_vm_size: str = "Standard_D2s_v5"
    network_plugin: Literal["azure", "azure-overlay", "kubenet"] = "azure"
    service_cidr: str = "10.41.0.0/16"
    dns_service_ip: str = "10.41.0.10"
    pod_cidr: str | None = None  # kubenet / azure-overlay only; default 10.244.0.0/16 there
    docker_bridge_cidr: str | None = None  # accepted with a warning, never sent
    private_cluster: bool = False
    authorized_ip_ranges: list[str] = Field(default_factory=list)  # operator ranges
    identity: IdentitySection = Field(default_factory=IdentitySection)


class DnatRule(_Section):
    name: str
    protocol: Literal["TCP", "UDP"] = "TCP"
    firewall_port: int = 80
    target_ip: str
    target_port: int = 80


class IngressSection(_Section):
    workload: Literal["voting-app", "none"] = "voting-app"
    dnat: list[DnatRule] = Field(
        default_factory=lambda: [DnatRule(name="inboundrule", target_ip="10.42.1.250")]
    )


class StateSection(_Section):
    backend: Literal["local", "blob"] = "local"
    directory: str = ".aks-lockdown"
    account_url: str | None = None  # blob backend
    container: str | None = None
    blob_name: str | None = None


class Config(_Section):
    deployment: DeploymentSection = Field(default_factory=DeploymentSection)
    azure: AzureSection = Field(default_factory=AzureSection)
    network: NetworkSection = Field(default_factory=NetworkSection)
    firewall: FirewallSection = Field(default_factory=FirewallSection)
    cluster: ClusterSection = Field(default_factory=ClusterSection)
    ingress: IngressSection = Field(default_factory=IngressSection)
    state: StateSection = Field(default_factory=StateSection)

    # Derived names: one place, so every step and the emulator agree.
    @property
    def resource_group(self) -> str:
        return self.network.resource_group or f"{self.deployment.prefix}-rg"

    @property
    def vnet_name(self) -> str:
        return self.network.vnet_name or f"{self.deployment.prefix}-vnet"

    @property
    def route_table_name(self) -> str:
        return self.network.route_table_name or f"{self.deployment.prefix}-fwrt"

    @property
    def firewall_name(self) -> str:
        return self.firewall.name or f"{self.deployment.prefix}-fw"

    @property
    def policy_name(self) -> str:
        return self.firewall.policy_name or f"{self.deployment.prefix}-fwpolicy"

    @property
    def ip_config_name(self) -> str:
        return self.firewall.ip_config_name or f"{self.deployment.prefix}-fwconfig"

    @property
    def public_ip_names(self) -> list[str]:
        base = self.firewall.public_ip_name or f"{self.deployment.prefix}-fwpublicip"
        return [base if i == 1 else f"{base}-{i}" for i in range(1, self.firewall.public_ip_count + 1)]

    @property
    def cluster_name(self) -> str:
        return self.cluster.name or self.deployment.prefix

    @property
    def identity_name(self) -> str:
        return self.cluster.identity.name or f"{self.deployment.prefix}-identity"

    @property
    def effective_pod_cidr(self) -> str | None:
        if self.cluster.network_plugin == "azure":
            return None
        return self.cluster.pod_cidr or "10.244.0.0/16"

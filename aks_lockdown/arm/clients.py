"""The one place Azure clients are made: credential, ARM endpoint and token scope of the cloud,
subscription, and (for the emulator) its endpoint and CA bundle. Clients are created on first use, so
commands that never talk to Azure never import the SDKs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aks_lockdown.errors import InputError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.containerservice import ContainerServiceClient
    from azure.mgmt.msi import ManagedServiceIdentityClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient


@dataclass(frozen=True)
class CloudEndpoints:
    arm: str
    scope: str
    authority_host: str


CLOUDS: dict[str, CloudEndpoints] = {
    "AzureCloud": CloudEndpoints(
        "https://management.azure.com", "https://management.azure.com/.default", "login.microsoftonline.com"
    ),
    "AzureChinaCloud": CloudEndpoints(
        "https://management.chinacloudapi.cn",
        "https://management.chinacloudapi.cn/.default",
        "login.chinacloudapi.cn",
    ),
    "AzureUSGovernment": CloudEndpoints(
        "https://management.usgovcloudapi.net",
        # Note "core": the US Gov token audience differs from its ARM host.
        "https://management.core.usgovcloudapi.net/.default",
        "login.microsoftonline.us",
    ),
}

# The emulator accepts any tenant; the tool asks for this one when it talks to an emulator.
EMULATOR_TENANT_ID = "72f988bf-0000-4000-8000-00000000e700"
EMULATOR_CLIENT_ID = "aks-lockdown"
EMULATOR_CLIENT_SECRET_ENV = "AKS_LOCKDOWN_EMULATOR_SECRET"  # any value works; never a real secret


@dataclass(frozen=True)
class Target:
    """Where the tool sends its requests: real Azure (arm_endpoint None) or an emulator."""

    cloud: str = "AzureCloud"
    arm_endpoint: str | None = None
    ca_bundle: str | None = None
    subscription_id: str | None = None
    tenant_id: str | None = None

    @property
    def is_emulator(self) -> bool:
        return self.arm_endpoint is not None


class ClientFactory:
    """Lazily built management clients sharing one credential and one transport configuration."""

    def __init__(self, target: Target, *, credential: TokenCredential | None = None, **client_kwargs: Any):
        self.target = target
        self._credential = credential
        # Test and benchmark knobs (polling_interval, retry_total, logging_enable ...).
        self._client_kwargs = client_kwargs

    @property
    def endpoints(self) -> CloudEndpoints:
        return CLOUDS[self.target.cloud]

    @property
    def arm_endpoint(self) -> str:
        return (self.target.arm_endpoint or self.endpoints.arm).rstrip("/")

    @cached_property
    def credential(self) -> TokenCredential:
        if self._credential is not None:
            return self._credential
        if self.target.is_emulator:
            from azure.identity import ClientSecretCredential

            return ClientSecretCredential(
                self.target.tenant_id or EMULATOR_TENANT_ID,
                EMULATOR_CLIENT_ID,
                os.environ.get(EMULATOR_CLIENT_SECRET_ENV, "emulator"),
                authority=self.arm_endpoint,
                disable_instance_discovery=True,
                connection_verify=self.target.ca_bundle,
            )
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(authority=self.endpoints.authority_host)

    @cached_property
    def subscription_id(self) -> str:
        sub = self.target.subscription_id or os.environ.get("AZURE_SUBSCRIPTION_ID")
        if sub:
            return sub
        if self.target.is_emulator:
            # Discover it, as `az account list` would: the emulator serves GET /subscriptions.
            from azure.core.rest import HttpRequest
            from azure.mgmt.resource.resources import ResourceManagementClient

            # The subscriptions client is a separate package; one raw GET through a client we have.
            client = ResourceManagementClient(self.credential, "-", **self._common_kwargs())
            response = client.send_request(HttpRequest("GET", "/subscriptions?api-version=2022-12-01"))
            response.raise_for_status()
            for subscription in response.json().get("value", []):
                return str(subscription["subscriptionId"])
        raise InputError(
            "azure.subscription_id: not set; put it in the config or export AZURE_SUBSCRIPTION_ID"
        )

    def _common_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "base_url": self.arm_endpoint,
            "credential_scopes": [self.endpoints.scope],
        }
        if self.target.ca_bundle:
            kwargs["connection_verify"] = self.target.ca_bundle
        kwargs.update(self._client_kwargs)
        return kwargs

    @cached_property
    def resource(self) -> ResourceManagementClient:
        from azure.mgmt.resource.resources import ResourceManagementClient

        return ResourceManagementClient(self.credential, self.subscription_id, **self._common_kwargs())

    @cached_property
    def network(self) -> NetworkManagementClient:
        from azure.mgmt.network import NetworkManagementClient

        return NetworkManagementClient(self.credential, self.subscription_id, **self._common_kwargs())

    @cached_property
    def containerservice(self) -> ContainerServiceClient:
        from azure.mgmt.containerservice import ContainerServiceClient

        return ContainerServiceClient(self.credential, self.subscription_id, **self._common_kwargs())

    @cached_property
    def msi(self) -> ManagedServiceIdentityClient:
        from azure.mgmt.msi import ManagedServiceIdentityClient

        return ManagedServiceIdentityClient(self.credential, self.subscription_id, **self._common_kwargs())

    @cached_property
    def authorization(self) -> AuthorizationManagementClient:
        from azure.mgmt.authorization import AuthorizationManagementClient

        return AuthorizationManagementClient(self.credential, self.subscription_id, **self._common_kwargs())

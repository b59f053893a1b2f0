"""The seed walkthrough (2020 "Control egress traffic for cluster nodes in AKS"), replayed call for call.

Each ``az`` command of the seed becomes the ARM traffic that command sends, in the seed's order, with
the real Azure SDKs against the same emulator the tool is measured on. The firewall commands come from
the azure-firewall CLI extension, whose ``*-rule create`` and ``ip-config create`` read the whole
firewall, append one item and write the whole firewall back, then wait for it (``_upsert_af_rule`` in
Azure/azure-cli-extensions ``src/azure-firewall/azext_firewall/custom.py``): every rule is one full
firewall update of minutes.

Where the seed cannot be replayed literally, the closest ARM equivalent is used and said so:

* ``az ad sp create-for-rbac`` talks to Microsoft Graph, which the emulator does not serve: a
  user-assigned managed identity stands in for the service principal (one MSI PUT), and the cluster
  uses it instead of ``--service-principal/--client-secret``. The role assignment on the VNet is kept
  (``principalType=ServicePrincipal``, as ``--assignee-principal-type`` sends).
* ``az aks update --api-server-authorized-ip-ranges $CURRENT_IP/32`` and ``az aks get-credentials`` (so
  that kubectl can reach an API server locked to the firewall's IP) are replaced by AKS run command,
  which is also how the tool deploys the app: the replay therefore leaves out one cluster update (4 min
  on the realistic profile), which makes the seed look faster than it was, never slower.
* ``kubectl apply -f example.yaml`` and ``kubectl get svc voting-app -o jsonpath=...`` run through
  ``managedClusters/runCommand`` with the seed's YAML (``seed_example.yaml``).
* ``--docker-bridge-address`` is not sent: the AKS API removed it (the tool drops it the same way).
* The az CLI's own start-up (1-2 s per command on a laptop) is not modelled: again in the seed's favour.

Run it alone: ``python -m bench.seed_replay [--profile fast|realistic] [--time-scale 0.02]``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aks_lockdown.arm.clients import ClientFactory

# The seed's environment variables, verbatim.
PREFIX = "aks-egress"
RG = f"{PREFIX}-rg"
LOC = "eastus"
PLUGIN = "azure"
AKSNAME = PREFIX
VNET_NAME = f"{PREFIX}-vnet"
AKSSUBNET_NAME = "aks-subnet"
FWSUBNET_NAME = "AzureFirewallSubnet"
FWNAME = f"{PREFIX}-fw"
FWPUBLICIP_NAME = f"{PREFIX}-fwpublicip"
FWIPCONFIG_NAME = f"{PREFIX}-fwconfig"
FWROUTE_TABLE_NAME = f"{PREFIX}-fwrt"
FWROUTE_NAME = f"{PREFIX}-fwrn"
FWROUTE_NAME_INTERNET = f"{PREFIX}-fwinternet"
# Stand-in for the seed's service principal (see the module docstring).
IDENTITY_NAME = f"{PREFIX}sp"
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
EXAMPLE_YAML = Path(__file__).with_name("seed_example.yaml")
# `--generate-ssh-keys`: any well-formed public key; the emulator never logs in with it.
SSH_KEY = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7bench0replay0key0not0used0for0anything0at0all0000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000 bench@replay"
)


@dataclass
class CommandRecord:
    """One seed command: what it is, how long it took, which requests it sent."""

    index: int
    command: str
    started: float  # seconds since the replay started
    elapsed: float
    requests: list[dict[str, Any]] = field(default_factory=list)  # method, path, status


@dataclass
class ReplayResult:
    ok: bool
    wall: float
    commands: list[CommandRecord]
    error: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)

    def all_requests(self) -> list[dict[str, Any]]:
        return [r for c in self.commands for r in c.requests]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "wall": round(self.wall, 3),
            "error": self.error,
            "outputs": self.outputs,
            "commands": [asdict(c) for c in self.commands],
        }


class SeedReplay:
    """Replays the seed on ``emu`` (an Emulator) through ``clients`` (a ClientFactory for it)."""

    def __init__(self, emu: Any, clients: ClientFactory) -> None:
        self.emu = emu
        self.clients = clients
        self.sub = clients.subscription_id
        self.commands: list[CommandRecord] = []
        self.vars: dict[str, Any] = {}
        self._t0 = 0.0

    # --- ids ---------------------------------------------------------------------------------
    def rid(self, provider_type: str, name: str) -> str:
        return f"/subscriptions/{self.sub}/resourceGroups/{RG}/providers/{provider_type}/{name}"

    @property
    def vnet_id(self) -> str:
        return self.rid("Microsoft.Network/virtualNetworks", VNET_NAME)

    def subnet_id(self, name: str) -> str:
        return f"{self.vnet_id}/subnets/{name}"

    # --- recording ---------------------------------------------------------------------------
    def _az(self, command: str, fn: Callable[[], Any]) -> Any:
        """Run one seed command and keep the requests it sent (the emulator logs every request)."""
        before = len(self.emu.requests())
        start = time.perf_counter()
        try:
            return fn()
        finally:
            elapsed = time.perf_counter() - start
            sent = self.emu.requests()[before:]
            self.commands.append(
                CommandRecord(
                    index=len(self.commands) + 1,
                    command=command,
                    started=round(start - self._t0, 4),
                    elapsed=round(elapsed, 4),
                    requests=[
                        {"method": r["method"], "path": r["path"], "status": r["status"]} for r in sent
                    ],
                )
            )

    # --- the walkthrough ---------------------------------------------------------------------
    def run(self) -> ReplayResult:
        self._t0 = time.perf_counter()
        # The token is fetched once, as the az CLI's MSAL cache does after `az login`.
        self.clients.credential.get_token(self.clients.endpoints.scope)
        try:
            for command, step in self.steps():
                self._az(command, step)
        except Exception as exc:  # the report says where the seed stopped, and why
            wall = time.perf_counter() - self._t0
            return ReplayResult(False, wall, self.commands, f"{type(exc).__name__}: {exc}", self.vars)
        return ReplayResult(True, time.perf_counter() - self._t0, self.commands, "", self.vars)

    def steps(self) -> list[tuple[str, Callable[[], Any]]]:
        return [
            (f"az group create --name {RG} --location {LOC}", self.group_create),
            (f"az network vnet create -n {VNET_NAME} --subnet-name {AKSSUBNET_NAME}", self.vnet_create),
            (f"az network vnet subnet create --name {FWSUBNET_NAME}", self.fw_subnet_create),
            (f"az network public-ip create -n {FWPUBLICIP_NAME} --sku Standard", self.public_ip_create),
            (f"az network firewall create -n {FWNAME} --enable-dns-proxy true", self.firewall_create),
            (f"az network firewall ip-config create -n {FWIPCONFIG_NAME}", self.ip_config_create),
            (f"az network public-ip show -n {FWPUBLICIP_NAME} --query ipAddress", self.public_ip_show),
            (f"az network firewall show -n {FWNAME} --query ipConfigurations[0]...", self.firewall_show),
            (f"az network route-table create --name {FWROUTE_TABLE_NAME}", self.route_table_create),
            (f"az network route-table route create --name {FWROUTE_NAME} (0.0.0.0/0)", self.route_default),
            (f"az network route-table route create --name {FWROUTE_NAME_INTERNET}", self.route_internet),
            ("az network firewall network-rule create -c aksfwnr -n apiudp", self.rule_apiudp),
            ("az network firewall network-rule create -c aksfwnr -n apitcp", self.rule_apitcp),
            ("az network firewall network-rule create -c aksfwnr -n time", self.rule_time),
            ("az network firewall application-rule create -c aksfwar -n fqdn", self.rule_fqdn),
            (f"az network vnet subnet update -n {AKSSUBNET_NAME} --route-table", self.subnet_update),
            ("az ad sp create-for-rbac (stand-in: user-assigned identity)", self.identity_create),
            (f"az network vnet show -n {VNET_NAME} --query id", self.vnet_show),
            ('az role assignment create --scope $VNETID --role "Network Contributor"', self.role_assign),
            (f"az network vnet subnet show -n {AKSSUBNET_NAME} --query id", self.subnet_show),
            (f"az aks create -n {AKSNAME} --outbound-type userDefinedRouting ...", self.aks_create),
            ("kubectl apply -f example.yaml (run command)", self.kubectl_apply),
            ("kubectl get svc voting-app -o jsonpath=... (run command)", self.kubectl_get_ip),
            ("az network firewall nat-rule create -c exampleset -n inboundrule", self.nat_rule),
        ]

    # Each method below is the ARM traffic of one az command.
    def group_create(self) -> None:
        self.clients.resource.resource_groups.create_or_update(RG, {"location": LOC})

    def vnet_create(self) -> None:
        from azure.mgmt.network.models import AddressSpace, Subnet, VirtualNetwork

        vnet = VirtualNetwork(
            location=LOC,
            address_space=AddressSpace(address_prefixes=["10.42.0.0/16"]),
            subnets=[Subnet(name=AKSSUBNET_NAME, address_prefix="10.42.1.0/24")],
        )
        self.clients.network.virtual_networks.begin_create_or_update(RG, VNET_NAME, vnet).result()

    def fw_subnet_create(self) -> None:
        from azure.mgmt.network.models import Subnet

        subnets = self.clients.network.subnets
        subnets.begin_create_or_update(
            RG, VNET_NAME, FWSUBNET_NAME, Subnet(address_prefix="10.42.2.0/24")
        ).result()

    def public_ip_create(self) -> None:
        from azure.mgmt.network.models import PublicIPAddress, PublicIPAddressSku

        # --sku Standard: the CLI makes a Standard IP static.
        pip = PublicIPAddress(
            location=LOC,
            sku=PublicIPAddressSku(name="Standard"),
            public_ip_allocation_method="Static",
            public_ip_address_version="IPv4",
        )
        self.clients.network.public_ip_addresses.begin_create_or_update(RG, FWPUBLICIP_NAME, pip).result()

    def firewall_create(self) -> None:
        from azure.mgmt.network.models import AzureFirewall

        # The 2020 extension wrote the DNS proxy switch as this additional property.
        firewall = AzureFirewall(location=LOC, additional_properties={"Network.DNS.EnableProxy": "true"})
        self.clients.network.azure_firewalls.begin_create_or_update(RG, FWNAME, firewall).result()

    def _firewall_read_modify_write(self, modify: Callable[[Any], None]) -> Any:
        """The extension's pattern: GET the whole firewall, change it, PUT it all back, wait."""
        firewalls = self.clients.network.azure_firewalls
        af = firewalls.get(RG, FWNAME)
        modify(af)
        return firewalls.begin_create_or_update(RG, FWNAME, af).result()

    def ip_config_create(self) -> None:
        from azure.mgmt.network.models import AzureFirewallIPConfiguration, SubResource

        def modify(af: Any) -> None:
            config = AzureFirewallIPConfiguration(
                name=FWIPCONFIG_NAME,
                public_ip_address=SubResource(
                    id=self.rid("Microsoft.Network/publicIPAddresses", FWPUBLICIP_NAME)
                ),
                subnet=SubResource(id=self.subnet_id(FWSUBNET_NAME)),
            )
            af.ip_configurations = [c for c in af.ip_configurations or [] if c.name != FWIPCONFIG_NAME]
            af.ip_configurations.append(config)

        self._firewall_read_modify_write(modify)

    def public_ip_show(self) -> None:
        pip = self.clients.network.public_ip_addresses.get(RG, FWPUBLICIP_NAME)
        self.vars["FWPUBLIC_IP"] = pip.ip_address

    def firewall_show(self) -> None:
        af = self.clients.network.azure_firewalls.get(RG, FWNAME)
        self.vars["FWPRIVATE_IP"] = af.ip_configurations[0].private_ip_address

    def route_table_create(self) -> None:
        from azure.mgmt.network.models import RouteTable

        tables = self.clients.network.route_tables
        tables.begin_create_or_update(RG, FWROUTE_TABLE_NAME, RouteTable(location=LOC)).result()

    def _route(self, name: str, prefix: str, hop: str, hop_ip: str | None = None) -> None:
        from azure.mgmt.network.models import Route

        route = Route(address_prefix=prefix, next_hop_type=hop, next_hop_ip_address=hop_ip)
        self.clients.network.routes.begin_create_or_update(RG, FWROUTE_TABLE_NAME, name, route).result()

    def route_default(self) -> None:
        self._route(FWROUTE_NAME, "0.0.0.0/0", "VirtualAppliance", self.vars["FWPRIVATE_IP"])

    def route_internet(self) -> None:
        self._route(FWROUTE_NAME_INTERNET, f"{self.vars['FWPUBLIC_IP']}/32", "Internet")

    def _upsert_rule(
        self, collections_attr: str, collection: Any, rule: Any, *, new: Callable[[], Any] | None
    ) -> None:
        """``_upsert_af_rule``: find the collection (or create it when priority/action are given),
        append the rule, write the whole firewall, wait."""

        def modify(af: Any) -> None:
            existing = list(getattr(af, collections_attr) or [])
            match = next((c for c in existing if c.name.lower() == collection.lower()), None)
            if match is None:
                if new is None:
                    raise RuntimeError(f"rule collection {collection!r} does not exist")
                match = new()
                match.rules = []
            match.rules = [*(match.rules or []), rule]
            setattr(af, collections_attr, [*(c for c in existing if c.name != match.name), match])

        self._firewall_read_modify_write(modify)

    def _network_rule(self, name: str, protocols: list[str], ports: list[str], **kw: Any) -> None:
        from azure.mgmt.network.models import (
            AzureFirewallNetworkRule,
            AzureFirewallNetworkRuleCollection,
            AzureFirewallRCAction,
        )

        rule = AzureFirewallNetworkRule(
            name=name, protocols=protocols, source_addresses=["*"], destination_ports=ports, **kw
        )
        first = name == "apiudp"  # only the first command passes --priority/--action

        def new() -> Any:
            return AzureFirewallNetworkRuleCollection(
                name="aksfwnr", priority=100, action=AzureFirewallRCAction(type="Allow")
            )

        self._upsert_rule("network_rule_collections", "aksfwnr", rule, new=new if first else None)

    def rule_apiudp(self) -> None:
        self._network_rule("apiudp", ["UDP"], ["1194"], destination_addresses=[f"AzureCloud.{LOC}"])

    def rule_apitcp(self) -> None:
        self._network_rule("apitcp", ["TCP"], ["9000"], destination_addresses=[f"AzureCloud.{LOC}"])

    def rule_time(self) -> None:
        self._network_rule("time", ["UDP"], ["123"], destination_fqdns=["ntp.ubuntu.com"])

    def rule_fqdn(self) -> None:
        from azure.mgmt.network.models import (
            AzureFirewallApplicationRule,
            AzureFirewallApplicationRuleCollection,
            AzureFirewallApplicationRuleProtocol,
            AzureFirewallRCAction,
        )

        rule = AzureFirewallApplicationRule(
            name="fqdn",
            source_addresses=["*"],
            protocols=[
                AzureFirewallApplicationRuleProtocol(protocol_type="Http", port=80),
                AzureFirewallApplicationRuleProtocol(protocol_type="Https", port=443),
            ],
            fqdn_tags=["AzureKubernetesService"],
        )

        def new() -> Any:
            return AzureFirewallApplicationRuleCollection(
                name="aksfwar", priority=100, action=AzureFirewallRCAction(type="Allow")
            )

        self._upsert_rule("application_rule_collections", "aksfwar", rule, new=new)

    def subnet_update(self) -> None:
        from azure.mgmt.network.models import SubResource

        subnets = self.clients.network.subnets
        subnet = subnets.get(RG, VNET_NAME, AKSSUBNET_NAME)
        subnet.route_table = SubResource(id=self.rid("Microsoft.Network/routeTables", FWROUTE_TABLE_NAME))
        subnets.begin_create_or_update(RG, VNET_NAME, AKSSUBNET_NAME, subnet).result()

    def identity_create(self) -> None:
        identity = self.clients.msi.user_assigned_identities.create_or_update(
            RG, IDENTITY_NAME, {"location": LOC}
        )
        self.vars["APPID"] = identity.client_id
        self.vars["PRINCIPAL_ID"] = identity.principal_id
        self.vars["IDENTITY_ID"] = identity.id

    def vnet_show(self) -> None:
        self.vars["VNETID"] = self.clients.network.virtual_networks.get(RG, VNET_NAME).id

    def role_assign(self) -> None:
        import uuid

        auth = self.clients.authorization
        scope = self.vars["VNETID"]
        # --role "Network Contributor": the CLI looks the role up by name at the scope first.
        roles = list(auth.role_definitions.list(scope, filter="roleName eq 'Network Contributor'"))
        builtin = f"/subscriptions/{self.sub}/providers/Microsoft.Authorization/roleDefinitions"
        role_id = roles[0].id if roles else f"{builtin}/{NETWORK_CONTRIBUTOR}"
        auth.role_assignments.create(
            scope,
            str(uuid.uuid4()),  # the CLI names assignments with a random GUID
            {
                "properties": {
                    "roleDefinitionId": role_id,
                    "principalId": self.vars["PRINCIPAL_ID"],
                    "principalType": "ServicePrincipal",
                }
            },
        )

    def subnet_show(self) -> None:
        self.vars["SUBNETID"] = self.clients.network.subnets.get(RG, VNET_NAME, AKSSUBNET_NAME).id

    def aks_create(self) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        clusters = self.clients.containerservice.managed_clusters
        try:  # `az aks create` first checks that the cluster does not exist yet
            clusters.get(RG, AKSNAME)
            raise RuntimeError(f"cluster {AKSNAME} already exists")
        except ResourceNotFoundError:
            pass
        body = {
            "location": LOC,
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {self.vars["IDENTITY_ID"]: {}}},
            "properties": {
                "dnsPrefix": f"{AKSNAME}-{RG}-{self.sub[:6]}",
                "agentPoolProfiles": [
                    {
                        "name": "nodepool1",
                        "mode": "System",
                        "count": 3,
                        "vmSize": "Standard_DS2_v2",
                        "vnetSubnetID": self.vars["SUBNETID"],
                        "type": "VirtualMachineScaleSets",
                        "osType": "Linux",
                    }
                ],
                "linuxProfile": {"adminUsername": "azureuser", "ssh": {"publicKeys": [{"keyData": SSH_KEY}]}},
                "networkProfile": {
                    "networkPlugin": PLUGIN,
                    "outboundType": "userDefinedRouting",
                    "serviceCidr": "10.41.0.0/16",
                    "dnsServiceIP": "10.41.0.10",
                },
                "apiServerAccessProfile": {"authorizedIPRanges": [f"{self.vars['FWPUBLIC_IP']}/32"]},
            },
        }
        cluster = clusters.begin_create_or_update(RG, AKSNAME, body).result()
        self.vars["CLUSTER_STATE"] = cluster.provisioning_state

    def _run_command(self, command: str, files: dict[str, str] | None = None) -> dict[str, Any]:
        from azure.mgmt.containerservice.models import RunCommandRequest

        request: dict[str, Any] = {"command": command}
        if files:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for name, text in files.items():
                    archive.writestr(name, text)
            request["context"] = base64.b64encode(buffer.getvalue()).decode("ascii")
        clusters = self.clients.containerservice.managed_clusters
        result = clusters.begin_run_command(RG, AKSNAME, RunCommandRequest(request)).result()
        data = result.as_dict() if hasattr(result, "as_dict") else dict(result or {})
        props = data.get("properties") or data
        if props.get("exit_code", props.get("exitCode")) not in (0, None):
            raise RuntimeError(f"{command}: exit {props.get('exit_code')}: {props.get('logs')}")
        return props

    def kubectl_apply(self) -> None:
        self._run_command("kubectl apply -f example.yaml", {"example.yaml": EXAMPLE_YAML.read_text()})

    def kubectl_get_ip(self) -> None:
        props = self._run_command(
            "kubectl get svc voting-app -o jsonpath='{.status.loadBalancer.ingress[*].ip}'"
        )
        self.vars["SERVICE_IP"] = str(props.get("logs") or "").strip().split()[0]

    def nat_rule(self) -> None:
        from azure.mgmt.network.models import (
            AzureFirewallNatRCAction,
            AzureFirewallNatRule,
            AzureFirewallNatRuleCollection,
        )

        rule = AzureFirewallNatRule(
            name="inboundrule",
            protocols=["Any"],
            source_addresses=["*"],
            destination_addresses=[self.vars["FWPUBLIC_IP"]],
            destination_ports=["80"],
            translated_address=self.vars["SERVICE_IP"],
            translated_port="80",
        )

        def new() -> Any:
            return AzureFirewallNatRuleCollection(
                name="exampleset", priority=100, action=AzureFirewallNatRCAction(type="Dnat")
            )

        self._upsert_rule("nat_rule_collections", "exampleset", rule, new=new)


def replay(emu: Any, *, polling_interval: float = 0.05) -> ReplayResult:
    """The whole seed on a started Emulator, with a fresh client factory (as a fresh shell would)."""
    clients = ClientFactory(emu.target(), polling_interval=polling_interval)
    return SeedReplay(emu, clients).run()


def main(argv: list[str] | None = None) -> int:
    from bench.common import bench_emulator, count

    p = argparse.ArgumentParser(prog="python -m bench.seed_replay", description=__doc__.splitlines()[0])
    p.add_argument("--profile", choices=("fast", "realistic"), default="fast")
    p.add_argument("--time-scale", type=float, default=0.02)
    p.add_argument("--json", action="store_true", help="print the full record as JSON")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-seed-") as tmp:
        emu = bench_emulator(Path(tmp) / "emulator", profile=args.profile, time_scale=args.time_scale)
        with emu:
            result = replay(emu, polling_interval=max(0.01, 10 * args.time_scale))
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0 if result.ok else 1
    for c in result.commands:
        methods = " ".join(r["method"] for r in c.requests)
        print(f"{c.index:2d} {c.elapsed:7.2f}s  {c.command}  [{methods}]")
    print(
        json.dumps({"ok": result.ok, "wall": round(result.wall, 2), **count(result.all_requests())}, indent=1)
    )
    if result.error:
        print("error:", result.error)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

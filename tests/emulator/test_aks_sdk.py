"""managedClusters through the pinned azure-mgmt-containerservice SDK, over HTTPS, against an
in-process Emulator: create with UDR, each constraint's error code, the outbound failure and its
reconcile, runCommand, credentials, DNAT, delete."""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from aks_lockdown.arm.clients import ClientFactory
from aks_lockdown.emulator import Emulator, kube

try:
    from . import test_netsim as tn
    from .test_kube import VOTING_APP
except ImportError:
    import test_netsim as tn  # type: ignore[no-redef]
    from test_kube import VOTING_APP  # type: ignore[no-redef]

NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(tmp_path_factory.mktemp("aks-emu"), profile="fast") as e:
        yield e


@pytest.fixture(scope="module")
def clients(emu: Emulator) -> ClientFactory:
    return ClientFactory(emu.target(), retry_total=0)


class Env:
    """One resource group holding the seed topology, written straight into the emulator's world
    (the network provider is the core's and tested there; here it is only the stage)."""

    def __init__(self, emu: Emulator, clients: ClientFactory, **world_kwargs: Any):
        self.emu = emu
        self.c = clients
        self.rg = f"rg-{uuid.uuid4().hex[:8]}"
        self.sub = emu.subscription_id
        self.rg_id = f"/subscriptions/{self.sub}/resourceGroups/{self.rg}"
        clients.resource.resource_groups.create_or_update(self.rg, {"location": "eastus"})
        from aks_lockdown.emulator.network import allocate_public_ip

        with emu.world.lock:
            self.public_ip = allocate_public_ip(emu.world)
            text = json.dumps(list(tn.build_world(**world_kwargs).resources.values()))
            text = text.replace(tn.RG, self.rg_id).replace(tn.FW_PUBLIC, self.public_ip)
            for r in json.loads(text):
                rid, rtype = r.pop("id"), r.pop("type")
                r.pop("name", None)
                # The core keeps subnets and routes as child records (their GET views merge them).
                r.get("properties", {}).pop("subnets", None)
                for route in r.get("properties", {}).pop("routes", None) or []:
                    emu.world.upsert(
                        f"{rid}/routes/{route['name']}",
                        "Microsoft.Network/routeTables/routes",
                        {"properties": route["properties"]},
                    )
                # The core's network provider keeps a public IP's address in the record's extra.
                extra = {"ipAddress": self.public_ip} if rtype.endswith("publicIPAddresses") else None
                emu.world.upsert(rid, rtype, r, extra=extra)
            emu.world.persist()
        self.subnet_id = tn.AKS_SUBNET.replace(tn.RG, self.rg_id)
        self.vnet_id = tn.VNET.replace(tn.RG, self.rg_id)
        self.rt_id = tn.RT.replace(tn.RG, self.rg_id)
        self.group_id = f"{tn.POLICY.replace(tn.RG, self.rg_id)}/ruleCollectionGroups/aks-egress"

    def identity(self, *, grant: str | None = "vnet") -> tuple[str, str]:
        ident = self.c.msi.user_assigned_identities.create_or_update(
            self.rg, "aks-identity", {"location": "eastus"}
        )
        if grant:
            scope = {"vnet": self.vnet_id, "subnet": self.subnet_id, "rg": self.rg_id}[grant]
            self.assign(ident.principal_id, scope)
        return ident.id, ident.principal_id

    def assign(self, principal: str, scope: str) -> None:
        self.c.authorization.role_assignments.create(
            scope,
            str(uuid.uuid4()),
            {
                "role_definition_id": f"/subscriptions/{self.sub}/providers/Microsoft.Authorization"
                f"/roleDefinitions/{NETWORK_CONTRIBUTOR}",
                "principal_id": principal,
                "principal_type": "ServicePrincipal",
            },
        )

    def body(self, identity_id: str, **net: Any) -> dict[str, Any]:
        network = {
            "networkPlugin": "azure",
            "outboundType": "userDefinedRouting",
            "serviceCidr": "10.41.0.0/16",
            "dnsServiceIP": "10.41.0.10",
            **net,
        }
        return {
            "location": "eastus",
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {identity_id: {}}},
            "properties": {
                "dnsPrefix": "aks-egress",
                "agentPoolProfiles": [
                    {
                        "name": "nodepool1",
                        "mode": "System",
                        "count": 3,
                        "vmSize": "Standard_D2s_v5",
                        "vnetSubnetID": self.subnet_id,
                        "type": "VirtualMachineScaleSets",
                        "osType": "Linux",
                    }
                ],
                "networkProfile": network,
                "apiServerAccessProfile": {"authorizedIPRanges": [f"{self.public_ip}/32"]},
            },
        }

    def create(self, body: dict[str, Any], name: str = "aks-egress") -> Any:
        return self.c.containerservice.managed_clusters.begin_create_or_update(self.rg, name, body).result()

    def run(
        self, command: str, files: dict[str, str] | None = None, name: str = "aks-egress"
    ) -> dict[str, Any]:
        req: dict[str, Any] = {"command": command}
        if files:
            req["context"] = kube.make_context(dict(files))
        res = self.c.containerservice.managed_clusters.begin_run_command(self.rg, name, req).result()
        return {"exit_code": res.exit_code, "logs": res.logs, "provisioning_state": res.provisioning_state}

    def set_group_rules(self, **world_kwargs: Any) -> None:
        """Rewrite the egress rule collection group (as a fixed rules step would)."""
        w = tn.build_world(**world_kwargs)
        group = json.loads(
            json.dumps(w.get(f"{tn.POLICY}/ruleCollectionGroups/aks-egress")).replace(tn.RG, self.rg_id)
        )
        with self.emu.world.lock:
            rec = self.emu.world.get(self.group_id)
            assert rec is not None
            self.emu.world.upsert(rec.id, rec.type, {"properties": group["properties"]})
            self.emu.world.persist()


def code_of(exc: HttpResponseError) -> str:
    return exc.error.code if exc.error else ""


def test_udr_cluster_end_to_end(emu: Emulator, clients: ClientFactory) -> None:
    env = Env(emu, clients)
    ident_id, principal = env.identity()
    mc = env.create(env.body(ident_id))
    assert mc.provisioning_state == "Succeeded"
    assert mc.node_resource_group == f"MC_{env.rg}_aks-egress_eastus"
    assert mc.fqdn.endswith(".hcp.eastus.azmk8s.io") and mc.fqdn.startswith("aks-egress-")
    assert mc.azure_portal_fqdn.endswith(".portal.hcp.eastus.azmk8s.io")
    assert mc.network_profile.outbound_type == "userDefinedRouting"
    assert mc.network_profile.load_balancer_profile is None
    assert mc.power_state.code == "Running"
    (uai,) = mc.identity.user_assigned_identities.values()
    assert uai.principal_id == principal and uai.client_id
    assert mc.identity_profile["kubeletidentity"].object_id
    assert mc.api_server_access_profile.authorized_ip_ranges == [f"{env.public_ip}/32"]
    got = clients.containerservice.managed_clusters.get(env.rg, "aks-egress")
    assert got.agent_pool_profiles[0].provisioning_state == "Succeeded"
    pool = clients.containerservice.agent_pools.get(env.rg, "aks-egress", "nodepool1")
    assert pool.count == 3 and pool.vnet_subnet_id.lower() == env.subnet_id.lower()

    creds = clients.containerservice.managed_clusters.list_cluster_user_credentials(env.rg, "aks-egress")
    kubeconfig = (
        creds.kubeconfigs[0].value.decode()
        if isinstance(creds.kubeconfigs[0].value, bytes)
        else base64.b64decode(creds.kubeconfigs[0].value).decode()
    )
    assert f"server: https://{mc.fqdn}:443" in kubeconfig
    assert "placeholder" in kubeconfig

    applied = env.run("kubectl apply -f example.yaml", {"example.yaml": VOTING_APP})
    assert applied["exit_code"] == 0, applied["logs"]
    assert applied["provisioning_state"] == "succeeded"
    assert "service/voting-app created" in applied["logs"]
    svcs = env.run("kubectl get svc -A -o json")
    app = next(i for i in json.loads(svcs["logs"])["items"] if i["metadata"]["name"] == "voting-app")
    assert app["status"]["loadBalancer"]["ingress"][0]["ip"] == "10.42.1.250"
    curl = "curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "
    ok = env.run(curl + "https://packages.aks.azure.com/")
    assert (ok["exit_code"], ok["logs"].strip()) == (0, "200")
    blocked = env.run(curl + "https://example.com/")
    assert blocked["exit_code"] == 28
    assert env.run("helm version")["exit_code"] == 127

    # DNAT: firewall public IP:port -> the internal LB: the voting app answers on this machine.
    with socket.socket() as s:
        s.bind((env.public_ip, 0))
        port = s.getsockname()[1]
    clients.network.firewall_policy_rule_collection_groups.begin_create_or_update(
        env.rg,
        "aks-egress-fwpolicy",
        "aks-ingress",
        {
            "properties": {
                "priority": 100,
                "ruleCollections": [
                    {
                        "ruleCollectionType": "FirewallPolicyNatRuleCollection",
                        "name": "dnat",
                        "priority": 100,
                        "action": {"type": "DNAT"},
                        "rules": [
                            {
                                "ruleType": "NatRule",
                                "name": "inboundrule",
                                "ipProtocols": ["TCP"],
                                "sourceAddresses": ["*"],
                                "destinationAddresses": [env.public_ip],
                                "destinationPorts": [str(port)],
                                "translatedAddress": "10.42.1.250",
                                "translatedPort": "80",
                            }
                        ],
                    }
                ],
            }
        },
    ).result()
    clients.network.firewall_policies.get(env.rg, "aks-egress-fwpolicy")  # any request settles the world
    with urllib.request.urlopen(f"http://{env.public_ip}:{port}/", timeout=5) as r:
        assert "Azure Voting App" in r.read().decode()

    clients.containerservice.managed_clusters.begin_delete(env.rg, "aks-egress").result()
    with pytest.raises(ResourceNotFoundError):
        clients.containerservice.managed_clusters.get(env.rg, "aks-egress")
    assert emu.world.get(f"/subscriptions/{env.sub}/resourceGroups/{mc.node_resource_group}") is None
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{env.public_ip}:{port}/", timeout=2)


def test_public_lb_service_gets_ip_in_node_rg(emu: Emulator, clients: ClientFactory) -> None:
    env = Env(emu, clients)
    ident_id, _ = env.identity()
    mc = env.create(env.body(ident_id))
    svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  type: LoadBalancer\n"
    svc += "  ports:\n  - port: 80\n"
    assert env.run("kubectl apply -f web.yaml", {"web.yaml": svc})["exit_code"] == 0
    pips = list(clients.network.public_ip_addresses.list(mc.node_resource_group))
    assert (
        len(pips) == 1 and pips[0].name.startswith("kubernetes-a") and pips[0].ip_address.startswith("127.")
    )
    ip = env.run("kubectl get svc web -o jsonpath='{.status.loadBalancer.ingress[0].ip}'")["logs"].strip()
    assert ip == pips[0].ip_address


def test_outbound_failure_then_reconcile(emu: Emulator, clients: ClientFactory) -> None:
    # The seed's 2020 FQDN list, written out instead of the tag: no packages.aks.azure.com.
    env = Env(emu, clients, fqdn_tag=False, fqdns=tn.SEED_FQDNS)
    ident_id, _ = env.identity()
    body = env.body(ident_id)
    with pytest.raises(HttpResponseError) as ei:
        env.create(body)
    assert code_of(ei.value) == "OutboundConnFailVMExtensionError"
    assert "packages.aks.azure.com:443" in str(ei.value)
    assert "exit status=50" in str(ei.value)
    mc = clients.containerservice.managed_clusters.get(env.rg, "aks-egress")
    assert mc.provisioning_state == "Failed"
    env.set_group_rules()  # the tag-based rules
    assert env.create(body).provisioning_state == "Succeeded"


def test_missing_network_contributor_fails_create(emu: Emulator, clients: ClientFactory) -> None:
    env = Env(emu, clients)
    ident_id, principal = env.identity(grant=None)
    with pytest.raises(HttpResponseError) as ei:
        env.create(env.body(ident_id))
    assert code_of(ei.value) == "LinkedAuthorizationFailed"
    assert env.subnet_id in str(ei.value) and "subnets/join/action" in str(ei.value)
    env.assign(principal, env.subnet_id)
    assert env.create(env.body(ident_id)).provisioning_state == "Succeeded"


def test_kubenet_needs_route_table_rights(emu: Emulator, clients: ClientFactory) -> None:
    env = Env(emu, clients)
    ident_id, principal = env.identity(grant="subnet")
    body = env.body(ident_id, networkPlugin="kubenet", podCidr="10.244.0.0/16")
    with pytest.raises(HttpResponseError) as ei:
        env.create(body)
    assert code_of(ei.value) == "AuthorizationFailed"
    assert env.rt_id in str(ei.value)
    env.assign(principal, env.rt_id)
    assert env.create(body).provisioning_state == "Succeeded"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (
            {"loadBalancerProfile": {"managedOutboundIPs": {"count": 1}}},
            "InvalidUserDefinedRoutingWithLoadBalancerProfile",
        ),
        (
            {"serviceCidr": "10.42.0.0/16", "dnsServiceIP": "10.42.0.10"},
            "ServiceCidrOverlapExistingSubnetsCidr",
        ),
        ({"dnsServiceIP": "10.99.0.10"}, "DnsServiceIpOutOfServiceCidr"),
        ({"dnsServiceIP": "10.41.0.1"}, "DnsServiceIpConflicting"),
        ({"dnsServiceIP": "10.41.255.255"}, "DnsBroadcastAddressConflicting"),
        ({"dnsServiceIP": "10.41.0.x"}, "DnsServiceIpParseError"),
        ({"serviceCidr": None, "dnsServiceIP": "10.0.0.10"}, "InvalidDNSServiceIP"),
    ],
)
def test_network_profile_constraints(
    emu: Emulator, clients: ClientFactory, change: dict[str, Any], code: str
) -> None:
    env = Env(emu, clients)
    ident_id, _ = env.identity()
    with pytest.raises(HttpResponseError) as ei:
        env.create(env.body(ident_id, **change))
    assert ei.value.status_code == 400
    assert code_of(ei.value) == code


def test_udr_needs_route_table(emu: Emulator, clients: ClientFactory) -> None:
    env = Env(emu, clients, route=False)
    ident_id, _ = env.identity()
    with pytest.raises(HttpResponseError) as ei:
        env.create(env.body(ident_id))
    assert code_of(ei.value) == "ExistingRouteTableNotAssociatedWithSubnet"


def test_udr_default_route_must_go_to_appliance(emu: Emulator, clients: ClientFactory) -> None:
    env = Env(emu, clients)
    with emu.world.lock:
        route = emu.world.get(f"{env.rt_id}/routes/aks-egress-fwrn")
        assert route is not None
        route.body["properties"] = {"addressPrefix": "0.0.0.0/0", "nextHopType": "Internet"}
    ident_id, _ = env.identity()
    with pytest.raises(HttpResponseError) as ei:
        env.create(env.body(ident_id))
    assert code_of(ei.value) == "RouteTableInvalidNextHop"


def test_authorized_ranges_validated(emu: Emulator, clients: ClientFactory) -> None:
    env = Env(emu, clients)
    ident_id, _ = env.identity()
    body = env.body(ident_id)
    body["properties"]["apiServerAccessProfile"] = {"authorizedIPRanges": ["not-an-ip"]}
    with pytest.raises(HttpResponseError) as ei:
        env.create(body)
    assert code_of(ei.value) == "InvalidParameter"
    body["properties"]["apiServerAccessProfile"] = {
        "enablePrivateCluster": True,
        "authorizedIPRanges": ["1.2.3.4/32"],
    }
    with pytest.raises(HttpResponseError) as ei:
        env.create(body)
    assert code_of(ei.value) == "InvalidParameter"


def test_delete_absent_is_204_and_get_404(emu: Emulator, clients: ClientFactory) -> None:
    env = Env(emu, clients)
    clients.containerservice.managed_clusters.begin_delete(env.rg, "nope").result()
    with pytest.raises(ResourceNotFoundError):
        clients.containerservice.managed_clusters.get(env.rg, "nope")


def test_operations_in_flight(tmp_path_factory: pytest.TempPathFactory) -> None:
    """With real durations: a write during the create is refused as AKS refuses it, and a command's
    result answers 202 until it has run, then 200 with exitCode and logs."""
    durations = {"managedClusters.create": 1.0, "runCommand": 1.0}
    with Emulator(tmp_path_factory.mktemp("aks-slow"), profile="fast", durations=durations) as slow:
        c = ClientFactory(slow.target(), retry_total=0)
        env = Env(slow, c)
        ident_id, _ = env.identity()
        mcs = c.containerservice.managed_clusters
        poller = mcs.begin_create_or_update(env.rg, "aks-egress", env.body(ident_id))
        assert mcs.get(env.rg, "aks-egress").provisioning_state == "Creating"
        with pytest.raises(HttpResponseError) as ei:
            mcs.begin_create_or_update(env.rg, "aks-egress", env.body(ident_id))
        assert ei.value.status_code == 409 and code_of(ei.value) == "OperationNotAllowed"
        with pytest.raises(HttpResponseError) as ei:
            mcs.begin_run_command(env.rg, "aks-egress", {"command": "kubectl get pods"})
        assert ei.value.status_code == 409
        assert poller.result().provisioning_state == "Succeeded"
        started = mcs.begin_run_command(env.rg, "aks-egress", {"command": "kubectl get svc"}, polling=False)
        # The 202's Location names the command result (commandResults/<id>), as RunCommandRequest.json.
        location = started._polling_method._initial_response.http_response.headers["Location"]
        command_id = location.split("/commandResults/")[1].split("?")[0]
        assert mcs.get_command_result(env.rg, "aks-egress", command_id) is None  # 202: still running
        time.sleep(1.1)
        done = mcs.get_command_result(env.rg, "aks-egress", command_id)
        assert done is not None and done.exit_code == 0 and "kubernetes" in done.logs
        assert done.provisioning_state == "succeeded" and done.started_at and done.finished_at


SPECS = Path(__file__).resolve().parents[3] / "shared" / "azure-specs" / "containerservice"


def _missing_keys(example: Any, ours: Any, path: str = "") -> list[str]:
    """Property names the example response has and ours lacks (values are not compared)."""
    out: list[str] = []
    if isinstance(example, dict) and isinstance(ours, dict):
        if path.endswith("userAssignedIdentities") and example and ours:
            # Keyed by resource id: compare the entries, not the ids.
            return _missing_keys(next(iter(example.values())), next(iter(ours.values())), path + "[*]")
        for k, v in example.items():
            if k not in ours:
                out.append(f"{path}.{k}")
            else:
                out += _missing_keys(v, ours[k], f"{path}.{k}")
    elif isinstance(example, list) and isinstance(ours, list) and example and ours:
        out += _missing_keys(example[0], ours[0], f"{path}[0]")
    return out


@pytest.mark.skipif(not SPECS.is_dir(), reason="azure-specs examples not available")
@pytest.mark.parametrize(
    "example",
    ["ManagedClustersCreate_Update.json", "ManagedClustersCreate_UserAssignedNATGateway.json",
     "ManagedClustersCreate_PrivateClusterFQDNSubdomain.json"],
)  # fmt: skip
def test_official_create_examples_conform(emu: Emulator, clients: ClientFactory, example: str) -> None:
    from azure.core.rest import HttpRequest

    spec = json.loads((SPECS / example).read_text())
    env = Env(emu, clients)
    body = spec["parameters"]["parameters"]
    if "identity" in body:
        ident_id, _ = env.identity(grant=None)
        body["identity"]["userAssignedIdentities"] = {ident_id: {}}
    path = f"{env.rg_id}/providers/Microsoft.ContainerService/managedClusters/clustername1"
    path += "?api-version=2026-08-01"
    send = clients.containerservice.send_request
    put = send(HttpRequest("PUT", path, json=body))
    assert put.status_code == 201, put.text()
    assert "/providers/Microsoft.ContainerService/locations/" in put.headers["Azure-AsyncOperation"]
    assert int(put.headers["Retry-After"]) >= 1
    assert put.json()["properties"]["provisioningState"] == "Creating"
    assert _missing_keys(spec["responses"]["201"]["body"], put.json()) == []
    got = send(HttpRequest("GET", path))
    assert _missing_keys(spec["responses"]["200"]["body"], got.json()) == []
    assert "secret" not in json.dumps(got.json()["properties"].get("servicePrincipalProfile", {}))
    assert "adminPassword" not in json.dumps(got.json())


@pytest.mark.skipif(not SPECS.is_dir(), reason="azure-specs examples not available")
def test_get_example_conforms(emu: Emulator, clients: ClientFactory) -> None:
    from azure.core.rest import HttpRequest

    spec = json.loads((SPECS / "ManagedClustersGet.json").read_text())
    env = Env(emu, clients)
    ident_id, _ = env.identity()
    body = env.body(ident_id, outboundType="loadBalancer")
    body["properties"]["networkProfile"]["networkPlugin"] = "kubenet"
    body["properties"]["agentPoolProfiles"][0].pop("vnetSubnetID")
    env.create(body)
    path = (
        f"{env.rg_id}/providers/Microsoft.ContainerService/managedClusters/aks-egress?api-version=2026-08-01"
    )
    got = clients.containerservice.send_request(HttpRequest("GET", path)).json()
    missing = _missing_keys(spec["responses"]["200"]["body"], got)
    # The example's cluster has a disk encryption set, an upgrade override and customer outbound IPs.
    expected_absent = {".properties.diskEncryptionSetID", ".properties.upgradeSettings",
                       ".properties.agentPoolProfiles[0].availabilityZones", ".tags",
                       ".properties.networkProfile.loadBalancerProfile.outboundIPs",
                       ".properties.servicePrincipalProfile", ".properties.linuxProfile"}  # fmt: skip
    assert set(missing) <= expected_absent, missing


def test_cluster_and_workload_survive_restart(tmp_path_factory: pytest.TempPathFactory) -> None:
    data = tmp_path_factory.mktemp("aks-restart")
    with Emulator(data, profile="fast") as first:
        env = Env(first, ClientFactory(first.target(), retry_total=0))
        ident_id, _ = env.identity()
        env.create(env.body(ident_id))
        assert env.run("kubectl apply -f example.yaml", {"example.yaml": VOTING_APP})["exit_code"] == 0
        rg = env.rg
    with Emulator(data, profile="fast") as second:
        c = ClientFactory(second.target(), retry_total=0)
        assert c.containerservice.managed_clusters.get(rg, "aks-egress").provisioning_state == "Succeeded"
        res = c.containerservice.managed_clusters.begin_run_command(
            rg, "aks-egress", {"command": "kubectl get svc voting-app -o json"}
        ).result()
        assert json.loads(res.logs)["status"]["loadBalancer"]["ingress"][0]["ip"] == "10.42.1.250"


def test_update_and_create_only_properties(emu: Emulator, clients: ClientFactory) -> None:
    from azure.core.rest import HttpRequest

    env = Env(emu, clients)
    ident_id, _ = env.identity()
    body = env.body(ident_id)
    env.create(body)
    path = (
        f"{env.rg_id}/providers/Microsoft.ContainerService/managedClusters/aks-egress?api-version=2026-08-01"
    )
    again = clients.containerservice.send_request(HttpRequest("PUT", path, json=body))
    assert again.status_code == 200 and again.json()["properties"]["provisioningState"] == "Updating"
    assert "Azure-AsyncOperation" in again.headers
    changed = json.loads(json.dumps(body))
    changed["properties"]["dnsPrefix"] = "other"
    with pytest.raises(HttpResponseError) as ei:
        env.create(changed)
    assert code_of(ei.value) == "PropertyChangeNotAllowed"
    assert env.create(body).provisioning_state == "Succeeded"


def test_agent_pool_scale_runs_bootstrap_again(emu: Emulator, clients: ClientFactory) -> None:
    env = Env(emu, clients)
    ident_id, _ = env.identity()
    env.create(env.body(ident_id))
    pools = clients.containerservice.agent_pools
    pool = pools.get(env.rg, "aks-egress", "nodepool1")
    body = {
        "properties": {"count": 4, "vmSize": pool.vm_size, "mode": "System", "vnetSubnetID": env.subnet_id}
    }
    assert pools.begin_create_or_update(env.rg, "aks-egress", "nodepool1", body).result().count == 4
    # New nodes bootstrap through today's rules: with the seed's explicit list they cannot.
    env.set_group_rules(fqdn_tag=False, fqdns=tn.SEED_FQDNS)
    body["properties"]["count"] = 5
    with pytest.raises(HttpResponseError) as ei:
        pools.begin_create_or_update(env.rg, "aks-egress", "nodepool1", body).result()
    assert code_of(ei.value) == "OutboundConnFailVMExtensionError"
    assert [p.name for p in pools.list(env.rg, "aks-egress")] == ["nodepool1"]


def test_recorded_session_sequence(emu: Emulator, clients: ClientFactory) -> None:
    """recordings/test_mgmt_aks.test_managed_clusters.yaml: PUT 201 (Azure-AsyncOperation), POST
    listClusterAdminCredential 200, POST listClusterUserCredential 200, GET upgradeProfiles/default
    200, GET 200, PATCH 200, POST listClusterMonitoringUserCredential 200, DELETE 202 (Location and
    Azure-AsyncOperation)."""
    env = Env(emu, clients)
    mcs = clients.containerservice.managed_clusters
    body = {
        "location": "eastus",
        "properties": {
            "dnsPrefix": "akspythonsdk",
            "agentPoolProfiles": [
                {"count": 1, "vmSize": "Standard_DS2_v2", "maxPods": 110, "osType": "Linux", "maxCount": 100,
                 "minCount": 1, "enableAutoScaling": True, "type": "VirtualMachineScaleSets",
                 "mode": "System", "name": "aksagent"}
            ],
            "servicePrincipalProfile": {"clientId": "123", "secret": "123"},
        },
    }  # fmt: skip
    mc = mcs.begin_create_or_update(env.rg, "7", body).result()
    assert mc.fqdn.startswith("akspythonsdk-") and mc.node_resource_group == f"MC_{env.rg}_7_eastus"
    assert mc.service_principal_profile.client_id == "123" and mc.service_principal_profile.secret is None
    assert mc.network_profile.load_balancer_profile.effective_outbound_i_ps
    mcs.list_cluster_admin_credentials(env.rg, "7")
    mcs.list_cluster_user_credentials(env.rg, "7")
    up = mcs.get_upgrade_profile(env.rg, "7")
    assert up.control_plane_profile.kubernetes_version == mc.kubernetes_version
    mcs.get(env.rg, "7")
    assert mcs.begin_update_tags(env.rg, "7", {"tags": {"tier": "testing", "archv3": ""}}).result().tags == {
        "tier": "testing",
        "archv3": "",
    }
    mcs.list_cluster_monitoring_user_credentials(env.rg, "7")
    deps = list(mcs.list_outbound_network_dependencies_endpoints(env.rg, "7"))
    domains = {e.domain_name for d in deps for e in d.endpoints}
    assert "packages.aks.azure.com" in domains and "mcr.microsoft.com" in domains
    mcs.begin_delete(env.rg, "7").result()
    served = [
        (r["method"], r["status"])
        for r in emu.requests(path=f"{env.rg}/providers/Microsoft.ContainerService/managedClusters/7")
        if "outboundNetwork" not in r["path"]
    ]
    want = [("PUT", 201), ("POST", 200), ("POST", 200), ("GET", 200), ("GET", 200), ("PATCH", 200),
            ("POST", 200), ("DELETE", 202)]  # fmt: skip
    it = iter(served)
    assert all(any(x == w for x in it) for w in want), served  # in order, polls in between allowed
    put = next(r for r in emu.requests(method="PUT", path=f"{env.rg}/providers/Microsoft.ContainerService/"))
    assert put["status"] == 201
    with pytest.raises(ResourceNotFoundError):
        mcs.get(env.rg, "7")

"""Server, identity, subscriptions, resource groups: the ARM basics through the real SDKs."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from aks_lockdown.arm.clients import ClientFactory, Target
from aks_lockdown.emulator import Emulator

from .conftest import Raw


def test_subscription_discovery_and_identity(emu: Emulator) -> None:
    # No subscription configured: the client factory discovers it with GET /subscriptions, after getting
    # a token from the emulator's token endpoint (ClientSecretCredential, authority = emulator).
    target = Target(arm_endpoint=emu.arm_endpoint, ca_bundle=emu.ca_bundle)
    factory = ClientFactory(target)
    assert factory.subscription_id == emu.subscription_id
    assert factory.credential.get_token("https://management.azure.com/.default").token


def test_get_subscription(raw: Raw, emu: Emulator) -> None:
    r = raw("GET", f"/subscriptions/{emu.subscription_id}?api-version=2022-12-01")
    assert r.status_code == 200
    body = r.json()
    assert body["subscriptionId"] == emu.subscription_id
    assert body["tenantId"] == emu.tenant_id
    assert body["state"] == "Enabled" and body["displayName"]
    r = raw(
        "GET", "/subscriptions/00000000-0000-0000-0000-00000000dead/resourcegroups?api-version=2025-04-01"
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "SubscriptionNotFound"


def test_more_subscriptions_on_request(emu: Emulator, raw: Raw) -> None:
    sub = emu.add_subscription(display_name="second")
    ids = [s["subscriptionId"] for s in raw("GET", "/subscriptions?api-version=2022-12-01").json()["value"]]
    assert sub in ids and emu.subscription_id in ids
    del emu.world.subscriptions[sub]


def test_no_token_is_401_with_arm_body(emu: Emulator) -> None:
    url = f"{emu.arm_endpoint}/subscriptions/{emu.subscription_id}/resourcegroups?api-version=2025-04-01"
    r = requests.get(url, verify=emu.ca_bundle)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "AuthenticationFailed"
    assert r.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
    assert r.headers["x-ms-request-id"]
    r = requests.get(url, verify=emu.ca_bundle, headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_missing_api_version(raw: Raw, emu: Emulator) -> None:
    r = raw("GET", f"/subscriptions/{emu.subscription_id}/resourcegroups")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "MissingApiVersionParameter"


def test_common_headers_echo_client_ids(raw: Raw, emu: Emulator) -> None:
    r = raw(
        "GET",
        f"/subscriptions/{emu.subscription_id}/resourcegroups?api-version=2025-04-01",
        headers={"x-ms-client-request-id": "abc-123"},
    )
    assert r.headers["x-ms-correlation-request-id"] == "abc-123"
    assert r.headers["x-ms-client-request-id"] == "abc-123"
    assert r.headers["x-ms-request-id"]
    assert int(r.headers["x-ms-ratelimit-remaining-subscription-reads"]) > 0
    r = raw(
        "PUT",
        f"/subscriptions/{emu.subscription_id}/resourcegroups/x?api-version=2025-04-01",
        {"location": "westus"},
    )
    assert "x-ms-ratelimit-remaining-subscription-writes" in r.headers


def test_resource_group_crud(clients: ClientFactory) -> None:
    rgs = clients.resource.resource_groups
    created = rgs.create_or_update("rg-a", {"location": "West US", "tags": {"k": "v"}})
    assert created.properties.provisioning_state == "Succeeded"
    assert created.location == "westus" and created.tags == {"k": "v"}
    assert created.type == "Microsoft.Resources/resourceGroups"
    assert rgs.check_existence("rg-a") is True
    assert rgs.check_existence("nope") is False
    assert rgs.get("RG-A").name == "rg-a"  # ids are case-insensitive, keep their casing
    assert "rg-a" in [g.name for g in rgs.list()]
    rgs.update("rg-a", {"tags": {"k": "w"}})
    assert rgs.get("rg-a").tags == {"k": "w"}
    with pytest.raises(ResourceNotFoundError) as exc:
        rgs.get("nope")
    assert exc.value.error.code == "ResourceGroupNotFound"
    assert "could not be found" in exc.value.error.message


def test_resource_group_put_status_codes(raw: Raw, emu: Emulator) -> None:
    path = f"/subscriptions/{emu.subscription_id}/resourcegroups/rg-codes?api-version=2025-04-01"
    assert raw("PUT", path, {"location": "eastus"}).status_code == 201
    assert raw("PUT", path, {"location": "eastus"}).status_code == 200
    r = raw("PUT", path, {"location": "westus"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "InvalidResourceGroupLocation"
    assert raw("HEAD", path).status_code == 204


def test_resource_group_delete_cascades(clients: ClientFactory, rg: str, raw: Raw, emu: Emulator) -> None:
    net = clients.network
    net.route_tables.begin_create_or_update(rg, "rt", {"location": "westus"}).result()
    clients.msi.user_assigned_identities.create_or_update(rg, "id", {"location": "westus"})
    r = raw("DELETE", f"/subscriptions/{emu.subscription_id}/resourcegroups/{rg}?api-version=2025-04-01")
    assert r.status_code == 202
    assert f"/subscriptions/{emu.subscription_id}/operationresults/" in r.headers["Location"]
    assert int(r.headers["Retry-After"]) >= 1
    assert raw("GET", r.headers["Location"]).status_code in (200, 204)
    assert clients.resource.resource_groups.check_existence(rg) is False
    assert emu.world.list("Microsoft.Network/routeTables") == []
    assert emu.world.list("Microsoft.ManagedIdentity/userAssignedIdentities") == []
    # Deleting it again: ARM answers 404.
    with pytest.raises(ResourceNotFoundError):
        clients.resource.resource_groups.begin_delete(rg).result()


def test_resource_group_delete_takes_the_groups_it_manages(
    clients: ClientFactory, rg: str, emu: Emulator
) -> None:
    # An AKS node resource group (managedBy = the cluster in rg) goes with rg, as in ARM; a group
    # managed by something elsewhere stays.
    sub = f"/subscriptions/{emu.subscription_id}"
    cluster = f"{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/aks"
    node_rg = f"{sub}/resourceGroups/MC_{rg}_aks_westus"
    other_rg = f"{sub}/resourceGroups/MC_other_aks_westus"
    with emu.world.lock:
        emu.world.upsert(cluster, "Microsoft.ContainerService/managedClusters", {"location": "westus"})
        for gid, owner in ((node_rg, cluster), (other_rg, f"{sub}/resourceGroups/other/providers/x/y/z")):
            emu.world.upsert(
                gid, "Microsoft.Resources/resourceGroups", {"location": "westus", "managedBy": owner}
            )
            emu.world.upsert(
                f"{gid}/providers/Microsoft.Network/publicIPAddresses/kubernetes-a1",
                "Microsoft.Network/publicIPAddresses",
                {"location": "westus", "sku": {"name": "Standard"}, "properties": {}},
                extra={"ipAddress": "127.9.9.9"},
            )
        emu.world.persist()
    clients.resource.resource_groups.begin_delete(rg).result()
    assert clients.resource.resource_groups.check_existence(f"MC_{rg}_aks_westus") is False
    assert emu.world.get(f"{node_rg}/providers/Microsoft.Network/publicIPAddresses/kubernetes-a1") is None
    assert clients.resource.resource_groups.check_existence("MC_other_aks_westus") is True
    assert (
        emu.world.get(f"{other_rg}/providers/Microsoft.Network/publicIPAddresses/kubernetes-a1") is not None
    )


def test_resource_not_found_wording(clients: ClientFactory, rg: str) -> None:
    with pytest.raises(ResourceNotFoundError) as exc:
        clients.network.virtual_networks.get(rg, "missing")
    assert exc.value.error.code == "ResourceNotFound"
    assert exc.value.error.message.startswith(
        "The Resource 'Microsoft.Network/virtualNetworks/missing' under resource group 'rg1' was not found."
    )
    with pytest.raises(ResourceNotFoundError) as exc:
        clients.network.virtual_networks.get("no-such-rg", "x")
    assert exc.value.error.code == "ResourceGroupNotFound"


def test_unknown_type_is_arm_error(raw: Raw, emu: Emulator, rg: str) -> None:
    r = raw(
        "GET",
        f"/subscriptions/{emu.subscription_id}/resourceGroups/{rg}/providers/Microsoft.Foo/bars/x"
        "?api-version=2020-01-01",
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidResourceType"


def test_introspection(emu: Emulator, clients: ClientFactory, rg: str) -> None:
    clients.resource.resource_groups.get(rg)
    reqs = emu.requests(method="GET", path="resourcegroups/rg1$")
    assert reqs and reqs[-1]["status"] == 200 and reqs[-1]["api_version"] == "2025-04-01"
    assert reqs[-1]["resource_type"] == "Microsoft.Resources/resourceGroups"
    stats = emu.stats()
    assert stats["reads"] >= 1 and stats["writes"] >= 1
    assert stats["by_method"]["GET"] >= 1
    # Same over HTTP, no token needed.
    http = requests.get(f"{emu.arm_endpoint}/_emulator/stats", verify=emu.ca_bundle).json()
    assert http["by_resource_type"]["Microsoft.Resources/resourceGroups"] >= 2
    listed = requests.get(
        f"{emu.arm_endpoint}/_emulator/requests", params={"method": "PUT"}, verify=emu.ca_bundle
    ).json()
    assert {r["method"] for r in listed} == {"PUT"}
    world = requests.get(f"{emu.arm_endpoint}/_emulator/world", verify=emu.ca_bundle).json()
    assert any(r["name"] == "rg1" for r in world["resources"])
    assert requests.post(f"{emu.arm_endpoint}/_emulator/reset", verify=emu.ca_bundle).status_code == 200
    assert clients.resource.resource_groups.check_existence(rg) is False


def test_tls_material_reused(tmp_path) -> None:
    with Emulator(tmp_path) as a:
        ca = Path(a.ca_bundle).read_text()
        sub = a.subscription_id
    with Emulator(tmp_path) as b:
        assert Path(b.ca_bundle).read_text() == ca
        assert b.subscription_id == sub
        assert requests.get(f"{b.arm_endpoint}/_emulator/stats", verify=b.ca_bundle).ok


def test_bad_body_is_arm_error(raw: Raw, emu: Emulator) -> None:
    r = raw(
        "PUT",
        f"/subscriptions/{emu.subscription_id}/resourcegroups/x?api-version=2025-04-01",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidRequestContent"


def test_http_error_surface(clients: ClientFactory) -> None:
    with pytest.raises(HttpResponseError) as exc:
        clients.resource.resource_groups.create_or_update("bad", {"location": ""})
    assert exc.value.error.code == "LocationRequired"


def test_writes_refused_while_group_is_deleted(tmp_path: Path) -> None:
    with Emulator(tmp_path, durations={"resourceGroups.delete": 1.0}) as emu:
        c = ClientFactory(emu.target(), retry_total=0)
        c.resource.resource_groups.create_or_update("rg", {"location": "westus"})
        c.network.route_tables.begin_create_or_update("rg", "rt", {"location": "westus"}).result()
        c.resource.resource_groups.begin_delete("rg")
        assert c.resource.resource_groups.get("rg").properties.provisioning_state == "Deleting"
        with pytest.raises(HttpResponseError) as exc:
            c.network.route_tables.begin_create_or_update("rg", "rt2", {"location": "westus"})
        assert exc.value.status_code == 409 and exc.value.error.code == "ResourceGroupBeingDeleted"
        with pytest.raises(HttpResponseError) as exc:
            c.resource.resource_groups.create_or_update("rg", {"location": "westus"})
        assert exc.value.error.code == "ResourceGroupBeingDeleted"
        assert emu.requests(status=409)


def test_throughput_smoke(tmp_path: Path) -> None:
    from aks_lockdown.emulator.throughput import measure

    with Emulator(tmp_path, throttling=False) as emu:
        result = measure(emu, seconds=0.5, threads=2)
    # The full figure (python -m aks_lockdown.emulator.throughput) is ~700-800 GET/s on 2 cores; this only
    # guards against a regression by an order of magnitude (e.g. Nagle's 40 ms per answer).
    assert result["gets_per_second"] > 150


def test_list_resources_and_tag_filters(clients: ClientFactory, rg: str) -> None:
    tags = {"managed-by": "aks-lockdown", "aks-lockdown-deployment": "d1"}
    clients.resource.resource_groups.create_or_update("rg-tagged", {"location": "westus", "tags": tags})
    found = clients.resource.resource_groups.list(
        filter="tagName eq 'managed-by' and tagValue eq 'aks-lockdown'"
    )
    assert [g.name for g in found] == ["rg-tagged"]
    clients.network.route_tables.begin_create_or_update(
        rg, "rt", {"location": "westus", "tags": tags}
    ).result()
    clients.network.routes.begin_create_or_update(
        rg, "rt", "r", {"properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "Internet"}}
    ).result()
    clients.msi.user_assigned_identities.create_or_update(rg, "id", {"location": "westus"})
    in_rg = clients.resource.resources.list_by_resource_group(rg)
    assert sorted(r.type for r in in_rg) == [
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.Network/routeTables",
    ]
    tagged = list(clients.resource.resources.list(filter="tagName eq 'aks-lockdown-deployment'"))
    assert [r.name for r in tagged] == ["rt"]


def test_chunked_request_body(raw: Raw, emu: Emulator) -> None:
    def gen():
        yield b'{"location": '
        yield b'"westus"}'

    r = raw(
        "PUT",
        f"/subscriptions/{emu.subscription_id}/resourcegroups/chunky?api-version=2025-04-01",
        data=gen(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 201 and r.json()["location"] == "westus"


def test_parallel_clients(tmp_path: Path) -> None:
    """Several SDK clients writing and reading at once: every answer is right, the world file parses."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    with Emulator(tmp_path, throttling=False) as emu:
        ClientFactory(emu.target()).resource.resource_groups.create_or_update("rg", {"location": "westus"})

        def work(i: int) -> str:
            c = ClientFactory(emu.target(), retry_total=0)
            c.network.route_tables.begin_create_or_update("rg", f"rt{i}", {"location": "westus"}).result()
            for _ in range(5):
                assert c.network.route_tables.get("rg", f"rt{i}").name == f"rt{i}"
            return f"rt{i}"

        with ThreadPoolExecutor(8) as pool:
            names = list(pool.map(work, range(16)))
        assert len(names) == 16
        assert emu.stats()["by_status"].get("500") is None
    world = json.loads((tmp_path / "world.json").read_text())
    assert sum(r["type"] == "Microsoft.Network/routeTables" for r in world["resources"]) == 16

"""Long operations as real ARM: the recorded sessions replayed, status/result endpoints, restart."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from aks_lockdown.arm.clients import ClientFactory
from aks_lockdown.emulator import Emulator
from aks_lockdown.emulator.config import EmulatorConfig

from .conftest import Raw

RECORDINGS = Path("/work/shared/azure-specs/recordings")
if not RECORDINGS.exists():  # the reference copy lives next to the project checkout
    RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "azure-specs" / "recordings"
ZERO_SUB = "00000000-0000-0000-0000-000000000000"
LRO_HEADERS = ("Azure-AsyncOperation", "Location", "Retry-After")


def _body(entry: dict[str, Any]) -> Any:
    body = entry.get("RequestBody")
    if isinstance(body, str):
        return json.loads(body) if body.strip() else None
    return body


def _resp_json(entry: dict[str, Any]) -> Any:
    body = entry.get("ResponseBody")
    if isinstance(body, list):
        body = "".join(body)
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return body


def replay(raw: Raw, emu: Emulator, recording: str, *, skip: tuple[str, ...] = ()) -> int:
    """Replay the ARM entries of a recorded session: same status codes, same LRO headers present, same
    operation status answers and provisioningStates. Poll URLs are mapped to the emulator's."""
    entries = json.loads((RECORDINGS / recording).read_text())["Entries"]
    url_map: dict[str, str] = {}
    checked = 0
    for e in entries:
        uri: str = e["RequestUri"]
        if not uri.startswith("https://management.azure.com/") or any(s in uri for s in skip):
            continue
        key = uri.split("?")[0]
        if key in url_map:
            time.sleep(0.2)  # the recorded client waited Retry-After; scaled durations are ~0.1-0.3 s
            url = url_map[key]
        else:
            url = uri.replace("https://management.azure.com", emu.arm_endpoint).replace(
                ZERO_SUB, emu.subscription_id
            )
        r = raw(e["RequestMethod"], url, _body(e))
        want = e["StatusCode"]
        assert r.status_code == want, (e["RequestMethod"], uri, r.status_code, r.text[:300])
        rec_headers = {k.lower() for k in e["ResponseHeaders"]}
        for h in LRO_HEADERS:
            if e["RequestMethod"] in ("PUT", "DELETE"):
                assert (h.lower() in r.headers) == (h.lower() in rec_headers), (h, e["RequestMethod"], uri)
            if h != "Retry-After" and h.lower() in rec_headers and h.lower() in r.headers:
                url_map[
                    e["ResponseHeaders"][
                        next(k for k in e["ResponseHeaders"] if k.lower() == h.lower())
                    ].split("?")[0]
                ] = r.headers[h]
        if h := r.headers.get("Retry-After"):
            assert int(h) >= 1
        want_body = _resp_json(e)
        if isinstance(want_body, dict):
            got = r.json()
            if "status" in want_body:
                assert got["status"] == want_body["status"], (uri, got)
            state = (want_body.get("properties") or {}).get("provisioningState")
            if state:
                assert got["properties"]["provisioningState"] == state, (uri, got["properties"])
        assert r.headers["x-ms-request-id"] and r.headers["x-ms-correlation-request-id"]
        checked += 1
    return checked


@pytest.fixture
def scaled(tmp_path: Path) -> Any:
    # Realistic figures scaled by 0.01: route table 0.1 s, firewall policy 0.3 s.
    with Emulator(tmp_path, profile="realistic", time_scale=0.01, throttling=False) as emu:
        Raw(emu)(
            "PUT",
            f"/subscriptions/{emu.subscription_id}/resourcegroups/rgname?api-version=2025-04-01",
            {"location": "westus"},
        )
        yield emu


def test_replay_route_table_recording(scaled: Emulator) -> None:
    n = replay(Raw(scaled), scaled, "test_cli_mgmt_network_route_table.pyTestMgmtNetworktest_network.json")
    assert n == 13


def test_replay_firewall_policy_recording(scaled: Emulator) -> None:
    # The legacy ruleGroups API (2020-04-01) of that session and the GET listing its group are not served.
    n = replay(
        Raw(scaled),
        scaled,
        "test_cli_mgmt_network_firewall_policy.pyTestMgmtNetworktest_network.json",
        skip=("/ruleGroups", "nfvOperations/03bb", "nfvOperations/a5cf", "nfvOperationResults/a5cf"),
    )
    assert n >= 4


def test_firewall_sequence_like_recording(scaled: Emulator) -> None:
    """The firewall recording's shape (PUT 201 + async headers, InProgress polls with Retry-After,
    Succeeded, GET; DELETE 202 + Location + Azure-AsyncOperation, polls, 404) for an AZFW_VNet."""
    raw = Raw(scaled)
    base = f"/subscriptions/{scaled.subscription_id}/resourceGroups/rgname/providers/Microsoft.Network"
    q = "?api-version=2026-03-01"
    for path, body in [
        (
            "/virtualNetworks/v",
            {
                "location": "westus",
                "properties": {
                    "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                    "subnets": [
                        {"name": "AzureFirewallSubnet", "properties": {"addressPrefix": "10.0.1.0/26"}}
                    ],
                },
            },
        ),
        (
            "/publicIPAddresses/pip",
            {
                "location": "westus",
                "sku": {"name": "Standard"},
                "properties": {"publicIPAllocationMethod": "Static"},
            },
        ),
    ]:
        assert raw("PUT", base + path + q, body).status_code == 201
    time.sleep(0.11)
    fw_body = {
        "location": "westus",
        "properties": {
            "ipConfigurations": [
                {
                    "name": "c",
                    "properties": {
                        "subnet": {"id": f"{base}/virtualNetworks/v/subnets/AzureFirewallSubnet"},
                        "publicIPAddress": {"id": f"{base}/publicIPAddresses/pip"},
                    },
                }
            ]
        },
    }
    scaled.config.overrides["azureFirewalls.create"] = 60.0  # 0.6 s
    put = raw("PUT", base + "/azureFirewalls/fw" + q, fw_body)
    assert put.status_code == 201 and put.json()["properties"]["provisioningState"] == "Updating"
    aao = put.headers["Azure-AsyncOperation"]
    assert "/providers/Microsoft.Network/locations/westus/operations/" in aao and "api-version=" in aao
    assert put.headers["x-ms-request-id"] == aao.split("/operations/")[1].split("?")[0]
    poll = raw("GET", aao)
    assert poll.status_code == 200 and poll.json()["status"] == "InProgress"
    assert int(poll.headers["Retry-After"]) >= 1
    assert set(poll.json()) >= {"id", "name", "status", "startTime", "percentComplete"}
    assert raw("GET", base + "/azureFirewalls/fw" + q).json()["properties"]["provisioningState"] == "Updating"
    time.sleep(0.65)
    done = raw("GET", aao)
    assert done.json()["status"] == "Succeeded" and "Retry-After" not in done.headers
    assert done.json()["endTime"] and done.json()["percentComplete"] == 100.0
    assert (
        raw("GET", base + "/azureFirewalls/fw" + q).json()["properties"]["provisioningState"] == "Succeeded"
    )
    patch = raw("PATCH", base + "/azureFirewalls/fw" + q, {"tags": {"a": "b"}})
    assert patch.status_code == 200 and patch.json()["tags"] == {"a": "b"}
    scaled.config.overrides["azureFirewalls.delete"] = 30.0  # 0.3 s
    d = raw("DELETE", base + "/azureFirewalls/fw" + q)
    assert d.status_code == 202 and not d.content
    assert "/operationResults/" in d.headers["Location"] and d.headers["Azure-AsyncOperation"]
    assert raw("GET", d.headers["Location"]).status_code == 202
    assert raw("GET", base + "/azureFirewalls/fw" + q).json()["properties"]["provisioningState"] == "Deleting"
    time.sleep(0.35)
    assert raw("GET", d.headers["Azure-AsyncOperation"]).json()["status"] == "Succeeded"
    assert raw("GET", d.headers["Location"]).status_code in (200, 204)
    assert raw("GET", base + "/azureFirewalls/fw" + q).status_code == 404
    assert raw("DELETE", base + "/azureFirewalls/fw" + q).status_code == 204


def test_unknown_operation_is_404(raw: Raw, emu: Emulator) -> None:
    r = raw(
        "GET",
        f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Network/locations/westus/operations/"
        "nope?api-version=2026-03-01",
    )
    assert r.status_code == 404


def test_restart_mid_operation(tmp_path: Path) -> None:
    """Kill the emulator mid-operation: a new one on the same data dir completes it on time."""
    with Emulator(tmp_path, durations={"routeTables.put": 1.5}) as a:
        c = ClientFactory(a.target(), retry_total=0)
        c.resource.resource_groups.create_or_update("rg", {"location": "westus"})
        raw = Raw(a)
        put = raw(
            "PUT",
            f"/subscriptions/{a.subscription_id}/resourceGroups/rg/providers/Microsoft.Network/"
            "routeTables/rt?api-version=2026-03-01",
            {"location": "westus"},
        )
        started = time.time()
        aao_path = put.headers["Azure-AsyncOperation"].split(a.arm_endpoint, 1)[1]
    assert not list(tmp_path.glob("*.tmp"))
    with Emulator(tmp_path) as b:  # no duration override: the operation record carries its duration
        raw = Raw(b)
        assert raw("GET", aao_path).json()["status"] == "InProgress"
        c = ClientFactory(b.target(), retry_total=0)
        assert c.network.route_tables.get("rg", "rt").provisioning_state == "Updating"
        time.sleep(max(0.0, started + 1.55 - time.time()))
        assert raw("GET", aao_path).json()["status"] == "Succeeded"
        assert c.network.route_tables.get("rg", "rt").provisioning_state == "Succeeded"


def test_acknowledged_writes_survive_restart(tmp_path: Path) -> None:
    with Emulator(tmp_path) as a:
        c = ClientFactory(a.target())
        c.resource.resource_groups.create_or_update("rg", {"location": "westus"})
        ip = (
            c.network.public_ip_addresses.begin_create_or_update(
                "rg", "p", {"location": "westus", "sku": {"name": "Standard"}}
            )
            .result()
            .ip_address
        )
    with Emulator(tmp_path) as b:
        c = ClientFactory(b.target())
        assert c.network.public_ip_addresses.get("rg", "p").ip_address == ip
        c.network.public_ip_addresses.begin_delete("rg", "p").result()
    with Emulator(tmp_path) as d, pytest.raises(ResourceNotFoundError):
        ClientFactory(d.target()).network.public_ip_addresses.get("rg", "p")


def test_retry_after_grows_scaled_and_capped() -> None:
    cfg = EmulatorConfig(profile="realistic")
    assert [cfg.retry_after(t, 1000) for t in (0, 15, 25, 45, 70)] == [10, 10, 20, 40, 80]
    assert cfg.retry_after(25, 5) == 5  # capped at the time left
    assert EmulatorConfig(time_scale=0.01).retry_after(0.05, 100) == 1  # 0.1 s scaled: never below 1
    assert cfg.duration("azureFirewalls.create") == 360
    assert cfg.duration("ruleCollectionGroups.put.attached") == 180
    assert EmulatorConfig(profile="realistic", time_scale=0.1).duration("managedClusters.create") == 42
    assert EmulatorConfig().duration("azureFirewalls.create") == 0


def test_restart_on_same_port_drops_old_connections(tmp_path: Path) -> None:
    with Emulator(tmp_path) as a:
        port = a.port
        c = ClientFactory(a.target(), retry_total=3)
        c.resource.resource_groups.create_or_update("rg", {"location": "westus"})
    with Emulator(tmp_path, port=port) as b:
        b.add_subscription()  # a change only the new emulator knows
        # The same client (its pooled keep-alive connection was closed at stop) now reaches b.
        assert c.resource.resource_groups.get("rg").name == "rg"
        assert b.requests(method="GET", path="resourcegroups/rg$")


def test_precise_retry_after_sends_unrounded_ms_instead_of_whole_seconds(tmp_path: Path) -> None:
    """Benchmarks at a small time scale ask for retry-after-ms; by default the headers are real ARM's."""
    import requests

    for precise in (False, True):
        with Emulator(
            tmp_path / str(precise), profile="realistic", time_scale=0.01, precise_retry_after=precise
        ) as emu:
            token = requests.post(
                f"{emu.arm_endpoint}/{emu.tenant_id}/oauth2/v2.0/token",
                data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
                verify=emu.ca_bundle,
                timeout=10,
            ).json()["access_token"]
            rg = f"{emu.arm_endpoint}/subscriptions/{emu.subscription_id}/resourcegroups/rg"
            headers = {"Authorization": f"Bearer {token}"}
            requests.put(
                f"{rg}?api-version=2025-04-01",
                json={"location": "eastus"},
                headers=headers,
                verify=emu.ca_bundle,
                timeout=10,
            )
            put = requests.put(
                f"{rg}/providers/Microsoft.Network/virtualNetworks/v?api-version=2026-03-01",
                json={
                    "location": "eastus",
                    "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}},
                },
                headers=headers,
                verify=emu.ca_bundle,
                timeout=10,
            )
            assert put.status_code == 201
            if precise:
                assert "Retry-After" not in put.headers
                assert 10 <= int(put.headers["retry-after-ms"]) <= 1000  # 10 s of VNet at scale 0.01
            else:
                assert put.headers["Retry-After"] == "1" and "retry-after-ms" not in put.headers

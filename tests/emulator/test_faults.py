"""Fault rules (deterministic under the seed) and ARM throttling."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
)

from aks_lockdown.arm.clients import ClientFactory
from aks_lockdown.emulator import Emulator

from .conftest import Raw


def test_status_fault_then_sdk_retry(emu: Emulator, rg: str) -> None:
    emu.add_fault(method="GET", path=r"resourcegroups/rg1$", count=1, action="status", status=503)
    retrying = ClientFactory(emu.target(), retry_backoff_factor=0.01)
    assert retrying.resource.resource_groups.get(rg).name == rg  # 503 + Retry-After 1, then 200
    statuses = [r["status"] for r in emu.requests(method="GET", path=r"resourcegroups/rg1$")]
    assert statuses[-2:] == [503, 200]


def test_429_fault_carries_retry_after(emu: Emulator, clients: ClientFactory, rg: str) -> None:
    emu.add_fault(method="GET", path="resourcegroups", count=1, action="status", status=429, retry_after=7)
    with pytest.raises(HttpResponseError) as exc:
        clients.resource.resource_groups.get(rg)
    assert exc.value.status_code == 429 and exc.value.response.headers["Retry-After"] == "7"
    assert clients.resource.resource_groups.get(rg).name == rg  # count=1: only once


def test_error_fault_with_arm_code(emu: Emulator, clients: ClientFactory, rg: str) -> None:
    emu.add_fault(
        method="PUT",
        path="routeTables",
        count=1,
        action="error",
        status=409,
        code="AnotherOperationInProgress",
        message="busy",
    )
    with pytest.raises(ResourceExistsError) as exc:
        clients.network.route_tables.begin_create_or_update(rg, "rt", {"location": "westus"})
    assert exc.value.error.code == "AnotherOperationInProgress"
    emu.add_fault(
        method="PUT", path="roleAssignments", count=1, action="error", status=403, code="AuthorizationFailed"
    )
    r = Raw(emu)(
        "PUT",
        f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Authorization/roleAssignments/"
        "x?api-version=2022-04-01",
        {},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "AuthorizationFailed"


def test_reset_fault_closes_connection(emu: Emulator, clients: ClientFactory, rg: str) -> None:
    emu.add_fault(method="GET", path="resourcegroups/rg1$", count=1, action="reset")
    with pytest.raises((ServiceResponseError, ServiceRequestError)):
        clients.resource.resource_groups.get(rg)
    assert clients.resource.resource_groups.get(rg).name == rg


def test_fail_operation_fault(emu: Emulator, clients: ClientFactory, rg: str) -> None:
    emu.add_fault(
        method="PUT",
        path=r"routeTables/rt$",
        count=1,
        action="fail_operation",
        code="InternalServerError",
        message="Simulated failure",
    )
    poller = clients.network.route_tables.begin_create_or_update(rg, "rt", {"location": "westus"})
    with pytest.raises(HttpResponseError) as exc:
        poller.result()
    assert "Simulated failure" in str(exc.value)
    assert clients.network.route_tables.get(rg, "rt").provisioning_state == "Failed"
    # The next PUT (the fault is used up) reconciles it.
    assert (
        clients.network.route_tables.begin_create_or_update(rg, "rt", {"location": "westus"})
        .result()
        .provisioning_state
        == "Succeeded"
    )


def test_delay_fault(emu: Emulator, clients: ClientFactory, rg: str) -> None:
    emu.add_fault(method="GET", path="resourcegroups/rg1$", count=1, action="delay", seconds=0.3)
    t = time.perf_counter()
    clients.resource.resource_groups.get(rg)
    assert time.perf_counter() - t >= 0.3


def test_probability_is_deterministic_under_seed(tmp_path: Path) -> None:
    def pattern(seed: int, d: Path) -> list[int]:
        with Emulator(d, seed=seed) as emu:
            raw = Raw(emu)
            emu.add_fault(method="GET", path="resourcegroups$", probability=0.5, action="status", status=500)
            url = f"/subscriptions/{emu.subscription_id}/resourcegroups?api-version=2025-04-01"
            return [raw("GET", url).status_code for _ in range(24)]

    a = pattern(7, tmp_path / "a")
    assert a == pattern(7, tmp_path / "b")
    assert {200, 500} == set(a)
    assert a != pattern(8, tmp_path / "c")


def test_faults_over_http(emu: Emulator, raw: Raw) -> None:
    base = f"{emu.arm_endpoint}/_emulator/faults"
    r = requests.post(
        base,
        json={
            "rules": [
                {"method": "GET", "path": "resourcegroups$", "count": 2, "action": "status", "status": 500}
            ]
        },
        verify=emu.ca_bundle,
    )
    assert r.status_code == 200 and r.json()["rules"][0]["count"] == 2
    url = f"/subscriptions/{emu.subscription_id}/resourcegroups?api-version=2025-04-01"
    assert raw("GET", url).status_code == 500
    assert requests.delete(base, verify=emu.ca_bundle).status_code == 200
    assert raw("GET", url).status_code == 200
    bad = requests.post(base, json={"action": "explode"}, verify=emu.ca_bundle)
    assert bad.status_code == 400


def test_throttling_token_buckets(tmp_path: Path) -> None:
    # Buckets scaled by 0.02: reads burst 5, refill 0.5/s.
    with Emulator(tmp_path, throttle_scale=0.02) as emu:
        raw = Raw(emu)
        url = f"/subscriptions/{emu.subscription_id}/resourcegroups?api-version=2025-04-01"
        answers = [raw("GET", url) for _ in range(6)]
        remaining = [int(r.headers["x-ms-ratelimit-remaining-subscription-reads"]) for r in answers[:5]]
        assert remaining == [4, 3, 2, 1, 0]
        throttled = answers[5]
        assert throttled.status_code == 429
        assert throttled.json()["error"]["code"] == "SubscriptionRequestsThrottled"
        assert int(throttled.headers["Retry-After"]) >= 1
        # Writes have their own bucket.
        assert raw("PUT", url.replace("resourcegroups?", "resourcegroups/x?"), {"location": "westus"}).ok
        # Benchmarks can turn it off.
        emu.set_throttling(False)
        assert all(raw("GET", url).ok for _ in range(10))

"""dnat: a firewall DNAT rule to a live internal LB service is served on the firewall public IP."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from aks_lockdown.emulator import kube, netsim
from aks_lockdown.emulator.dnat import DnatHook
from aks_lockdown.emulator.world import World

# Sibling test modules: importable as a package or (no __init__.py) from the rootdir-less path.
try:
    from .test_kube import VOTING_APP, make
    from .test_netsim import AKS_SUBNET, FW, POLICY, RG, build_world
except ImportError:
    from test_kube import VOTING_APP, make  # type: ignore[no-redef]
    from test_netsim import AKS_SUBNET, FW, POLICY, RG, build_world  # type: ignore[no-redef]


def free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def core_world(tmp_path: Path, public_ip: str, port: int, *, classic: bool = False) -> World:
    """The seed topology in the core's store, plus a DNAT rule public_ip:port -> 10.42.1.250:80."""
    w = World(tmp_path / "world.json", time.time)
    for r in build_world(classic=classic).resources.values():
        r = dict(r)
        if r["type"] == "Microsoft.Network/publicIPAddresses":
            r["properties"] = {**r["properties"], "ipAddress": public_ip}
        rid, rtype = r.pop("id"), r.pop("type")
        r.pop("name", None)
        w.upsert(rid, rtype, r)
    nat_rule = {
        "name": "inboundrule",
        "destinationAddresses": [public_ip],
        "destinationPorts": [str(port)],
        "translatedAddress": "10.42.1.250",
        "translatedPort": "80",
    }
    if classic:
        fw = w.get(FW)
        assert fw is not None
        fw.body["properties"]["natRuleCollections"] = [
            {
                "name": "exampleset",
                "properties": {
                    "priority": 100,
                    "action": {"type": "Dnat"},
                    "rules": [{**nat_rule, "protocols": ["Any"], "sourceAddresses": ["*"]}],
                },
            }
        ]
    else:
        w.upsert(
            f"{POLICY}/ruleCollectionGroups/aks-ingress",
            "Microsoft.Network/firewallPolicies/ruleCollectionGroups",
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
                                    **nat_rule,
                                    "ruleType": "NatRule",
                                    "ipProtocols": ["TCP"],
                                    "sourceAddresses": ["*"],
                                }
                            ],
                        }
                    ],
                }
            },
        )
    return w


def add_cluster(w: World, *, with_app: bool = True) -> None:
    state = kube.KubeState()
    if with_app:
        k = make(state=state)
        assert k.run("kubectl apply -f app.yaml", kube.make_context({"app.yaml": VOTING_APP})).exit_code == 0
    body: dict[str, Any] = {
        "location": "eastus",
        "properties": {"agentPoolProfiles": [{"name": "nodepool1", "count": 3, "vnetSubnetID": AKS_SUBNET}]},
    }
    w.upsert(
        f"{RG}/providers/Microsoft.ContainerService/managedClusters/aks-egress",
        "Microsoft.ContainerService/managedClusters",
        body,
        extra={"kube": state.to_json()},
    )


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.mark.parametrize("classic", [False, True])
def test_dnat_serves_voting_app_and_stops(tmp_path: Path, classic: bool) -> None:
    ip = "127.77.0.1"
    port = free_port(ip)
    w = core_world(tmp_path, ip, port, classic=classic)
    hook = DnatHook()
    try:
        hook.on_change(w)
        assert hook.addresses() == []  # no cluster yet: nothing to translate to
        add_cluster(w)
        hook.on_change(w)
        assert hook.addresses() == [(ip, port)]
        status, body = get(f"http://{ip}:{port}/")
        assert status == 200
        assert "Azure Voting App" in body
        # The service goes away (cluster deleted): the listener closes.
        w.remove(f"{RG}/providers/Microsoft.ContainerService/managedClusters/aks-egress")
        hook.on_change(w)
        assert hook.addresses() == []
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://{ip}:{port}/", timeout=2)
    finally:
        hook.stop()


def test_dnat_wrong_translated_port_gets_502(tmp_path: Path) -> None:
    ip = "127.77.0.2"
    port = free_port(ip)
    w = core_world(tmp_path, ip, port)
    g = w.get(f"{POLICY}/ruleCollectionGroups/aks-ingress")
    assert g is not None
    g.body["properties"]["ruleCollections"][0]["rules"][0]["translatedPort"] = "8080"
    add_cluster(w)
    hook = DnatHook()
    try:
        hook.on_change(w)
        status, body = get(f"http://{ip}:{port}/")
        assert status == 502 and "10.42.1.250:8080" in body
    finally:
        hook.stop()


def test_dnat_port_in_use_is_reported(tmp_path: Path) -> None:
    ip = "127.77.0.3"
    blocker = socket.socket()
    blocker.bind((ip, 0))
    blocker.listen()
    port = int(blocker.getsockname()[1])
    w = core_world(tmp_path, ip, port)
    add_cluster(w)
    hook = DnatHook()
    try:
        hook.on_change(w)
        st = hook.status()
        assert st["listeners"] == []
        assert len(st["errors"]) == 1 and f"cannot listen on {ip}:{port}" in st["errors"][0]
    finally:
        hook.stop()
        blocker.close()


def test_dnat_rules_read_from_world(tmp_path: Path) -> None:
    w = core_world(tmp_path, "127.77.0.4", 18080)
    (rule,) = __import__("aks_lockdown.emulator.dnat", fromlist=["dnat_rules"]).dnat_rules(netsim.as_world(w))
    assert (rule.listen_ip, rule.port, rule.translated_address, rule.translated_port) == (
        "127.77.0.4",
        18080,
        "10.42.1.250",
        80,
    )

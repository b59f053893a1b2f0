"""Public IP addresses: each world's own loopback block, bind-tested allocation, DNAT listeners of two
emulators at once, no listener left behind by a stopped emulator, DNAT status in stats."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

import pytest

from aks_lockdown.emulator import Emulator, network
from aks_lockdown.emulator.world import World

try:
    from .test_kube_dnat import add_cluster, core_world, free_port, get
except ImportError:
    from test_kube_dnat import add_cluster, core_world, free_port, get  # type: ignore[no-redef]


def _world(tmp_path: Path) -> World:
    return World(tmp_path / "world.json", time.time)


def test_block_is_drawn_once_outside_127_0_and_persisted(tmp_path: Path) -> None:
    with Emulator(tmp_path, fsync=False) as emu:
        block = emu.world.meta[network.PUBLIC_IP_BLOCK_KEY]
        b, c = block
        assert 1 <= b <= 255 and 0 <= c <= 255
        with emu.world.lock:
            first = network.allocate_public_ip(emu.world)
            emu.world.persist()
        assert first == f"127.{b}.{c}.1"
        emu.reset()  # an emptied world keeps its addresses' block
        assert emu.world.meta[network.PUBLIC_IP_BLOCK_KEY] == block
        with emu.world.lock:
            network.allocate_public_ip(emu.world)
            emu.world.persist()
    with Emulator(tmp_path, fsync=False) as again:  # a restart reuses the block and the counter
        assert again.world.meta[network.PUBLIC_IP_BLOCK_KEY] == block
        with again.world.lock:
            assert network.allocate_public_ip(again.world) == f"127.{b}.{c}.2"


def test_blocks_are_drawn_from_a_large_space(tmp_path: Path) -> None:
    blocks = set()
    for i in range(40):
        w = _world(tmp_path / str(i))
        blocks.add(tuple(network.public_ip_block(w)))
    assert len(blocks) >= 38  # ~65k blocks: the old ~224 choices collided within a few worlds
    assert all(b != 0 for b, _ in blocks)


def test_addresses_run_on_into_the_next_blocks() -> None:
    assert network._public_ip([5, 7], 0) == "127.5.7.1"
    assert network._public_ip([5, 7], 249) == "127.5.7.250"
    assert network._public_ip([5, 7], 250) == "127.5.8.1"
    assert network._public_ip([5, 255], 250) == "127.6.0.1"
    assert network._public_ip([255, 255], 250) == "127.1.0.1"  # wraps, never into 127.0.x


def test_an_address_someone_listens_on_is_skipped(tmp_path: Path) -> None:
    w = _world(tmp_path)
    w.meta[network.PUBLIC_IP_BLOCK_KEY] = [201, 13]
    port = 80
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("127.201.13.1", port))
    except PermissionError:
        holder.close()
        pytest.skip("binding port 80 needs root here")
    except OSError:
        holder.close()
        pytest.skip("127.201.13.1:80 is busy on this machine")
    holder.listen()
    try:
        assert not network.address_free("127.201.13.1", {80})
        assert network.allocate_public_ip(w) == "127.201.13.2"
        assert network.allocate_public_ip(w) == "127.201.13.3"
    finally:
        holder.close()
    assert network.address_free("127.201.13.1", {80})


def _dnat_service(emu: Emulator, tmp_path: Path, port: int, ip: str | None = None) -> str:
    """Stage the seed topology in the emulator's world with a firewall public IP from its allocator
    (or `ip`) and a DNAT rule ip:port -> the voting app's internal LB; returns the address."""
    w = emu.world
    with w.lock:
        ip = ip or network.allocate_public_ip(w)
        staged = core_world(tmp_path, ip, port)
        add_cluster(staged)
        for rec in staged.resources.values():
            extra = dict(rec.extra)
            if rec.type == network.PIP:
                extra["ipAddress"] = ip
            w.upsert(rec.id, rec.type, rec.body, extra=extra)
        w.persist()  # the DNAT hook reconciles on the change
    return ip


def test_two_emulators_at_once_answer_dnat_on_distinct_addresses(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")  # the same port for both: only the addresses tell them apart
    with (
        Emulator(tmp_path / "a", fsync=False) as a,
        Emulator(tmp_path / "b", fsync=False) as b,
    ):
        ip_a = _dnat_service(a, tmp_path / "sa", port)
        ip_b = _dnat_service(b, tmp_path / "sb", port)
        assert ip_a != ip_b
        for emu, ip in ((a, ip_a), (b, ip_b)):
            status = emu.stats()["dnat"]
            assert status["errors"] == [], status
            assert [x["address"] for x in status["listeners"]] == [f"{ip}:{port}"]
            code, body = get(f"http://{ip}:{port}/")
            assert code == 200 and "Azure Voting App" in body


def test_a_stopped_emulator_leaves_no_listener_behind(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    emu = Emulator(tmp_path / "data", fsync=False).start()
    ip = _dnat_service(emu, tmp_path / "s", port)
    assert get(f"http://{ip}:{port}/")[0] == 200
    emu.stop()
    with emu.world.lock:  # a late change (a request still in flight at stop) must not reopen it
        emu.world.touch()
        emu.world.persist()
    assert network.address_free(ip, {port})
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{ip}:{port}/", timeout=2)
    # The same world served again (the CLI runs one emulator per command) binds the same address.
    with Emulator(tmp_path / "data", fsync=False) as again:
        status = again.stats()["dnat"]
        assert status["errors"] == [] and [x["address"] for x in status["listeners"]] == [f"{ip}:{port}"]
        assert get(f"http://{ip}:{port}/")[0] == 200


def test_a_port_that_cannot_be_bound_shows_in_stats(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    with Emulator(tmp_path / "data", fsync=False) as emu:
        ip = network._public_ip(network.public_ip_block(emu.world), 7)
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind((ip, port))
        blocker.listen()
        try:
            _dnat_service(emu, tmp_path / "s", port, ip=ip)
            status = emu.stats()["dnat"]
            assert status["listeners"] == []
            assert len(status["errors"]) == 1 and f"cannot listen on {ip}:{port}" in status["errors"][0]
        finally:
            blocker.close()

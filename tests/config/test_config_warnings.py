"""Warnings: accepted configs that an operator should still hear about, one line each."""

from __future__ import annotations

import pytest

from aks_lockdown.config import loads_config


def _warnings(text: str) -> list[str]:
    return loads_config(text, file="w.toml").warnings


@pytest.mark.parametrize("count", [1, 2, 19])
def test_fewer_than_20_public_ips_warns(count: int) -> None:
    assert _warnings(f"[firewall]\npublic_ip_count = {count}\n") == [
        f"w.toml: firewall.public_ip_count: {count} is below 20: the docs recommend at least 20 frontend "
        "IPs for production (SNAT ports)"
    ]


@pytest.mark.parametrize("count", [20, 21, 250])
def test_20_or_more_public_ips_is_quiet(count: int) -> None:
    assert _warnings(f"[firewall]\npublic_ip_count = {count}\n") == []


def test_docker_bridge_cidr_is_accepted_with_a_warning() -> None:
    text = '[firewall]\npublic_ip_count = 20\n[cluster]\ndocker_bridge_cidr = "172.17.0.1/16"\n'
    loaded = loads_config(text, file="w.toml")
    assert loaded.config.cluster.docker_bridge_cidr == "172.17.0.1/16"
    assert loaded.warnings == [
        'w.toml: cluster.docker_bridge_cidr: "172.17.0.1/16" is accepted but not sent: the AKS API '
        "removed docker_bridge_cidr in 2023"
    ]


def test_dev_spaces_warns_only_in_the_current_edition() -> None:
    base = '[firewall]\npublic_ip_count = 20\nfeatures = ["dev-spaces"]\n'
    assert _warnings(base + 'egress_edition = "seed-2020"\n') == []
    assert _warnings(base + 'egress_edition = "current"\n') == [
        'w.toml: firewall.features: "dev-spaces": Azure Dev Spaces is retired; its rows are only in '
        'edition "seed-2020"'
    ]


def test_warnings_come_in_check_order() -> None:
    text = '[firewall]\npublic_ip_count = 3\n[cluster]\ndocker_bridge_cidr = "172.17.0.1/16"\n'
    fields = [w.split(": ")[1] for w in _warnings(text)]
    assert fields == ["firewall.public_ip_count", "cluster.docker_bridge_cidr"]


def test_management_subnet_set_without_basic_sku_warns() -> None:
    subnet = '[network]\nfirewall_management_subnet_cidr = "10.42.3.0/26"\n'
    assert _warnings("[firewall]\npublic_ip_count = 20\n" + subnet) == [
        'w.toml: network.firewall_management_subnet_cidr: "10.42.3.0/26" is used only with '
        'firewall.sku = "Basic"; ignored for "Standard"'
    ]
    basic = '[firewall]\nsku = "Basic"\ndns_proxy = false\npublic_ip_count = 20\n'
    assert _warnings(basic + subnet) == []

"""Golden tests: every row of every table in the seed is in edition seed-2020; today's edition is right."""

from __future__ import annotations

import pytest

from aks_lockdown.egress import catalog
from aks_lockdown.egress.catalog import CLOUDS, FEATURES

# Copied from the seed's tables by hand (not from catalog.toml): (kind, destination, protocol, port).
# Network rows with alternatives ("*:1194 Or AzureCloud.<Region>:1194 Or ...") are encoded as the
# service tag alternative, which is what a least-privilege firewall uses.
TUNNEL = [
    ("network", "AzureCloud.<location>", "UDP", 1194),
    ("network", "AzureCloud.<location>", "TCP", 9000),
]
SEED_NETWORK_TAIL = [
    ("network", "ntp.ubuntu.com", "UDP", 123),
    ("network", "CustomDNSIP", "UDP", 53),
    ("network", "APIServerIP", "TCP", 443),
]
SEED_CORE = {
    "AzureCloud": TUNNEL
    + SEED_NETWORK_TAIL
    + [
        ("application", "*.hcp.<location>.azmk8s.io", "Https", 443),
        ("application", "mcr.microsoft.com", "Https", 443),
        ("application", "*.cdn.mscr.io", "Https", 443),
        ("application", "*.data.mcr.microsoft.com", "Https", 443),
        ("application", "management.azure.com", "Https", 443),
        ("application", "login.microsoftonline.com", "Https", 443),
        ("application", "packages.microsoft.com", "Https", 443),
        ("application", "acs-mirror.azureedge.net", "Https", 443),
    ],
    "AzureChinaCloud": [
        *TUNNEL,
        ("network", "AzureCloud.<location>", "TCP", 22),
        *SEED_NETWORK_TAIL,
        ("application", "*.hcp.<location>.cx.prod.service.azk8s.cn", "Https", 443),
        ("application", "*.tun.<location>.cx.prod.service.azk8s.cn", "Https", 443),
        ("application", "mcr.microsoft.com", "Https", 443),
        ("application", "*.cdn.mscr.io", "Https", 443),
        ("application", ".data.mcr.microsoft.com", "Https", 443),  # sic: the seed drops the '*'
        ("application", "management.chinacloudapi.cn", "Https", 443),
        ("application", "login.chinacloudapi.cn", "Https", 443),
        ("application", "packages.microsoft.com", "Https", 443),
        ("application", "*.azk8s.cn", "Https", 443),
    ],
    "AzureUSGovernment": TUNNEL
    + SEED_NETWORK_TAIL
    + [
        ("application", "*.hcp.<location>.cx.aks.containerservice.azure.us", "Https", 443),
        ("application", "mcr.microsoft.com", "Https", 443),
        ("application", "*.cdn.mscr.io", "Https", 443),
        ("application", "*.data.mcr.microsoft.com", "Https", 443),
        ("application", "management.usgovcloudapi.net", "Https", 443),
        ("application", "login.microsoftonline.us", "Https", 443),
        ("application", "packages.microsoft.com", "Https", 443),
        ("application", "acs-mirror.azureedge.net", "Https", 443),
    ],
}
SEED_FEATURES = {
    "os-updates": [
        ("application", "security.ubuntu.com", "Http", 80),
        ("application", "azure.archive.ubuntu.com", "Http", 80),
        ("application", "changelogs.ubuntu.com", "Http", 80),
    ],
    "gpu": [
        ("application", "nvidia.github.io", "Https", 443),
        ("application", "us.download.nvidia.com", "Https", 443),
        ("application", "apt.dockerproject.org", "Https", 443),
    ],
    "windows": [
        ("application", "onegetcdn.azureedge.net", "Https", 443),
        ("application", "go.microsoft.com", "Https", 443),
        ("application", "*.mp.microsoft.com", "Http", 80),
        ("application", "www.msftconnecttest.com", "Http", 80),
        ("application", "ctldl.windowsupdate.com", "Http", 80),
    ],
    "monitor": [
        ("network", "AzureMonitor", "TCP", 443),
        ("application", "dc.services.visualstudio.com", "Https", 443),
        ("application", "*.ods.opinsights.azure.com", "Https", 443),
        ("application", "*.oms.opinsights.azure.com", "Https", 443),
        ("application", "*.monitoring.azure.com", "Https", 443),
    ],
    "dev-spaces": [
        ("network", "AzureDevSpaces", "TCP", 443),
        ("application", "cloudflare.docker.com", "Https", 443),
        ("application", "gcr.io", "Https", 443),
        ("application", "storage.googleapis.com", "Https", 443),
    ],
    "azure-policy": [
        ("application", "gov-prod-policy-data.trafficmanager.net", "Https", 443),
        ("application", "raw.githubusercontent.com", "Https", 443),
        ("application", "dc.services.visualstudio.com", "Https", 443),
    ],
}


def _keys(rows: list[catalog.EgressRow]) -> list[tuple[str, str, str, int]]:
    return [(r.kind, r.destination, r.protocol, r.port) for r in rows]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_seed_core_tables_exactly(cloud: str) -> None:
    got = _keys(catalog.rows(cloud, "seed-2020"))
    assert got == SEED_CORE[cloud]


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("feature", FEATURES)
def test_seed_feature_tables(cloud: str, feature: str) -> None:
    rows = [r for r in catalog.rows(cloud, "seed-2020", [feature]) if r.feature == feature]
    assert _keys(rows) == SEED_FEATURES[feature]
    assert all(r.section and r.seed_text for r in rows)


def test_seed_rows_carry_section_and_seed_text() -> None:
    for cloud in CLOUDS:
        for r in catalog.rows(cloud, "seed-2020", FEATURES):
            assert r.section, r.id
            assert r.seed_text, r.id
    china_1194 = catalog.get_row("cn.net.tunnel-udp-1194", "AzureChinaCloud")
    assert "AzureCloud.Region:1194" in china_1194.seed_text  # the seed's own spelling
    assert "*:1194" in china_1194.seed_text


def test_seed_conditional_rows_are_marked() -> None:
    for cloud in CLOUDS:
        cond = {r.destination for r in catalog.rows(cloud, "seed-2020") if r.conditional}
        assert cond == {"CustomDNSIP", "APIServerIP"}


def test_current_replaces_acs_mirror_with_packages_aks() -> None:
    for cloud in ("AzureCloud", "AzureUSGovernment"):
        current = catalog.rows(cloud, "current")
        dests = {r.destination: r for r in current}
        assert dests["packages.aks.azure.com"].status == "required"
        assert "acs-mirror.azureedge.net" not in dests
        required = {r.destination for r in catalog.required_now(cloud, "eastus")}
        assert "packages.aks.azure.com" in required
        assert "acs-mirror.azureedge.net" not in required
    mirror = catalog.get_row("pub.fqdn.acs-mirror", "AzureCloud")
    assert mirror.superseded_by == "pub.fqdn.packages-aks"
    assert "2025-05-31" in mirror.note


def test_current_public_cloud_changes() -> None:
    cur = {r.destination: r for r in catalog.rows("AzureCloud", "current", FEATURES, "eastus")}
    assert cur["mcr-0001.mcr-msedge.net"].status == "required"
    assert "*.cdn.mscr.io" not in cur
    assert "ntp.ubuntu.com" not in cur
    assert cur["snapshot.ubuntu.com"].feature == "os-updates"
    assert not [r for r in cur.values() if r.feature == "dev-spaces"]
    assert cur["*.ingest.monitor.azure.com"].feature == "monitor"
    assert cur["*.handler.control.monitor.azure.com"].feature == "monitor"
    for fqdn in (
        "ghcr.io",
        "pkg-containers.githubusercontent.com",
        "docker.io",
        "registry-1.docker.io",
        "production.cloudflare.docker.com",
    ):
        assert cur[fqdn].kind == "network" and cur[fqdn].status == "optional", fqdn
    rows = catalog.rows("AzureCloud", "current", FEATURES, "eastus")
    tunnel = [r for r in rows if r.gate == "tunnel_ports"]
    assert {(r.protocol, r.port) for r in tunnel} == {("UDP", 1194), ("TCP", 9000)}
    assert all(r.status == "optional" for r in tunnel)


def test_current_china_still_needs_tunnel() -> None:
    req = catalog.required_now("AzureChinaCloud", "chinaeast2")
    ports = {(r.protocol, r.port) for r in req if r.kind == "network"}
    assert ports == {("UDP", 1194), ("TCP", 9000), ("TCP", 22)}
    assert "*.tun.chinaeast2.cx.prod.service.azk8s.cn" in {r.destination for r in req}
    assert all(r.destination == "AzureCloud.chinaeast2" for r in req if r.kind == "network")


def test_statuses_sources_and_references_are_valid() -> None:
    ids = {(r.id, r.cloud) for r in catalog.all_rows()}
    assert len(ids) == len(catalog.all_rows()), "duplicate row id within a cloud"
    for r in catalog.all_rows():
        assert r.status in ("required", "optional", "retired") or r.superseded_by, r.id
        assert r.source, r.id
        if r.superseded_by:
            catalog.get_row(r.superseded_by, r.cloud)  # the target exists in the same cloud
        if not r.in_seed:
            assert r.in_edition("current"), r.id
        if r.in_edition("current"):
            assert r.status in ("required", "optional"), r.id


def test_placeholders_filled() -> None:
    rows = catalog.rows("AzureUSGovernment", "current", (), "usgovvirginia")
    assert all("<location>" not in r.destination for r in rows)
    assert "*.hcp.usgovvirginia.cx.aks.containerservice.azure.us" in {r.destination for r in rows}
    assert "AzureCloud.usgovvirginia" in {r.destination for r in rows}


def test_service_tag_for_region() -> None:
    assert catalog.service_tag_for_region("AzureCloud", "eastus") == "AzureCloud.eastus"
    assert catalog.service_tag_for_region("AzureCloud", "francecentral") == "AzureCloud.centralfrance"
    assert catalog.service_tag_for_region("AzureCloud", "norwayeast") == "AzureCloud.norwaye"
    assert catalog.service_tag_for_region("AzureChinaCloud", "chinaeast2") == "AzureCloud.chinaeast2"
    with pytest.raises(ValueError):
        catalog.service_tag_for_region("Mars", "eastus")


def test_fqdn_tag_members() -> None:
    members = catalog.fqdn_tag_members("AzureKubernetesService", "AzureCloud", "eastus")
    assert "*.hcp.eastus.azmk8s.io" in members
    assert "packages.aks.azure.com" in members
    assert "acs-mirror.azureedge.net" not in members
    assert "dc.services.visualstudio.com" not in members  # add-ons are not in the tag
    china = catalog.fqdn_tag_members("AzureKubernetesService", "AzureChinaCloud", "chinanorth3")
    assert "*.tun.chinanorth3.cx.prod.service.azk8s.cn" in china
    assert "*.windowsupdate.com" in catalog.fqdn_tag_members("WindowsUpdate", "AzureCloud", "eastus")
    assert catalog.fqdn_tag_members("NoSuchTag", "AzureCloud", "eastus") == []


def test_unknown_inputs_rejected() -> None:
    with pytest.raises(ValueError):
        catalog.rows("AzureCloud", "2019")
    with pytest.raises(ValueError):
        catalog.rows("AzureCloud", "current", ["istio"])

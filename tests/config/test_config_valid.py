"""Configs that must load: the shipped examples, the seed's defaults, and the edge cases that are fine."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from aks_lockdown.config import Config, LoadedConfig, load_config, loads_config, validate_config
from aks_lockdown.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
EXAMPLES = sorted(CONFIG_DIR.glob("*.toml"))


def _loads(text: str) -> LoadedConfig:
    return loads_config(textwrap.dedent(text).lstrip("\n"), file="case.toml")


def test_the_four_examples_ship() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "eastus.toml",
        "chinaeast2.toml",
        "usgovvirginia.toml",
        "production.toml",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_loads(path: Path) -> None:
    loaded = load_config(path)
    assert loaded.path == path
    assert isinstance(loaded.config, Config)
    # Every warning is one line naming this file.
    assert all(w.startswith(f"{path}: ") and "\n" not in w for w in loaded.warnings)


def test_examples_use_distinct_deployment_names() -> None:
    names = [load_config(p).config.deployment.name for p in EXAMPLES]
    assert len(set(names)) == len(names)


def test_eastus_is_the_seed_walkthrough() -> None:
    loaded = load_config(CONFIG_DIR / "eastus.toml")
    c = loaded.config
    assert (c.deployment.prefix, c.azure.cloud, c.azure.location) == ("aks-egress", "AzureCloud", "eastus")
    assert (c.network.vnet_cidr, c.network.aks_subnet_cidr, c.network.firewall_subnet_cidr) == (
        "10.42.0.0/16",
        "10.42.1.0/24",
        "10.42.2.0/24",
    )
    assert (c.cluster.service_cidr, c.cluster.dns_service_ip, c.cluster.node_count) == (
        "10.41.0.0/16",
        "10.41.0.10",
        3,
    )
    fw = c.firewall
    assert (fw.egress_edition, fw.fqdn_mode, fw.public_ip_count, fw.rules) == (
        "seed-2020",
        "tag",
        1,
        "policy",
    )
    assert c.cluster.network_plugin == "azure"
    assert c.ingress.workload == "voting-app"
    assert [(d.name, d.protocol, d.firewall_port, d.target_ip, d.target_port) for d in c.ingress.dnat] == [
        ("inboundrule", "TCP", 80, "10.42.1.250", 80)
    ]
    # The seed's own names, derived from the prefix.
    assert (c.resource_group, c.vnet_name, c.firewall_name, c.route_table_name) == (
        "aks-egress-rg",
        "aks-egress-vnet",
        "aks-egress-fw",
        "aks-egress-fwrt",
    )
    assert (c.public_ip_names, c.ip_config_name, c.cluster_name) == (
        ["aks-egress-fwpublicip"],
        "aks-egress-fwconfig",
        "aks-egress",
    )


def test_eastus_warns_about_exactly_what_the_seed_did_differently() -> None:
    path = CONFIG_DIR / "eastus.toml"
    assert load_config(path).warnings == [
        f"{path}: firewall.public_ip_count: 1 is below 20: the docs recommend at least 20 frontend IPs "
        "for production (SNAT ports)",
        f'{path}: cluster.docker_bridge_cidr: "172.17.0.1/16" is accepted but not sent: the AKS API '
        "removed docker_bridge_cidr in 2023",
    ]


def test_production_is_production_shaped_and_warning_free() -> None:
    loaded = load_config(CONFIG_DIR / "production.toml")
    c = loaded.config
    assert loaded.warnings == []
    assert c.firewall.public_ip_count >= 20
    assert "monitor" in c.firewall.features
    assert c.firewall.egress_edition == "current"
    assert c.firewall.fqdn_mode == "both"
    assert c.firewall.sku in ("Standard", "Premium")
    assert c.cluster.private_cluster or c.cluster.authorized_ip_ranges


@pytest.mark.parametrize(
    ("name", "cloud", "location"),
    [
        ("chinaeast2.toml", "AzureChinaCloud", "chinaeast2"),
        ("usgovvirginia.toml", "AzureUSGovernment", "usgovvirginia"),
    ],
)
def test_sovereign_examples_target_their_cloud(name: str, cloud: str, location: str) -> None:
    c = load_config(CONFIG_DIR / name).config
    assert (c.azure.cloud, c.azure.location, c.firewall.egress_edition) == (cloud, location, "current")


def test_an_empty_file_is_the_seed_defaults() -> None:
    loaded = _loads("")
    assert loaded.config == Config()
    assert loaded.path == Path("case.toml")


def test_load_config_accepts_str_and_path(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('[deployment]\nname = "x"\n', encoding="utf-8")
    assert load_config(str(path)).config == load_config(path).config
    assert load_config(str(path)).path == path


@pytest.mark.parametrize(
    "text",
    [
        # kubenet with a private cluster is a supported combination.
        """
        [cluster]
        network_plugin = "kubenet"
        private_cluster = true
        """,
        # A service principal named by its IDs and the NAME of the variable holding its secret.
        """
        [cluster.identity]
        type = "service-principal"
        client_id = "11111111-2222-3333-4444-555555555555"
        object_id = "66666666-7777-8888-9999-000000000000"
        secret_env = "AKS_LOCKDOWN_SP_SECRET"
        """,
        # Basic needs the management subnet and no DNS proxy.
        """
        [firewall]
        sku = "Basic"
        dns_proxy = false
        """,
        # The first and last addresses Azure lets a load balancer take.
        """
        [[ingress.dnat]]
        name = "low"
        target_ip = "10.42.1.4"
        [[ingress.dnat]]
        name = "high"
        firewall_port = 443
        target_ip = "10.42.1.254"
        target_port = 443
        """,
        # Same port, different protocols: two distinct DNAT listeners.
        """
        [[ingress.dnat]]
        name = "dns-tcp"
        protocol = "TCP"
        firewall_port = 53
        target_ip = "10.42.1.10"
        target_port = 53
        [[ingress.dnat]]
        name = "dns-udp"
        protocol = "UDP"
        firewall_port = 53
        target_ip = "10.42.1.10"
        target_port = 53
        """,
        # Named destinations: a service tag, a CIDR, a range, a wildcard FQDN in an application rule.
        """
        [[firewall.extra_rules]]
        name = "monitor"
        kind = "network"
        protocols = ["TCP"]
        destination_addresses = ["AzureMonitor", "203.0.113.0/24", "198.51.100.1-198.51.100.9"]
        destination_ports = ["443", "8000-8080"]
        [[firewall.extra_rules]]
        name = "github"
        kind = "application"
        protocols = ["Https:443"]
        destination_fqdns = ["github.com", "*.githubusercontent.com"]
        [[firewall.extra_rules]]
        name = "ntp"
        kind = "network"
        protocols = ["UDP"]
        destination_fqdns = ["ntp.ubuntu.com"]
        destination_ports = ["123"]
        """,
        # The az CLI's spelling of application protocols, as the seed writes them.
        """
        [[firewall.extra_rules]]
        name = "seed-style"
        kind = "application"
        protocols = ["http=80", "https=443"]
        destination_fqdns = ["example.com"]
        """,
        # Opening a source to everything is a deliberate, explicit choice.
        """
        [firewall]
        allow_any_source = true
        [[firewall.extra_rules]]
        name = "r"
        kind = "network"
        protocols = ["TCP"]
        destination_addresses = ["203.0.113.5"]
        destination_ports = ["443"]
        source_addresses = ["*"]
        """,
        """
        [azure]
        subscription_id = "00000000-0000-0000-0000-000000000000"
        tenant_id = "contoso.onmicrosoft.com"
        location = "swedencentral"
        """,
        """
        [state]
        backend = "blob"
        account_url = "https://aksstate01.blob.core.windows.net"
        container = "aks-lockdown"
        blob_name = "prod.json"
        """,
        """
        [cluster]
        network_plugin = "azure-overlay"
        kubernetes_version = "1.30.4"
        authorized_ip_ranges = ["203.0.113.7", "198.51.100.0/24"]
        """,
        """
        [firewall]
        public_ip_count = 250
        """,
    ],
    ids=[
        "kubenet-private",
        "service-principal",
        "basic-sku",
        "dnat-edges",
        "dnat-same-port-two-protocols",
        "extra-rules",
        "az-cli-protocol-spelling",
        "allow-any-source",
        "subscription-and-tenant",
        "blob-state",
        "overlay-with-ranges",
        "max-public-ips",
    ],
)
def test_valid_edge_cases_load(text: str) -> None:
    assert isinstance(_loads(text).config, Config)


def test_workload_none_drops_the_voting_app_dnat_rule() -> None:
    assert _loads('[ingress]\nworkload = "none"\n').config.ingress.dnat == []
    assert len(Config().ingress.dnat) == 1


def test_validate_config_checks_a_config_built_in_code() -> None:
    bad = Config.model_validate({"cluster": {"dns_service_ip": "10.41.0.1"}})
    with pytest.raises(ConfigError) as caught:
        validate_config(bad, file="built-in")
    assert str(caught.value).startswith('built-in: cluster.dns_service_ip: "10.41.0.1" is the service CIDR')


def test_overlay_pod_cidr_defaults_and_is_checked() -> None:
    c = _loads('[cluster]\nnetwork_plugin = "azure-overlay"\n').config
    assert c.effective_pod_cidr == "10.244.0.0/16"
    assert _loads("").config.effective_pod_cidr is None

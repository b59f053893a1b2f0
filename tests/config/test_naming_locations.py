"""Azure naming rules and the per-cloud location lists, checked offline."""

from __future__ import annotations

import pytest

from aks_lockdown.locations import (
    LOCATIONS,
    cloud_of,
    is_known_location,
    known_locations,
    suggest_location,
)
from aks_lockdown.naming import RULES, is_valid_name, name_problem


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("aks_cluster", "aks-egress"),
        ("aks_cluster", "a"),
        ("aks_cluster", "a" * 63),
        ("aks_cluster", "my_cluster1"),
        ("vnet", "aks-egress-vnet"),
        ("vnet", "v_"),
        ("subnet", "aks-subnet"),
        ("resource_group", "(rg)-1_x"),
        ("managed_identity", "aks-egress-identity"),
        ("public_ip", "aks-egress-fwpublicip-250"),
        ("firewall_policy", "aks-egress-fwpolicy"),
        ("storage_container", "aks-lockdown"),
        ("storage_account", "aksstate01"),
    ],
)
def test_valid_names(kind: str, name: str) -> None:
    assert name_problem(kind, name) is None  # type: ignore[arg-type]
    assert is_valid_name(kind, name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "name", "problem"),
    [
        ("aks_cluster", "", "must be 1-63 characters long (it has 0)"),
        ("aks_cluster", "a" * 64, "must be 1-63 characters long (it has 64)"),
        ("aks_cluster", "_aks", "must start with a letter or digit"),
        ("aks_cluster", "aks-", "must end with a letter or digit"),
        (
            "aks_cluster",
            "aks.egress",
            "contains '.'; an AKS cluster name allows only letters, digits, underscores and hyphens",
        ),
        ("vnet", "v", "must be 2-64 characters long (it has 1)"),
        ("vnet", "vnet-", "must end with a letter, digit or underscore"),
        ("subnet", "-subnet", "must start with a letter or digit"),
        ("subnet", "GatewaySubnet", "is a subnet name Azure reserves for its own services"),
        ("subnet", "azurefirewallsubnet", "is a subnet name Azure reserves for its own services"),
        ("resource_group", "rg.", "must end with a character other than a period"),
        ("resource_group", "r" * 91, "must be 1-90 characters long (it has 91)"),
        ("managed_identity", "id", "must be 3-128 characters long (it has 2)"),
        ("managed_identity", "-identity", "must start with a letter or digit"),
        ("public_ip", "p" * 81, "must be 1-80 characters long (it has 81)"),
        ("storage_container", "a--b", "must not contain consecutive hyphens"),
        (
            "storage_account",
            "Acct",
            "contains 'A'; a storage account name allows only lowercase letters and digits",
        ),
    ],
)
def test_invalid_names(kind: str, name: str, problem: str) -> None:
    assert name_problem(kind, name) == problem  # type: ignore[arg-type]
    assert not is_valid_name(kind, name)  # type: ignore[arg-type]


def test_every_rule_has_sane_bounds() -> None:
    for rule in RULES.values():
        assert 1 <= rule.min_len <= rule.max_len


def test_the_sovereign_clouds_have_their_regions() -> None:
    assert known_locations("AzureChinaCloud") >= {
        "chinaeast",
        "chinaeast2",
        "chinaeast3",
        "chinanorth",
        "chinanorth2",
        "chinanorth3",
    }
    assert known_locations("AzureUSGovernment") >= {
        "usgovvirginia",
        "usgovtexas",
        "usgovarizona",
        "usdodeast",
        "usdodcentral",
    }
    assert is_known_location("AzureCloud", "eastus")
    assert not is_known_location("AzureCloud", "chinaeast2")


def test_no_location_belongs_to_two_clouds() -> None:
    clouds = list(LOCATIONS.values())
    for i, first in enumerate(clouds):
        for second in clouds[i + 1 :]:
            assert not first & second


@pytest.mark.parametrize(
    ("location", "cloud"),
    [("chinaeast2", "AzureChinaCloud"), ("US Gov Virginia", "AzureUSGovernment"), ("mars", None)],
)
def test_cloud_of(location: str, cloud: str | None) -> None:
    assert cloud_of(location) == cloud


@pytest.mark.parametrize(
    ("cloud", "typo", "suggestion"),
    [
        ("AzureCloud", "East US 2", "eastus2"),
        ("AzureCloud", "westeurop", "westeurope"),
        ("AzureChinaCloud", "chinaest2", "chinaeast2"),
        ("AzureUSGovernment", "usgovvirgina", "usgovvirginia"),
        ("AzureCloud", "mars", None),
    ],
)
def test_suggest_location(cloud: str, typo: str, suggestion: str | None) -> None:
    assert suggest_location(cloud, typo) == suggestion  # type: ignore[arg-type]

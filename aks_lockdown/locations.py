"""The Azure locations the tool accepts, per cloud.

Kept offline on purpose: validation must not need credentials or a network call. The lists are the
programmatic region names (as `az account list-locations` prints them in `name`), physical regions
only. A region missing here is refused with a did-you-mean; add it when Azure opens it.
"""

from __future__ import annotations

import difflib
from typing import Literal

Cloud = Literal["AzureCloud", "AzureChinaCloud", "AzureUSGovernment"]

LOCATIONS: dict[Cloud, frozenset[str]] = {
    "AzureCloud": frozenset(
        {
            "australiacentral",
            "australiacentral2",
            "australiaeast",
            "australiasoutheast",
            "austriaeast",
            "belgiumcentral",
            "brazilsouth",
            "brazilsoutheast",
            "canadacentral",
            "canadaeast",
            "centralindia",
            "centralus",
            "chilecentral",
            "eastasia",
            "eastus",
            "eastus2",
            "francecentral",
            "francesouth",
            "germanynorth",
            "germanywestcentral",
            "indonesiacentral",
            "israelcentral",
            "italynorth",
            "japaneast",
            "japanwest",
            "jioindiacentral",
            "jioindiawest",
            "koreacentral",
            "koreasouth",
            "malaysiawest",
            "mexicocentral",
            "newzealandnorth",
            "northcentralus",
            "northeurope",
            "norwayeast",
            "norwaywest",
            "polandcentral",
            "qatarcentral",
            "southafricanorth",
            "southafricawest",
            "southcentralus",
            "southeastasia",
            "southindia",
            "spaincentral",
            "swedencentral",
            "swedensouth",
            "switzerlandnorth",
            "switzerlandwest",
            "uaecentral",
            "uaenorth",
            "uksouth",
            "ukwest",
            "westcentralus",
            "westeurope",
            "westindia",
            "westus",
            "westus2",
            "westus3",
        }
    ),
    # Operated by 21Vianet. chinaeast and chinanorth are the original regions, still addressable.
    "AzureChinaCloud": frozenset(
        {"chinaeast", "chinaeast2", "chinaeast3", "chinanorth", "chinanorth2", "chinanorth3"}
    ),
    # usgoviowa is left out: AKS and Azure Firewall are not offered there.
    "AzureUSGovernment": frozenset(
        {"usgovvirginia", "usgovtexas", "usgovarizona", "usdodeast", "usdodcentral"}
    ),
}


def _normalise(location: str) -> str:
    # Operators paste display names ("East US 2"); the API wants "eastus2".
    return "".join(location.split()).lower()


def known_locations(cloud: Cloud) -> frozenset[str]:
    return LOCATIONS[cloud]


def is_known_location(cloud: Cloud, location: str) -> bool:
    return location in LOCATIONS[cloud]


def cloud_of(location: str) -> Cloud | None:
    """The cloud a location belongs to (exact or display-name form), or None when no cloud has it."""
    wanted = _normalise(location)
    for cloud, names in LOCATIONS.items():
        if wanted in names:
            return cloud
    return None


def suggest_location(cloud: Cloud, location: str) -> str | None:
    """The closest known location of `cloud`, for a did-you-mean; None when nothing is close."""
    names = LOCATIONS[cloud]
    wanted = _normalise(location)
    if wanted in names:
        return wanted
    close = difflib.get_close_matches(wanted, sorted(names), n=1, cutoff=0.75)
    return close[0] if close else None

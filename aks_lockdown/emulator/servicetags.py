"""GET /subscriptions/{s}/providers/Microsoft.Network/locations/{loc}/serviceTags in the shape of
ServiceTagsList.json. Address prefixes are stable fakes (derived from the tag name) in public ranges;
the names are real (AzureCloud.<region> with the documented exceptions, from the egress catalog)."""

from __future__ import annotations

import hashlib
from typing import Any

from aks_lockdown.emulator.framework import Registry, Request, Response

CLOUD_NAMES = {"AzureCloud": "Public", "AzureChinaCloud": "China", "AzureUSGovernment": "USGov"}
# (tag, systemService, regional variant?)
TAGS: tuple[tuple[str, str, bool], ...] = (
    ("AzureCloud", "", True),
    ("AzureMonitor", "AzureMonitor", True),
    ("AzureContainerRegistry", "AzureContainerRegistry", True),
    ("MicrosoftContainerRegistry", "MicrosoftContainerRegistry", True),
    ("AzureActiveDirectory", "AzureAD", False),
    ("AzureFrontDoor.FirstParty", "AzureFrontDoor", False),
    ("Storage", "AzureStorage", True),
    ("AzureKeyVault", "AzureKeyVault", True),
    ("AzureResourceManager", "AzureResourceManager", False),
)


def _regional_name(tag: str, cloud: str, location: str) -> str:
    if tag == "AzureCloud":
        try:
            from aks_lockdown.egress.catalog import service_tag_for_region

            return service_tag_for_region(cloud, location)
        except Exception:  # the catalog is another piece; never let it break this endpoint
            return f"AzureCloud.{location}"
    return f"{tag}.{location}"


def _prefixes(name: str) -> list[str]:
    h = hashlib.sha256(name.encode()).digest()
    # 20.0.0.0/8 and 52.0.0.0/8 are Microsoft public ranges; fake /24s inside them, stable per tag.
    return [f"20.{h[0]}.{h[1]}.0/24", f"52.{h[2]}.{h[3]}.0/24"]


def service_tags(cloud: str, location: str) -> list[dict[str, Any]]:
    location = location.replace(" ", "").lower()
    out = []
    for tag, service, regional in TAGS:
        names = [(tag, "")] + ([(_regional_name(tag, cloud, location), location)] if regional else [])
        for name, region in names:
            out.append(
                {
                    "name": name,
                    "id": name,
                    "properties": {
                        "changeNumber": "1",
                        "region": region,
                        "state": "GA",
                        "systemService": service,
                        "addressPrefixes": _prefixes(name),
                        "networkFeatures": ["API", "NSG", "UDR", "FW"],
                    },
                }
            )
    return out


def list_service_tags(req: Request) -> Response:
    parts = req.path.strip("/").split("/")
    sub, location = parts[1], parts[5]
    cloud = CLOUD_NAMES.get(req.config.cloud, "Public")
    return Response(
        200,
        {
            "name": cloud.lower(),
            "id": f"/subscriptions/{sub}/providers/Microsoft.Network/serviceTags/{cloud.lower()}",
            "type": "Microsoft.Network/serviceTags",
            "changeNumber": "1",
            "cloud": cloud,
            "values": service_tags(req.config.cloud, location),
            "nextLink": None,
        },
    )


def register(reg: Registry) -> None:
    reg.route(
        "GET",
        r"^/subscriptions/[^/]+/providers/Microsoft\.Network/locations/[^/]+/serviceTags$",
        list_service_tags,
    )

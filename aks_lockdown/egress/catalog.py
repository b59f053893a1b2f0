"""The AKS egress catalog: the seed's tables and today's requirements, loaded from catalog.toml.

Pure data and lookups; no Azure SDK, no rich, so `aks-lockdown egress` starts fast.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Literal

CLOUDS: tuple[str, ...] = ("AzureCloud", "AzureChinaCloud", "AzureUSGovernment")
EDITIONS: tuple[str, ...] = ("seed-2020", "current")
FEATURES: tuple[str, ...] = ("os-updates", "gpu", "windows", "monitor", "dev-spaces", "azure-policy")

Kind = Literal["network", "application"]
DestType = Literal["fqdn", "service-tag", "placeholder"]

AKS_FQDN_TAG = "AzureKubernetesService"

# Regions whose AzureCloud service tag does not follow "AzureCloud.<location>" (listed in the
# service tags overview: "The following AzureCloud tags don't have regional names formatted
# according to the normal schema"). Using the plain pattern there makes ARM reject the rule.
_SERVICE_TAG_EXCEPTIONS: dict[str, str] = {
    "francecentral": "centralfrance",
    "francesouth": "southfrance",
    "germanywestcentral": "germanywc",
    "germanynorth": "germanyn",
    "norwayeast": "norwaye",
    "norwaywest": "norwayw",
    "switzerlandnorth": "switzerlandn",
    "switzerlandwest": "switzerlandw",
    "eastusstg": "usstagee",
    "southcentralusstg": "usstagec",
}

# Minimal content of the WindowsUpdate FQDN tag (Microsoft does not publish the tag's content).
_WINDOWS_UPDATE_FQDNS: tuple[str, ...] = (
    "*.update.microsoft.com",
    "*.windowsupdate.com",
    "*.windowsupdate.microsoft.com",
    "*.delivery.mp.microsoft.com",
    "download.microsoft.com",
    "go.microsoft.com",
)


@dataclass(frozen=True)
class EgressRow:
    """One row of one requirements table, for one cloud, placeholders filled where asked."""

    id: str
    cloud: str
    kind: Kind
    destination: str
    dest_type: DestType
    protocol: str  # network: TCP | UDP; application: Https | Http
    port: int
    purpose: str
    status: str  # required | optional | retired | superseded-by <id>
    source: str  # document and date
    editions: tuple[str, ...]
    feature: str = ""  # "" = core AKS
    section: str = ""  # seed section; "" for rows only in today's docs
    seed_text: str = ""
    gate: str = ""  # "" | "tunnel_ports" | "conditional"
    rule_name: str = ""
    compile_as: str = ""
    note: str = ""

    @property
    def in_seed(self) -> bool:
        return "seed-2020" in self.editions

    @property
    def conditional(self) -> bool:
        """Depends on something the tool cannot know (custom DNS IP, API server IP, workloads)."""
        return self.gate == "conditional"

    @property
    def target(self) -> str:
        """The destination to put in a firewall rule (the documented one unless it is invalid)."""
        return self.compile_as or self.destination

    @property
    def superseded_by(self) -> str | None:
        prefix = "superseded-by "
        return self.status[len(prefix) :] if self.status.startswith(prefix) else None

    def in_edition(self, edition: str) -> bool:
        # "current:AzureCloud" scopes a shared add-on row to one cloud's current table.
        return edition in self.editions or f"{edition}:{self.cloud}" in self.editions


@dataclass(frozen=True)
class _Catalog:
    rows: tuple[EgressRow, ...]  # one per (row, cloud), placeholders unfilled
    sources: dict[str, str]


@cache
def _load() -> _Catalog:
    text = resources.files("aks_lockdown.egress").joinpath("catalog.toml").read_text("utf-8")
    data = tomllib.loads(text)
    sources: dict[str, str] = data["sources"]
    out: list[EgressRow] = []
    for raw in data["row"]:
        raw = dict(raw)
        clouds = raw.pop("clouds")
        raw["editions"] = tuple(raw["editions"])
        raw["source"] = sources[raw["source"]]
        for cloud in clouds:
            out.append(EgressRow(cloud=cloud, **raw))
    return _Catalog(rows=tuple(out), sources=sources)


def all_rows() -> list[EgressRow]:
    """Every row for every cloud, unfilled: what the golden tests and `egress --all` read."""
    return list(_load().rows)


def get_row(row_id: str, cloud: str) -> EgressRow:
    for row in _load().rows:
        if row.id == row_id and row.cloud == cloud:
            return row
    raise KeyError(f"{row_id} ({cloud})")


def service_tag_for_region(cloud: str, location: str) -> str:
    """The regional AzureCloud service tag, e.g. "AzureCloud.eastus" (or its irregular name)."""
    _check_cloud(cloud)
    loc = location.lower().replace(" ", "")
    return f"AzureCloud.{_SERVICE_TAG_EXCEPTIONS.get(loc, loc)}"


def _fill(row: EgressRow, location: str) -> EgressRow:
    if "<location>" not in row.destination:
        return row
    if row.dest_type == "service-tag" and row.destination == "AzureCloud.<location>":
        dest = service_tag_for_region(row.cloud, location)
    else:
        dest = row.destination.replace("<location>", location.lower())
    return replace(row, destination=dest)


def rows(
    cloud: str,
    edition: str,
    features: list[str] | tuple[str, ...] = (),
    location: str | None = None,
) -> list[EgressRow]:
    """The edition's rows for a cloud: core rows plus the named features', in catalog order.

    With `location`, `<location>` placeholders are filled (and the region's service tag used).
    """
    _check_cloud(cloud)
    if edition not in EDITIONS:
        raise ValueError(f"unknown egress edition {edition!r}; expected one of {', '.join(EDITIONS)}")
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ValueError(f"unknown egress feature(s): {', '.join(sorted(unknown))}")
    wanted = set(features)
    out = [
        r
        for r in _load().rows
        if r.cloud == cloud and r.in_edition(edition) and (not r.feature or r.feature in wanted)
    ]
    return [_fill(r, location) for r in out] if location else out


def required_now(cloud: str, location: str, features: list[str] | tuple[str, ...] = ()) -> list[EgressRow]:
    """What real nodes need today, whatever edition a deployment chose.

    The emulator uses this to decide whether a cluster can bootstrap behind a given firewall.
    """
    return [r for r in rows(cloud, "current", features, location) if r.status == "required"]


def fqdn_tag_members(tag: str, cloud: str, location: str) -> list[str]:
    """FQDNs an Azure Firewall FQDN tag allows, as this tool models them.

    `AzureKubernetesService` is today's core AKS FQDN list for the cloud (never add-ons: the real
    tag covers only core AKS). Unknown tags expand to nothing.
    """
    if tag.lower() == AKS_FQDN_TAG.lower():
        core = rows(cloud, "current", (), location)
        return [r.target for r in core if r.kind == "application" and not r.conditional]
    if tag.lower() == "windowsupdate":
        return list(_WINDOWS_UPDATE_FQDNS)
    return []


def _check_cloud(cloud: str) -> None:
    if cloud not in CLOUDS:
        raise ValueError(f"unknown cloud {cloud!r}; expected one of {', '.join(CLOUDS)}")

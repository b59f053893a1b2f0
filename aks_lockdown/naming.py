"""Azure's naming rules for the resource types this tool creates.

Checked offline so a bad name fails at `validate` instead of minutes into a deployment, when ARM
answers InvalidResourceName. Rules follow "Naming rules and restrictions for Azure resources"
(learn.microsoft.com, azure-resource-manager/management/resource-name-rules).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ResourceKind = Literal[
    "resource_group",
    "vnet",
    "subnet",
    "public_ip",
    "firewall",
    "firewall_policy",
    "ip_config",
    "route_table",
    "route",
    "rule",
    "managed_identity",
    "aks_cluster",
    "aks_dns_prefix",
    "storage_account",
    "storage_container",
]

_ALNUM = "A-Za-z0-9"


@dataclass(frozen=True)
class NameRule:
    """One resource type's rule: length bounds, allowed characters, and what may start and end a name."""

    label: str
    min_len: int
    max_len: int
    allowed: str  # a regex character-class body
    allowed_text: str
    first: str  # character-class body for the first character
    first_text: str
    last: str  # character-class body for the last character
    last_text: str
    extra: tuple[tuple[str, str], ...] = ()  # (forbidden regex, explanation)

    def problem(self, name: str) -> str | None:
        """Why `name` breaks this rule, or None when it is valid."""
        if not self.min_len <= len(name) <= self.max_len:
            return f"must be {self.min_len}-{self.max_len} characters long (it has {len(name)})"
        bad = sorted(set(re.sub(f"[{self.allowed}]", "", name)))
        if bad:
            shown = " ".join(repr(c) for c in bad)
            article = "an" if self.label[0] in "AEIOU" else "a"
            return f"contains {shown}; {article} {self.label} name allows only {self.allowed_text}"
        if not re.fullmatch(f"[{self.first}]", name[0]):
            return f"must start with {self.first_text}"
        if not re.fullmatch(f"[{self.last}]", name[-1]):
            return f"must end with {self.last_text}"
        for pattern, why in self.extra:
            if re.search(pattern, name):
                return why
        return None


def _network_rule(label: str, min_len: int = 1, max_len: int = 80) -> NameRule:
    # Every Microsoft.Network type we create shares this shape; only the VNet's length differs.
    return NameRule(
        label=label,
        min_len=min_len,
        max_len=max_len,
        allowed=f"{_ALNUM}_.-",
        allowed_text="letters, digits, underscores, periods and hyphens",
        first=_ALNUM,
        first_text="a letter or digit",
        last=f"{_ALNUM}_",
        last_text="a letter, digit or underscore",
    )


RULES: dict[ResourceKind, NameRule] = {
    "resource_group": NameRule(
        label="resource group",
        min_len=1,
        max_len=90,
        # Azure also allows Unicode letters here; ASCII keeps names portable across tools and clouds.
        allowed=f"{_ALNUM}_.()-",
        allowed_text="letters, digits, underscores, periods, parentheses and hyphens",
        first=f"{_ALNUM}_.()-",
        first_text="an allowed character",
        last=f"{_ALNUM}_()-",
        last_text="a character other than a period",
    ),
    "vnet": _network_rule("virtual network", min_len=2, max_len=64),
    "subnet": _network_rule("subnet"),
    "public_ip": _network_rule("public IP"),
    "firewall": _network_rule("firewall"),
    "firewall_policy": _network_rule("firewall policy"),
    "ip_config": _network_rule("IP configuration"),
    "route_table": _network_rule("route table"),
    "route": _network_rule("route"),
    "rule": _network_rule("firewall rule"),
    "managed_identity": NameRule(
        label="managed identity",
        min_len=3,
        max_len=128,
        allowed=f"{_ALNUM}_-",
        allowed_text="letters, digits, underscores and hyphens",
        first=_ALNUM,
        first_text="a letter or digit",
        last=f"{_ALNUM}_-",
        last_text="an allowed character",
    ),
    "aks_cluster": NameRule(
        label="AKS cluster",
        min_len=1,
        max_len=63,
        allowed=f"{_ALNUM}_-",
        allowed_text="letters, digits, underscores and hyphens",
        first=_ALNUM,
        first_text="a letter or digit",
        last=_ALNUM,
        last_text="a letter or digit",
    ),
    # The cluster's API server FQDN starts with it; AKS refuses underscores and more than 54 characters.
    "aks_dns_prefix": NameRule(
        label="AKS DNS prefix",
        min_len=1,
        max_len=54,
        allowed=f"{_ALNUM}-",
        allowed_text="letters, digits and hyphens",
        first=_ALNUM,
        first_text="a letter or digit",
        last=_ALNUM,
        last_text="a letter or digit",
    ),
    "storage_account": NameRule(
        label="storage account",
        min_len=3,
        max_len=24,
        allowed="a-z0-9",
        allowed_text="lowercase letters and digits",
        first="a-z0-9",
        first_text="a lowercase letter or digit",
        last="a-z0-9",
        last_text="a lowercase letter or digit",
    ),
    "storage_container": NameRule(
        label="storage container",
        min_len=3,
        max_len=63,
        allowed="a-z0-9-",
        allowed_text="lowercase letters, digits and hyphens",
        first="a-z0-9",
        first_text="a lowercase letter or digit",
        last="a-z0-9",
        last_text="a lowercase letter or digit",
        extra=(("--", "must not contain consecutive hyphens"),),
    ),
}

# Azure gives these subnet names special meaning; the tool creates the firewall ones itself.
RESERVED_SUBNET_NAMES = frozenset(
    {"AzureFirewallSubnet", "AzureFirewallManagementSubnet", "GatewaySubnet", "AzureBastionSubnet"}
)


def name_problem(kind: ResourceKind, name: str) -> str | None:
    """Why `name` is not a valid name for a resource of `kind`, or None when it is."""
    problem = RULES[kind].problem(name)
    if problem is None and kind == "subnet" and name.lower() in {n.lower() for n in RESERVED_SUBNET_NAMES}:
        return "is a subnet name Azure reserves for its own services"
    return problem


def is_valid_name(kind: ResourceKind, name: str) -> bool:
    return name_problem(kind, name) is None

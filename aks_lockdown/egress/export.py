"""Print catalog rows for people and for other appliances: table | json | csv | markdown | arm.

Imports neither rich nor the Azure SDK: `aks-lockdown egress` must start fast. The "arm" format
is a deployable ARM template (one Firewall Policy rule collection group) for users who bring
their own firewall; the others serve "any outbound restriction method or appliance" (the seed).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from aks_lockdown.egress.catalog import EgressRow

FORMATS: tuple[str, ...] = ("table", "json", "csv", "markdown", "arm")

_COLUMNS: tuple[str, ...] = ("id", "kind", "destination", "protocol", "port", "status", "feature", "purpose")
_ARM_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
_ARM_API_VERSION = "2024-05-01"
_ARM_NAME = "[format('{0}/{1}', parameters('firewallPolicyName'), parameters('ruleCollectionGroupName'))]"
_SEED_SUBNET = "10.42.1.0/24"


def render(rows: Sequence[EgressRow], fmt: str, *, source_addresses: Sequence[str] = (_SEED_SUBNET,)) -> str:
    if fmt == "table":
        return _table(rows)
    if fmt == "json":
        return json.dumps([_row_dict(r) for r in rows], indent=2) + "\n"
    if fmt == "csv":
        return _csv(rows)
    if fmt == "markdown":
        return _markdown(rows)
    if fmt == "arm":
        return json.dumps(arm_template(rows, source_addresses=source_addresses), indent=2) + "\n"
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _row_dict(row: EgressRow) -> dict[str, Any]:
    d = asdict(row)
    d["editions"] = list(row.editions)
    return d


def _cell(row: EgressRow, col: str) -> str:
    value = getattr(row, col)
    if col == "destination" and row.conditional:
        value = f"{value} (if applicable)"
    return str(value) if value != "" else "-"


def _table(rows: Sequence[EgressRow]) -> str:
    cols = [c for c in _COLUMNS if c != "purpose"]  # purpose is long; json/csv/markdown carry it
    cells = [[_cell(r, c) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells]
    return "\n".join(lines) + "\n"


def _csv(rows: Sequence[EgressRow]) -> str:
    buf = io.StringIO()
    fields = [*_COLUMNS, "section", "source", "gate", "note"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({f: getattr(r, f) for f in fields})
    return buf.getvalue()


def _markdown(rows: Sequence[EgressRow]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for r in rows:
        vals = [_cell(r, c) for c in _COLUMNS]
        vals[2] = f"`{vals[2]}`"
        lines.append("| " + " | ".join(esc(v) for v in vals) + " |")
    return "\n".join(lines) + "\n"


def arm_template(
    rows: Sequence[EgressRow], *, source_addresses: Sequence[str] = (_SEED_SUBNET,)
) -> dict[str, Any]:
    """An ARM template with one Microsoft.Network/firewallPolicies/ruleCollectionGroups resource.

    One rule per catalog row (named after the row id) so a reviewer can trace every allow.
    Conditional rows (custom DNS IP, API server IP, ...) cannot be written without values only the
    operator knows, so they are left out and listed in the template's metadata.
    """
    usable = [r for r in rows if not r.conditional and r.dest_type != "placeholder"]
    net = [_arm_network_rule(r) for r in usable if r.kind == "network"]
    app = [_arm_application_rule(r) for r in usable if r.kind == "application"]
    collections = []
    if net:
        collections.append(_arm_collection("aks-network", 100, net))
    if app:
        collections.append(_arm_collection("aks-application", 200, app))
    needs_proxy = [r.id for r in usable if r.kind == "network" and r.dest_type == "fqdn"]
    return {
        "$schema": _ARM_SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {
            "generator": "aks-lockdown egress --format arm",
            "omittedConditionalRows": [r.id for r in rows if r not in usable],
            "needsDnsProxy": needs_proxy,  # FQDNs in network rules resolve only via the DNS proxy
        },
        "parameters": {
            "firewallPolicyName": {"type": "string", "metadata": {"description": "Existing Firewall Policy"}},
            "ruleCollectionGroupName": {"type": "string", "defaultValue": "aks-lockdown-egress"},
            "ruleCollectionGroupPriority": {"type": "int", "defaultValue": 200},
            "sourceAddresses": {
                "type": "array",
                "defaultValue": list(source_addresses),
                "metadata": {"description": "The AKS node subnet(s): never '*'"},
            },
        },
        "resources": [
            {
                "type": "Microsoft.Network/firewallPolicies/ruleCollectionGroups",
                "apiVersion": _ARM_API_VERSION,
                "name": _ARM_NAME,
                "properties": {
                    "priority": "[parameters('ruleCollectionGroupPriority')]",
                    "ruleCollections": collections,
                },
            }
        ],
    }


def _arm_collection(name: str, priority: int, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": name,
        "priority": priority,
        "action": {"type": "Allow"},
        "rules": rules,
    }


def _arm_network_rule(row: EgressRow) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "ruleType": "NetworkRule",
        "name": row.id,
        "ipProtocols": [row.protocol],
        "sourceAddresses": "[parameters('sourceAddresses')]",
        "destinationPorts": [str(row.port)],
    }
    key = "destinationFqdns" if row.dest_type == "fqdn" else "destinationAddresses"
    rule[key] = [row.target]
    return rule


def _arm_application_rule(row: EgressRow) -> dict[str, Any]:
    return {
        "ruleType": "ApplicationRule",
        "name": row.id,
        "protocols": [{"protocolType": row.protocol, "port": row.port}],
        "sourceAddresses": "[parameters('sourceAddresses')]",
        "targetFqdns": [row.target],
    }

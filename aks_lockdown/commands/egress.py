"""``egress``: the egress requirements for a cloud, location and feature set, in several formats."""

from __future__ import annotations

import argparse
import sys

from aks_lockdown.errors import InputError

FEATURES = ("os-updates", "gpu", "windows", "monitor", "azure-policy", "dev-spaces")
DEFAULT_LOCATION = {
    "AzureCloud": "eastus",
    "AzureChinaCloud": "chinaeast2",
    "AzureUSGovernment": "usgovvirginia",
}


def parse_features(text: str) -> list[str]:
    features = [f.strip() for f in text.split(",") if f.strip()]
    for feature in features:
        if feature not in FEATURES:
            import difflib

            close = difflib.get_close_matches(feature, FEATURES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (one of {', '.join(FEATURES)})"
            raise InputError(f"--features: unknown feature {feature!r}{hint}")
    return features


def check_location(cloud: str, location: str) -> str:
    from aks_lockdown.locations import cloud_of, is_known_location, suggest_location

    wanted = "".join(location.split()).lower()
    if not is_known_location(cloud, wanted):  # type: ignore[arg-type]
        close = suggest_location(cloud, location)  # type: ignore[arg-type]
        other = cloud_of(location)
        hint = (
            f" (did you mean {close!r}?)"
            if close
            else f" (it is in {other}: add --cloud {other})"
            if other
            else ""
        )
        raise InputError(f"--location: {location!r} is not a location of {cloud}{hint}")
    return wanted


def run(args: argparse.Namespace) -> int:
    features = parse_features(args.features)
    location = check_location(args.cloud, args.location or DEFAULT_LOCATION[args.cloud])
    from aks_lockdown.egress import catalog, export

    rows = catalog.rows(args.cloud, args.edition, features, location)
    text = export.render(rows, args.format)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0

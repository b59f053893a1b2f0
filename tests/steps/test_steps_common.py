"""The shared helpers: owned-field diffs, read-only stripping, IDs and names."""

from __future__ import annotations

from aks_lockdown.steps._common import deterministic_uuid, owned_changes, same_id, strip_read_only


def test_only_owned_fields_are_compared() -> None:
    desired = {"properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}
    actual = {
        "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "provisioningState": "Succeeded",
            "enableDdosProtection": False,
        }
    }
    assert owned_changes(desired, actual) == []


def test_named_lists_match_by_name_and_name_the_field() -> None:
    desired = {"routes": [{"name": "a", "properties": {"addressPrefix": "0.0.0.0/0"}}]}
    moved = {
        "routes": [
            {"name": "aks-pod", "properties": {}},
            {"name": "A", "properties": {"addressPrefix": "1.0.0.0/8"}},
        ]
    }
    [change] = owned_changes(desired, moved)
    assert change.path == "routes[a].properties.addressPrefix"
    assert (change.current, change.desired) == ("1.0.0.0/8", "0.0.0.0/0")
    [missing] = owned_changes(desired, {"routes": []})
    assert missing.path == "routes[a]" and missing.current is None


def test_strict_names_report_items_added_out_of_band() -> None:
    desired = {"rules": [{"name": "a"}]}
    actual = {"rules": [{"name": "a"}, {"name": "sneaky"}]}
    assert owned_changes(desired, actual) == []
    [extra] = owned_changes(desired, actual, strict_names=True)
    assert extra.path == "rules[sneaky]" and extra.desired is None


def test_arm_ids_compare_case_insensitively() -> None:
    rid = "/subscriptions/x/resourceGroups/RG/providers/Microsoft.Network/routeTables/rt"
    assert owned_changes({"routeTable": {"id": rid}}, {"routeTable": {"id": rid.lower()}}) == []
    assert same_id(rid, rid.upper())


def test_scalar_lists_are_ordered_and_false_equals_absent() -> None:
    assert owned_changes({"p": ["a", "b"]}, {"p": ["b", "a"]})
    assert owned_changes({"flag": False}, {}) == []
    assert owned_changes({"flag": True}, {})


def test_strip_read_only_keeps_references() -> None:
    route = {
        "name": "r",
        "id": "/subscriptions/x/route",
        "etag": 'W/"1"',
        "properties": {
            "provisioningState": "Succeeded",
            "nextHop": {"id": "/subscriptions/x/fw"},
            "tags": [],
        },
    }
    assert strip_read_only(route) == {"name": "r", "properties": {"nextHop": {"id": "/subscriptions/x/fw"}}}


def test_deterministic_uuid_is_stable_and_case_blind() -> None:
    a = deterministic_uuid("/Scope", "principal", "/role")
    assert a == deterministic_uuid("/scope", "PRINCIPAL", "/ROLE")
    assert a != deterministic_uuid("/scope", "other", "/role")

"""The plan renderer and the three event sinks."""

from __future__ import annotations

import io
import json

from aks_lockdown.display import (
    DeploySummary,
    JsonDisplay,
    LiveDisplay,
    PlainDisplay,
    PlannedStep,
    make_display,
    render_plan,
    short_id,
)
from aks_lockdown.engine.events import (
    Progress,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepChecking,
    StepDone,
    StepFailed,
    StepPlanned,
    WriteFinished,
    WriteStarted,
)
from aks_lockdown.engine.step import Diff, FieldChange, ResourceChange

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/aks-egress-rg"
VNET = f"{SUB}/providers/Microsoft.Network/virtualNetworks/aks-egress-vnet"
RT = f"{SUB}/providers/Microsoft.Network/routeTables/aks-egress-fwrt"
FW = f"{SUB}/providers/Microsoft.Network/azureFirewalls/aks-egress-fw"
OLD = f"{SUB}/providers/Microsoft.Network/publicIPAddresses/old-ip"


def hand_made_plan() -> list[PlannedStep]:
    return [
        PlannedStep(
            "rg", "Resource group", Diff((ResourceChange("none", SUB, "Microsoft.Resources/resourceGroups"),))
        ),
        PlannedStep(
            "vnet",
            "Virtual network",
            Diff(
                (
                    ResourceChange(
                        "create",
                        VNET,
                        "Microsoft.Network/virtualNetworks",
                        (FieldChange("properties.addressSpace.addressPrefixes", None, ["10.42.0.0/16"]),),
                    ),
                )
            ),
        ),
        PlannedStep(
            "route_table",
            "Route table",
            Diff(
                (
                    ResourceChange(
                        "update",
                        RT,
                        "Microsoft.Network/routeTables",
                        (
                            FieldChange(
                                "properties.routes[fw-internet].nextHopIpAddress", "10.42.2.5", "10.42.2.4"
                            ),
                        ),
                        note="drift: route 'fw-internet' changed out of band",
                    ),
                )
            ),
        ),
        PlannedStep(
            "firewall",
            "Azure Firewall",
            Diff(
                (
                    ResourceChange("wait", FW, "Microsoft.Network/azureFirewalls", note="found Updating"),
                    ResourceChange("delete", OLD, "Microsoft.Network/publicIPAddresses"),
                )
            ),
        ),
    ]


def test_plan_renderer_marks_fields_and_counts() -> None:
    text = render_plan(hand_made_plan())
    lines = text.splitlines()
    assert f"  + {VNET}" in lines
    assert f"  ~ {RT}" in lines
    assert f" <= {FW}" in lines
    assert f"  - {OLD}" in lines
    assert '      properties.routes[fw-internet].nextHopIpAddress: "10.42.2.5" -> "10.42.2.4"' in lines
    assert '      properties.addressSpace.addressPrefixes: ["10.42.0.0/16"]' in lines
    assert "      (drift: route 'fw-internet' changed out of band)" in lines
    assert "rg (Resource group):" not in text  # nothing to do there: not shown
    assert lines[-1] == "Plan: 1 to add, 2 to change, 1 to destroy."


def test_plan_renderer_no_changes() -> None:
    assert render_plan([]) == "No changes. Your infrastructure matches the configuration."
    assert render_plan(hand_made_plan()[:1]) == "No changes. Your infrastructure matches the configuration."


def events() -> list:
    diff = Diff((ResourceChange("create", VNET, "Microsoft.Network/virtualNetworks"),))
    return [
        RunStarted("aks-egress", "deploy", (("rg", "Resource group"), ("vnet", "Virtual network"))),
        StepChecking("rg"),
        StepPlanned("rg", Diff()),
        StepDone("rg", changed=False, elapsed=0.1, outputs={"id": SUB}),
        StepChecking("vnet"),
        StepPlanned("vnet", diff),
        WriteStarted("vnet", VNET, "create", "VNet with 2 subnets"),
        Progress("vnet", "Updating", resource_id=VNET, elapsed=3.0),
        RetryScheduled("vnet", "AnotherOperationInProgress", "busy", attempt=1, delay=2.0),
        WriteFinished("vnet", VNET, "create", elapsed=4.2),
        StepDone("vnet", changed=True, elapsed=4.5, outputs={"id": VNET}),
        StepFailed("vnet", "boom\nsecond line"),
        RunFinished(ok=True, elapsed=5.0, summary={"steps": 2}),
    ]


def test_json_lines_sink_one_event_per_line() -> None:
    out = io.StringIO()
    sink = JsonDisplay(out)
    for event in events():
        sink(event)
    sink.warning("careful")
    lines = out.getvalue().splitlines()
    assert len(lines) == len(events()) + 1
    docs = [json.loads(line) for line in lines]
    assert [d["event"] for d in docs[:3]] == ["RunStarted", "StepChecking", "StepPlanned"]
    assert docs[0]["steps"] == [["rg", "Resource group"], ["vnet", "Virtual network"]]
    planned = docs[5]
    assert planned["diff"]["changes"][0]["action"] == "create"
    assert planned["diff"]["changes"][0]["resource_id"] == VNET
    assert docs[8] == {
        "step": "vnet",
        "code": "AnotherOperationInProgress",
        "message": "busy",
        "attempt": 1,
        "delay": 2.0,
        "event": "RetryScheduled",
    }
    assert docs[-1] == {"event": "Warning", "message": "careful"}


def test_json_plan_and_summary() -> None:
    out = io.StringIO()
    sink = JsonDisplay(out)
    sink.plan(hand_made_plan())
    sink.summary(DeploySummary("aks-egress", ok=True, firewall_public_ips=["203.0.113.7"]))
    plan, summary = (json.loads(line) for line in out.getvalue().splitlines())
    assert (plan["event"], plan["add"], plan["change"], plan["destroy"]) == ("Plan", 1, 2, 1)
    assert summary["event"] == "Summary" and summary["firewall_public_ips"] == ["203.0.113.7"]


def test_plain_sink_one_line_per_event() -> None:
    out = io.StringIO()
    sink = PlainDisplay(out, timestamps=False)
    for event in events():
        sink(event)
    lines = out.getvalue().splitlines()
    assert lines[0] == "deploy aks-egress: 2 steps (rg, vnet)"
    assert "[vnet] create virtualNetworks/aks-egress-vnet: VNet with 2 subnets" in lines
    assert "[vnet] retry 1 in 2.0s: AnotherOperationInProgress: busy" in lines
    assert "[vnet] FAILED: boom second line" in lines
    assert lines[-1] == "finished in 5.0s"
    assert len(lines) == len(events())


def test_make_display_picks_plain_when_not_a_terminal() -> None:
    assert isinstance(make_display("text", stream=io.StringIO()), PlainDisplay)
    assert isinstance(make_display("json", stream=io.StringIO()), JsonDisplay)


def test_live_display_renders_rows_and_summary() -> None:
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    with LiveDisplay(console) as live:
        for event in events()[:-2]:
            live(event)
        live.summary(
            DeploySummary(
                "aks-egress",
                ok=True,
                elapsed=42.0,
                cluster_name="aks-egress",
                api_server="https://aks-egress.hcp.eastus.azmk8s.io",
                firewall_private_ip="10.42.2.4",
                firewall_public_ips=["203.0.113.7"],
                authorized_ranges=["203.0.113.7/32"],
                dnat_urls=["http://203.0.113.7:80/"],
                next_commands=[("remove it all", "aks-lockdown teardown config/eastus.toml --emulator")],
            )
        )
    text = out.getvalue()
    for expected in (
        "Virtual network",
        "virtualNetworks/aks-egress-vnet",
        "http://203.0.113.7:80/",
        "10.42.2.4",
    ):
        assert expected in text
    assert "aks-lockdown teardown config/eastus.toml --emulator" in text


def test_short_id() -> None:
    assert short_id(VNET + "/subnets/aks-subnet") == "virtualNetworks/aks-egress-vnet/subnets/aks-subnet"
    assert short_id(SUB) == "resourceGroups/aks-egress-rg"
    assert short_id("") == ""


def test_verbose_http_log_redacts_secrets() -> None:
    import logging

    from aks_lockdown.display import enable_http_logging

    out = io.StringIO()
    enable_http_logging(out)
    logger = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    try:
        logger.info("Request URL: 'https://x/token?sig=%s'", "SIGNATURE123")
        logger.info("    'Authorization': 'Bearer eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln'")
        logger.info("client_secret=hunter2&grant_type=client_credentials")
    finally:
        for name in ("azure", "aks_lockdown"):
            target = logging.getLogger(name)
            for handler in list(target.handlers):
                target.removeHandler(handler)
            target.setLevel(logging.NOTSET)
    text = out.getvalue()
    assert len(text.splitlines()) == 3
    for secret in ("SIGNATURE123", "eyJhbGciOiJSUzI1NiJ9", "hunter2"):
        assert secret not in text


def test_plain_sink_does_not_repeat_progress() -> None:
    out = io.StringIO()
    sink = PlainDisplay(out, timestamps=False)
    for second in range(10):
        sink(Progress("firewall", "Updating", resource_id=FW, elapsed=float(second)))
    sink(Progress("firewall", "Succeeded", resource_id=FW, elapsed=10.0))
    assert out.getvalue().splitlines() == [
        "[firewall] azureFirewalls/aks-egress-fw Updating",
        "[firewall] azureFirewalls/aks-egress-fw Succeeded (10.0s)",
    ]

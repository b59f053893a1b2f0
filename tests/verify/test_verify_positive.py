"""The positive run: config/eastus.toml deployed in both egress editions passes every check, and the
report renders for a change ticket (table, JSON, Markdown), with the exit status the CLI returns."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from verify_world import CONFIG_DIR, Deployed, load

from aks_lockdown.verify import VerifyReport, emit, render_json, render_markdown, render_text

pytestmark = pytest.mark.e2e

EVERY_CHECK = [
    "route.association",
    "route.default",
    "route.firewall-ips",
    "firewall.dns-proxy",
    "firewall.required-egress",
    "firewall.open-destination",
    "firewall.any-source",
    "cluster.outbound-type",
    "cluster.api-access",
    "identity.network-contributor",
    "ingress.dnat-targets",
    "ingress.no-public-lb",
    "probe.required-egress",
    "probe.blocked",
    "probe.dns",
    "probe.inbound",
]


@pytest.fixture(scope="module", params=["seed-2020", "current"])
def world(request: pytest.FixtureRequest, deploy: Any) -> Deployed:
    return deploy(load("eastus.toml", firewall={"egress_edition": request.param}))


@pytest.fixture(scope="module")
def report_file(world: Deployed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("report") / "verify.md"


@pytest.fixture(scope="module")
def report(world: Deployed, report_file: Path) -> VerifyReport:
    return world.verify(report=report_file, config_path="config/eastus.toml")


def test_every_check_passes(report: VerifyReport) -> None:
    assert [c.id for c in report.checks] == EVERY_CHECK
    assert report.failed() == [], render_text(report)
    assert report and report.passed and report.exit_code == 0


def test_the_probes_prove_something(world: Deployed, report: VerifyReport) -> None:
    egress = report.get("probe.required-egress")
    assert any("https://mcr.microsoft.com: HTTP 200" in d for d in egress.details)
    # The cluster's own API server stands for *.hcp.<region>.azmk8s.io.
    fqdn = world.outputs["cluster"]["fqdn"]
    assert any(f"https://{fqdn}" in d for d in egress.details)
    blocked = report.get("probe.blocked")
    assert blocked.observed == "3/3 blocked"
    assert all("curl: (28)" in d for d in blocked.details)
    inbound = report.get("probe.inbound")
    public_ip = world.outputs["public_ips"]["addresses"][0]
    assert inbound.details == (
        f"GET http://{public_ip}:80/ (aks-lockdown-dnat/aks-dnat/inboundrule): HTTP 200",
    )
    dnat = report.get("ingress.dnat-targets")
    assert "= Service default/voting-app" in dnat.details[0]


def test_dns_says_how_it_was_checked(world: Deployed, report: VerifyReport) -> None:
    # The tool sets the VNet's DNS servers to the firewall's private IP: names resolve through the proxy.
    dns = report.get("probe.dns")
    private_ip = world.outputs["firewall"]["private_ip"]
    assert dns.status == "pass" and dns.passed
    assert dns.details[0].startswith(f"nslookup mcr.microsoft.com (server {private_ip}): ")
    assert f"VNet aks-egress-vnet DNS servers: {private_ip}" in dns.details


def test_required_egress_counts_the_edition(world: Deployed, report: VerifyReport) -> None:
    check = report.get("firewall.required-egress")
    assert world.config.firewall.egress_edition in check.expected
    assert any("allowed by aks-lockdown-egress/aks-application/aks-fqdn-tag" in d for d in check.details)


def test_json_output(report: VerifyReport) -> None:
    line = render_json(report)
    assert "\n" not in line
    data = json.loads(line)
    assert data["event"] == "VerifyReport" and data["passed"] is True
    assert data["deployment"] == "eastus-walkthrough"
    assert [c["id"] for c in data["checks"]] == EVERY_CHECK
    first = data["checks"][0]
    assert set(first) >= {"id", "category", "expected", "observed", "passed", "message", "status"}


def test_markdown_report_file(report: VerifyReport, report_file: Path) -> None:
    text = report_file.read_text()
    assert text == render_markdown(report)
    assert text.startswith("# Lockdown verification: eastus-walkthrough\n")
    assert "- **Result:** PASSED" in text
    assert "- **Target:** emulator https://127.0.0.1:" in text
    assert "- **Config:** `config/eastus.toml`" in text
    for check_id in EVERY_CHECK:
        assert f"(`{check_id}`)" in text


def test_emit_to_the_cli_displays(report: VerifyReport) -> None:
    from rich.console import Console

    from aks_lockdown.display import JsonDisplay, LiveDisplay, PlainDisplay

    stream = io.StringIO()
    emit(report, JsonDisplay(stream))
    assert json.loads(stream.getvalue())["event"] == "VerifyReport"

    stream = io.StringIO()
    emit(report, PlainDisplay(stream, timestamps=False))
    assert "Default route to firewall" in stream.getvalue()
    assert stream.getvalue().rstrip().endswith("PASSED (16 passed, 0 failed)")

    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    emit(report, LiveDisplay(console))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "Control set blocked" in shown and "PASS" in shown


def test_audit_alone_sends_no_probe(world: Deployed) -> None:
    since = time.time()
    result = world.verify(data_plane=False)
    assert result.passed
    assert "probe.blocked" not in [c.id for c in result.checks]
    writes = [r for r in world.emu.requests(since=since) if r["method"] in ("PUT", "PATCH", "DELETE")]
    assert writes == []


def test_classic_rules_pass_too(deploy: Any) -> None:
    # Rules on the firewall itself, DNS proxy in its additionalProperties: the same proof.
    world = deploy(load("eastus.toml", firewall={"rules": "classic"}))
    result = world.verify()
    assert result.failed() == [], render_text(result)
    assert "additionalProperties Network.DNS.EnableProxy" in result.get("firewall.dns-proxy").observed
    assert "(aksfwdnat/inboundrule): HTTP 200" in result.get("probe.inbound").details[0]


def test_nothing_deployed_fails_every_check_without_crashing(tmp_path: Path) -> None:
    from aks_lockdown.arm.clients import ClientFactory
    from aks_lockdown.emulator.server import Emulator
    from aks_lockdown.verify import run_verify

    config = load("eastus.toml")
    with Emulator(tmp_path / "emulator", profile="fast") as emu:
        clients = ClientFactory(emu.target(), polling_interval=0.05)
        result = run_verify(config, clients, probe_timeout=1)
    assert result.exit_code == 1
    statuses = {c.id: c.status for c in result.checks}
    assert {s for i, s in statuses.items() if i not in ("probe.dns", "probe.inbound")} == {"fail"}
    assert result.get("route.default").message == "route table aks-egress-fwrt does not exist"
    assert (
        result.get("probe.blocked").message == "cluster aks-egress does not exist: nothing to run commands in"
    )


def test_verify_only_reads(world: Deployed) -> None:
    # GETs, plus the run command POST (which runs read-only kubectl, curl and nslookup in the cluster).
    since = time.time()
    assert world.verify().passed
    sent = [r for r in world.emu.requests(since=since) if "/oauth2/" not in r["path"].lower()]
    assert sent
    assert {r["method"] for r in sent} <= {"GET", "POST"}
    posts = [r["path"] for r in sent if r["method"] == "POST"]
    assert len(posts) == 1 and posts[0].lower().endswith(
        f"/managedclusters/{world.config.cluster_name}/runcommand"
    )


def test_cli_verify_exit_code_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Through the CLI's own wiring (commands/verify.py): nothing deployed in this emulator, so exit 1.
    from aks_lockdown.cli import main

    report = tmp_path / "verify.md"
    argv = ["verify", str(CONFIG_DIR / "eastus.toml"), "--emulator", "--emulator-profile", "fast"]
    argv += ["--state-dir", str(tmp_path / "state"), "--output", "json", "--report", str(report)]
    assert main(argv) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    verdicts = [line for line in lines if line.get("event") == "VerifyReport"]
    assert len(verdicts) == 1 and verdicts[0]["passed"] is False
    assert report.read_text().startswith("# Lockdown verification: eastus-walkthrough")

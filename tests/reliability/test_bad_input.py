"""Bad input is refused before anything reaches Azure: malformed configs, corrupted or foreign state
files and bad flags each give exactly one line on stderr and exit 2, and the emulator's request log shows
no request at all.

The CLI runs in process (``aks_lockdown.cli.main(argv)`` with capsys): the same code path as the console
script, fast enough for ~80 cases, and the emulator's own log is the witness of "nothing sent"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rel_harness import DEPLOYMENT, eastus_text, quiet_text, write_config

from aks_lockdown.cli import main

pytestmark = pytest.mark.reliability


def _sub(old: str, new: str) -> Any:
    """A config from eastus.toml with one textual change (the change must apply)."""

    def make() -> str:
        text = eastus_text()
        assert old in text, f"eastus.toml no longer contains {old!r}"
        return text.replace(old, new, 1)

    return make


def _append(extra: str) -> Any:
    return lambda: eastus_text() + "\n" + extra + "\n"


# id -> a function returning the config text (str) or bytes.
BAD_CONFIGS: dict[str, Any] = {
    # -- not TOML at all
    "array-of-tables-section": _sub("[deployment]", "[[deployment]]"),
    "binary-garbage": lambda: bytes(range(256)) * 4,
    "not-utf8": lambda: eastus_text().encode().replace(b"eastus-walkthrough", b"east\xffus"),
    "json-not-toml": lambda: json.dumps({"deployment": {"name": "x"}}),
    "yaml-not-toml": lambda: "deployment:\n  name: x\n  prefix: y\n",
    "unclosed-string": _sub('name = "eastus-walkthrough"', 'name = "eastus-walkthrough'),
    "unclosed-table": _sub("[network]", "[network"),
    "duplicate-key": _sub('location = "eastus"', 'location = "eastus"\nlocation = "westus"'),
    "duplicate-table": _append('[azure]\nlocation = "westus"'),
    "truncated-mid-key": lambda: eastus_text()[: eastus_text().index("firewall_subnet_cidr") + 12],
    # -- unknown or misspelt keys and sections
    "unknown-section": _append("[monitoring]\nenabled = true"),
    "misspelt-key": _sub("vnet_cidr =", "vnet_cdir ="),
    "unknown-key-in-firewall": _sub('sku = "Standard"', 'sku = "Standard"\nzones = [1, 2, 3]'),
    # -- wrong types
    "node-count-string": _sub("node_count = 3", 'node_count = "3"'),
    "public-ip-count-float": _sub("public_ip_count = 1", "public_ip_count = 1.5"),
    "dns-proxy-string": _sub("dns_proxy = true", 'dns_proxy = "yes"'),
    "authorized-ranges-string": _sub("authorized_ip_ranges = []", 'authorized_ip_ranges = "1.2.3.4/32"'),
    "deployment-not-a-table": _sub("[deployment]\n", "deployment = 3\n[deployment2]\n"),
    # -- values out of their enumerations or ranges
    "bad-sku": _sub('sku = "Standard"', 'sku = "Ultra"'),
    "bad-cloud": _sub('cloud = "AzureCloud"', 'cloud = "AzureMars"'),
    "bad-location": _sub('location = "eastus"', 'location = "mars-central"'),
    "bad-network-plugin": _sub('network_plugin = "azure"', 'network_plugin = "calico"'),
    "bad-rules-mode": _sub('rules = "policy"', 'rules = "iptables"'),
    "bad-fqdn-mode": _sub('fqdn_mode = "tag"', 'fqdn_mode = "wildcard"'),
    "bad-egress-edition": _sub('egress_edition = "seed-2020"', 'egress_edition = "2031"'),
    "zero-nodes": _sub("node_count = 3", "node_count = 0"),
    "negative-public-ips": _sub("public_ip_count = 1", "public_ip_count = -1"),
    "too-many-public-ips": _sub("public_ip_count = 1", "public_ip_count = 1000"),
    "bad-workload": _sub('workload = "voting-app"', 'workload = "wordpress"'),
    "bad-state-backend": _sub('backend = "local"', 'backend = "s3"'),
    # -- names
    "bad-deployment-name": _sub('name = "eastus-walkthrough"', 'name = "east us/walkthrough"'),
    "empty-deployment-name": _sub('name = "eastus-walkthrough"', 'name = ""'),
    "bad-prefix": _sub('prefix = "aks-egress"', 'prefix = "-aks_egress!"'),
    # -- addresses
    "vnet-cidr-garbage": _sub('vnet_cidr = "10.42.0.0/16"', 'vnet_cidr = "10.42.0.0/33"'),
    "subnet-outside-vnet": _sub('aks_subnet_cidr = "10.42.1.0/24"', 'aks_subnet_cidr = "10.99.1.0/24"'),
    "subnets-overlap": _sub('firewall_subnet_cidr = "10.42.2.0/24"', 'firewall_subnet_cidr = "10.42.1.0/24"'),
    "firewall-subnet-too-small": _sub(
        'firewall_subnet_cidr = "10.42.2.0/24"', 'firewall_subnet_cidr = "10.42.2.0/28"'
    ),
    "dns-ip-outside-service-cidr": _sub('dns_service_ip = "10.41.0.10"', 'dns_service_ip = "10.99.0.10"'),
    "service-cidr-overlaps-vnet": _sub('service_cidr = "10.41.0.0/16"', 'service_cidr = "10.42.0.0/16"'),
    "authorized-any": _sub("authorized_ip_ranges = []", 'authorized_ip_ranges = ["0.0.0.0/0"]'),
    "dnat-target-reserved": _sub('target_ip = "10.42.1.250"', 'target_ip = "10.42.1.1"'),
    "dnat-target-outside-subnet": _sub('target_ip = "10.42.1.250"', 'target_ip = "192.168.1.10"'),
    "dnat-port-out-of-range": _sub("firewall_port = 80", "firewall_port = 70000"),
    "dnat-bad-protocol": _sub('protocol = "TCP"', 'protocol = "SCTP"'),
    # -- identity and secrets
    "sp-without-client-id": _sub('type = "user-assigned"', 'type = "service-principal"'),
    "secret-in-config": _sub('type = "user-assigned"', 'type = "user-assigned"\nclient_secret = "abc"'),
    "secret-shaped-value": _sub(
        'type = "user-assigned"', 'type = "user-assigned"\nname = "abc8Q~abcdefghijklmnopqrstuvwxyz0123456"'
    ),
    "subscription-not-guid": _sub('location = "eastus"', 'location = "eastus"\nsubscription_id = "my-sub"'),
}

# Other ways to give the CLI bad input: paths and flags.
BAD_ARGV: dict[str, list[str]] = {
    "config-missing": ["deploy", "{missing}"],
    "config-is-directory": ["deploy", "{dir}"],
    "unknown-flag": ["deploy", "{config}", "--frobnicate"],
    "arm-endpoint-http": [
        "deploy",
        "{config}",
        "--arm-endpoint",
        "http://127.0.0.1:1",
        "--ca-bundle",
        "{ca}",
    ],
    "ca-bundle-missing": ["deploy", "{config}", "--arm-endpoint", "{endpoint}", "--ca-bundle", "{missing}"],
    "no-yes-not-a-terminal": ["deploy", "{config}", "--arm-endpoint", "{endpoint}", "--ca-bundle", "{ca}"],
}

assert len(BAD_CONFIGS) >= 40


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, list[str], str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if line.strip()], out


def _assert_refused(emu: Any, capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    before = len(emu.requests())
    code, err, out = _run(capsys, argv)
    assert code == 2, (code, err, out)
    assert len(err) == 1, f"expected one line on stderr, got {len(err)}:\n" + "\n".join(err)
    assert "Traceback" not in err[0] and "error" in err[0].lower(), err[0]
    assert emu.requests()[before:] == [], "a request reached Azure before the input was refused"
    return err[0]


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_malformed_config_refused_before_any_request(
    emu: Any, workdir: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    content = BAD_CONFIGS[case]()
    path = workdir / "bad.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    argv = ["deploy", str(path), "--arm-endpoint", emu.arm_endpoint, "--ca-bundle", emu.ca_bundle, "--yes"]
    line = _assert_refused(emu, capsys, [*argv, "--state-dir", str(workdir / "state")])
    assert "bad.toml" in line, f"the message does not name the file: {line}"
    assert not (workdir / "state" / f"{DEPLOYMENT}.json").exists()


@pytest.mark.parametrize("case", list(BAD_ARGV))
def test_bad_arguments_refused_before_any_request(
    emu: Any, workdir: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    config = write_config(workdir, quiet_text())
    values = {
        "missing": str(workdir / "nope.toml"),
        "dir": str(workdir),
        "config": str(config),
        "ca": emu.ca_bundle,
        "endpoint": emu.arm_endpoint,
    }
    _assert_refused(emu, capsys, [a.format(**values) for a in BAD_ARGV[case]])


def _state(**changes: Any) -> str:
    doc: dict[str, Any] = {
        "schema": 1,
        "tool": "aks-lockdown",
        "deployment": DEPLOYMENT,
        "created_at": "2026-01-01T00:00:00.000000Z",
        "updated_at": "",
        "steps": {},
        "resources": {},
    }
    doc.update(changes)
    return json.dumps(doc)


TFSTATE = json.dumps({"version": 4, "terraform_version": "1.9.0", "serial": 3, "resources": []})
BAD_STATES: dict[str, bytes] = {
    "empty": b"",
    "whitespace": b"   \n",
    "truncated": _state().encode()[:40],
    "not-json": b"deployment = eastus-walkthrough\n",
    "not-utf8": b'{"tool": "aks-lockdown", "x": "\xff\xfe"}',
    "binary": bytes(range(256)),
    "json-array": b"[]",
    "json-null": b"null",
    "terraform-state": TFSTATE.encode(),
    "pulumi-checkpoint": json.dumps({"version": 3, "checkpoint": {"stack": "dev"}}).encode(),
    "other-tool": _state(tool="not-aks-lockdown").encode(),
    "future-schema": _state(schema=99).encode(),
    "other-deployment": _state(deployment="someone-else").encode(),
    "unknown-top-level-key": _state(lease="x").encode(),
    "bad-step-status": _state(steps={"vnet": {"status": "exploded"}}).encode(),
    "bad-intent-operation": _state(
        steps={
            "vnet": {
                "status": "applying",
                "intent": {"step": "vnet", "resource_id": "/x", "operation": "upsert", "time": "t"},
            }
        }
    ).encode(),
    "bad-resource-origin": _state(
        resources={
            "/subscriptions/x/resourceGroups/rg": {"origin": "stolen", "step": "rg", "created_at": "t"}
        }
    ).encode(),
}

assert len(BAD_STATES) >= 10


@pytest.mark.parametrize("command", ["deploy", "teardown"])
@pytest.mark.parametrize("case", list(BAD_STATES))
def test_corrupt_or_foreign_state_refused_before_any_request(
    emu: Any, workdir: Path, capsys: pytest.CaptureFixture[str], case: str, command: str
) -> None:
    config = write_config(workdir, quiet_text())
    state_file = workdir / "state" / f"{DEPLOYMENT}.json"
    state_file.parent.mkdir()
    state_file.write_bytes(BAD_STATES[case])
    argv = [command, str(config), "--arm-endpoint", emu.arm_endpoint, "--ca-bundle", emu.ca_bundle, "--yes"]
    line = _assert_refused(emu, capsys, argv)
    assert str(state_file) in line, f"the message does not name the state file: {line}"
    assert state_file.read_bytes() == BAD_STATES[case], "the bad state file was changed"

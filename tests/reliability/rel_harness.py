"""Shared helpers of the reliability suite: configs, the CLI as a subprocess, the in-process Runner, and a
normalized dump of the emulator's world that two converged deployments must agree on."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "config"
EASTUS = CONFIG_DIR / "eastus.toml"
DEPLOYMENT = "eastus-walkthrough"
DEPLOYMENT_TAG = "aks-lockdown-deployment"
CRASH_ENV = "AKS_LOCKDOWN_CRASH_AT"

# Keys whose values change on every run without meaning anything about convergence.
VOLATILE_KEYS = frozenset(
    {"etag", "eTag", "createdOn", "updatedOn", "createdAt", "lastModifiedAt", "resourceGuid", "systemData"}
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


# -- configs ------------------------------------------------------------------------------------


def eastus_text() -> str:
    return EASTUS.read_text()


def quiet_text() -> str:
    """eastus.toml without its two deliberate warnings (one frontend IP, the docker bridge), for tests
    that count every line on stderr."""
    text = eastus_text().replace("public_ip_count = 1\n", "public_ip_count = 20\n")
    return text.replace('docker_bridge_cidr = "172.17.0.1/16"\n', "")


def write_config(directory: Path, text: str | None = None, name: str = "eastus.toml") -> Path:
    """A config file in ``directory``; its state.directory is made absolute so a CLI run from any cwd
    keeps its state under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    text = eastus_text() if text is None else text
    text = text.replace('directory = ".aks-lockdown"', f'directory = "{directory / "state"}"')
    path = directory / name
    path.write_text(text)
    return path


def load(path: Path) -> Any:
    from aks_lockdown.config import load_config

    return load_config(path).config


# -- running the tool -----------------------------------------------------------------------------


def tool_env(**extra: str) -> dict[str, str]:
    """The environment of a tool subprocess: nothing Azure or AKS_LOCKDOWN_* leaks in from the
    developer's shell (a stray crash spec would kill every run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AKS_LOCKDOWN_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def cli_args(emu: Any, command: str, config: Path, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "aks_lockdown", command, str(config)]
    args += ["--arm-endpoint", emu.arm_endpoint, "--ca-bundle", emu.ca_bundle]
    if command in ("deploy", "teardown"):
        args.append("--yes")
    if command == "deploy":
        args.append("--no-verify")
    return [*args, *extra]


def run_cli(
    emu: Any,
    command: str,
    config: Path,
    *extra: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_args(emu, command, config, *extra),
        cwd=config.parent,
        env=dict(env or tool_env()),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


class FastClock:
    """A monotonic clock where sleeping is mostly pretend: each sleep really waits at most 5 ms and the
    rest is added to the clock, so backoffs and deadlines keep their meaning at a fraction of the time.
    (Only the engine runs on it; the emulator's operations keep real time, and they take 0 s here.)"""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        real = min(max(seconds, 0.0), 0.005)
        time.sleep(real)
        self.offset += max(seconds - real, 0.0)


@dataclass
class InProcess:
    """The Runner as the CLI builds it, in this process, with quick polls (fast, for the fault matrix).

    Step-level backoffs run on a FastClock: what is under test is whether the retry converges, not how
    long it waits. azure-core's own retries (Retry-After of a 429/503) still sleep for real."""

    emu: Any
    config: Any
    state_dir: Path
    events: list[Any] = field(default_factory=list)
    clock: FastClock = field(default_factory=lambda: FastClock())

    def runner(self) -> Any:
        from aks_lockdown.arm.clients import ClientFactory
        from aks_lockdown.arm.errors import classify
        from aks_lockdown.engine.runner import Runner
        from aks_lockdown.engine.state import LocalStateStore
        from aks_lockdown.pipeline import build_steps

        clients = ClientFactory(
            self.emu.target(cloud=self.config.azure.cloud), polling_interval=0.05, retry_backoff_factor=0.05
        )
        return Runner(
            deployment=self.config.deployment.name,
            steps=build_steps(self.config),
            config=self.config,
            clients=clients,
            store=LocalStateStore(self.state_dir, self.config.deployment.name),
            sink=self.events.append,
            classify=classify,
            retry_deadline=120,
            sleep=self.clock.sleep,
            clock=self.clock,
            poll_interval=0.05,
            state_poll_interval=0.1,
        )

    def writes(self) -> list[tuple[str, str, str]]:
        """(step, resource id, operation) of every write started, in order."""
        from aks_lockdown.engine.events import WriteStarted

        return [(e.step, e.resource_id, e.operation) for e in self.events if isinstance(e, WriteStarted)]


@dataclass(frozen=True)
class Baseline:
    """What a clean deploy of config/eastus.toml builds, once per test worker."""

    world: dict[str, Any]  # normalize_world() after the deploy
    writes: tuple[tuple[str, str, str], ...]  # (step, resource id, operation) in order


# -- the emulator's world -----------------------------------------------------------------------


def resources(emu: Any) -> list[dict[str, Any]]:
    return list(emu.world_view()["resources"])


def tagged(emu: Any, deployment: str = DEPLOYMENT) -> list[str]:
    return sorted(r["id"] for r in resources(emu) if (r.get("tags") or {}).get(DEPLOYMENT_TAG) == deployment)


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE_KEYS}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def normalize_world(emu: Any) -> dict[str, Any]:
    """The world with what differs between two identical deployments replaced by stable labels.

    Generated values (identity principal/client ids, role assignment names derived from them, public IP
    addresses the emulator hands out in allocation order) become labels named after their resource;
    etags, times and resource GUIDs are dropped. The cluster's Kubernetes objects are summarised by
    kind/namespace/name, so a duplicated or missing workload object shows."""
    view = resources(emu)
    labels: dict[str, str] = {}
    for r in view:
        props = r.get("properties") or {}
        rtype = r["type"].lower()
        if rtype == "microsoft.managedidentity/userassignedidentities":
            for key in ("principalId", "clientId", "tenantId"):
                if props.get(key):
                    labels.setdefault(props[key].lower(), f"<{r['name']}.{key}>")
        if rtype == "microsoft.network/publicipaddresses" and props.get("ipAddress"):
            labels[props["ipAddress"]] = f"<ip:{r['name']}>"
    for r in view:
        if r["type"].lower() == "microsoft.authorization/roleassignments":
            props = r.get("properties") or {}
            principal = labels.get(str(props.get("principalId", "")).lower(), props.get("principalId"))
            role = str(props.get("roleDefinitionId", "")).rsplit("/", 1)[-1]
            labels[r["name"].lower()] = f"<ra:{role}:{principal}>"
    text = json.dumps(_strip(sorted(view, key=lambda r: r["id"].lower())), sort_keys=True)
    # Longest first, so an address is never replaced inside a longer one (127.0.0.1 in 127.0.0.10).
    for value in sorted(labels, key=len, reverse=True):
        if _UUID.fullmatch(value):
            text = re.sub(re.escape(value), labels[value], text, flags=re.I)
        else:
            text = re.sub(rf"(?<![\d.]){re.escape(value)}(?![\d])", labels[value], text)
    doc = {r["id"].lower(): r for r in json.loads(text)}
    kube = {}
    with emu.world.lock:
        for rec in emu.world.resources.values():
            if rec.type.lower() == "microsoft.containerservice/managedclusters":
                kube[rec.id.lower()] = sorted((rec.extra.get("kube") or {}).get("objects", {}))
    return {"resources": doc, "kube": kube}


def world_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """A short account of how two normalized worlds differ, for assertion messages."""
    lines = []
    ra, rb = a["resources"], b["resources"]
    for rid in sorted(set(ra) - set(rb)):
        lines.append(f"only in actual: {rid}")
    for rid in sorted(set(rb) - set(ra)):
        lines.append(f"only in expected: {rid}")
    for rid in sorted(set(ra) & set(rb)):
        if ra[rid] != rb[rid]:
            lines.append(f"differs: {rid}\n  actual:   {json.dumps(ra[rid], sort_keys=True)[:1500]}")
            lines.append(f"  expected: {json.dumps(rb[rid], sort_keys=True)[:1500]}")
    if a["kube"] != b["kube"]:
        lines.append(f"kube objects differ: {a['kube']} != {b['kube']}")
    return "\n".join(lines) or "(no difference)"


def duplicates(emu: Any) -> list[str]:
    """Resources that say the same thing twice: role assignments of one (scope, role, principal) under
    two names, or two rule collections / routes / DNAT rules of one name in one parent."""
    found = []
    seen: dict[tuple[str, str, str], str] = {}
    for r in resources(emu):
        props = r.get("properties") or {}
        if r["type"].lower() == "microsoft.authorization/roleassignments":
            scope = r["id"].lower().split("/providers/microsoft.authorization/")[0]
            key = (scope, str(props.get("roleDefinitionId")).lower(), str(props.get("principalId")).lower())
            if key in seen:
                found.append(f"role assignment {r['id']} duplicates {seen[key]}")
            seen[key] = r["id"]
        for list_key in ("ruleCollections", "routes", "ipConfigurations", "natRuleCollections"):
            names = [item.get("name") for item in props.get(list_key) or [] if isinstance(item, dict)]
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                found.append(f"{r['id']}: {list_key} {sorted(dup)} appear more than once")
        for rc in props.get("ruleCollections") or []:
            rules = [rule.get("name") for rule in rc.get("rules") or []]
            dup = {n for n in rules if rules.count(n) > 1}
            if dup:
                found.append(f"{r['id']}: rules {sorted(dup)} of {rc.get('name')} appear more than once")
    return found


def app_passwords(emu: Any) -> list[str]:
    """The voting app's generated MySQL passwords, read back from the emulator's Kubernetes state."""
    out = []
    with emu.world.lock:
        for rec in emu.world.resources.values():
            objects = (rec.extra.get("kube") or {}).get("objects", {}) if rec.extra else {}
            for key, obj in objects.items():
                if key.startswith("Secret/"):
                    for name, value in (obj.get("data") or {}).items():
                        if "PASSWORD" in name:
                            out.append(base64.b64decode(value).decode())
    return out


def state_doc(state_dir: Path, deployment: str = DEPLOYMENT) -> Any:
    """The state through the engine's own parser (raises StateError when it does not parse)."""
    from aks_lockdown.engine.state import LocalStateStore

    return LocalStateStore(state_dir, deployment).load()


def writes_in(requests: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Requests that change Azure (run command POSTs that only read are not counted)."""
    return [
        r
        for r in requests
        if r["method"] in ("PUT", "PATCH", "DELETE")
        or (r["method"] == "POST" and "/runcommand" not in r["path"].lower() and "/oauth2/" not in r["path"])
    ]

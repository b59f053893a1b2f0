"""Commands inside the cluster through AKS run command (no API-server access needed, so private clusters
work too), batched into one run command: each costs ~20 s on real AKS, so verify sends one.

The batch is sections separated by marker lines (``echo``); only ``;`` chains them, so one failing
command (a blocked curl) does not stop the others. Parsing is by section, and tolerant of the run
command pod's shell interleaving stderr with stdout.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aks_lockdown.verify.azure import to_json

if TYPE_CHECKING:
    from aks_lockdown.arm.clients import ClientFactory
    from aks_lockdown.config import Config

MARKER = "@@aks-lockdown-verify"
# Azure Firewall answers a denied plain-HTTP request itself, with status 470 and a deny page.
FIREWALL_DENY_STATUS = "470"
_CODE = re.compile(r"^\s*(\d{3})\s*$", re.M)
_CURL_ERROR = re.compile(r"curl: \((\d+)\)\s*(.*)")
_UNAVAILABLE = re.compile(
    r"not supported by the aks_lockdown emulator|command not found|: not found|No such file", re.I
)


@dataclass(frozen=True)
class Section:
    key: str
    command: str


@dataclass
class Batch:
    """Sections to run in one go; ``run`` fills ``outputs`` (key -> that section's text)."""

    sections: list[Section] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None
    error: str = ""  # the run command itself failed (cluster missing, stopped, refused)

    def add(self, key: str, command: str) -> None:
        self.sections.append(Section(key, command))

    def command(self) -> str:
        parts = []
        for s in self.sections:
            parts.append(f"echo {MARKER}:{s.key}")
            parts.append(s.command)
        parts.append(f"echo {MARKER}:end")
        return " ; ".join(parts)

    def parse(self, logs: str) -> None:
        current: str | None = None
        buf: list[str] = []
        for line in logs.splitlines():
            # A marker may follow output that had no newline (curl -w without \n): split on it.
            head, sep, tail = line.partition(f"{MARKER}:")
            if sep:
                if head.strip() and current is not None:
                    buf.append(head)
                if current is not None:
                    self.outputs[current] = "\n".join(buf)
                current, buf = tail.strip(), []
                continue
            if current is not None:
                buf.append(line)
        if current is not None and current != "end":
            self.outputs[current] = "\n".join(buf)

    def run(self, config: Config, clients: ClientFactory) -> None:
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.containerservice.models import RunCommandRequest

        clusters = clients.containerservice.managed_clusters
        try:
            poller = clusters.begin_run_command(
                config.resource_group, config.cluster_name, RunCommandRequest(command=self.command())
            )
            result = to_json(poller.result()) or {}
        except HttpResponseError as exc:
            message = getattr(getattr(exc, "error", None), "message", None) or str(exc)
            self.error = f"AKS run command failed: {' '.join(str(message).split())}"
            return
        data = result.get("properties") or result
        self.exit_code = data.get("exitCode")
        self.parse(str(data.get("logs") or ""))
        if not self.outputs and self.sections:
            self.error = f"AKS run command returned no output (exit {self.exit_code})"


def curl_command(url: str, timeout: float) -> str:
    # -w with a newline so the status sits on its own line whatever follows.
    return f"curl -sS -o /dev/null -w '%{{http_code}}\\n' --max-time {timeout:g} {shlex.quote(url)}"


@dataclass(frozen=True)
class CurlResult:
    url: str
    status: str  # "200", "000" (no HTTP answer), "470" (Azure Firewall deny page)
    error: str  # curl's error line, e.g. "curl: (28) Connection timed out after 5001 milliseconds"
    unavailable: bool = False  # curl is not available where the command ran

    @property
    def reached(self) -> bool:
        """An HTTP answer from the destination itself: any status, except the firewall's own deny."""
        return self.status not in ("", "000", FIREWALL_DENY_STATUS) and not self.unavailable

    def describe(self) -> str:
        if self.unavailable:
            return "curl not available in the run command pod"
        if self.reached:
            return f"HTTP {self.status}"
        if self.status == FIREWALL_DENY_STATUS:
            return "HTTP 470 (denied by Azure Firewall)"
        return self.error or "no answer"


def parse_curl(url: str, text: str) -> CurlResult:
    if _UNAVAILABLE.search(text):
        return CurlResult(url, "", text.strip().splitlines()[0] if text.strip() else "", unavailable=True)
    codes = _CODE.findall(text)
    err = _CURL_ERROR.search(text)
    error = f"curl: ({err.group(1)}) {err.group(2).strip()}" if err else ""
    return CurlResult(url, codes[-1] if codes else "000", error)


def parse_services(text: str) -> tuple[list[dict[str, Any]] | None, str]:
    """Items of ``kubectl get svc -A -o json``, or None and why not."""
    if _UNAVAILABLE.search(text):
        return None, "kubectl is not available in the run command pod"
    start = text.find("{")
    if start < 0:
        return None, f"kubectl get svc returned no JSON: {' '.join(text.split())[:200]}"
    try:
        body, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        return None, f"kubectl get svc returned invalid JSON: {exc}"
    return list(body.get("items") or []), ""


@dataclass(frozen=True)
class Lookup:
    name: str
    supported: bool
    resolved: bool = False
    server: str = ""
    addresses: tuple[str, ...] = ()
    text: str = ""


def parse_nslookup(name: str, text: str) -> Lookup:
    if _UNAVAILABLE.search(text) or not text.strip():
        return Lookup(name, supported=False, text=text.strip())
    server = ""
    addresses: list[str] = []
    seen_name = False
    for line in text.splitlines():
        line = line.strip()
        if line.lower().startswith("server:"):
            server = line.split(":", 1)[1].strip()
        elif line.lower().startswith("name:"):
            seen_name = True
        elif line.lower().startswith("address") and seen_name:
            addresses.append(line.split(":", 1)[1].strip().split("#")[0])
    return Lookup(name, True, bool(addresses), server, tuple(addresses), text.strip())

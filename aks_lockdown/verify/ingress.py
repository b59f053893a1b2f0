"""The ingress path: DNAT rules land on live internal LoadBalancer Services, no public LoadBalancer
Service exists (its replies would leave through the firewall's default route: asymmetric routing),
and an HTTP GET from here to each DNAT'd public IP and port answers 200.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from aks_lockdown.verify.azure import AzureView
from aks_lockdown.verify.report import Check, Spec

INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"


@dataclass(frozen=True)
class Dnat:
    rule: str  # "group/collection/rule" or "collection/rule"
    public_ip: str
    port: int
    protocol: str
    translated_address: str
    translated_port: int


def dnat_rules(view: AzureView) -> list[Dnat]:
    """Every (public IP, port) a DNAT rule listens on, with where it forwards."""
    if view.firewall is None:
        return []
    public = [ip for _, ip in view.firewall_public_ips]
    out: list[Dnat] = []
    for r in view.effective_rules().rules:
        if r.kind != "nat":
            continue
        ips = (
            public if "*" in r.destination_addresses else [a for a in r.destination_addresses if a in public]
        )
        ips = ips or list(r.destination_addresses)
        protocol = next((p.upper() for p in r.protocols), "TCP")
        for port in _ports(r.ports):
            for ip in ips:
                tport = int(r.translated_port) if str(r.translated_port).isdigit() else port
                out.append(Dnat(r.label, ip, port, protocol, r.translated_address, tport))
    return out


def _ports(ports: tuple[str, ...]) -> list[int]:
    out = []
    for p in ports:
        lo, _, hi = p.strip().partition("-")
        if lo.isdigit():
            out.extend(range(int(lo), int(hi or lo) + 1)[:16])
    return out


def _is_internal(svc: dict[str, Any]) -> bool:
    ann = (svc.get("metadata") or {}).get("annotations") or {}
    return str(ann.get(INTERNAL, "")).lower() == "true"


def _name(svc: dict[str, Any]) -> str:
    meta = svc.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"


def _addresses(svc: dict[str, Any]) -> list[str]:
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [str(i["ip"]) for i in ingress if i.get("ip")]


def _load_balancers(services: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in services if (s.get("spec") or {}).get("type") == "LoadBalancer"]


def dnat_targets(view: AzureView, services: list[dict[str, Any]] | None, why: str) -> Check:
    rules = dnat_rules(view)
    expected = "each DNAT rule forwards to a live internal LoadBalancer Service"
    spec = Spec("ingress.dnat-targets", "ingress", "DNAT targets live", expected)
    if not rules:
        wanted = len(view.config.ingress.dnat)
        if wanted:
            return spec.fail(
                "no DNAT rule", f"the config has {wanted} DNAT rule(s) but the firewall has none"
            )
        return spec.skip("no DNAT rule", "no ingress configured")
    if services is None:
        return spec.fail("Services not listed", why)
    internal: dict[tuple[str, int, str], str] = {}
    for s in _load_balancers(services):
        if not _is_internal(s):
            continue
        for ip in _addresses(s):
            for p in (s.get("spec") or {}).get("ports") or []:
                internal[(ip, int(p.get("port", 0)), str(p.get("protocol", "TCP")).upper())] = _name(s)
    public = {ip for _, ip in view.firewall_public_ips}
    details, broken, landed = [], [], 0
    for d in rules:
        if d.public_ip not in public:
            broken.append(f"DNAT rule {d.rule} listens on {d.public_ip}, not a public IP of the firewall")
        target = f"{d.translated_address}:{d.translated_port}"
        svc = internal.get((d.translated_address, d.translated_port, d.protocol))
        if svc:
            landed += 1
            details.append(f"{d.rule}: {d.public_ip}:{d.port} -> {target} = Service {svc}")
            continue
        details.append(f"{d.rule}: {d.public_ip}:{d.port} -> {target}: no internal LoadBalancer Service")
        broken.append(
            f"DNAT rule {d.rule} forwards {d.public_ip}:{d.port} to {target}, where no internal "
            "LoadBalancer Service listens"
        )
    live = ", ".join(f"{svc} {ip}:{port}" for (ip, port, _), svc in sorted(internal.items())) or "none"
    observed = f"{landed}/{len(rules)} rule(s) land on a Service"
    if broken:
        return spec.fail(observed, "; ".join(broken) + f" (internal LoadBalancer Services: {live})", details)
    return spec.ok(observed, details=details)


def public_load_balancers(services: list[dict[str, Any]] | None, why: str) -> Check:
    expected = "no LoadBalancer Service without the internal annotation"
    spec = Spec("ingress.no-public-lb", "ingress", "No public LoadBalancer", expected)
    if services is None:
        return spec.fail("Services not listed", why)
    public = [s for s in _load_balancers(services) if not _is_internal(s)]
    if not public:
        return spec.ok("none")
    shown = [f"{_name(s)} ({', '.join(_addresses(s)) or 'address pending'})" for s in public]
    message = (
        f"Service(s) {', '.join(shown)} are public LoadBalancers: their replies leave through the firewall's "
        "default route and are dropped (asymmetric routing). Make them internal (annotation "
        f'{INTERNAL}: "true") and publish them through a DNAT rule'
    )
    return spec.fail(f"{len(public)} public: {', '.join(shown)}", message, shown)


def http_get(url: str, timeout: float) -> tuple[int | None, str]:
    """(status, error) of a plain GET; never raises for network trouble."""
    request = urllib.request.Request(url, headers={"User-Agent": "aks-lockdown-verify"})
    # No proxy: the request must reach the firewall's public IP itself.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status), ""
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, " ".join(str(reason).split()) or type(exc).__name__


def inbound(view: AzureView, timeout: float) -> Check:
    rules = [d for d in dnat_rules(view) if d.protocol in ("TCP", "ANY")]
    urls = ", ".join(f"http://{d.public_ip}:{d.port}/" for d in rules) or "each DNAT'd public IP and port"
    spec = Spec("probe.inbound", "inbound", "Inbound through DNAT", f"HTTP 200 from {urls}")
    if not rules:
        return spec.skip("no DNAT rule", "no TCP DNAT rule to probe")
    details, failed = [], []
    for d in rules:
        url = f"http://{d.public_ip}:{d.port}/"
        status, error = http_get(url, timeout)
        said = f"HTTP {status}" if status is not None else error
        details.append(f"GET {url} ({d.rule}): {said}")
        if status != 200:
            failed.append(f"GET {url} (DNAT rule {d.rule}) returned {said}")
    observed = f"{len(rules) - len(failed)}/{len(rules)} answered 200"
    if failed:
        return spec.fail(observed, "; ".join(failed), details)
    return spec.ok(observed, details=details)

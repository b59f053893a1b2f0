"""Data-plane probes from inside the cluster: required endpoints reachable, a control set blocked, and
name resolution through the firewall's DNS proxy.

The control set is what makes the probes proof: an allow-all rule would let every required endpoint
through too, so only destinations that must fail can show the firewall is actually filtering.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aks_lockdown.verify.azure import AzureView, props
from aks_lockdown.verify.incluster import Batch, CurlResult, curl_command, parse_curl, parse_nslookup
from aks_lockdown.verify.report import Check, Spec

if TYPE_CHECKING:
    from aks_lockdown.egress.catalog import EgressRow

# Destinations no AKS egress rule set allows: reachable means the firewall is not filtering.
CONTROL_SET: tuple[str, ...] = ("https://example.com", "https://www.bing.com", "http://neverssl.com")
PER_CATEGORY = 3
DNS_NAME_FALLBACK = "mcr.microsoft.com"
AZURE_DNS = "168.63.129.16"  # Azure-provided DNS, what nodes use when the VNet names no server


@dataclass(frozen=True)
class Probe:
    key: str
    url: str
    category: str  # "aks-core" or the feature name


def sample_endpoints(view: AzureView, rows: Iterable[EgressRow]) -> list[Probe]:
    """Up to PER_CATEGORY concrete HTTP(S) endpoints per category (core AKS, then each feature).

    Only application rows can be probed with curl (network rows are UDP or service tags, audited
    only). A wildcard row is probed through a real member when one is known: the cluster's own API
    server FQDN stands for *.hcp.<region>.azmk8s.io.
    """
    fqdn = props(view.cluster).get("fqdn")
    by_category: dict[str, list[str]] = {}
    for row in rows:
        if row.kind != "application" or row.dest_type != "fqdn":
            continue
        host = row.target
        if host.startswith("*."):
            if fqdn and ".hcp." in host and not view.private_cluster and str(fqdn).endswith(host[1:]):
                host = str(fqdn)
            else:
                continue
        scheme = "http" if row.protocol.lower() == "http" else "https"
        default = 80 if scheme == "http" else 443
        url = f"{scheme}://{host}" + ("" if row.port == default else f":{row.port}")
        # A destination shared by two categories (monitor and azure-policy both need
        # dc.services.visualstudio.com) is probed once, under the first.
        if not any(url in urls for urls in by_category.values()):
            by_category.setdefault(row.feature or "aks-core", []).append(url)
    probes: list[Probe] = []
    for category, urls in by_category.items():
        for url in urls[:PER_CATEGORY]:
            probes.append(Probe(f"egress.{len(probes)}", url, category))
    return probes


def control_probes() -> list[Probe]:
    return [Probe(f"blocked.{i}", url, "control") for i, url in enumerate(CONTROL_SET)]


def add_probes(batch: Batch, probes: Iterable[Probe], timeout: float) -> None:
    for p in probes:
        batch.add(p.key, curl_command(p.url, timeout))


def _results(batch: Batch, probes: list[Probe]) -> list[tuple[Probe, CurlResult | None]]:
    return [(p, parse_curl(p.url, batch.outputs[p.key]) if p.key in batch.outputs else None) for p in probes]


def egress_reachable(batch: Batch, probes: list[Probe]) -> Check:
    cats = ", ".join(sorted({p.category for p in probes})) or "none"
    expected = f"HTTP answer from {len(probes)} sampled endpoint(s) ({cats})"
    spec = Spec("probe.required-egress", "egress-probe", "Required endpoints reachable", expected)
    if batch.error:
        return spec.fail("not probed", batch.error)
    if not probes:
        return spec.skip("nothing to probe", "no required HTTP(S) endpoint with a concrete name to probe")
    details, failed = [], []
    for p, r in _results(batch, probes):
        said = r.describe() if r else "no output"
        details.append(f"[{p.category}] {p.url}: {said}")
        if r is None or not r.reached:
            failed.append(f"{p.url} ({said})")
    observed = f"{len(probes) - len(failed)}/{len(probes)} reachable"
    if failed:
        message = f"from inside the cluster, {len(failed)} required endpoint(s) got no answer: " + ", ".join(
            failed
        )
        return spec.fail(observed, message, details)
    return spec.ok(observed, details=details)


def control_blocked(batch: Batch, probes: list[Probe]) -> Check:
    urls = ", ".join(p.url for p in probes)
    expected = f"no answer (timeout, reset or HTTP 470) from {urls}"
    spec = Spec("probe.blocked", "egress-probe", "Control set blocked", expected)
    if batch.error:
        return spec.fail("not probed", batch.error)
    details, leaked, unknown = [], [], []
    for p, r in _results(batch, probes):
        said = r.describe() if r else "no output"
        details.append(f"{p.url}: {said}")
        if r is None or r.unavailable:
            unknown.append(f"{p.url} ({said})")
        elif r.reached:
            leaked.append(f"{p.url} answered {said}")
    observed = f"{len(probes) - len(leaked) - len(unknown)}/{len(probes)} blocked"
    if leaked:
        message = (
            "egress is not locked down: from inside the cluster "
            + ", ".join(leaked)
            + " (a destination no rule should allow)"
        )
        return spec.fail(observed, message, details)
    if unknown:
        return spec.fail(observed, "could not probe " + ", ".join(unknown), details)
    return spec.ok(observed, details=details)


def dns_name(probes: list[Probe]) -> str:
    for p in probes:
        host = p.url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        if ".hcp." not in host:
            return host
    return DNS_NAME_FALLBACK


def add_dns(batch: Batch, name: str) -> None:
    batch.add("dns", f"nslookup {name}")


def dns_resolution(view: AzureView, batch: Batch, name: str) -> Check:
    """Resolution through the firewall's DNS proxy.

    A resolver in the run command pod proves resolution works, and its ``Server:`` line names the
    resolver asked. Inside a pod that is usually CoreDNS (the cluster's DNS service IP), which forwards
    to the node's resolver: the VNet's DNS servers, which must be the firewall's private IP for queries
    to reach the proxy (none set means Azure-provided DNS, which bypasses it).
    """
    cfg = view.config
    fw_ip = view.firewall_private_ip or "(firewall private IP)"
    expected = f"nodes resolve names through the firewall's DNS proxy ({fw_ip})"
    spec = Spec("probe.dns", "dns", "DNS through firewall proxy", expected)
    details: list[str] = []
    lookup = parse_nslookup(name, batch.outputs.get("dns", "")) if not batch.error else None
    probed = lookup is not None and lookup.supported
    if lookup is not None and probed:
        answer = ", ".join(lookup.addresses) or " ".join(lookup.text.split())[:200]
        details.append(f"nslookup {name} (server {lookup.server or '?'}): {answer}")
        if not lookup.resolved:
            message = f"from inside the cluster, {name} does not resolve: {answer}"
            return spec.fail(f"{name} did not resolve", message, details)
    else:
        why = batch.error or "no resolver command (nslookup) in the run command environment"
        details.append(f"resolution not probed: {why}; judged by the nodes' DNS setting")
    servers = [str(s) for s in (props(view.vnet).get("dhcpOptions") or {}).get("dnsServers") or []]
    details.append(f"VNet {cfg.vnet_name} DNS servers: {', '.join(servers) or 'Azure-provided (none set)'}")
    # The resolver the lookup names, unless it is CoreDNS: then the node's setting is the upstream.
    server = lookup.server if lookup is not None and probed else ""
    if server and server != cfg.cluster.dns_service_ip:
        upstream, seen = server, f"{name} resolved via {server}"
    else:
        upstream = servers[0] if servers else AZURE_DNS
        resolved = f"{name} resolved" if probed else "not probed"
        seen = f"{resolved}; VNet DNS {', '.join(servers) or 'Azure-provided'}"
    if not view.dns_proxy:
        message = "the firewall's DNS proxy is off (see firewall.dns-proxy): nothing resolves through it"
        return spec.skip(seen, message, details)
    if upstream == view.firewall_private_ip:
        return spec.ok(seen, details=details)
    if upstream == AZURE_DNS:
        message = (
            f"nodes use Azure-provided DNS ({AZURE_DNS}), not the firewall's DNS proxy: the firewall "
            "resolves FQDN network rules itself and may see other addresses than the nodes. Set VNet "
            f"{cfg.vnet_name}'s DNS servers to {fw_ip} to put the proxy on the path"
        )
        return spec.warn(seen, message, details)
    message = (
        f"nodes resolve through {upstream}, not the firewall's DNS proxy {fw_ip}: FQDN network rules may "
        "not match what the nodes resolve"
    )
    return spec.fail(seen, message, details)

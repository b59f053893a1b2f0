"""``run_verify``: the audit, then one run command for every in-cluster probe, then the inbound GETs.

Verify reads Azure itself (by the config's derived names) rather than trusting the state file: the
point is to catch what changed since the deploy. The steps' outputs, when given, only fill the
report's header.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aks_lockdown.verify import audit, ingress, probes
from aks_lockdown.verify.azure import AzureView
from aks_lockdown.verify.incluster import Batch, parse_services
from aks_lockdown.verify.report import Check, VerifyReport, emit, render_markdown

if TYPE_CHECKING:
    from aks_lockdown.arm.clients import ClientFactory
    from aks_lockdown.config import Config

PROBE_TIMEOUT = 5.0  # seconds per curl inside the cluster (a blocked destination costs this much)
INBOUND_TIMEOUT = 5.0


def describe_target(clients: ClientFactory) -> str:
    target = clients.target
    where = f"emulator {target.arm_endpoint}" if target.is_emulator else f"Azure ({target.cloud})"
    try:
        return f"{where}, subscription {clients.subscription_id}"
    except Exception:  # the header must never be what fails a verify
        return where


def run_verify(
    config: Config,
    clients: ClientFactory,
    *,
    outputs: Mapping[str, Mapping[str, Any]] | None = None,
    state: Any = None,
    sink: Any = None,
    report: Path | str | None = None,
    config_path: str = "",
    probe_timeout: float = PROBE_TIMEOUT,
    inbound_timeout: float = INBOUND_TIMEOUT,
    data_plane: bool = True,
) -> VerifyReport:
    """Check the deployment and return a ``VerifyReport`` (truthy when every check passed).

    ``sink``: the CLI's display, shown the report (table, plain text or one JSON line); ``report``:
    also write the Markdown report there. ``data_plane=False`` runs the audit alone (no run command,
    no inbound GET). ``outputs``/``state`` are accepted for the CLI's hook and not needed.
    """
    del outputs, state  # verify reads Azure; see the module docstring
    started = datetime.now(UTC)
    view = AzureView(config, clients)
    checks: list[Check] = audit.control_plane(view)
    checks += _in_cluster(view, probe_timeout, data_plane)
    if data_plane:
        checks.append(ingress.inbound(view, inbound_timeout))
    result = VerifyReport(
        deployment=config.deployment.name,
        target=describe_target(clients),
        started=started,
        finished=datetime.now(UTC),
        checks=checks,
        config_path=config_path,
    )
    if report is not None:
        write_report(result, report)
    emit(result, sink)
    return result


def _in_cluster(view: AzureView, timeout: float, data_plane: bool) -> list[Check]:
    rows = audit.required_rows(view)
    sample = probes.sample_endpoints(view, rows)
    control = probes.control_probes()
    name = probes.dns_name(sample)
    batch = Batch()
    batch.add("svc", "kubectl get svc -A -o json")
    if data_plane:
        probes.add_probes(batch, sample, timeout)
        probes.add_probes(batch, control, timeout)
        probes.add_dns(batch, name)
    if view.cluster is None:
        batch.error = f"cluster {view.config.cluster_name} does not exist: nothing to run commands in"
    else:
        batch.run(view.config, view.clients)
    services, why = (None, batch.error) if batch.error else parse_services(batch.outputs.get("svc", ""))
    checks = [ingress.dnat_targets(view, services, why), ingress.public_load_balancers(services, why)]
    if data_plane:
        checks += [
            probes.egress_reachable(batch, sample),
            probes.control_blocked(batch, control),
            probes.dns_resolution(view, batch, name),
        ]
    return checks


def write_report(report: VerifyReport, path: Path | str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_markdown(report), encoding="utf-8")
    return target

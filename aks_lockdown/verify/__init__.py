"""``verify``: proof that the egress lockdown holds and the ingress path works.

    report = run_verify(config, clients, sink=display, report="verify.md")
    sys.exit(report.exit_code)

Control-plane audit (GETs only) in ``audit``, in-cluster probes through AKS run command in ``probes``
and ``ingress``, the report and its renderers in ``report``.
"""

from __future__ import annotations

from aks_lockdown.verify.report import (
    Check,
    VerifyReport,
    emit,
    render_json,
    render_markdown,
    render_rich,
    render_text,
)
from aks_lockdown.verify.run import run_verify, write_report

__all__ = [
    "Check",
    "VerifyReport",
    "emit",
    "render_json",
    "render_markdown",
    "render_rich",
    "render_text",
    "run_verify",
    "write_report",
]

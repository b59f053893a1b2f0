"""``verify CONFIG``: prove the egress lockdown holds and the ingress path works.

The checks themselves belong to the verify piece. The hook it plugs into:

    aks_lockdown.verify.run_verify(config, clients, *, outputs, sink, report=None, config_path="")

``outputs`` are the steps' outputs (step name -> mapping), ``sink`` the display (it renders the report
on it), ``report`` a Markdown path or None; the result is truthy when every check passes. ``deploy``
calls the same function as its last stage unless ``--no-verify``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aks_lockdown.commands import _common as common
from aks_lockdown.errors import EXIT_FAILED, InputError

NOT_YET = "verify arrives with the verify issue; nothing was checked"


def _impl() -> Any:
    try:
        from aks_lockdown.verify import run_verify  # type: ignore[import-not-found]
    except ImportError:
        return None
    return run_verify


def run_checks(
    *,
    config: Any,
    clients: Any,
    outputs: Mapping[str, Mapping[str, Any]],
    display: Any,
    report: Path | None = None,
    config_path: str = "",
) -> bool | None:
    """True/False from the checks; None when verify is not in this build (deploy then says so)."""
    impl = _impl()
    if impl is None:
        display.note(f"verify: skipped ({NOT_YET})")
        return None
    return bool(impl(config, clients, outputs=outputs, sink=display, report=report, config_path=config_path))


def run(args: argparse.Namespace) -> int:
    from aks_lockdown.display import make_display

    if _impl() is None:
        raise InputError(NOT_YET)
    loaded = common.load(args.config)
    config = loaded.config
    directory = common.state_dir(args, config)
    with common.target(args, config, directory) as where, make_display(args.output) as display:
        factory = common.clients(where, args)
        store = common.store(directory, config.deployment.name, config, factory)
        outputs = {name: dict(step.outputs) for name, step in store.load().steps.items()}
        ok = run_checks(
            config=config,
            clients=factory,
            outputs=outputs,
            display=display,
            report=Path(args.report) if args.report else None,
            config_path=str(loaded.path),
        )
    return 0 if ok else EXIT_FAILED

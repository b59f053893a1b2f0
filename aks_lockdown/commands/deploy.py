"""``deploy CONFIG``: converge the deployment, resumably; rerunning the same command resumes it.

Without ``--yes`` on a terminal it first shows the plan and asks (as ``terraform apply`` does). Not on
a terminal, without ``--yes``, it refuses at once (exit 2): nobody is there to answer, and a CI job
that deploys without saying so is a mistake worth stopping before anything is sent.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from aks_lockdown.commands import _common as common
from aks_lockdown.commands.validate import missing_required_lines
from aks_lockdown.errors import EXIT_FAILED, InputError, LockdownError

if TYPE_CHECKING:
    from aks_lockdown.config import LoadedConfig
    from aks_lockdown.display import DeploySummary, Display
    from aks_lockdown.engine.step import Step


def run(args: argparse.Namespace) -> int:
    from aks_lockdown.display import make_display

    loaded = common.load(args.config)
    config = loaded.config
    preflight(loaded)
    ask = not args.yes
    if ask and not (common.is_interactive() and args.output == "text"):
        raise InputError(
            "deploy: nobody can confirm (not a terminal, or --output json): pass --yes "
            "(see the changes first with plan)"
        )
    directory = common.state_dir(args, config)

    with common.target(args, config, directory) as where:
        factory = common.clients(where, args)
        store = common.store(directory, config.deployment.name, config, factory)
        if config.state.backend == "local":
            common.remember_config(
                directory, config.deployment.name, loaded.path, embedded_emulator=bool(args.emulator)
            )

        if ask:
            with make_display(args.output) as display:
                _warn(display, loaded, config)
                runner = common.runner(
                    config=config,
                    clients=factory,
                    store=store,
                    sink=display,
                    resume_command=args.command_line,
                    state_poll_interval=where.state_poll_interval,
                )
                from aks_lockdown.commands._engine import planned_steps

                planned = planned_steps(runner.plan(), runner_steps(runner, config))
            display.plan(planned)
            # Nothing to change: no question to ask; the run below writes nothing and brings the
            # state (and the summary) up to date.
            pending = any(p.diff.pending for p in planned)
            if pending and not common.confirm(f"Deploy {config.deployment.name} with these changes?"):
                display.note("Deploy cancelled.")
                return EXIT_FAILED

        display = make_display(args.output)
        recorder = common.Recorder(display)
        ok = False
        try:
            with display:
                if not ask:
                    _warn(display, loaded, config)
                runner = common.runner(
                    config=config,
                    clients=factory,
                    store=store,
                    sink=recorder,
                    resume_command=args.command_line,
                    state_poll_interval=where.state_poll_interval,
                )
                result = runner.deploy(rollback_on_failure=args.rollback_on_failure)
                ok = result.ok
                recorder.outputs.update({k: dict(v) for k, v in result.outputs.items()})
                recorder.elapsed = result.elapsed
        except LockdownError:
            # The error itself is printed by the CLI (one line, with the resume command); the operator
            # also gets what exists so far when something does.
            if recorder.outputs and args.output == "text":
                display.summary(_summary(args, loaded, recorder, where, ok=False))
            raise
        verdict: bool | None = None
        try:
            if ok and not args.no_verify:
                from aks_lockdown.commands.verify import run_checks

                verdict = run_checks(
                    config=config,
                    clients=factory,
                    outputs=recorder.outputs,
                    display=display,
                    config_path=str(loaded.path),
                )
        finally:
            # The summary comes last, even when verify breaks: it says how to go on.
            summary = _summary(args, loaded, recorder, where, ok=ok)
            if args.no_verify:
                summary.rows.append(("verify", "skipped (--no-verify)"))
            elif verdict is not None:
                summary.rows.append(("verify", "passed" if verdict else "FAILED (see the checks above)"))
            display.summary(summary)
        return 0 if ok and verdict is not False else EXIT_FAILED


def preflight(loaded: LoadedConfig) -> None:
    """What must hold before deploy sends anything: a service principal's secret is in the environment.

    The cluster step reads it only when it writes the cluster, minutes into the run; a missing one found
    there leaves a half-built deployment for a mistake that was knowable at the start."""
    from aks_lockdown.errors import ConfigError

    identity = loaded.config.cluster.identity
    if identity.type != "service-principal":
        return
    name = identity.secret_env or ""
    if not os.environ.get(name, "").strip():
        raise ConfigError(
            str(loaded.path),
            "cluster.identity.secret_env",
            f"environment variable {name} is not set or empty: it must hold service principal "
            f"{identity.client_id}'s secret; set it, then deploy again (nothing was sent)",
        )


def runner_steps(runner: Any, config: Any) -> list[type[Step]]:
    steps = getattr(runner, "steps", None)
    return list(steps) if steps else common.pipeline_steps(config)


def _warn(display: Display, loaded: LoadedConfig, config: Any) -> None:
    egress = missing_required_lines(config, str(loaded.path))
    for warning in [*loaded.warnings, *(f"egress: {w}" for w in egress)]:
        display.warning(warning)


def _summary(
    args: argparse.Namespace,
    loaded: LoadedConfig,
    recorder: common.Recorder,
    where: common.Where,
    *,
    ok: bool,
) -> DeploySummary:
    return common.summarize(
        args=args, loaded=loaded, outputs=recorder.outputs, ok=ok, elapsed=recorder.elapsed, where=where
    )

"""The command line: argument parsing and dispatch.

Start-up cost matters (``--help`` and argument errors must be instant and must never pull in the Azure
SDK or rich), so this module imports only the standard library and ``aks_lockdown.errors``. Every
command lives in ``aks_lockdown.commands.<name>`` and is imported only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from collections.abc import Sequence
from typing import NoReturn

from aks_lockdown.commands._common import DEFAULT_EMULATOR_TIME_SCALE as DEFAULT_TIME_SCALE
from aks_lockdown.commands._common import DEFAULT_STATE_DIR
from aks_lockdown.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, LockdownError

# DEFAULT_TIME_SCALE scales the emulator's "realistic" durations (firewall 6 min, AKS 7 min, ...) so
# the demo's full deploy takes well under a minute while every operation still goes through real LRO
# polling.


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and exits 2, like every other input error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _prog() -> str:
    """How the operator invoked us, for usage lines and the "next commands" we print:
    ``.venv/bin/python -m aks_lockdown`` (the interpreter they typed) or the console script's name."""
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if argv0 in ("__main__.py", "-m", ""):
        orig = list(getattr(sys, "orig_argv", []) or [])
        python = orig[0] if orig and "-m" in orig else "python"
        return shlex.join([python, "-m", "aks_lockdown"])
    return argv0 or "aks-lockdown"


def command_line(argv: Sequence[str] | None) -> str:
    """The command line the operator ran, to show as the resume command.

    ``sys.orig_argv`` is what the shell handed the interpreter (``.venv/bin/python -m aks_lockdown ...``),
    so copying it back resumes exactly the same run. When ``main()`` is called with an explicit argv
    (tests, embedding), we can only reconstruct it under the console script's name.
    """
    if argv is None:
        orig = list(getattr(sys, "orig_argv", []) or [])
        if "-m" in orig:
            return shlex.join(orig)
        if sys.argv and sys.argv[0]:
            return shlex.join(sys.argv)
        argv = sys.argv[1:]
    return shlex.join(["aks-lockdown", *argv])


def _add_common(p: argparse.ArgumentParser, *, output: bool = False) -> None:
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="state directory (default: the config's state.directory, else ./.aks-lockdown)",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="HTTP-level detail on stderr (secrets redacted)"
    )
    if output:
        p.add_argument(
            "--output",
            choices=("text", "json"),
            default="text",
            help="text (live view on a terminal, plain lines otherwise) or json (one event per line)",
        )


def _add_target(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("where to send requests (default: real Azure, DefaultAzureCredential)")
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--emulator",
        action="store_true",
        help="start the embedded ARM emulator, its world kept under <state dir>/emulator/",
    )
    where.add_argument("--arm-endpoint", metavar="URL", help="an ARM emulator already running")
    group.add_argument("--ca-bundle", metavar="PATH", help="CA bundle of --arm-endpoint (its ca.pem)")
    group.add_argument(
        "--time-scale",
        type=_positive_float,
        default=DEFAULT_TIME_SCALE,
        metavar="F",
        help=f"with --emulator: multiply the realistic durations by F (default {DEFAULT_TIME_SCALE})",
    )
    group.add_argument(
        "--emulator-profile",
        choices=("realistic", "fast"),
        default="realistic",
        help="with --emulator: operation durations (default realistic)",
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


# Where the state commands find the state; the environment variable is the one commands/_common.py reads.
STATE_BLOB_CONNECTION_STRING_ENV = "AKS_LOCKDOWN_STATE_BLOB_CONNECTION_STRING"
STATE_EPILOG = f"""\
state backend: with CONFIG (or --config) the state is where the config's [state] section puts it:
  a local file under state.directory (backend = "local") or a blob (backend = "blob", account_url,
  container). With --name, or no argument, it is always a local state file in the state directory.
blob credential: your Azure sign-in (az login, the AZURE_* variables, a managed identity); or, for
  shared-key/SAS access and Azurite, a storage connection string in the environment variable
  {STATE_BLOB_CONNECTION_STRING_ENV} (AccountName=...;AccountKey=...;BlobEndpoint=...).
  Its account must be the one state.account_url names. Never put keys in the config file."""


def _add_target_by_name(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="the deployment's config file; its [state] section chooses the backend (local or blob)",
    )
    p.add_argument("--config", dest="config_flag", metavar="CONFIG", help="the same as the CONFIG argument")
    p.add_argument(
        "--name",
        metavar="NAME",
        help="a deployment's name in the local state directory (local backend only; for blob pass CONFIG)",
    )


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog or _prog(),
        formatter_class=_HelpFormatter,
        description="Deploy an AKS cluster whose egress is locked down behind Azure Firewall, "
        "prove it, and tear it down again.",
        epilog="Run '%(prog)s COMMAND --help' for a command's flags. "
        "Exit status: 0 ok, 1 failed, 2 bad input (nothing sent to Azure), 130 interrupted.",
    )
    from aks_lockdown import __version__

    parser.add_argument("--version", action="version", version=f"aks-lockdown {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True

    def command(name: str, help: str, module: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, formatter_class=_HelpFormatter)
        # Dispatch by module name, so only the command that runs gets imported.
        p.set_defaults(handler=f"aks_lockdown.commands.{module or name}")
        return p

    p = command("deploy", "create or converge the deployment (resumable: rerun the same command)")
    p.add_argument("config", metavar="CONFIG", help="config file (TOML)")
    p.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="deploy without showing the plan and asking first (required when not on a terminal)",
    )
    p.add_argument(
        "--rollback-on-failure",
        action="store_true",
        help="on failure, remove what this run created (default: stop and keep it, to resume)",
    )
    p.add_argument("--no-verify", action="store_true", help="skip the egress/ingress verification at the end")
    _add_target(p)
    _add_common(p, output=True)

    p = command("plan", "show what deploy would change, Terraform-style (reads Azure, writes nothing)")
    p.add_argument("config", metavar="CONFIG", help="config file (TOML)")
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 with no changes, 2 with changes, 1 on error",
    )
    _add_target(p)
    _add_common(p, output=True)

    p = command("status", "what the state file says about a deployment; --live re-checks Azure")
    p.epilog = STATE_EPILOG
    _add_target_by_name(p)
    p.add_argument("--live", action="store_true", help="re-check every step against Azure")
    _add_target(p)
    _add_common(p, output=True)

    p = command("teardown", "delete what the deployment created (never what it found there)")
    p.epilog = STATE_EPILOG
    _add_target_by_name(p)
    p.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="do not ask for confirmation (required when not on a terminal)",
    )
    p.add_argument(
        "--keep-resource-group",
        action="store_true",
        help="roll the steps back one by one and leave the resource group in place",
    )
    _add_target(p)
    _add_common(p, output=True)

    p = command("state", "inspect the state, release a stale lock, or move the state between backends")
    p.epilog = STATE_EPILOG
    state_sub = p.add_subparsers(dest="state_command", metavar="ACTION", title="actions")
    state_sub.required = True

    def action(name: str, help: str, description: str) -> argparse.ArgumentParser:
        return state_sub.add_parser(
            name, help=help, description=description, epilog=STATE_EPILOG, formatter_class=_HelpFormatter
        )

    sp = action("show", "print a deployment's state", "print a deployment's state")
    _add_target_by_name(sp)
    _add_common(sp, output=True)
    sp = action(
        "unlock",
        "release a deployment's lock",
        "release a deployment's lock (refused while its holder is alive, unless --force; on the blob "
        "backend --force breaks the holder's lease at once)",
    )
    _add_target_by_name(sp)
    sp.add_argument("--force", action="store_true", help="release it even if the holder looks alive")
    _add_common(sp)
    sp = action(
        "migrate",
        "move a deployment's state between the local and the blob backend",
        "move a deployment's state between the local file (state.directory or --state-dir) and the\n"
        "blob the config's [state] section names (account_url, container), either way. Both are\n"
        "locked; the copy is read back and compared before the source becomes a tombstone naming\n"
        'the destination. Set [state] backend = "blob" before --to blob, and back to "local" after\n'
        "--to local.",
    )
    sp.add_argument(
        "config", metavar="CONFIG", help="the deployment's config file (with account_url, container)"
    )
    sp.add_argument("--to", required=True, choices=("blob", "local"), help="the backend to move the state to")
    sp.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="do not ask for confirmation (required when not on a terminal)",
    )
    _add_common(sp)

    p = command("validate", "check a config offline and summarise what it will build")
    p.add_argument("config", metavar="CONFIG", help="config file (TOML)")
    p.add_argument("-v", "--verbose", action="store_true", help="tracebacks on unexpected errors")

    p = command("egress", "print the egress requirements for a cloud, location and feature set")
    p.add_argument(
        "--cloud",
        choices=("AzureCloud", "AzureChinaCloud", "AzureUSGovernment"),
        default="AzureCloud",
    )
    p.add_argument(
        "--location",
        help="Azure region (default: eastus, chinaeast2 or usgovvirginia, by cloud)",
    )
    p.add_argument(
        "--features",
        default="",
        metavar="A,B",
        help="optional features: os-updates, gpu, windows, monitor, azure-policy, dev-spaces",
    )
    p.add_argument("--edition", choices=("seed-2020", "current"), default="current")
    p.add_argument(
        "--format",
        choices=("table", "json", "csv", "markdown", "arm"),
        default="table",
        help="arm: a deployable template of a Firewall Policy rule collection group",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="tracebacks on unexpected errors")

    p = command("emulator", "run the ARM emulator in the foreground (Ctrl-C stops it)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8443)
    p.add_argument(
        "--data",
        metavar="DIR",
        default=os.path.join(DEFAULT_STATE_DIR, "emulator"),
        help="where its world is kept (default ./.aks-lockdown/emulator, the one deploy --emulator uses)",
    )
    p.add_argument("--profile", choices=("fast", "realistic"), default="realistic")
    p.add_argument("--time-scale", type=_positive_float, default=DEFAULT_TIME_SCALE, metavar="F")
    p.add_argument("--seed", type=int, default=0, help="seed for fault probabilities and the subscription id")
    p.add_argument(
        "--principal-delay",
        type=float,
        default=None,
        metavar="S",
        help="seconds before a new identity can get a role without principalType (unscaled)",
    )
    p.add_argument("--no-throttling", action="store_true", help="disable ARM's per-subscription rate limits")
    p.add_argument("-v", "--verbose", action="store_true")

    p = command("credentials", "write the cluster's user kubeconfig (mode 0600)")
    p.add_argument("config", metavar="CONFIG", help="config file (TOML)")
    p.add_argument(
        "--file", metavar="PATH", help="where to write it (default <state dir>/<deployment>.kubeconfig)"
    )
    _add_target(p)
    _add_common(p)

    p = command("verify", "prove the egress lockdown holds and the ingress path works")
    p.epilog = STATE_EPILOG
    p.add_argument("config", metavar="CONFIG", help="config file (TOML)")
    p.add_argument("--report", metavar="FILE.md", help="also write a Markdown report")
    _add_target(p)
    _add_common(p, output=True)

    return parser


def _check_target_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Cross-flag rules argparse cannot express; checked before anything is imported or sent."""
    sub = f"{parser.prog} {args.command}"
    flag = getattr(args, "config_flag", None)
    if flag is not None:
        if args.config is not None:
            _fail(sub, "give the config either as CONFIG or as --config, not both")
        args.config = flag
    if getattr(args, "config", None) and getattr(args, "name", None):
        _fail(sub, "give either CONFIG or --name, not both")
    if not hasattr(args, "arm_endpoint"):
        return
    if args.arm_endpoint and not args.ca_bundle:
        _fail(sub, "--arm-endpoint needs --ca-bundle PATH (the emulator's ca.pem)")
    if args.ca_bundle and not args.arm_endpoint:
        _fail(sub, "--ca-bundle is only used with --arm-endpoint")
    if args.arm_endpoint and not args.arm_endpoint.startswith("https://"):
        # The SDK refuses bearer tokens over plain HTTP; say so before it does, in one line.
        _fail(sub, f"--arm-endpoint: must be an https:// URL, got {args.arm_endpoint!r}")
    if args.ca_bundle and not os.path.isfile(args.ca_bundle):
        _fail(sub, f"--ca-bundle: no such file: {args.ca_bundle}")


def _fail(prog: str, message: str) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_BAD_INPUT)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m aks_lockdown`` and the ``aks-lockdown`` console script."""
    # Called with an explicit argv (tests, embedding): name ourselves as the console script does.
    parser = build_parser(None if argv is None else "aks-lockdown")
    try:
        args = parser.parse_args(argv)
        _check_target_flags(parser, args)
    except SystemExit as exc:  # --help, --version, or a one-line argument error
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    args.command_line = command_line(argv)
    args.prog = parser.prog
    verbose = bool(getattr(args, "verbose", False))
    try:
        module = importlib.import_module(args.handler)
        return int(module.run(args) or 0)
    except LockdownError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; the state is recorded and Azure finishes what it started. "
            f"Resume with: {args.command_line}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `... | head`: the reader went away; not an error worth a traceback.
        _silence_stdout()
        return EXIT_FAILED
    except Exception as exc:
        if verbose:
            raise
        info = _azure_error(exc)
        if info is not None:
            # An Azure error outside the runner (credentials, status --live): Azure's code and message.
            print(f"error: {info.code}: {info.message}", file=sys.stderr)
            return EXIT_FAILED
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(
            f"error: {type(exc).__name__}: {message} (run again with -v for the traceback)", file=sys.stderr
        )
        return EXIT_FAILED


def _azure_error(exc: BaseException):  # -> ErrorInfo | None, typed loosely to keep imports lazy
    if "azure.core" not in sys.modules:  # nothing Azure ran, so it cannot be an Azure error
        return None
    from aks_lockdown.arm.errors import classify

    return classify(exc)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass

"""What the commands share: loading the config, the state directory, where requests go (Azure, the
embedded emulator, or one already running), the client factory, the store and the runner.

Everything heavy (pydantic, the Azure SDK, rich, the engine) is imported inside these functions, so a
command pays only for what it uses.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aks_lockdown.errors import InputError

if TYPE_CHECKING:
    from aks_lockdown.arm.clients import ClientFactory, Target
    from aks_lockdown.config import Config, LoadedConfig
    from aks_lockdown.display import DeploySummary, Display
    from aks_lockdown.engine.events import Event

DEFAULT_STATE_DIR = ".aks-lockdown"
EMULATOR_SUBDIR = "emulator"
# The CLI's --time-scale default, for commands that reach the embedded emulator without the flag.
DEFAULT_EMULATOR_TIME_SCALE = 0.03


def load(path: str) -> LoadedConfig:
    """The validated config (ConfigError, exit 2, on anything wrong: before any network call)."""
    from aks_lockdown.config import load_config

    if not os.path.exists(path):
        raise InputError(f"{path}: no such config file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a config file")
    return load_config(path)


def state_dir(args: argparse.Namespace, config: Config | None = None) -> Path:
    """``--state-dir``, else the config's state.directory, else ./.aks-lockdown (all relative to cwd)."""
    if getattr(args, "state_dir", None):
        return Path(args.state_dir)
    if config is not None:
        return Path(config.state.directory)
    return Path(DEFAULT_STATE_DIR)


def emulator_dir(directory: Path) -> Path:
    return directory / EMULATOR_SUBDIR


@dataclass
class Where:
    """The resolved target, and how an operator reaches the same world again (emulator only)."""

    target: Target
    # Flags that point a later command at the same world, e.g. "--emulator" or "--arm-endpoint ...".
    flags: list[str] = field(default_factory=list)
    # (label, value) lines for the deploy summary: where the emulator's world is, how to serve it.
    rows: list[tuple[str, str]] = field(default_factory=list)
    # How often the runner re-reads a resource a previous run left provisioning (ctx.wait_for); None:
    # the runner's default, paced for Azure. An emulator's scaled time needs it far shorter.
    state_poll_interval: float | None = None


# The runner's default pause between ctx.wait_for reads (runner.py's state_poll_interval): on the
# embedded emulator it is scaled by the time scale, as the emulator scales Azure's durations.
AZURE_STATE_POLL_INTERVAL = 5.0
EXTERNAL_EMULATOR_STATE_POLL_INTERVAL = 1.0


def emulator_state_poll_interval(time_scale: float) -> float:
    """Azure's pause in the embedded emulator's scaled time, never below a quarter second."""
    return max(0.25, AZURE_STATE_POLL_INTERVAL * time_scale)


@contextlib.contextmanager
def target(args: argparse.Namespace, config: Config | None, directory: Path) -> Iterator[Where]:
    """Resolve where requests go; with ``--emulator`` the emulator runs for the ``with`` block."""
    from aks_lockdown.arm.clients import EMULATOR_TENANT_ID, Target

    cloud = config.azure.cloud if config is not None else "AzureCloud"
    explicit = getattr(args, "emulator", False) or getattr(args, "arm_endpoint", None)
    name = config.deployment.name if config is not None else ""
    if not explicit and name and deployed_on_embedded_emulator(directory, name):
        # This deployment lives in the embedded emulator's world: never send its teardown to Azure.
        args.emulator = True
        args.time_scale = getattr(args, "time_scale", None) or DEFAULT_EMULATOR_TIME_SCALE
    if getattr(args, "emulator", False):
        from aks_lockdown.emulator import Emulator

        data = emulator_dir(directory)
        data.mkdir(parents=True, exist_ok=True)
        profile = getattr(args, "emulator_profile", "realistic")
        # Its own process-wide settings (profile, time scale) apply to operations started from now on;
        # the world itself (resources, operations in flight) is whatever data/ holds.
        with Emulator(data, port=0, profile=profile, time_scale=args.time_scale, cloud=cloud) as emu:
            prog = getattr(args, "prog", "aks-lockdown")
            extra = [] if profile == "realistic" else ["--emulator-profile", profile]
            serve = [
                f"{prog} emulator",
                "--data",
                shlex.quote(str(data)),
                "--time-scale",
                str(args.time_scale),
            ]
            rows = [
                ("emulator world", f"{data}/ (any command with --emulator reaches it again)"),
                ("or serve it", " ".join(serve + (["--profile", profile] if extra else []))),
            ]
            yield Where(
                emu.target(cloud=cloud),
                ["--emulator", *extra],
                rows,
                state_poll_interval=emulator_state_poll_interval(args.time_scale),
            )
        return
    if getattr(args, "arm_endpoint", None):
        # An emulator already running: its subscription is discovered through GET /subscriptions and
        # the token comes from its identity endpoint (ClientFactory's emulator credential).
        yield Where(
            Target(
                cloud=cloud,
                arm_endpoint=args.arm_endpoint,
                ca_bundle=os.path.abspath(args.ca_bundle),
                subscription_id=None,
                tenant_id=EMULATOR_TENANT_ID,
            ),
            ["--arm-endpoint", args.arm_endpoint, "--ca-bundle", args.ca_bundle],
            # Its time scale is not known from here: a second is short for Azure and long enough for it.
            state_poll_interval=EXTERNAL_EMULATOR_STATE_POLL_INTERVAL,
        )
        return
    yield Where(
        Target(
            cloud=cloud,
            subscription_id=config.azure.subscription_id if config is not None else None,
            tenant_id=config.azure.tenant_id if config is not None else None,
        )
    )


def clients(where: Where, args: argparse.Namespace) -> ClientFactory:
    from aks_lockdown.arm.clients import ClientFactory

    if getattr(args, "verbose", False):
        from aks_lockdown.display import enable_http_logging

        enable_http_logging()
    kwargs: dict[str, Any] = {}
    if where.target.is_emulator:
        # The emulator scales Retry-After to at least 1 s; never fall back to azure-core's 30 s.
        kwargs["polling_interval"] = 1
    return ClientFactory(where.target, **kwargs)


# A storage connection string for the blob state backend, read from the environment only (secrets
# never go in the config file). Without it the blob backend signs in with the usual Azure credential
# (az login, the AZURE_* variables, a managed identity). With it: its AccountKey (shared key) or
# SharedAccessSignature authorizes the calls, and its BlobEndpoint (or AccountName + EndpointSuffix)
# is where they go, which is how tests and local development reach Azurite. The account it names must
# be the one in the config's state.account_url, so it can never silently redirect the state elsewhere.
STATE_BLOB_CONNECTION_STRING_ENV = "AKS_LOCKDOWN_STATE_BLOB_CONNECTION_STRING"


def _connection_string(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in text.strip().split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InputError(
                f"{STATE_BLOB_CONNECTION_STRING_ENV}: not a storage connection string (Key=Value;...)"
            )
        fields[key.strip().lower()] = value.strip()
    return fields


def _account_of(url: str) -> str:
    """The storage account an endpoint URL names: its first host label, or (Azurite's path-style
    ``http://127.0.0.1:10000/devstoreaccount1``) its first path segment when the host is an address."""
    import ipaddress
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        path_style = True
    except ValueError:
        path_style = host == "localhost"
    if path_style:
        return parts.path.strip("/").split("/", 1)[0]
    return host.split(".", 1)[0]


def blob_access(config: Config, factory: ClientFactory | None = None) -> tuple[Config, Any]:
    """The config to build the blob store from (state.account_url possibly replaced by the endpoint of
    the connection string in the environment) and the credential for it."""
    if not config.state.account_url or not config.state.container:
        raise InputError(
            "the blob state backend needs state.account_url and state.container in the config's "
            '[state] section (with backend = "blob")'
        )
    text = os.environ.get(STATE_BLOB_CONNECTION_STRING_ENV, "").strip()
    if not text:
        return config, _azure_credential(config, factory)
    fields = _connection_string(text)
    if fields.get("usedevelopmentstorage", "").lower() == "true":
        raise InputError(
            f"{STATE_BLOB_CONNECTION_STRING_ENV}: UseDevelopmentStorage is not supported; give AccountName, "
            "AccountKey and BlobEndpoint"
        )
    name = fields.get("accountname")
    endpoint = fields.get("blobendpoint")
    if not endpoint:
        if not name:
            raise InputError(f"{STATE_BLOB_CONNECTION_STRING_ENV}: needs BlobEndpoint or AccountName")
        protocol = fields.get("defaultendpointsprotocol", "https")
        suffix = fields.get("endpointsuffix", "core.windows.net")
        endpoint = f"{protocol}://{name}.blob.{suffix}"
    wanted = _account_of(config.state.account_url)
    named = name or _account_of(endpoint)
    if named != wanted:
        raise InputError(
            f"{STATE_BLOB_CONNECTION_STRING_ENV}: it is for storage account {named!r}, but state.account_url "
            f"names {wanted!r}"
        )
    if fields.get("accountkey"):
        from azure.core.credentials import AzureNamedKeyCredential

        credential: Any = AzureNamedKeyCredential(named, fields["accountkey"])
    elif fields.get("sharedaccesssignature"):
        from azure.core.credentials import AzureSasCredential

        credential = AzureSasCredential(fields["sharedaccesssignature"])
    else:
        raise InputError(f"{STATE_BLOB_CONNECTION_STRING_ENV}: needs AccountKey or SharedAccessSignature")
    state = config.state.model_copy(update={"account_url": endpoint.rstrip("/")})
    return config.model_copy(update={"state": state}), credential


def _azure_credential(config: Config, factory: ClientFactory | None) -> Any:
    """The tool's usual Azure credential for the config's cloud. Never the emulator's: its tokens are
    for the emulated ARM, not for a storage account."""
    from aks_lockdown.arm.clients import ClientFactory, Target

    if factory is not None and not factory.target.is_emulator:
        return factory.credential
    return ClientFactory(Target(cloud=config.azure.cloud, tenant_id=config.azure.tenant_id)).credential


def store(
    directory: Path, deployment: str, config: Config | None = None, factory: ClientFactory | None = None
) -> Any:
    """The state store of the config's [state] backend; with no config, the local one
    (``<directory>/<deployment>.json``). The blob backend's credential: see ``blob_access``."""
    if config is not None and config.state.backend == "blob":
        try:
            from aks_lockdown.state_blob import BlobStateStore
        except ImportError:
            raise InputError("state.backend: 'blob' is not available in this build; use 'local'") from None
        effective, credential = blob_access(config, factory)
        return BlobStateStore.from_config(effective, credential)
    from aks_lockdown.engine.state import LocalStateStore

    return LocalStateStore(directory, deployment)


def remember_config(
    directory: Path, deployment: str, config_path: Path, *, embedded_emulator: bool = False
) -> None:
    """Note which config file a deployment came from, so ``teardown``/``status`` work with no argument
    (the state schema has no place for it). A plain text file beside the state, not ``*.json``.
    Also note a deployment made on the embedded emulator: its world lives under this state directory,
    so a later bare ``teardown`` must go there, not to Azure."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (directory / f"{deployment}.config-path").write_text(str(config_path.resolve()) + "\n")
    marker = directory / f"{deployment}.embedded-emulator"
    if embedded_emulator:
        marker.write_text("deployed with --emulator: later commands without a target flag go there too\n")
    else:
        marker.unlink(missing_ok=True)


def deployed_on_embedded_emulator(directory: Path, deployment: str) -> bool:
    return (directory / f"{deployment}.embedded-emulator").exists()


def remembered_config(directory: Path, deployment: str) -> str | None:
    try:
        text = (directory / f"{deployment}.config-path").read_text().strip()
    except OSError:
        return None
    return text or None


class Recorder:
    """Passes events on to the display and keeps what the summary needs (outputs, failure)."""

    def __init__(self, display: Display) -> None:
        self.display = display
        self.outputs: dict[str, Mapping[str, Any]] = {}
        self.failed: str | None = None
        self.elapsed = 0.0
        self.ok: bool | None = None

    def __call__(self, event: Event) -> None:
        from aks_lockdown.engine.events import RunFinished, StepDone, StepFailed

        if isinstance(event, StepDone):
            self.outputs[event.step] = dict(event.outputs)
        elif isinstance(event, StepFailed):
            self.failed = event.step
        elif isinstance(event, RunFinished):
            self.elapsed, self.ok = event.elapsed, event.ok
        self.display(event)


def runner(
    *,
    config: Config,
    clients: ClientFactory,
    store: Any,
    sink: Callable[[Event], None],
    resume_command: str,
    state_poll_interval: float | None = None,
) -> Any:
    from aks_lockdown.arm.errors import classify
    from aks_lockdown.engine.runner import Runner

    kwargs: dict[str, Any] = {}
    if state_poll_interval is not None:  # else the runner's own default (paced for Azure)
        kwargs["state_poll_interval"] = state_poll_interval
    return Runner(
        deployment=config.deployment.name,
        steps=pipeline_steps(config),
        config=config,
        clients=clients,
        store=store,
        sink=sink,
        classify=classify,
        resume_command=resume_command,
        **kwargs,
    )


# Run only these steps (comma-separated names, in pipeline order). For tests and debugging: the
# end-to-end CLI tests exercise the resource group and VNet steps alone through the real commands.
STEPS_ENV = "AKS_LOCKDOWN_STEPS"


def pipeline_steps(config: Config) -> list[Any]:
    from aks_lockdown.pipeline import build_steps

    steps = list(build_steps(config))
    wanted = [s.strip() for s in os.environ.get(STEPS_ENV, "").split(",") if s.strip()]
    if not wanted:
        return steps
    unknown = sorted(set(wanted) - {s.name for s in steps})
    if unknown:
        raise InputError(f"{STEPS_ENV}: unknown step(s) {', '.join(unknown)}")
    return [s for s in steps if s.name in wanted]


def command_for(args: argparse.Namespace, command: str, *parts: str) -> str:
    """A later command as the operator would type it (same program, same way of reaching Azure)."""
    prog = getattr(args, "prog", "aks-lockdown")
    return " ".join([prog, command, *(shlex.quote(p) for p in parts)])


def _find(outputs: Mapping[str, Mapping[str, Any]], *keys: str) -> Any:
    for step_outputs in outputs.values():
        for key in keys:
            value = step_outputs.get(key)
            if value:
                return value
    return None


def summarize(
    *,
    args: argparse.Namespace,
    loaded: LoadedConfig,
    outputs: Mapping[str, Mapping[str, Any]],
    ok: bool,
    elapsed: float,
    where: Where,
) -> DeploySummary:
    """The deploy summary from the steps' outputs; tolerant of key names so a step can grow outputs."""
    from aks_lockdown.display import DeploySummary

    config = loaded.config
    public = _find(outputs, "public_ips", "firewall_public_ips", "public_ip", "firewall_public_ip") or []
    if isinstance(public, str):
        public = [public]
    public = [str(ip) for ip in public]
    private = _find(outputs, "private_ip", "firewall_private_ip")
    api = _find(outputs, "api_server", "fqdn", "api_server_fqdn", "private_fqdn")
    ranges = _find(outputs, "authorized_ip_ranges", "authorized_ranges")
    if not ranges:
        # The seed authorises the firewall's public IPs (the nodes' egress) plus the operator's ranges.
        ranges = [f"{ip}/32" for ip in public] + list(config.cluster.authorized_ip_ranges)
    dnat_urls = []
    if public:
        for rule in config.ingress.dnat:
            if rule.protocol == "TCP":
                dnat_urls.append(f"http://{public[0]}:{rule.firewall_port}/")
    config_arg = str(loaded.path)
    state_flags = ["--state-dir", args.state_dir] if getattr(args, "state_dir", None) else []
    flags = [*where.flags, *state_flags]
    nexts = [
        ("prove the lockdown", command_for(args, "verify", config_arg, *flags)),
        ("kubeconfig (0600)", command_for(args, "credentials", config_arg, *flags)),
        ("what the state says", command_for(args, "status", config_arg, *state_flags)),
        ("remove it all", command_for(args, "teardown", config_arg, *flags)),
    ]
    if not ok:
        nexts = [("resume", args.command_line), *nexts[2:]]
    notes = []
    if config.cluster.private_cluster:
        notes.append("private cluster: the API server is reachable only from inside the VNet")
    return DeploySummary(
        deployment=config.deployment.name,
        ok=ok,
        elapsed=elapsed,
        # Named only once the cluster exists (a partial run must not suggest there is one).
        cluster_name=config.cluster_name if api or outputs.get("cluster") else None,
        api_server=f"https://{api}" if api and not str(api).startswith("https://") else api,
        firewall_private_ip=private,
        firewall_public_ips=public,
        authorized_ranges=[str(r) for r in ranges],
        dnat_urls=dnat_urls,
        next_commands=nexts,
        rows=list(where.rows),
        notes=notes,
    )


def is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def confirm(question: str) -> bool:
    try:
        answer = input(f"{question} Only 'yes' will be accepted: ")
    except EOFError:
        return False
    return answer.strip().lower() == "yes"


@dataclass
class Resolved:
    """Which deployment a command is about, and its config when one is known."""

    name: str
    directory: Path
    loaded: LoadedConfig | None = None
    # True when the config came from CONFIG/--config; a config remembered for a --name (or no
    # argument) deployment supplies the steps but never the state backend: that is always local.
    explicit: bool = False

    @property
    def backend_config(self) -> Config | None:
        """The config whose [state] section chooses the store (None: the local store)."""
        return self.loaded.config if self.explicit and self.loaded is not None else None


def resolve_deployment(args: argparse.Namespace, *, need_config: bool = False) -> Resolved:
    """From CONFIG, ``--name``, or (no argument) the only deployment in the state directory.

    Several deployments and no argument: refuse, naming them (exit 2), as ``teardown`` must never
    guess which one to delete.
    """
    from aks_lockdown.commands._engine import deployments

    if getattr(args, "config", None):
        loaded = load(args.config)
        return Resolved(loaded.config.deployment.name, state_dir(args, loaded.config), loaded, explicit=True)
    directory = state_dir(args)
    names = deployments(directory)
    if getattr(args, "name", None):
        if args.name not in names:
            found = f" (found: {', '.join(names)})" if names else ""
            raise InputError(f"--name: no deployment {args.name!r} in {directory}{found}")
        name = args.name
    elif not names:
        raise InputError(f"no deployment in the state directory {directory}; pass CONFIG or --state-dir")
    elif len(names) > 1:
        raise InputError(
            f"{len(names)} deployments in {directory}: {', '.join(names)}; "
            "name one with --name NAME or pass its CONFIG"
        )
    else:
        name = names[0]
    resolved = Resolved(name, directory)
    if need_config:
        path = remembered_config(directory, name)
        if path is None or not os.path.exists(path):
            where = f" ({path} is gone)" if path else ""
            raise InputError(f"deployment {name!r}: its config file is not known{where}; pass CONFIG")
        resolved.loaded = load(path)
    return resolved

"""The deployment config: TOML on disk, pydantic models in memory.

Field names here are the contract every other module codes against. Defaults reproduce the seed
walkthrough's own values (prefix aks-egress, eastus, 10.42.0.0/16, ...).

`load_config(path)` is the way in: it parses with tomllib, refuses secrets and unknown keys, checks
types with pydantic (strict: TOML is typed, so "3" is not a node count), then runs the cross-field
checks in `validate_config`. Every failure is one ConfigError line naming the file, the dotted field
and the offending value (exit 2), all offline, before anything talks to Azure.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aks_lockdown.errors import ConfigError
from aks_lockdown.locations import Cloud, cloud_of, is_known_location, known_locations, suggest_location
from aks_lockdown.naming import RULES, ResourceKind, name_problem

__all__ = [
    "Cloud",
    "ClusterSection",
    "Config",
    "DeploymentSection",
    "DnatRule",
    "ExtraRule",
    "Feature",
    "FirewallSection",
    "IdentitySection",
    "IngressSection",
    "LoadedConfig",
    "NetworkSection",
    "StateSection",
    "load_config",
    "loads_config",
    "validate_config",
]

Feature = Literal["os-updates", "gpu", "windows", "monitor", "azure-policy", "dev-spaces"]


class _Section(BaseModel):
    # Unknown keys are errors (with a "did you mean"), never silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeploymentSection(_Section):
    name: str = "aks-egress"
    prefix: str = "aks-egress"


class AzureSection(_Section):
    cloud: Cloud = "AzureCloud"
    subscription_id: str | None = None  # else AZURE_SUBSCRIPTION_ID
    location: str = "eastus"
    tenant_id: str | None = None


class NetworkSection(_Section):
    resource_group: str | None = None  # default "<prefix>-rg"
    vnet_name: str | None = None  # default "<prefix>-vnet"
    vnet_cidr: str = "10.42.0.0/16"
    aks_subnet_name: str = "aks-subnet"
    aks_subnet_cidr: str = "10.42.1.0/24"
    firewall_subnet_cidr: str = "10.42.2.0/24"
    # Only for the Basic SKU, which needs AzureFirewallManagementSubnet.
    firewall_management_subnet_cidr: str = "10.42.3.0/26"
    route_table_name: str | None = None  # default "<prefix>-fwrt"


class ExtraRule(_Section):
    name: str
    kind: Literal["network", "application"]
    protocols: list[str]  # network: TCP/UDP/ICMP/Any; application: "Https:443", "Http:80"
    destination_addresses: list[str] = Field(default_factory=list)
    destination_fqdns: list[str] = Field(default_factory=list)
    destination_ports: list[str] = Field(default_factory=list)  # network rules only
    source_addresses: list[str] = Field(default_factory=list)  # default: the AKS subnet


class FirewallSection(_Section):
    name: str | None = None  # default "<prefix>-fw"
    sku: Literal["Standard", "Premium", "Basic"] = "Standard"
    public_ip_count: int = 1
    public_ip_name: str | None = None  # default "<prefix>-fwpublicip"; later ones get "-2", "-3", ...
    ip_config_name: str | None = None  # default "<prefix>-fwconfig"
    dns_proxy: bool = True
    rules: Literal["policy", "classic"] = "policy"
    policy_name: str | None = None  # default "<prefix>-fwpolicy"
    fqdn_mode: Literal["tag", "explicit", "both"] = "tag"
    features: list[Feature] = Field(default_factory=list)
    egress_edition: Literal["seed-2020", "current"] = "current"
    tunnel_ports: bool = True
    allow_any_source: bool = False  # rules use the AKS subnet as source unless this is set
    extra_rules: list[ExtraRule] = Field(default_factory=list)


class IdentitySection(_Section):
    type: Literal["user-assigned", "service-principal"] = "user-assigned"
    name: str | None = None  # managed identity name, default "<prefix>-identity"
    client_id: str | None = None  # service-principal mode
    object_id: str | None = None  # service-principal mode
    secret_env: str | None = None  # NAME of the environment variable holding the SP secret


class ClusterSection(_Section):
    name: str | None = None  # default "<prefix>"
    kubernetes_version: str | None = None
    node_count: int = 3
    node_vm_size: str = "Standard_D2s_v5"
    network_plugin: Literal["azure", "azure-overlay", "kubenet"] = "azure"
    service_cidr: str = "10.41.0.0/16"
    dns_service_ip: str = "10.41.0.10"
    pod_cidr: str | None = None  # kubenet / azure-overlay only; default 10.244.0.0/16 there
    docker_bridge_cidr: str | None = None  # accepted with a warning, never sent
    private_cluster: bool = False
    authorized_ip_ranges: list[str] = Field(default_factory=list)  # operator ranges
    identity: IdentitySection = Field(default_factory=IdentitySection)


class DnatRule(_Section):
    name: str
    protocol: Literal["TCP", "UDP"] = "TCP"
    firewall_port: int = 80
    target_ip: str
    target_port: int = 80


class IngressSection(_Section):
    workload: Literal["voting-app", "none"] = "voting-app"
    dnat: list[DnatRule] = Field(
        default_factory=lambda: [DnatRule(name="inboundrule", target_ip="10.42.1.250")]
    )

    @model_validator(mode="before")
    @classmethod
    def _no_default_dnat_without_workload(cls, data: Any) -> Any:
        # The default DNAT rule exists for the voting app; without a workload it would forward to nothing.
        if isinstance(data, dict) and data.get("workload") == "none" and "dnat" not in data:
            return {**data, "dnat": []}
        return data


class StateSection(_Section):
    backend: Literal["local", "blob"] = "local"
    directory: str = ".aks-lockdown"
    account_url: str | None = None  # blob backend
    container: str | None = None
    blob_name: str | None = None


class Config(_Section):
    deployment: DeploymentSection = Field(default_factory=DeploymentSection)
    azure: AzureSection = Field(default_factory=AzureSection)
    network: NetworkSection = Field(default_factory=NetworkSection)
    firewall: FirewallSection = Field(default_factory=FirewallSection)
    cluster: ClusterSection = Field(default_factory=ClusterSection)
    ingress: IngressSection = Field(default_factory=IngressSection)
    state: StateSection = Field(default_factory=StateSection)

    # Derived names: one place, so every step and the emulator agree.
    @property
    def resource_group(self) -> str:
        return self.network.resource_group or f"{self.deployment.prefix}-rg"

    @property
    def vnet_name(self) -> str:
        return self.network.vnet_name or f"{self.deployment.prefix}-vnet"

    @property
    def route_table_name(self) -> str:
        return self.network.route_table_name or f"{self.deployment.prefix}-fwrt"

    @property
    def firewall_name(self) -> str:
        return self.firewall.name or f"{self.deployment.prefix}-fw"

    @property
    def policy_name(self) -> str:
        return self.firewall.policy_name or f"{self.deployment.prefix}-fwpolicy"

    @property
    def ip_config_name(self) -> str:
        return self.firewall.ip_config_name or f"{self.deployment.prefix}-fwconfig"

    @property
    def public_ip_names(self) -> list[str]:
        base = self.firewall.public_ip_name or f"{self.deployment.prefix}-fwpublicip"
        return [base if i == 1 else f"{base}-{i}" for i in range(1, self.firewall.public_ip_count + 1)]

    @property
    def cluster_name(self) -> str:
        return self.cluster.name or self.deployment.prefix

    @property
    def dns_prefix(self) -> str:
        """The AKS DNS prefix: the cluster name (validation holds it to the DNS-prefix rule)."""
        return self.cluster_name

    @property
    def identity_name(self) -> str:
        return self.cluster.identity.name or f"{self.deployment.prefix}-identity"

    @property
    def effective_pod_cidr(self) -> str | None:
        if self.cluster.network_plugin == "azure":
            return None
        return self.cluster.pod_cidr or "10.244.0.0/16"


# --------------------------------------------------------------------------------------------------
# Loading and validation. Everything below is offline: a bad config fails before any Azure call.
# --------------------------------------------------------------------------------------------------

IPv4Net = ipaddress.IPv4Network

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DEPLOYMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$")
_PREFIX = re.compile(r"^[A-Za-z](?:[A-Za-z0-9-]{0,38}[A-Za-z0-9])?$")
_K8S_VERSION = re.compile(r"^\d+\.\d+(?:\.\d+)?$")
_VM_SIZE = re.compile(r"^Standard_[A-Za-z0-9_]+$")
_SERVICE_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)?$")
_FQDN_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
# "Https:443", or the az CLI's "https=443"; the compiler normalises both.
_APP_PROTOCOL = re.compile(r"^(?i:http|https|mssql)[:=](\d+)$")
# New-style Entra ID client secrets: 3 characters, a digit, "Q~", then 31-34 more.
_CLIENT_SECRET_VALUE = re.compile(r"^[A-Za-z0-9_.\-]{3}\dQ~[A-Za-z0-9_.~\-]{31,34}$")
_SECRET_WORDS = frozenset({"secret", "password", "passwd", "pwd", "key", "token", "credential", "passphrase"})

_NETWORK_PROTOCOLS = ("TCP", "UDP", "ICMP", "Any")
_BLOB_SUFFIXES = (
    "blob.core.windows.net",
    "blob.core.chinacloudapi.cn",
    "blob.core.usgovcloudapi.net",
)
# Addresses AKS keeps for itself; a service CIDR inside them breaks the cluster.
_AKS_RESERVED_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("169.254.0.0/16", "172.30.0.0/16", "172.31.0.0/16", "192.0.2.0/24")
)
_AZURE_CNI_MAX_PODS = 30  # the AKS API default for Azure CNI (non-overlay) nodes
_SUGGESTED_SECRET_ENV = "AKS_LOCKDOWN_SP_SECRET"
_MAX_PUBLIC_IPS = 250
_PRODUCTION_PUBLIC_IPS = 20
_MAX_AUTHORIZED_RANGES = 200


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config, the file it came from, and the warnings an operator should see."""

    config: Config
    path: Path
    warnings: list[str] = field(default_factory=list)


def load_config(path: str | Path) -> LoadedConfig:
    """Read, parse and fully validate a TOML config file. Raises ConfigError (exit 2) on any problem."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(file, "", f"cannot read the config file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(file, "", f"is not UTF-8 text (at line {line})") from None
    return loads_config(text, file=file)


def loads_config(text: str, file: str = "<string>") -> LoadedConfig:
    """Like load_config, for TOML already in memory; `file` is the name errors report."""
    data = _parse_toml(text, file)
    _refuse_secrets(data, (), file)
    _refuse_unknown_keys(data, Config, (), file)
    try:
        config = Config.model_validate(data, strict=True)
    except ValidationError as exc:
        raise _type_error(exc, file) from None
    warnings = validate_config(config, file)
    return LoadedConfig(config=config, path=Path(file), warnings=warnings)


def validate_config(config: Config, file: str = "<config>") -> list[str]:
    """The cross-field checks, for a Config built in code as much as for one read from disk.

    Raises ConfigError on the first problem; returns the warnings (one line each) otherwise.
    """
    check = _Checker(file)
    _check_deployment(config, check)
    _check_azure(config, check)
    nets = _check_network(config, check)
    _check_firewall(config, check, nets)
    _check_cluster(config, check, nets)
    _check_ingress(config, check, nets)
    _check_state(config, check)
    _check_resource_names(config, check)
    return check.warnings


class _Checker:
    """Carries the file name into every message and collects warnings."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.warnings: list[str] = []

    def fail(self, field_path: str, message: str) -> ConfigError:
        return ConfigError(self.file, field_path, message)

    def warn(self, field_path: str, message: str) -> None:
        self.warnings.append(f"{self.file}: {field_path}: {message}")


def _v(value: Any) -> str:
    # TOML-looking rendering of the offending value: "text", 3, true, ["a"]; dates as TOML writes them.
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


def _dotted(parts: Iterable[str | int]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _suggest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    choices = list(choices)
    folded = {_fold(c): c for c in choices}
    if _fold(word) in folded:  # vnet-cidr, VnetCidr, clientId ... all mean the same key
        return folded[_fold(word)]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    return close[0] if close else None


def _fold(word: str) -> str:
    return re.sub(r"[_\-\s]", "", word).lower()


# -- Parsing -----------------------------------------------------------------------------------------


def _parse_toml(text: str, file: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", _toml_message(str(exc), text)) from None


def _toml_message(error: str, text: str) -> str:
    # tomllib (3.11) only puts the position in the message text: "... (at line 3, column 9)".
    match = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", error, re.DOTALL)
    if match:
        reason, line, column = match.groups()
        return f"malformed TOML at line {line}, column {column}: {reason}"
    match = re.fullmatch(r"(.*) \(at end of document\)", error, re.DOTALL)
    if match:
        line = text.count("\n") + (0 if text.endswith("\n") else 1)
        return f"malformed TOML at line {max(line, 1)} (end of file): {match.group(1)}"
    return f"malformed TOML: {error}"


# -- Secrets ------------------------------------------------------------------------------------------


def _refuse_secrets(node: Any, path: tuple[str | int, ...], file: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            here = (*path, key)
            if _is_secret_key(key):
                raise ConfigError(file, _dotted(here), _secret_advice(here))
            _refuse_secrets(value, here, file)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _refuse_secrets(item, (*path, index), file)
    elif isinstance(node, str) and _looks_secret(node):
        raise ConfigError(file, _dotted(path), f"looks like a secret; {_secret_advice(path)}")


def _looks_secret(value: str) -> bool:
    # Shapes that are never anything but a credential: a client secret, a PEM key, a connection string.
    markers = ("PRIVATE KEY-----", "AccountKey=", "SharedAccessKey=", "SharedAccessSignature=")
    return bool(_CLIENT_SECRET_VALUE.match(value)) or any(m in value for m in markers)


def _is_secret_key(key: str) -> bool:
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", key)]
    if words and words[-1] == "env":  # secret_env names a variable; it holds no secret
        return False
    folded = _fold(key)
    return any(w in _SECRET_WORDS for w in words) or any(
        s in folded for s in ("secret", "password", "passwd", "connectionstring")
    )


def _secret_advice(path: tuple[str | int, ...]) -> str:
    if path and path[0] == "state":
        return (
            "secrets must not be written into the config file (value not shown); the blob backend "
            "signs in with your Azure credential (az login or the AZURE_* environment variables)"
        )
    return (
        "secrets must not be written into the config file (value not shown); put the secret in an "
        f"environment variable (for example {_SUGGESTED_SECRET_ENV}) and set "
        f'cluster.identity.secret_env = "{_SUGGESTED_SECRET_ENV}"'
    )


# -- Unknown keys -------------------------------------------------------------------------------------


def _submodel(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds (directly or as list items) and whether it is a list of them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item, True
    return None, False


def _sections(model: type[BaseModel], path: tuple[str, ...] = ()) -> Iterator[tuple[str, type[BaseModel]]]:
    for name, info in model.model_fields.items():
        sub, _ = _submodel(info.annotation)
        if sub is not None:
            yield _dotted((*path, name)), sub
            yield from _sections(sub, (*path, name))


def _refuse_unknown_keys(
    data: dict[str, Any], model: type[BaseModel], path: tuple[str | int, ...], file: str
) -> None:
    fields = model.model_fields
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(file, _dotted((*path, key)), _unknown_key_message(key, model, path))
        sub, is_list = _submodel(fields[key].annotation)
        if sub is None:
            continue
        if is_list and isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    _refuse_unknown_keys(item, sub, (*path, key, index), file)
        elif isinstance(value, dict):
            _refuse_unknown_keys(value, sub, (*path, key), file)


def _unknown_key_message(key: str, model: type[BaseModel], path: tuple[str | int, ...]) -> str:
    where = "at the top level" if not path else f"in [{_dotted(p for p in path if isinstance(p, str))}]"
    noun = "section" if not path else "key"
    close = _suggest(key, model.model_fields)
    if close:
        return f"unknown {noun} {_v(key)} {where}; did you mean {_v(close)}?"
    homes = [name for name, sub in _sections(Config) if key in sub.model_fields]
    if homes:
        return f"unknown {noun} {_v(key)} {where}; it belongs in [{homes[0]}]"
    return f"unknown {noun} {_v(key)} {where}; known: {', '.join(model.model_fields)}"


# -- Types (pydantic) ---------------------------------------------------------------------------------


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


_EXPECTED = {
    "int_type": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "an array",
    "model_type": "a table",
    "dict_type": "a table",
    "model_attributes_type": "a table",
}


def _type_error(exc: ValidationError, file: str) -> ConfigError:
    # One line for the first problem: the operator fixes it and runs again.
    error = exc.errors(include_url=False)[0]
    where = _dotted(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if kind == "missing":
        return ConfigError(file, where, "required key is missing")
    if kind == "list_type" and isinstance(value, dict):
        return ConfigError(
            file, where, f"expected an array, got a single table; write [[{where}]] with double brackets"
        )
    if kind in _EXPECTED:
        shown = "a table" if isinstance(value, dict) else f"{_v(value)} ({_toml_type(value)})"
        return ConfigError(file, where, f"expected {_EXPECTED[kind]}, got {shown}")
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", "")))
        message = f"{_v(value)} is not one of {', '.join(_v(a) for a in allowed)}"
        close = _suggest(str(value), allowed) if isinstance(value, str) else None
        return ConfigError(file, where, f"{message}; did you mean {_v(close)}?" if close else message)
    return ConfigError(file, where, f"{_v(value)}: {error['msg']}")


# -- Address helpers ----------------------------------------------------------------------------------


def _parse_cidr(check: _Checker, where: str, value: str) -> IPv4Net:
    if "/" not in value:
        raise check.fail(where, f"{_v(value)} has no prefix length (expected a CIDR like 10.42.0.0/16)")
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise check.fail(where, f"{_v(value)} is not a valid CIDR (expected one like 10.42.0.0/16)") from None
    if not isinstance(net, IPv4Net):
        raise check.fail(where, f"{_v(value)} is IPv6; this tool builds IPv4 networks only")
    if str(net) != value:
        raise check.fail(where, f"{_v(value)} has host bits set; did you mean {_v(str(net))}?")
    return net


def _parse_ip(check: _Checker, where: str, value: str) -> ipaddress.IPv4Address:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise check.fail(where, f"{_v(value)} is not an IPv4 address") from None
    if not isinstance(address, ipaddress.IPv4Address):
        raise check.fail(where, f"{_v(value)} is IPv6; this tool builds IPv4 networks only")
    return address


def _check_port(check: _Checker, where: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise check.fail(where, f"{port} is out of range 1-65535")


# -- Sections -----------------------------------------------------------------------------------------


def _check_deployment(config: Config, check: _Checker) -> None:
    name = config.deployment.name
    if not _DEPLOYMENT_NAME.fullmatch(name):
        raise check.fail(
            "deployment.name",
            f"{_v(name)} is not a safe file name: use 1-40 letters, digits and hyphens, "
            "starting with a letter or digit",
        )
    prefix = config.deployment.prefix
    if not _PREFIX.fullmatch(prefix):
        raise check.fail(
            "deployment.prefix",
            f"{_v(prefix)} cannot prefix Azure resource names: use 1-40 letters, digits and hyphens, "
            "starting with a letter and ending with a letter or digit",
        )


def _check_azure(config: Config, check: _Checker) -> None:
    azure = config.azure
    if azure.subscription_id is not None and not _GUID.fullmatch(azure.subscription_id):
        raise check.fail(
            "azure.subscription_id",
            f"{_v(azure.subscription_id)} is not a subscription ID "
            "(a GUID like 00000000-0000-0000-0000-000000000000)",
        )
    tenant = azure.tenant_id
    if tenant is not None and not (_GUID.fullmatch(tenant) or _DOMAIN.fullmatch(tenant)):
        raise check.fail("azure.tenant_id", f"{_v(tenant)} is neither a tenant GUID nor a domain name")
    _check_location(azure.cloud, azure.location, check)


def _check_location(cloud: Cloud, location: str, check: _Checker) -> None:
    if is_known_location(cloud, location):
        return
    home = cloud_of(location)
    if home is not None and home != cloud:
        raise check.fail(
            "azure.location",
            f"{_v(location)} is a location of {home}, not of {cloud}; set azure.cloud = {_v(home)} "
            f"or choose an {cloud} location",
        )
    close = suggest_location(cloud, location)
    message = f"{_v(location)} is not a known {cloud} location"
    if close:
        raise check.fail("azure.location", f"{message}; did you mean {_v(close)}?")
    names = sorted(known_locations(cloud))
    if len(names) <= 10:
        raise check.fail("azure.location", f"{message}; known: {', '.join(names)}")
    raise check.fail("azure.location", f"{message} (see `az account list-locations -o table`)")


@dataclass(frozen=True)
class _Nets:
    """The parsed address plan, for the checks that compare ranges."""

    vnet: IPv4Net
    subnets: dict[str, IPv4Net]  # field path -> network, only the subnets this config creates
    aks: IPv4Net


def _check_network(config: Config, check: _Checker) -> _Nets:
    network = config.network
    vnet = _parse_cidr(check, "network.vnet_cidr", network.vnet_cidr)
    wanted = {
        "network.aks_subnet_cidr": network.aks_subnet_cidr,
        "network.firewall_subnet_cidr": network.firewall_subnet_cidr,
    }
    if config.firewall.sku == "Basic":  # only Basic needs AzureFirewallManagementSubnet
        wanted["network.firewall_management_subnet_cidr"] = network.firewall_management_subnet_cidr
    subnets: dict[str, IPv4Net] = {}
    for where, value in wanted.items():
        net = _parse_cidr(check, where, value)
        if not net.subnet_of(vnet):
            raise check.fail(where, f"{_v(value)} is outside the VNet {vnet} (network.vnet_cidr)")
        for other_where, other in subnets.items():
            if net.overlaps(other):
                raise check.fail(where, f"{_v(value)} overlaps {other_where} {other}")
        subnets[where] = net
    if config.firewall.sku != "Basic" and "firewall_management_subnet_cidr" in network.model_fields_set:
        check.warn(
            "network.firewall_management_subnet_cidr",
            f'{_v(network.firewall_management_subnet_cidr)} is used only with firewall.sku = "Basic"; '
            f"ignored for {_v(config.firewall.sku)}",
        )
    _check_firewall_subnet_sizes(subnets, check)
    _check_aks_subnet_capacity(config, subnets["network.aks_subnet_cidr"], check)
    _check_name(check, "subnet", network.aks_subnet_name, "network.aks_subnet_name")
    return _Nets(vnet=vnet, subnets=subnets, aks=subnets["network.aks_subnet_cidr"])


def _check_firewall_subnet_sizes(subnets: dict[str, IPv4Net], check: _Checker) -> None:
    named = {
        "network.firewall_subnet_cidr": "AzureFirewallSubnet",
        "network.firewall_management_subnet_cidr": "AzureFirewallManagementSubnet",
    }
    for where, subnet_name in named.items():
        net = subnets.get(where)
        if net is not None and net.prefixlen > 26:
            raise check.fail(
                where, f"{_v(str(net))} is too small: Azure Firewall needs at least a /26 ({subnet_name})"
            )


def _check_aks_subnet_capacity(config: Config, aks: IPv4Net, check: _Checker) -> None:
    # Azure keeps 5 addresses per subnet; Azure CNI (non-overlay) also gives every pod a subnet address.
    usable = aks.num_addresses - 5
    nodes = config.cluster.node_count + 1  # one surge node during upgrades
    per_node = 1 + _AZURE_CNI_MAX_PODS if config.cluster.network_plugin == "azure" else 1
    needed = nodes * per_node
    if needed > usable:
        raise check.fail(
            "network.aks_subnet_cidr",
            f"{_v(str(aks))} has {max(usable, 0)} usable addresses; {config.cluster.node_count} nodes "
            f"with network_plugin {_v(config.cluster.network_plugin)} need {needed} "
            f"((nodes + 1 surge) x {per_node})",
        )


def _check_firewall(config: Config, check: _Checker, nets: _Nets) -> None:
    fw = config.firewall
    _check_public_ip_count(fw.public_ip_count, check)
    if fw.sku == "Basic" and fw.dns_proxy:
        raise check.fail(
            "firewall.dns_proxy",
            'true is not available on the Basic SKU; set dns_proxy = false or sku = "Standard"',
        )
    if fw.sku in ("Basic", "Premium") and fw.rules == "classic":
        raise check.fail(
            "firewall.rules",
            f'"classic" is not available on the {fw.sku} SKU, which is managed only through a firewall '
            'policy; set rules = "policy"',
        )
    _check_features(fw, check)
    names: dict[str, int] = {}
    for index, rule in enumerate(fw.extra_rules):
        where = f"firewall.extra_rules[{index}]"
        if rule.name in names:
            raise check.fail(
                f"{where}.name",
                f"{_v(rule.name)} is already the name of firewall.extra_rules[{names[rule.name]}]",
            )
        names[rule.name] = index
        _check_extra_rule(rule, where, fw, check)


def _check_public_ip_count(count: int, check: _Checker) -> None:
    if not 1 <= count <= _MAX_PUBLIC_IPS:
        raise check.fail(
            "firewall.public_ip_count",
            f"{count} is out of range: a firewall takes 1 to {_MAX_PUBLIC_IPS} public IPs",
        )
    if count < _PRODUCTION_PUBLIC_IPS:
        check.warn(
            "firewall.public_ip_count",
            f"{count} is below {_PRODUCTION_PUBLIC_IPS}: the docs recommend at least "
            f"{_PRODUCTION_PUBLIC_IPS} frontend IPs for production (SNAT ports)",
        )


def _check_features(fw: FirewallSection, check: _Checker) -> None:
    seen: set[str] = set()
    for index, feature in enumerate(fw.features):
        if feature in seen:
            raise check.fail(f"firewall.features[{index}]", f"{_v(feature)} is listed twice")
        seen.add(feature)
    if "dev-spaces" in seen and fw.egress_edition == "current":
        check.warn(
            "firewall.features",
            '"dev-spaces": Azure Dev Spaces is retired; its rows are only in edition "seed-2020"',
        )


def _check_extra_rule(rule: ExtraRule, where: str, fw: FirewallSection, check: _Checker) -> None:
    _check_name(check, "rule", rule.name, f"{where}.name")
    if not rule.protocols:
        raise check.fail(f"{where}.protocols", "[] is empty: name at least one protocol")
    if rule.kind == "network":
        _check_network_rule(rule, where, fw, check)
    else:
        _check_application_rule(rule, where, check)
    for index, source in enumerate(rule.source_addresses):
        _check_source(source, f"{where}.source_addresses[{index}]", fw.allow_any_source, check)


def _check_network_rule(rule: ExtraRule, where: str, fw: FirewallSection, check: _Checker) -> None:
    for index, protocol in enumerate(rule.protocols):
        if protocol not in _NETWORK_PROTOCOLS:
            allowed = ", ".join(_v(p) for p in _NETWORK_PROTOCOLS)
            close = _suggest(protocol, _NETWORK_PROTOCOLS)
            hint = f"; did you mean {_v(close)}?" if close else ""
            raise check.fail(
                f"{where}.protocols[{index}]",
                f"{_v(protocol)} is not a network-rule protocol (one of {allowed}){hint}",
            )
    if not rule.destination_addresses and not rule.destination_fqdns:
        raise check.fail(
            f"{where}.destination_addresses",
            f"rule {_v(rule.name)} has no destination; set destination_addresses or destination_fqdns",
        )
    if not rule.destination_ports:
        raise check.fail(f"{where}.destination_ports", f"rule {_v(rule.name)} has no destination ports")
    for index, port in enumerate(rule.destination_ports):
        _check_port_spec(port, f"{where}.destination_ports[{index}]", check)
    for index, address in enumerate(rule.destination_addresses):
        _check_destination_address(address, f"{where}.destination_addresses[{index}]", check)
    for index, fqdn in enumerate(rule.destination_fqdns):
        fqdn_where = f"{where}.destination_fqdns[{index}]"
        _check_fqdn(fqdn, fqdn_where, wildcard_ok=False, check=check)
        if not fw.dns_proxy:
            raise check.fail(
                fqdn_where,
                f"{_v(fqdn)}: FQDNs in network rules need the firewall's DNS proxy; "
                "set firewall.dns_proxy = true",
            )


def _check_application_rule(rule: ExtraRule, where: str, check: _Checker) -> None:
    for index, protocol in enumerate(rule.protocols):
        match = _APP_PROTOCOL.fullmatch(protocol)
        if not match:
            raise check.fail(
                f"{where}.protocols[{index}]",
                f'{_v(protocol)} is not an application-rule protocol (like "Https:443", "Http:80", '
                '"Mssql:1433")',
            )
        if not 1 <= int(match.group(1)) <= 65535:
            raise check.fail(f"{where}.protocols[{index}]", f"{_v(protocol)}: port out of range 1-65535")
    if rule.destination_addresses:
        raise check.fail(
            f"{where}.destination_addresses",
            f"{_v(rule.destination_addresses)}: application rules match FQDNs; use destination_fqdns",
        )
    if rule.destination_ports:
        raise check.fail(
            f"{where}.destination_ports",
            f'{_v(rule.destination_ports)}: application rules take ports from protocols (like "Https:443")',
        )
    if not rule.destination_fqdns:
        raise check.fail(
            f"{where}.destination_fqdns", f"rule {_v(rule.name)} has no destination; set destination_fqdns"
        )
    for index, fqdn in enumerate(rule.destination_fqdns):
        _check_fqdn(fqdn, f"{where}.destination_fqdns[{index}]", wildcard_ok=True, check=check)


def _check_port_spec(spec: str, where: str, check: _Checker) -> None:
    if spec == "*":
        raise check.fail(where, '"*" is refused: name the ports the rule needs (least privilege)')
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", spec)
    if not match:
        raise check.fail(where, f'{_v(spec)} is not a port or a port range (like "443" or "8000-8080")')
    low = int(match.group(1))
    high = int(match.group(2) or low)
    for port in (low, high):
        if not 1 <= port <= 65535:
            raise check.fail(where, f"{_v(spec)} is out of range 1-65535")
    if low > high:
        raise check.fail(where, f"{_v(spec)} is an empty range (it starts above its end)")


def _too_broad(value: str) -> bool:
    if value.strip() in ("*", "Internet", "Any", "any"):
        return True
    try:
        return ipaddress.ip_network(value, strict=False).prefixlen == 0
    except ValueError:
        return False


def _is_address(value: str) -> bool:
    """An IPv4 address, CIDR or "first-last" range, as Azure Firewall accepts them."""
    parts = value.split("-")
    try:
        if len(parts) == 2:
            ipaddress.IPv4Address(parts[0])
            ipaddress.IPv4Address(parts[1])
        elif len(parts) == 1:
            ipaddress.IPv4Network(value, strict=True)
        else:
            return False
    except ValueError:
        return False
    return True


def _check_destination_address(value: str, where: str, check: _Checker) -> None:
    if _too_broad(value):
        raise check.fail(where, f"{_v(value)} is refused: allow named destinations only (least privilege)")
    if not (_is_address(value) or _SERVICE_TAG.fullmatch(value)):
        raise check.fail(
            where,
            f'{_v(value)} is not an IPv4 address, CIDR, range or service tag (like "AzureCloud.eastus")',
        )


def _check_source(value: str, where: str, allow_any: bool, check: _Checker) -> None:
    if _too_broad(value):
        if allow_any:
            return
        raise check.fail(
            where,
            f"{_v(value)} is refused: sources default to the AKS subnet; "
            "set firewall.allow_any_source = true to open rules to any source",
        )
    if not _is_address(value):
        raise check.fail(where, f"{_v(value)} is not an IPv4 address, CIDR or range")


def _check_fqdn(fqdn: str, where: str, wildcard_ok: bool, check: _Checker) -> None:
    if fqdn.strip() == "*":
        raise check.fail(where, '"*" is refused: allow named destinations only (least privilege)')
    name = fqdn
    if fqdn.startswith("*."):
        if not wildcard_ok:
            raise check.fail(where, f"{_v(fqdn)}: network rules do not take wildcard FQDNs")
        name = fqdn[2:]
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_FQDN_LABEL.fullmatch(lab) for lab in labels):
        raise check.fail(where, f"{_v(fqdn)} is not a valid FQDN")


def _check_cluster(config: Config, check: _Checker, nets: _Nets) -> None:
    cluster = config.cluster
    if not 1 <= cluster.node_count <= 1000:
        raise check.fail("cluster.node_count", f"{cluster.node_count} is out of range 1-1000")
    if cluster.kubernetes_version is not None and not _K8S_VERSION.fullmatch(cluster.kubernetes_version):
        raise check.fail(
            "cluster.kubernetes_version",
            f'{_v(cluster.kubernetes_version)} is not a Kubernetes version (like "1.30" or "1.30.4")',
        )
    if not _VM_SIZE.fullmatch(cluster.node_vm_size):
        raise check.fail(
            "cluster.node_vm_size", f'{_v(cluster.node_vm_size)} is not a VM size (like "Standard_D2s_v5")'
        )
    pod = _check_pod_cidr(config, check, nets)
    service = _check_service_cidr(config, check, nets, pod)
    _check_dns_service_ip(cluster.dns_service_ip, service, check)
    _check_docker_bridge(cluster.docker_bridge_cidr, check)
    _check_authorized_ranges(cluster, check)
    _check_identity(cluster.identity, check)


def _check_pod_cidr(config: Config, check: _Checker, nets: _Nets) -> IPv4Net | None:
    cluster = config.cluster
    if cluster.network_plugin == "azure":
        if cluster.pod_cidr is not None:
            raise check.fail(
                "cluster.pod_cidr",
                f'{_v(cluster.pod_cidr)} does not apply with network_plugin "azure" (pods take addresses '
                'from the AKS subnet); remove it, or use "azure-overlay" or "kubenet"',
            )
        return None
    value = config.effective_pod_cidr or ""
    shown = _v(value) if cluster.pod_cidr is not None else f"the default pod CIDR {_v(value)}"
    pod = _parse_cidr(check, "cluster.pod_cidr", value)
    if pod.overlaps(nets.vnet):
        raise check.fail("cluster.pod_cidr", f"{shown} overlaps the VNet {nets.vnet} (network.vnet_cidr)")
    return pod


def _check_service_cidr(config: Config, check: _Checker, nets: _Nets, pod: IPv4Net | None) -> IPv4Net:
    value = config.cluster.service_cidr
    where = "cluster.service_cidr"
    service = _parse_cidr(check, where, value)
    if service.prefixlen < 12:
        raise check.fail(where, f"{_v(value)} is too large: Kubernetes allows at most a /12 service range")
    for subnet_where, subnet in nets.subnets.items():
        if service.overlaps(subnet):
            raise check.fail(where, f"{_v(value)} overlaps {subnet_where} {subnet}")
    if service.overlaps(nets.vnet):
        raise check.fail(where, f"{_v(value)} overlaps the VNet {nets.vnet} (network.vnet_cidr)")
    if pod is not None and service.overlaps(pod):
        raise check.fail(where, f"{_v(value)} overlaps the pod CIDR {pod} (cluster.pod_cidr)")
    for reserved in _AKS_RESERVED_RANGES:
        if service.overlaps(reserved):
            raise check.fail(where, f"{_v(value)} overlaps {reserved}, which AKS reserves")
    return service


def _check_dns_service_ip(value: str, service: IPv4Net, check: _Checker) -> None:
    where = "cluster.dns_service_ip"
    address = _parse_ip(check, where, value)
    if address not in service:
        raise check.fail(where, f"{_v(value)} is outside the service CIDR {service} (cluster.service_cidr)")
    suggestion = service.network_address + 10
    if address == service.network_address:
        raise check.fail(
            where, f"{_v(value)} is the service CIDR's network address; use another, like {suggestion}"
        )
    if address == service.network_address + 1:
        raise check.fail(
            where,
            f"{_v(value)} is the service CIDR's first address, which the kubernetes API service takes; "
            f"use another, like {suggestion}",
        )
    if address == service.broadcast_address:
        raise check.fail(where, f"{_v(value)} is the service CIDR's broadcast address")


def _check_docker_bridge(value: str | None, check: _Checker) -> None:
    if value is None:
        return
    try:
        ipaddress.IPv4Interface(value)  # the seed's form, 172.17.0.1/16, is an address with a prefix
    except ValueError:
        raise check.fail("cluster.docker_bridge_cidr", f"{_v(value)} is not a valid CIDR") from None
    check.warn(
        "cluster.docker_bridge_cidr",
        f"{_v(value)} is accepted but not sent: the AKS API removed docker_bridge_cidr in 2023",
    )


def _check_authorized_ranges(cluster: ClusterSection, check: _Checker) -> None:
    ranges = cluster.authorized_ip_ranges
    if ranges and cluster.private_cluster:
        raise check.fail(
            "cluster.authorized_ip_ranges",
            f"{_v(ranges)}: authorized IP ranges do not apply to a private cluster (its API server has "
            "no public endpoint); remove them or set private_cluster = false",
        )
    if len(ranges) > _MAX_AUTHORIZED_RANGES:
        raise check.fail(
            "cluster.authorized_ip_ranges",
            f"has {len(ranges)} ranges; AKS accepts at most {_MAX_AUTHORIZED_RANGES}",
        )
    seen: dict[IPv4Net, int] = {}
    for index, value in enumerate(ranges):
        where = f"cluster.authorized_ip_ranges[{index}]"
        net = _parse_authorized_range(value, where, check)
        if net in seen:
            raise check.fail(where, f"{_v(value)} repeats cluster.authorized_ip_ranges[{seen[net]}]")
        seen[net] = index


def _parse_authorized_range(value: str, where: str, check: _Checker) -> IPv4Net:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise check.fail(where, f"{_v(value)} is not an IPv4 address or CIDR") from None
    if not isinstance(net, IPv4Net):
        raise check.fail(where, f"{_v(value)} is IPv6; AKS authorized ranges here are IPv4")
    if net.prefixlen == 0:
        raise check.fail(
            where, f"{_v(value)} is refused: authorizing every address defeats the purpose of the ranges"
        )
    if "/" in value and str(net) != value:
        raise check.fail(where, f"{_v(value)} has host bits set; did you mean {_v(str(net))}?")
    return net


def _check_identity(identity: IdentitySection, check: _Checker) -> None:
    sp_only = {
        "client_id": identity.client_id,
        "object_id": identity.object_id,
        "secret_env": identity.secret_env,
    }
    if identity.type == "user-assigned":
        for key, value in sp_only.items():
            if value is not None:
                raise check.fail(
                    f"cluster.identity.{key}",
                    f'{_v(value)} applies only to type "service-principal"; a user-assigned identity '
                    "needs none (the tool creates it)",
                )
        return
    if identity.name is not None:
        raise check.fail(
            "cluster.identity.name",
            f'{_v(identity.name)} names a managed identity; it does not apply to type "service-principal"',
        )
    needs = {
        "client_id": "the service principal's application (client) ID",
        "object_id": "the service principal's object ID",
        "secret_env": "the NAME of the environment variable holding its secret",
    }
    for key, what in needs.items():
        if sp_only[key] is None:
            raise check.fail(f"cluster.identity.{key}", f'is required for type "service-principal": {what}')
    for key in ("client_id", "object_id"):
        if not _GUID.fullmatch(sp_only[key] or ""):
            raise check.fail(f"cluster.identity.{key}", f"{_v(sp_only[key])} is not a GUID ({needs[key]})")
    if not _ENV_NAME.fullmatch(identity.secret_env or ""):
        raise check.fail(
            "cluster.identity.secret_env",
            f"{_v(identity.secret_env)} is not an environment variable name "
            "(letters, digits and underscores, not starting with a digit)",
        )


_RESERVED_HOSTS = {0: "network address", 1: "default gateway", 2: "Azure DNS", 3: "Azure DNS"}


def _check_ingress(config: Config, check: _Checker, nets: _Nets) -> None:
    names: dict[str, int] = {}
    ports: dict[tuple[str, int], int] = {}
    for index, rule in enumerate(config.ingress.dnat):
        where = f"ingress.dnat[{index}]"
        _check_name(check, "rule", rule.name, f"{where}.name")
        if rule.name in names:
            raise check.fail(
                f"{where}.name", f"{_v(rule.name)} is already the name of ingress.dnat[{names[rule.name]}]"
            )
        names[rule.name] = index
        _check_port(check, f"{where}.firewall_port", rule.firewall_port)
        _check_port(check, f"{where}.target_port", rule.target_port)
        key = (rule.protocol, rule.firewall_port)
        if key in ports:
            raise check.fail(
                f"{where}.firewall_port",
                f"{rule.firewall_port}/{rule.protocol} is already used by ingress.dnat[{ports[key]}]",
            )
        ports[key] = index
        _check_dnat_target(rule.target_ip, f"{where}.target_ip", nets.aks, check)


def _check_dnat_target(value: str, where: str, aks: IPv4Net, check: _Checker) -> None:
    address = _parse_ip(check, where, value)
    if address not in aks:
        raise check.fail(
            where,
            f"{_v(value)} is outside the AKS subnet {aks} (network.aks_subnet_cidr); the target must be "
            "an internal load balancer IP in that subnet",
        )
    offset = int(address) - int(aks.network_address)
    reason = _RESERVED_HOSTS.get(offset)
    if address == aks.broadcast_address:
        reason = "broadcast address"
    if reason:
        raise check.fail(where, f"{_v(value)} is reserved by Azure in {aks} ({reason})")


def _check_state(config: Config, check: _Checker) -> None:
    state = config.state
    if not state.directory.strip():
        raise check.fail(
            "state.directory", f"{_v(state.directory)} is empty: name a directory for the local state"
        )
    blob_only = {"account_url": state.account_url, "container": state.container, "blob_name": state.blob_name}
    if state.backend == "local":
        for key, value in blob_only.items():
            if value is not None:
                raise check.fail(f"state.{key}", f'{_v(value)} applies only to backend "blob"')
        return
    if state.account_url is None:
        raise check.fail("state.account_url", 'is required for backend "blob"')
    _check_account_url(state.account_url, check)
    if state.container is None:
        raise check.fail("state.container", 'is required for backend "blob"')
    _check_name(check, "storage_container", state.container, "state.container")
    if state.blob_name is not None and not 1 <= len(state.blob_name) <= 1024:
        raise check.fail("state.blob_name", f"{_v(state.blob_name)} must be 1-1024 characters long")


def _check_account_url(url: str, check: _Checker) -> None:
    match = re.fullmatch(r"https://([^./]+)\.([a-z0-9.]+?)/?", url)
    if not match or match.group(2) not in _BLOB_SUFFIXES:
        raise check.fail(
            "state.account_url",
            f'{_v(url)} is not a blob endpoint (like "https://myaccount.blob.core.windows.net")',
        )
    problem = name_problem("storage_account", match.group(1))
    if problem:
        raise check.fail("state.account_url", f"{_v(url)}: the storage account name {problem}")


# -- Resource names -----------------------------------------------------------------------------------


def _check_name(check: _Checker, kind: ResourceKind, name: str, where: str) -> None:
    problem = name_problem(kind, name)
    if problem:
        raise check.fail(where, f"{_v(name)} is not a valid {RULES[kind].label} name: it {problem}")


def _check_derived_name(
    check: _Checker, kind: ResourceKind, name: str, explicit: str | None, where: str, prefix: str
) -> None:
    # A name the operator wrote is reported on its own field; a derived one on the prefix it came from.
    problem = name_problem(kind, name)
    if not problem:
        return
    label = RULES[kind].label
    if explicit == name:
        raise check.fail(where, f"{_v(name)} is not a valid {label} name: it {problem}")
    source, shown, fix = (
        (where, explicit, "shorten it")
        if explicit is not None
        else ("deployment.prefix", prefix, f"shorten the prefix or set {where}")
    )
    raise check.fail(
        source,
        f"{_v(shown)} gives the {label} name {_v(name)}, which is not valid: it {problem}; {fix}",
    )


def _check_resource_names(config: Config, check: _Checker) -> None:
    net, fw, cl = config.network, config.firewall, config.cluster
    derived: list[tuple[ResourceKind, str, str | None, str]] = [
        ("resource_group", config.resource_group, net.resource_group, "network.resource_group"),
        ("vnet", config.vnet_name, net.vnet_name, "network.vnet_name"),
        ("route_table", config.route_table_name, net.route_table_name, "network.route_table_name"),
        ("firewall", config.firewall_name, fw.name, "firewall.name"),
        ("firewall_policy", config.policy_name, fw.policy_name, "firewall.policy_name"),
        ("ip_config", config.ip_config_name, fw.ip_config_name, "firewall.ip_config_name"),
        ("aks_cluster", config.cluster_name, cl.name, "cluster.name"),
    ]
    # The longest public IP name ("-250" suffix) is the one that can break the length limit.
    ip_names = config.public_ip_names
    derived.append(("public_ip", ip_names[0], fw.public_ip_name, "firewall.public_ip_name"))
    derived.append(("public_ip", ip_names[-1], fw.public_ip_name, "firewall.public_ip_name"))
    if cl.identity.type == "user-assigned":
        derived.append(("managed_identity", config.identity_name, cl.identity.name, "cluster.identity.name"))
    for kind, name, explicit, where in derived:
        _check_derived_name(check, kind, name, explicit, where, config.deployment.prefix)
    _check_dns_prefix(config, check)


def _check_dns_prefix(config: Config, check: _Checker) -> None:
    # The cluster name doubles as the AKS DNS prefix (the API server's FQDN), whose rule is narrower.
    problem = name_problem("aks_dns_prefix", config.dns_prefix)
    if problem:
        where = "cluster.name" if config.cluster.name is not None else "deployment.prefix"
        raise check.fail(
            where,
            f"{_v(config.dns_prefix)} is also the cluster's DNS prefix, which it breaks: it {problem}",
        )

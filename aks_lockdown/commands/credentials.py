"""``credentials CONFIG [--file PATH]``: the cluster's user kubeconfig (``az aks get-credentials``),
written with mode 0600 and never printed."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from aks_lockdown.commands import _common as common
from aks_lockdown.errors import LockdownError


def write_private(path: Path, data: bytes) -> None:
    """Create or replace ``path`` readable by its owner only, from the first byte on (no window in
    which a default umask leaves a kubeconfig world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> int:
    loaded = common.load(args.config)
    config = loaded.config
    directory = common.state_dir(args, config)
    path = Path(args.file) if args.file else directory / f"{config.deployment.name}.kubeconfig"
    with common.target(args, config, directory) as where:
        factory = common.clients(where, args)
        result = factory.containerservice.managed_clusters.list_cluster_user_credentials(
            config.resource_group, config.cluster_name
        )
    kubeconfigs = list(getattr(result, "kubeconfigs", None) or [])
    if not kubeconfigs or not kubeconfigs[0].value:
        raise LockdownError(f"cluster {config.cluster_name}: Azure returned no user kubeconfig")
    value = kubeconfigs[0].value
    write_private(path, value if isinstance(value, bytes) else str(value).encode())
    print(f"wrote {path} (mode 0600)")
    print(f"export KUBECONFIG={path}")
    if config.cluster.private_cluster:
        print("private cluster: the API server answers only from inside the VNet")
    elif config.cluster.authorized_ip_ranges:
        ranges = ", ".join(config.cluster.authorized_ip_ranges)
        print(f"the API server answers only from: {ranges} (and the firewall's public IPs)")
    return 0

"""The emulator's TLS material: a trustme CA and a server certificate for 127.0.0.1/localhost,
generated once into the data dir and reused across restarts (clients keep trusting <data>/ca.pem)."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def ensure_tls(data_dir: Path, extra_names: tuple[str, ...] = ()) -> TlsFiles:
    files = TlsFiles(data_dir / "ca.pem", data_dir / "server-cert.pem", data_dir / "server-key.pem")
    if files.ca.exists() and files.cert.exists() and files.key.exists():
        return files
    import trustme

    ca = trustme.CA(organization_name="aks-lockdown ARM emulator")
    names = ["127.0.0.1", "localhost", "::1", *extra_names]
    server = ca.issue_cert(*names)
    data_dir.mkdir(parents=True, exist_ok=True)
    _write(files.key, server.private_key_pem.bytes(), 0o600)
    _write(files.cert, b"".join(blob.bytes() for blob in server.cert_chain_pems), 0o644)
    # ca.pem last: its presence marks a complete set.
    _write(files.ca, ca.cert_pem.bytes(), 0o644)
    return files


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(files.cert), str(files.key))
    return ctx

"""Helpers of the verify tests: a config deployed by the real Runner and steps on the in-process
emulator, and SDK clients to change Azure behind the tool's back."""

from __future__ import annotations

import base64
import importlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aks_lockdown.config import Config, load_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def not_ready() -> str:
    """Why a deployed world cannot be built yet ("" when it can)."""
    try:
        for module in (
            "aks_lockdown.emulator.containerservice",
            "aks_lockdown.engine.runner",
            "aks_lockdown.pipeline",
        ):
            importlib.import_module(module)
    except Exception as exc:
        return f"emulator, engine or steps not usable yet: {exc}"
    return ""


def load(name: str, **sections: dict[str, Any]) -> Config:
    """A shipped config with sections overridden: load("eastus.toml", firewall={"rules": "classic"})."""
    config = load_config(CONFIG_DIR / name).config
    update = {key: getattr(config, key).model_copy(update=value) for key, value in sections.items()}
    return config.model_copy(update=update)


@dataclass
class Deployed:
    """A config deployed on an emulator, and the SDK clients to change it behind the tool's back."""

    emu: Any
    config: Config
    clients: Any
    outputs: dict[str, dict[str, Any]]

    @property
    def rg(self) -> str:
        return self.config.resource_group

    def verify(self, **kwargs: Any) -> Any:
        from aks_lockdown.verify import run_verify

        # Short in-cluster timeouts: the emulator answers at once, and a blocked curl costs nothing.
        kwargs.setdefault("probe_timeout", 2)
        kwargs.setdefault("inbound_timeout", 5)
        return run_verify(self.config, self.clients, outputs=self.outputs, **kwargs)

    def run_command(self, command: str, files: dict[str, str] | None = None) -> dict[str, Any]:
        """kubectl through AKS run command, as an operator would with `az aks command invoke`."""
        from azure.mgmt.containerservice.models import RunCommandRequest

        request: dict[str, Any] = {"command": command}
        if files:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                for name, text in files.items():
                    archive.writestr(name, text)
            request["context"] = base64.b64encode(buffer.getvalue()).decode("ascii")
        poller = self.clients.containerservice.managed_clusters.begin_run_command(
            self.rg, self.config.cluster_name, RunCommandRequest(request)
        )
        result = poller.result().as_dict()
        return dict(result.get("properties") or result)

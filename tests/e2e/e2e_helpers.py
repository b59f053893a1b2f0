"""The whole pipeline through the real Runner, on the in-process emulator, with the real SDKs over HTTPS."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aks_lockdown.config import Config, load_config
from aks_lockdown.engine.runner import Runner
from aks_lockdown.engine.state import LocalStateStore
from aks_lockdown.pipeline import build_steps

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
DEPLOYMENT_TAG = "aks-lockdown-deployment"


def load(name: str, **sections: dict[str, Any]) -> Config:
    """A shipped config, with sections overridden: load("eastus.toml", firewall={"rules": "classic"})."""
    config = load_config(CONFIG_DIR / name).config
    update = {key: getattr(config, key).model_copy(update=value) for key, value in sections.items()}
    return config.model_copy(update=update)


@dataclass
class Deployment:
    """A config deployed on an emulator: the Runner as the CLI builds it, plus what the tests inspect."""

    emu: Any
    config: Config
    state_dir: Path
    events: list[Any] = field(default_factory=list)

    def runner(self, config: Config | None = None) -> Runner:
        from aks_lockdown.arm.clients import ClientFactory
        from aks_lockdown.arm.errors import classify

        config = config or self.config
        clients = ClientFactory(self.emu.target(cloud=config.azure.cloud), polling_interval=0.05)
        return Runner(
            deployment=config.deployment.name,
            steps=build_steps(config),
            config=config,
            clients=clients,
            store=LocalStateStore(self.state_dir, config.deployment.name),
            sink=self.events.append,
            classify=classify,
            retry_deadline=60,
            poll_interval=0.05,
            state_poll_interval=0.1,
        )

    def world(self) -> dict[str, dict[str, Any]]:
        """Every resource in the emulator, by lower-cased ID."""
        return {r["id"].lower(): r for r in self.emu.world_view()["resources"]}

    def get(self, resource_id: str) -> dict[str, Any] | None:
        return self.world().get(resource_id.lower())

    def tagged(self) -> list[str]:
        name = self.config.deployment.name
        return [rid for rid, r in self.world().items() if (r.get("tags") or {}).get(DEPLOYMENT_TAG) == name]

    def rg_prefix(self) -> str:
        sub = self.emu.subscription_id
        return f"/subscriptions/{sub}/resourceGroups/{self.config.resource_group}".lower()

    def rid(self, provider_type: str, name: str) -> str:
        return f"{self.rg_prefix()}/providers/{provider_type}/{name}".lower()


def now() -> float:
    return time.time()


def writes_since(emu: Any, since: float) -> list[dict[str, Any]]:
    """The writes the emulator logged since ``since``. The workload's check runs `kubectl get svc`
    through AKS run command: a POST that only reads, so it is not counted (nor its token requests)."""
    out = []
    for r in emu.requests(since=since):
        if r["method"] in ("PUT", "PATCH", "DELETE") or (
            r["method"] == "POST"
            and "/runcommand" not in r["path"].lower()
            and "/oauth2/" not in r["path"].lower()
        ):
            out.append(r)
    return out

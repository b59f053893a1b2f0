"""The ARM emulator: a local, stateful Azure Resource Manager the real SDKs talk to over HTTPS."""

from aks_lockdown.emulator.server import Emulator

__all__ = ["Emulator"]

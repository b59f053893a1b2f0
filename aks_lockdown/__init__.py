"""aks_lockdown: an AKS cluster with egress locked down behind Azure Firewall."""

__version__ = "0.1.0"

"""The walkthrough as step objects (installed as aks_lockdown.steps)."""

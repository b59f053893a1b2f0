"""Egress requirements and firewall rules.

- catalog: the seed's tables and today's requirements (catalog.toml), per cloud/edition/feature.
- compiler: config -> neutral RuleSet -> Firewall Policy rule collection groups or classic collections.
- evaluate: effective rules from ARM JSON; does a flow get out? (emulator and `verify`).
- export: table/json/csv/markdown/ARM template output for `aks-lockdown egress`.

Nothing here imports the Azure SDK at module level, and this package imports no submodule, so
`import aks_lockdown.egress.catalog` stays cheap.
"""

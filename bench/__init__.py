"""Benchmarks of aks_lockdown on its ARM emulator: ``python -m bench`` (``make bench``).

Modules: ``seed_replay`` (the seed walkthrough, call for call), ``tool`` (the Runner in process),
``cli_runs`` (the CLI as a subprocess: start-up, plan, SIGKILL and resume), ``critical_path`` (the lower
bound from durations.json), ``throughput`` (GET/s), ``common`` (emulator set-up, counting, result files),
``report`` (the summary table and the README block). Method and figures: docs/benchmarks.md.
"""

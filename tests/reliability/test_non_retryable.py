"""Errors no retry fixes (quota, SKU not offered in the region, missing rights): the run stops with one
line naming Azure's code and the step, the state records the failure, and once the cause is gone the
same command resumes and converges to the world of a clean deploy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rel_harness import DEPLOYMENT, Baseline, normalize_world, state_doc, world_diff, write_config

from aks_lockdown.cli import main

pytestmark = pytest.mark.reliability

# id -> (step, method, path regex, status, Azure code, message): shapes of the real errors.
CASES: dict[str, tuple[str, str, str, int, str, str]] = {
    "quota-exceeded-public-ip": (
        "public_ips",
        "PUT",
        r"/publicIPAddresses/",
        409,
        "QuotaExceeded",
        "Operation could not be completed as it results in exceeding approved StandardPublicIPAddresses "
        "quota. Current Limit: 10, Current Usage: 10.",
    ),
    "sku-not-available-cluster": (
        "cluster",
        "PUT",
        r"/managedClusters/[^/]+$",
        400,
        "SkuNotAvailable",
        "The requested VM size Standard_D2s_v5 is currently not available in location 'eastus'.",
    ),
    "authorization-failed-role-assignment": (
        "identity",
        "PUT",
        r"/roleAssignments/",
        403,
        "AuthorizationFailed",
        "The client does not have authorization to perform action "
        "'Microsoft.Authorization/roleAssignments/write' over scope '/subscriptions/x'.",
    ),
}


def _cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, list[str]]:
    code = main(argv)
    _, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize("case", list(CASES))
def test_non_retryable_error_stops_clearly_then_resumes(
    emu: Any, baseline: Baseline, workdir: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    step, method, path, status, code, message = CASES[case]
    # eastus.toml itself (its two deliberate warnings are allowed on stderr): the baseline is its world.
    config = write_config(workdir)
    argv = ["deploy", str(config), "--arm-endpoint", emu.arm_endpoint, "--ca-bundle", emu.ca_bundle, "--yes"]
    argv.append("--no-verify")
    # Persistent (no count): retrying must not be what makes it go away.
    emu.add_fault(action="error", method=method, path=path, status=status, code=code, message=message)

    exit_code, err = _cli(capsys, argv)

    assert exit_code == 1, err
    errors = [line for line in err if not line.startswith("warning:")]
    assert len(errors) == 1, err
    assert code in errors[0] and f"step {step}" in errors[0], errors[0]
    fired = emu.faults.rules[0].fired
    assert fired == 1, f"a non-retryable error was sent {fired} times"
    recorded = state_doc(workdir / "state").steps[step]
    assert recorded.status == "failed" and recorded.error is not None
    assert recorded.error.code == code

    emu.clear_faults()  # the operator raised the quota / picked another size / got the role
    exit_code, err = _cli(capsys, argv)

    assert exit_code == 0, err
    state = state_doc(workdir / "state", DEPLOYMENT)
    assert state.steps[step].status == "done" and state.steps[step].error is None
    actual = normalize_world(emu)
    assert actual == baseline.world, world_diff(actual, baseline.world)

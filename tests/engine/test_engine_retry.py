"""The step-level retry policy on its own."""

from __future__ import annotations

import random

import pytest
from engine_fakes import CloudError, FakeClock, classify

from aks_lockdown.engine.retry import (
    ErrorInfo,
    RetryPolicy,
    RetryStats,
    backoff,
    call_with_retry,
    classify_nothing,
)
from aks_lockdown.errors import Interrupted


def flaky(errors: list[BaseException], result: str = "ok"):  # type: ignore[no-untyped-def]
    calls = []

    def fn() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    return fn, calls


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(initial=2, maximum=60, jitter=2)
    rng = random.Random(1)
    delays = [backoff(n, policy, None, rng) for n in range(1, 9)]
    for n, delay in enumerate(delays, start=1):
        base = min(60, 2 * 2 ** (n - 1))
        assert base <= delay <= base + 2
    assert backoff(3, policy, ErrorInfo("Throttled", "", True, retry_after=45), rng) >= 45


def test_retries_until_success_and_reports_each_retry() -> None:
    clock = FakeClock()
    fn, calls = flaky([CloudError("AnotherOperationInProgress", retryable=True) for _ in range(3)])
    seen: list[tuple[int, str, float]] = []
    stats = RetryStats()
    out = call_with_retry(
        fn,
        classify=classify,
        sleep=clock.sleep,
        clock=clock,
        on_retry=lambda n, info, d: seen.append((n, info.code, d)),
        stats=stats,
    )
    assert out == "ok" and len(calls) == 4 and stats.attempts == 4
    assert [(n, c) for n, c, _ in seen] == [(i, "AnotherOperationInProgress") for i in (1, 2, 3)]
    assert clock.sleeps == [d for _, _, d in seen]


def test_non_retryable_and_bugs_are_raised_at_once() -> None:
    clock = FakeClock()
    for exc in (CloudError("InvalidParameter"), KeyError("bug"), Interrupted("ctrl-c")):
        fn, calls = flaky([exc])
        with pytest.raises(type(exc)):
            call_with_retry(fn, classify=classify, sleep=clock.sleep, clock=clock)
        assert len(calls) == 1
    fn, calls = flaky([CloudError("Busy", retryable=True)])
    with pytest.raises(CloudError):
        call_with_retry(fn, classify=classify_nothing, sleep=clock.sleep, clock=clock)
    assert clock.sleeps == []


def test_deadline_stops_before_sleeping_past_it() -> None:
    clock = FakeClock()
    fn, calls = flaky([CloudError("Busy", retryable=True) for _ in range(10_000)])
    with pytest.raises(CloudError, match="Busy"):
        call_with_retry(
            fn, classify=classify, policy=RetryPolicy(deadline=300), sleep=clock.sleep, clock=clock
        )
    assert sum(clock.sleeps) <= 300
    assert len(calls) >= 5


def test_retry_after_longer_than_the_deadline_gives_up_immediately() -> None:
    clock = FakeClock()
    fn, calls = flaky([CloudError("Throttled", retryable=True, retry_after=3600)])
    with pytest.raises(CloudError):
        call_with_retry(
            fn, classify=classify, policy=RetryPolicy(deadline=60), sleep=clock.sleep, clock=clock
        )
    assert len(calls) == 1 and clock.sleeps == []


def test_deadline_counts_from_the_first_failure() -> None:
    """A long first attempt (a 20-minute create) does not eat the retry window."""
    clock = FakeClock()
    errors: list[BaseException] = [CloudError("Busy", retryable=True) for _ in range(3)]

    def fn() -> str:
        if len(errors) == 3:
            clock.now += 1200  # the first attempt waited on a long operation
        if errors:
            raise errors.pop(0)
        return "ok"

    assert (
        call_with_retry(
            fn, classify=classify, policy=RetryPolicy(deadline=900), sleep=clock.sleep, clock=clock
        )
        == "ok"
    )

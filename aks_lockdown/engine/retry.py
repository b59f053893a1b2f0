"""Step-level retry: what a cloud error means (the classifier) and how long to keep trying (tenacity).

azure-core already retries transport errors and throttled GET/PUT/DELETE inside each request. This is
the layer above: a whole step (check, then apply) re-run when Azure answers with a code that clears with
time (``AnotherOperationInProgress``, ``PrincipalNotFound``, 429 on a POST, ...). Which codes those are
is the classifier's business (``aks_lockdown.arm.errors.classify``); the engine only sees ``ErrorInfo``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception

from aks_lockdown.errors import LockdownError

T = TypeVar("T")


@dataclass(frozen=True)
class ErrorInfo:
    """A cloud error as the engine needs it."""

    code: str  # Azure's error code, e.g. "AnotherOperationInProgress"
    message: str
    retryable: bool = False
    retry_after: float | None = None  # seconds, from a Retry-After header
    status: int | None = None  # the HTTP status, when there was a response


# None means "not a cloud error": a bug, re-raised as it is.
ErrorClassifier = Callable[[BaseException], ErrorInfo | None]


def classify_nothing(exc: BaseException) -> ErrorInfo | None:
    """A classifier that knows no cloud errors (every exception is a bug)."""
    return None


@dataclass(frozen=True)
class RetryPolicy:
    deadline: float = 900.0  # seconds from the first failure; no retry is scheduled to start after it
    initial: float = 2.0  # first backoff
    maximum: float = 60.0  # backoff cap (a Retry-After longer than this is still honoured)
    jitter: float = 2.0  # up to this many seconds added at random, so parallel runs spread out


def backoff(
    attempt: int, policy: RetryPolicy, info: ErrorInfo | None, rng: random.Random | None = None
) -> float:
    """Seconds to wait before attempt ``attempt + 1``: Retry-After when Azure sent one, else
    exponential with jitter."""
    r = (rng or random).random()
    if info is not None and info.retry_after is not None and info.retry_after > 0:
        return info.retry_after + r * min(policy.jitter, 1.0)
    exp = policy.initial * 2 ** max(attempt - 1, 0)
    return min(policy.maximum, exp) + r * policy.jitter


def is_retryable(exc: BaseException, classify: ErrorClassifier) -> ErrorInfo | None:
    """The error's info when retrying it may help; None otherwise (including our own errors and
    Ctrl-C, which are never retried)."""
    if not isinstance(exc, Exception) or isinstance(exc, LockdownError):
        return None
    info = classify(exc)
    return info if info is not None and info.retryable else None


@dataclass
class RetryStats:
    attempts: int = 0
    waited: float = 0.0


def call_with_retry(
    fn: Callable[[], T],
    *,
    classify: ErrorClassifier,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: Callable[[int, ErrorInfo, float], None] | None = None,
    stats: RetryStats | None = None,
) -> T:
    """Call ``fn`` until it succeeds, a non-retryable error occurs, or the deadline would pass.

    ``on_retry(attempt, info, delay)`` runs before each sleep (the runner emits RetryScheduled). The last
    error is re-raised as it is, so callers classify it once more for their message.
    """
    stats = stats if stats is not None else RetryStats()
    # The deadline runs from the first failure, not the first attempt: a step that waited 14 minutes
    # on a long operation before a retryable error still gets its whole retry window.
    first_failure: list[float] = []

    def wait(rs: RetryCallState) -> float:
        exc = rs.outcome.exception() if rs.outcome else None
        info = classify(exc) if exc is not None else None
        return backoff(rs.attempt_number, policy, info)

    def stop(rs: RetryCallState) -> bool:
        # Our own clock (not tenacity's), so tests with a fake sleep can reach the deadline instantly.
        if not first_failure:
            first_failure.append(clock())
        return clock() - first_failure[0] + rs.upcoming_sleep > policy.deadline

    def before_sleep(rs: RetryCallState) -> None:
        exc = rs.outcome.exception() if rs.outcome else None
        info = classify(exc) if exc is not None else None
        stats.waited += rs.upcoming_sleep
        if on_retry is not None and info is not None:
            on_retry(rs.attempt_number, info, rs.upcoming_sleep)

    retrying = Retrying(
        retry=retry_if_exception(lambda e: is_retryable(e, classify) is not None),
        wait=wait,
        stop=stop,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )

    def attempt() -> T:
        stats.attempts += 1
        return fn()

    return retrying(attempt)

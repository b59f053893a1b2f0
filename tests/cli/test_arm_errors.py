"""The classifier against real azure-core exceptions built from fake HTTP responses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.polling.base_polling import OperationFailed

from aks_lockdown.arm.errors import classify, redact


class FakeResponse:
    """Enough of azure.core's HttpResponse for HttpResponseError: status, reason, headers, text()."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.reason = {200: "OK", 400: "Bad Request", 409: "Conflict", 429: "Too Many Requests"}.get(
            status, "Error"
        )
        self.headers = headers or {}
        self._text = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
        self.content_type = "application/json"

    def text(self, encoding: str | None = None) -> str:
        return self._text


def arm_error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def test_conflict_another_operation_in_progress_is_retryable() -> None:
    body = arm_error(
        "AnotherOperationInProgress", "Another operation on this or dependent resource is in progress."
    )
    info = classify(ResourceExistsError(response=FakeResponse(409, body)))
    assert info is not None
    assert (info.code, info.retryable, info.status) == ("AnotherOperationInProgress", True, 409)
    assert info.message.startswith("Another operation")


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (429, "RetryableErrorDueToAnotherOperation", True),
        (400, "PrincipalNotFound", True),
        (400, "QuotaExceeded", False),
        (409, "SkuNotAvailable", False),
        (403, "AuthorizationFailed", False),
        (403, "LinkedAuthorizationFailed", False),
        (400, "InvalidParameter", False),
        (400, "InvalidUserDefinedRoutingWithLoadBalancerProfile", False),
        (500, "QuotaExceeded", False),  # the code wins over a 5xx status
        (400, "SomethingNew", False),
        (503, "SomethingNew", True),
    ],
)
def test_codes(status: int, code: str, retryable: bool) -> None:
    info = classify(HttpResponseError(response=FakeResponse(status, arm_error(code, "text"))))
    assert info is not None
    assert (info.code, info.retryable, info.status) == (code, retryable, status)


def test_429_on_post_with_retry_after_seconds() -> None:
    # azure-core never retries 429 on POST: the step-level retry must, after Retry-After.
    response = FakeResponse(429, arm_error("TooManyRequests", "throttled"), {"Retry-After": "17"})
    info = classify(HttpResponseError(response=response))
    assert info is not None
    assert info.retryable and info.retry_after == 17.0


def test_429_without_a_body_or_code() -> None:
    info = classify(HttpResponseError(response=FakeResponse(429, "", {"retry-after-ms": "1500"})))
    assert info is not None
    assert (info.code, info.retryable, info.retry_after) == ("TooManyRequests", True, 1.5)


def test_retry_after_as_an_http_date_in_the_past_is_zero() -> None:
    response = FakeResponse(503, "", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    info = classify(HttpResponseError(response=response))
    assert info is not None and info.retry_after == 0.0


def test_operation_failed_with_retryable_code_on_a_200_poll() -> None:
    # What LROBasePolling raises when the operation status ends Failed: the poll answered 200.
    body = {"status": "Failed", "error": {"code": "InternalServerError", "message": "An error occurred."}}
    exc = HttpResponseError(
        response=FakeResponse(200, body), error=OperationFailed("Operation failed or canceled")
    )
    info = classify(exc)
    assert info is not None
    assert (info.code, info.retryable, info.status) == ("InternalServerError", True, 200)


def test_operation_failed_with_a_permanent_nested_aks_code() -> None:
    body = {
        "status": "Failed",
        "error": {
            "code": "ResourceOperationFailure",
            "message": "The resource operation completed with terminal provisioning state 'Failed'.",
            "details": [
                {
                    "code": "OutboundConnFailVMExtensionError",
                    "message": "VM has reported a failure processing extension 'vmssCSE'. exit status=50",
                }
            ],
        },
    }
    info = classify(HttpResponseError(response=FakeResponse(200, body), error=OperationFailed("failed")))
    assert info is not None
    assert info.code == "OutboundConnFailVMExtensionError"
    assert "exit status=50" in info.message
    assert not info.retryable


def test_generic_conflict_wrapping_a_retryable_detail() -> None:
    body = arm_error(
        "Conflict", "see details", details=[{"code": "AnotherOperationInProgress", "message": "busy"}]
    )
    info = classify(ResourceExistsError(response=FakeResponse(409, body)))
    assert info is not None
    assert (info.code, info.message, info.retryable) == ("AnotherOperationInProgress", "busy", True)


def test_not_found_is_not_retryable() -> None:
    body = arm_error("ResourceNotFound", "The Resource 'x' was not found.")
    info = classify(ResourceNotFoundError(response=FakeResponse(404, body)))
    assert info is not None
    assert (info.code, info.retryable) == ("ResourceNotFound", False)


def test_transport_errors_are_retryable_but_tls_is_not() -> None:
    info = classify(ServiceRequestError("Connection refused"))
    assert info is not None and info.retryable and info.code == "ConnectionError"
    info = classify(ServiceResponseError("Connection reset by peer"))
    assert info is not None and info.retryable
    tls = classify(ServiceRequestError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"))
    assert tls is not None and not tls.retryable and tls.code == "TLSError"


def test_not_an_azure_error() -> None:
    assert classify(ValueError("bug")) is None
    assert classify(KeyboardInterrupt()) is None


def test_non_json_body() -> None:
    info = classify(HttpResponseError(response=FakeResponse(502, "<html>Bad Gateway</html>")))
    assert info is not None
    assert (info.code, info.retryable, info.status) == ("BadGateway", True, 502)
    assert "\n" not in info.message


def test_secrets_never_in_messages() -> None:
    text = (
        "token request failed: client_secret=s3cr3t-value&grant_type=client_credentials "
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc sig=AbCdEf%3D password: hunter2"
    )
    info = classify(HttpResponseError(response=FakeResponse(400, arm_error("InvalidParameter", text))))
    assert info is not None
    for secret in ("s3cr3t-value", "eyJhbGciOiJIUzI1NiJ9", "AbCdEf", "hunter2"):
        assert secret not in info.message
    assert "client_secret=***" in redact("client_secret=abc")


def test_message_is_one_line_and_bounded() -> None:
    info = classify(
        HttpResponseError(response=FakeResponse(400, arm_error("InvalidParameter", "a\nb\n" * 5000)))
    )
    assert info is not None
    assert "\n" not in info.message and len(info.message) <= 4000

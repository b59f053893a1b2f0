"""Turn what the Azure SDK raises into the engine's ``ErrorInfo``: Azure's code, a one-line message,
whether retrying can help, and how long Azure asked us to wait.

azure-core's own RetryPolicy already retries transport errors and 408/429/5xx on idempotent methods;
what reaches this classifier is what it gave up on or never retries: 429 on POST, 409
``AnotherOperationInProgress`` from the Network RP, ``PrincipalNotFound`` while Entra ID replicates a new
identity, and long operations that *finished* Failed with a transient code (the operation status poll
answers 200, so only the code in its body tells).

Messages never carry secrets: bodies are reduced to Azure's code and message, and anything that looks
like a token, a signature or a password is redacted.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

try:
    from aks_lockdown.engine.retry import ErrorInfo
except ImportError:  # the engine not there yet: the agreed shape
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class ErrorInfo:  # type: ignore[no-redef]
        code: str
        message: str
        retryable: bool
        retry_after: float | None = None
        status: int | None = None


__all__ = ["NON_RETRYABLE_CODES", "RETRYABLE_CODES", "ErrorInfo", "classify", "redact"]

# Azure codes for which waiting and sending the same request again is the fix.
RETRYABLE_CODES = frozenset(
    {
        "AnotherOperationInProgress",  # Network RP: a write is still running on the resource
        "RetryableErrorDueToAnotherOperation",
        "OperationPreempted",
        "PrincipalNotFound",  # a new identity not yet replicated to the directory
        "ReferencedResourceNotProvisioned",  # e.g. a subnet whose VNet is still Updating
        "Conflict",  # ARM's generic operation conflict (details, when present, decide)
        "TooManyRequests",
        "SubscriptionRequestsThrottled",
        "ResourceGroupBeingDeleted",
        "InternalServerError",
        "InternalOperationError",
        "ServerBusy",
        "ServerTimeout",
        "ServiceUnavailable",
        "GatewayTimeout",
        "RequestTimeout",
        "OperationTimedOut",
        # Teardown ordering races: the dependent resource is still being deleted.
        "InUseSubnetCannotBeDeleted",
        "InUseRouteTableCannotBeDeleted",
        "PublicIPAddressInUse",
        "InUseNetworkSecurityGroupCannotBeDeleted",
        "CannotDeleteResource",
    }
)

# Codes that no amount of waiting fixes: the operator (or the config) must change something. They win
# over the HTTP status (a 500 wrapping a quota error is still a quota error).
NON_RETRYABLE_CODES = frozenset(
    {
        "QuotaExceeded",
        "OperationNotAllowed",  # AKS/compute quota
        "SkuNotAvailable",
        "AuthorizationFailed",
        "LinkedAuthorizationFailed",
        "AuthenticationFailed",
        "InvalidAuthenticationToken",
        "InvalidParameter",
        "InvalidRequestContent",
        "InvalidTemplate",
        "InvalidResourceName",
        "InvalidResourceReference",
        "BadRequest",
        "OutboundConnFailVMExtensionError",  # AKS nodes could not reach required egress endpoints
        "VMExtensionProvisioningError",
        "InvalidUserDefinedRoutingWithLoadBalancerProfile",
        "RoleAssignmentExists",  # the step resolves this one itself; retrying the PUT never will
        "MissingSubscriptionRegistration",
        "SubscriptionNotFound",
        "LocationNotAvailableForResourceType",
        "NoRegisteredProviderFound",
        "RequestDisallowedByPolicy",
        "NetcfgSubnetRangeOutsideVnet",
        "NetcfgInvalidSubnet",
        "InvalidCIDRNotation",
        "ResourceNotFound",
        "ResourceGroupNotFound",
        "ParentResourceNotFound",
    }
)

# Wrapper codes that say nothing by themselves: the first detail tells what really happened.
_GENERIC_CODES = frozenset(
    {
        "DeploymentFailed",
        "ResourceDeploymentFailure",
        "ResourceOperationFailure",
        "OperationFailed",
        "Failed",
        "Conflict",
        "BadRequest",
        "InternalServerError",
    }
)

_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Azure's message is the operator's only clue, and the telling part is often at its end: AKS's
# OutboundConnFailVMExtensionError names the endpoint the nodes could not reach (packages.aks.azure.com
# ...) after a paragraph of links and extension output. Keep it whole up to a generous bound; past it,
# keep the head (what failed) and the tail (why), dropping the middle.
_MAX_MESSAGE = 4000
_ELLIPSIS = " … "
_HEAD_SHARE = 0.4

_SECRET_PATTERNS = (
    # bearer tokens and JWTs
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer ***"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "***"),
    # SAS signatures and secret-ish query/body fields
    (
        re.compile(
            r"(?i)\b(sig|client_secret|secret|password|access_token|refresh_token|"
            r"client_assertion|sharedkey|accountkey)(\s*[=:]\s*\"?)([^\s&\"',;]+)"
        ),
        r"\1\2***",
    ),
)


def redact(text: str) -> str:
    """Mask anything that looks like a credential; also used by the ``-v`` HTTP log filter."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _one_line(text: str) -> str:
    """One line, redacted, at most ``_MAX_MESSAGE`` characters: the head and the tail when cut."""
    text = redact(" ".join(str(text).split()))
    if len(text) <= _MAX_MESSAGE:
        return text
    room = _MAX_MESSAGE - len(_ELLIPSIS)
    head = int(room * _HEAD_SHARE)
    return text[:head].rstrip() + _ELLIPSIS + text[len(text) - (room - head) :].lstrip()


def classify(exc: BaseException) -> ErrorInfo | None:
    """Azure's view of ``exc``, or None when it is not an Azure error (then it is a bug: do not retry)."""
    try:
        from azure.core import exceptions as core
    except ImportError:  # pragma: no cover - the SDK is a hard dependency
        return None

    if isinstance(exc, core.HttpResponseError):
        return _classify_http(exc)
    if isinstance(exc, (core.ServiceRequestError, core.ServiceResponseError)):
        message = _one_line(getattr(exc, "message", "") or str(exc))
        if "CERTIFICATE_VERIFY_FAILED" in message or "SSLError" in message:
            # A wrong CA bundle does not heal by waiting.
            return ErrorInfo(code="TLSError", message=message, retryable=False, retry_after=None, status=None)
        code = "ConnectionError" if isinstance(exc, core.ServiceRequestError) else "ResponseError"
        return ErrorInfo(code=code, message=message, retryable=True, retry_after=None, status=None)
    if isinstance(exc, core.AzureError):
        # azure-identity's CredentialUnavailableError and ClientAuthenticationError land here or above.
        name = type(exc).__name__
        code = "CredentialUnavailable" if "Credential" in name else name
        message = _one_line(getattr(exc, "message", "") or str(exc))
        return ErrorInfo(code=code, message=message, retryable=False, retry_after=None, status=None)
    return None


def _classify_http(exc: Any) -> ErrorInfo:
    status: int | None = exc.status_code
    body = _body_json(exc.response)
    error = body.get("error") if isinstance(body.get("error"), Mapping) else body
    top_code = (getattr(exc.error, "code", None) if exc.error else None) or _str(error.get("code"))
    top_message = (getattr(exc.error, "message", None) if exc.error else None) or _str(error.get("message"))

    codes = [c for c in (top_code, *(_str(d.get("code")) for d in _details(error))) if c]
    code, message = top_code, top_message
    if (not code or code in _GENERIC_CODES) and (detail := _first_detail(error)) is not None:
        # "Conflict: see details" says nothing; the detail is the real error the operator must see.
        code = _str(detail.get("code")) or code
        message = _str(detail.get("message")) or message
    if not code:
        code = _status_code_name(status, exc)
    if not message:
        message = getattr(exc, "reason", None) or exc.message or code

    if any(c in NON_RETRYABLE_CODES for c in codes):
        retryable = False
    elif any(c in RETRYABLE_CODES for c in codes):
        retryable = True
    else:
        # An operation that finished Failed comes back on a 200 poll: only its code could say "retry".
        retryable = status in _RETRYABLE_STATUS

    return ErrorInfo(
        code=code,
        message=_one_line(message),
        retryable=retryable,
        retry_after=_retry_after(exc.response),
        status=status,
    )


def _status_code_name(status: int | None, exc: Any) -> str:
    names = {
        400: "BadRequest",
        401: "AuthenticationFailed",
        403: "AuthorizationFailed",
        404: "NotFound",
        408: "RequestTimeout",
        409: "Conflict",
        429: "TooManyRequests",
        500: "InternalServerError",
        502: "BadGateway",
        503: "ServiceUnavailable",
        504: "GatewayTimeout",
    }
    if status in names:
        return names[status]
    return f"HTTP{status}" if status else type(exc).__name__


def _body_json(response: Any) -> dict[str, Any]:
    if response is None:
        return {}
    try:
        import json

        data = json.loads(response.text())
    except Exception:
        return {}
    return data if isinstance(data, dict) else {}


def _details(error: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every nested detail, depth first (AKS nests the VM extension error two levels down)."""
    for detail in error.get("details") or ():
        if isinstance(detail, Mapping):
            yield detail
            yield from _details(detail)


def _first_detail(error: Mapping[str, Any]) -> Mapping[str, Any] | None:
    # The innermost specific one: generic wrappers inside details are skipped too.
    fallback = None
    for detail in _details(error):
        code = _str(detail.get("code"))
        if code and code not in _GENERIC_CODES:
            return detail
        fallback = fallback or detail
    return fallback


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _retry_after(response: Any) -> float | None:
    """Seconds from ``retry-after-ms``, ``x-ms-retry-after-ms`` or ``Retry-After`` (seconds or a date)."""
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / 1000)
            except ValueError:
                pass
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())

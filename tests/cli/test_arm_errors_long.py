"""Long Azure messages survive classification: AKS's OutboundConnFailVMExtensionError names the blocked
endpoint at the very end of a long message, so it is kept whole up to a generous bound, and when it must
be cut the head and the tail stay. Built from real azure-core responses (requests transport) and from a
real SDK long-running operation that finishes Failed on the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import HttpRequest, RequestsTransportResponse

from aks_lockdown.arm.errors import _MAX_MESSAGE, classify

ENDPOINT = "packages.aks.azure.com:443"
# What AKS says (the wording of the emulator and of learn.microsoft.com's troubleshooting page), padded
# with the extension output AKS includes before the endpoint.
HEAD = (
    "Unable to establish outbound connection from agents, please see "
    "https://learn.microsoft.com/en-us/troubleshoot/azure/azure-kubernetes/"
    "error-code-outboundconnfailvmextensionerror and https://aka.ms/aks-required-ports-and-addresses "
    "for more information. Details: VM has reported a failure when processing extension 'vmssCSE' "
    "(publisher 'Microsoft.Azure.Extensions' and type 'CustomScript'). Error message: \"Enable failed: "
    'failed to execute command: command terminated with exit status=50". '
)
TAIL = f"The nodes' outbound connectivity check failed; blocked endpoint: {ENDPOINT} (no rule allows it)."


def output(lines: int) -> str:
    return " ".join(
        f"[stdout] line {i}: curl --connect-timeout 10 https://mcr.microsoft.com" for i in range(lines)
    )


def http_error(status: int, body: dict[str, Any]) -> HttpResponseError:
    raw = requests.Response()
    raw.status_code = status
    raw.reason = "Bad Request"
    raw.headers["Content-Type"] = "application/json"
    raw._content = json.dumps(body).encode()
    request = HttpRequest("PUT", "https://management.azure.com/subscriptions/x/resourceGroups/rg")
    return HttpResponseError(response=RequestsTransportResponse(request, raw))


def failed_cluster(message: str) -> HttpResponseError:
    """The body of a cluster create that finished Failed: AKS nests the real error in details."""
    return http_error(
        400,
        {
            "error": {
                "code": "ResourceOperationFailure",
                "message": "The resource operation completed with terminal provisioning state 'Failed'.",
                "details": [{"code": "OutboundConnFailVMExtensionError", "message": message}],
            }
        },
    )


def test_a_message_past_the_old_600_characters_is_kept_whole() -> None:
    message = HEAD + output(12) + " " + TAIL
    assert 1000 < len(message) < _MAX_MESSAGE
    info = classify(failed_cluster(message))
    assert info is not None
    assert info.code == "OutboundConnFailVMExtensionError" and not info.retryable
    assert info.message == message
    assert info.message.endswith(TAIL) and ENDPOINT in info.message


def test_a_message_past_the_bound_keeps_head_and_tail() -> None:
    message = HEAD + output(200) + " " + TAIL
    assert len(message) > 3 * _MAX_MESSAGE
    info = classify(failed_cluster(message))
    assert info is not None
    assert len(info.message) <= _MAX_MESSAGE and "\n" not in info.message
    assert info.message.startswith(HEAD.strip()[:200])  # what failed
    assert info.message.endswith(TAIL)  # and where: the blocked endpoint
    assert " … " in info.message


def test_the_bound_is_generous() -> None:
    assert _MAX_MESSAGE >= 4000


def test_long_operation_failed_on_the_emulator(tmp_path: Path) -> None:
    """A real LRO poll answering Failed with a long message: the SDK's exception classifies whole."""
    from aks_lockdown.arm.clients import ClientFactory
    from aks_lockdown.emulator import Emulator

    message = HEAD + output(12) + " " + TAIL
    with Emulator(data_dir=tmp_path / "emu", profile="fast") as emu:
        azure = ClientFactory(emu.target(), polling_interval=0.05)
        azure.resource.resource_groups.create_or_update("rg", {"location": "eastus"})
        emu.add_fault(
            action="fail_operation",
            method="PUT",
            path="/virtualNetworks/vnet",
            count=1,
            code="OutboundConnFailVMExtensionError",
            message=message,
        )
        body = {"location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}
        with pytest.raises(HttpResponseError) as err:
            azure.network.virtual_networks.begin_create_or_update("rg", "vnet", body).result()
    info = classify(err.value)
    assert info is not None
    assert info.code == "OutboundConnFailVMExtensionError" and not info.retryable
    assert info.message.endswith(TAIL)

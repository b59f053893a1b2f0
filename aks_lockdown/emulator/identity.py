"""Just enough of Microsoft Entra ID for ClientSecretCredential: openid-configuration, the token
endpoint (client credentials, any tenant) and the ARM-side bearer check."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from aks_lockdown.emulator.framework import ArmError

TOKEN_LIFETIME = 3599


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def openid_configuration(base_url: str, tenant: str) -> dict[str, Any]:
    root = f"{base_url}/{tenant}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{root}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base_url}/oidc/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid"],
        "kerberos_endpoint": f"{root}/kerberos",
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def issue_token(base_url: str, tenant: str, form_body: bytes) -> tuple[int, dict[str, Any]]:
    form = {k: v[0] for k, v in parse_qs(form_body.decode(errors="replace")).items()}
    if form.get("grant_type") != "client_credentials" or not form.get("client_id"):
        return 400, {
            "error": "invalid_request",
            "error_description": "AADSTS900144: The request body must contain the following parameter: "
            "'grant_type' (client_credentials) and 'client_id'.",
            "error_codes": [900144],
        }
    now = int(time.time())
    scope = form.get("scope", "https://management.azure.com/.default")
    claims = {
        "aud": scope.removesuffix("/.default"),
        "iss": f"{base_url}/{tenant}/",
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME,
        "appid": form["client_id"],
        "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{form['client_id']}")),
        "tid": tenant,
        "ver": "1.0",
    }
    # Unsigned ("alg": "none"): nothing verifies signatures here; the shape is what clients read.
    token = f"{_b64({'typ': 'JWT', 'alg': 'none'})}.{_b64(claims)}.emulator"
    return 200, {
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME,
        "ext_expires_in": TOKEN_LIFETIME,
        "access_token": token,
    }


def check_bearer(authorization: str | None, tenant: str) -> dict[str, Any]:
    """Claims of a token this emulator issued, else the 401 ARM sends."""
    challenge = (
        f'Bearer authorization_uri="https://login.windows.net/{tenant}", error="invalid_token", '
        "error_description=\"The authentication failed because of missing 'Authorization' header.\""
    )
    if not authorization:
        raise ArmError(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            headers={"WWW-Authenticate": challenge},
        )
    scheme, _, token = authorization.partition(" ")
    try:
        if scheme.lower() != "bearer":
            raise ValueError(scheme)
        payload = token.split(".")[1]
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if float(claims["exp"]) < time.time():
            raise ArmError(
                401,
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
                headers={
                    "WWW-Authenticate": challenge.replace("missing 'Authorization' header", "expired token")
                },
            )
        return claims
    except ArmError:
        raise
    except Exception:
        raise ArmError(
            401,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
            headers={
                "WWW-Authenticate": challenge.replace("missing 'Authorization' header", "invalid token")
            },
        ) from None

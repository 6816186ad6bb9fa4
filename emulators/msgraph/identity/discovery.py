"""OpenID Connect discovery documents, shaped like login.microsoftonline.com's v2.0 ones."""

from __future__ import annotations

from typing import Any

from emulators.msgraph.directory import Tenant

# The `{tenant}` segments that are not one tenant: multi-tenant authorities.
MULTI_TENANT_SEGMENTS = frozenset({"common", "organizations", "consumers"})


def openid_configuration(base_url: str, segment: str, tenant: Tenant | None) -> dict[str, Any]:
    """`/{tenant}/v2.0/.well-known/openid-configuration`.

    For a tenant id or domain the endpoints carry the tenant id; for common/organizations/
    consumers they keep the segment and the issuer has the literal `{tenantid}` placeholder,
    as Microsoft's do.
    """
    base = base_url.rstrip("/")
    if tenant is not None:
        path_segment, issuer = tenant.id, f"{base}/{tenant.id}/v2.0"
    else:
        path_segment, issuer = segment.lower(), f"{base}/{{tenantid}}/v2.0"
    oauth = f"{base}/{path_segment}/oauth2/v2.0"
    return {
        "token_endpoint": f"{oauth}/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/{path_segment}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "authorization_endpoint": f"{oauth}/authorize",
        "device_authorization_endpoint": f"{oauth}/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{oauth}/logout",
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "email",
            "oid",
        ],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }


def instance_discovery(base_url: str, authorization_endpoint: str) -> dict[str, Any]:
    """`/common/discovery/instance`: what MSAL asks to validate an authority it doesn't know."""
    host = base_url.split("://", 1)[-1].rstrip("/")
    # The tenant segment of the asked authorization endpoint: https://host/{tenant}/oauth2/...
    path = authorization_endpoint.split("://", 1)[-1].split("/")
    tenant = path[1] if len(path) > 1 and path[1] else "common"
    return {
        "tenant_discovery_endpoint": (
            f"{base_url.rstrip('/')}/{tenant}/v2.0/.well-known/openid-configuration"
        ),
        "api-version": "1.1",
        "metadata": [
            {"preferred_network": host, "preferred_cache": host, "aliases": [host]},
        ],
    }

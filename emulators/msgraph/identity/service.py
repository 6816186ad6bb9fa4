"""IdentityService: the identity platform's state and rules (apps, codes, tokens, consent).

HTTP endpoints (routes.py) stay thin; everything time-dependent reads the emulator clock.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt

from emulators.msgraph.clock import Clock
from emulators.msgraph.directory import Directory, Tenant, User
from emulators.msgraph.errors import InvalidToken
from emulators.msgraph.identity.errors import IdentityError
from emulators.msgraph.identity.keys import SigningKey
from emulators.msgraph.identity.models import (
    AppRegistration,
    AuthorizationCode,
    RefreshTokenRecord,
)
from emulators.msgraph.identity.scopes import (
    OIDC_SCOPES,
    contains,
    resource_scopes,
    short_name,
    split_scopes,
)
from emulators.msgraph.identity.tokens import (
    GRAPH_APP_ID,
    decode_access_token,
    encode_access_token,
    encode_id_token,
)
from emulators.msgraph.principal import Principal

# The app id `mint_access_token` uses when a test does not care which app calls.
DEFAULT_CLIENT_ID = "5c7b2f60-3f4e-4b7a-9a55-e1a0c0de0001"

__all__ = ["DEFAULT_CLIENT_ID", "GRAPH_APP_ID", "IdentityService", "TokenSettings"]


@dataclass
class TokenSettings:
    """Lifetimes; Entra's defaults are ~60-90 min access tokens and 90-day refresh tokens."""

    access_token: timedelta = timedelta(hours=1)
    id_token: timedelta = timedelta(hours=1)
    authorization_code: timedelta = timedelta(minutes=10)
    refresh_token: timedelta = timedelta(days=90)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def pkce_s256(verifier: str) -> str:
    """RFC 7636 S256 code challenge of a verifier."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


class IdentityService:
    """Implements `AccessTokenVerifier` for the Graph side (`state.token_verifier`)."""

    def __init__(
        self,
        clock: Clock,
        directory: Directory,
        base_url: Callable[[], str],
        key: SigningKey | None = None,
    ) -> None:
        self._clock = clock
        self._directory = directory
        self._base_url = base_url
        self.key = key or SigningKey.shared()
        self.settings = TokenSettings()
        self.apps: dict[str, AppRegistration] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._refresh: dict[str, RefreshTokenRecord] = {}

    # --- app registrations -------------------------------------------------------------------

    def register_app(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        redirect_uris: Iterable[str] = (),
        display_name: str = "SMVue",
        api_permissions: Iterable[str] | None = None,
    ) -> AppRegistration:
        app = AppRegistration(
            client_id=client_id or str(uuid.uuid4()),
            client_secret=client_secret or secrets.token_urlsafe(30),
            redirect_uris=list(redirect_uris),
            display_name=display_name,
        )
        if api_permissions is not None:
            app.api_permissions = list(api_permissions)
        self.apps[app.client_id] = app
        return app

    def app_for_authorize(self, client_id: str, redirect_uri: str, tenant: str) -> AppRegistration:
        """Unknown app → AADSTS700016; unregistered redirect URI → AADSTS50011."""
        app = self.apps.get(client_id)
        if app is None:
            raise IdentityError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You may "
                "have sent your authentication request to the wrong tenant.",
            )
        if redirect_uri not in app.redirect_uris:
            raise IdentityError(
                "invalid_request",
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                f"redirect URIs configured for the application '{client_id}'. Make sure the "
                "redirect URI sent in the request matches one added to your application in the "
                "Azure portal.",
            )
        return app

    def authenticate_client(self, client_id: str, client_secret: str | None) -> AppRegistration:
        """Confidential client authentication at the token endpoint."""
        app = self.apps.get(client_id)
        if app is None:
            raise IdentityError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if not client_secret:
            raise IdentityError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
                status=401,
            )
        if not secrets.compare_digest(client_secret, app.client_secret):
            raise IdentityError(
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                f"the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
                status=401,
            )
        return app

    # --- consent -----------------------------------------------------------------------------

    def grantable(self, tenant: Tenant, app: AppRegistration, asked: Iterable[str]) -> list[str]:
        """The asked scopes the tenant lets users grant (`.default` expands to the app's set)."""
        expanded: list[str] = []
        for scope in asked:
            if short_name(scope) == ".default":
                expanded.extend(app.api_permissions)
                expanded.extend(s for s in ("openid", "profile") if s in asked)
            else:
                expanded.append(scope)
        allowed = tenant.policy.grantable_scopes
        granted: list[str] = []
        for scope in split_scopes(expanded):
            always = scope.lower() in OIDC_SCOPES - {"offline_access"}
            if allowed is None or always or contains(allowed, scope):
                granted.append(scope)
        return granted

    # --- authorization codes -----------------------------------------------------------------

    def issue_code(
        self,
        *,
        client_id: str,
        user_id: str,
        redirect_uri: str,
        scopes: list[str],
        code_challenge: str | None,
        code_challenge_method: str | None,
        nonce: str | None,
    ) -> str:
        code = secrets.token_urlsafe(48)
        self._codes[_hash(code)] = AuthorizationCode(  # stored hashed, like refresh tokens
            client_id=client_id,
            user_id=user_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            expires_at=self._clock.now() + self.settings.authorization_code,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            nonce=nonce,
        )
        return code

    def redeem_code(
        self, *, code: str, client_id: str, redirect_uri: str | None, code_verifier: str | None
    ) -> dict[str, Any]:
        record = self._codes.get(_hash(code))
        if record is None or record.client_id != client_id:
            raise IdentityError(
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            )
        if record.used:
            raise IdentityError(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid "
                "code or use an existing refresh token.",
            )
        record.used = True
        if self._clock.now() >= record.expires_at:
            raise IdentityError(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to "
                "inactivity. Send a new interactive authorization request for this user and "
                "resource.",
            )
        if redirect_uri != record.redirect_uri:
            raise IdentityError(
                "invalid_grant",
                500112,
                f"The reply address '{redirect_uri}' does not match the reply address "
                f"'{record.redirect_uri}' provided when requesting Authorization code.",
            )
        if record.code_challenge is not None:
            if not code_verifier:
                raise IdentityError(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                )
            expected = (
                pkce_s256(code_verifier)
                if (record.code_challenge_method or "plain").upper() == "S256"
                else code_verifier
            )
            if not secrets.compare_digest(expected, record.code_challenge):
                raise IdentityError(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                )
        user = self._user(record.user_id)
        return self._token_response(user, client_id, record.scopes, nonce=record.nonce)

    # --- refresh tokens ----------------------------------------------------------------------

    def redeem_refresh_token(
        self, *, refresh_token: str, client_id: str, scope: str | None
    ) -> dict[str, Any]:
        record = self._refresh.get(_hash(refresh_token))
        if record is None or record.client_id != client_id:
            raise IdentityError(
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            )
        if record.revoked:
            raise IdentityError(
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is "
                "needed. The user might have changed or reset their password.",
            )
        if self._clock.now() >= record.expires_at:
            raise IdentityError(
                "invalid_grant",
                700082,
                "The refresh token has expired due to inactivity. The token was issued on "
                "an earlier date and was inactive for longer than its lifetime.",
            )
        user = self._user(record.user_id)
        if self._directory.tenant_of(user).policy.conditional_access_block:
            raise IdentityError(
                "interaction_required",
                53003,
                "Access has been blocked by Conditional Access policies. The access policy does "
                "not allow token issuance.",
            )
        asked = split_scopes(scope) or list(record.scopes)
        missing = [
            s
            for s in resource_scopes(asked)
            if short_name(s) != ".default" and not contains(record.scopes, s)
        ]
        if missing:
            raise IdentityError(
                "invalid_grant",
                65001,
                f"The user or administrator has not consented to use the application with ID "
                f"'{client_id}'. Send an interactive authorization request for this user and "
                "resource.",
            )
        record.revoked = True  # rotation: the used token stops working
        granted = [s for s in record.scopes if s.lower() in OIDC_SCOPES or contains(asked, s)]
        if not resource_scopes(asked) or any(short_name(s) == ".default" for s in asked):
            granted = list(record.scopes)
        elif contains(record.scopes, "offline_access") and not contains(granted, "offline_access"):
            granted.append("offline_access")
        return self._token_response(user, client_id, granted, nonce=None)

    def revoke_refresh_tokens(self, user_id: str, client_id: str | None = None) -> int:
        """Like revokeSignInSessions: the user's refresh tokens (for one app) stop working."""
        count = 0
        for record in self._refresh.values():
            wanted = client_id is None or record.client_id == client_id
            if record.user_id == user_id and wanted and not record.revoked:
                record.revoked = True
                count += 1
        return count

    # --- tokens ------------------------------------------------------------------------------

    def mint_access_token(
        self,
        user_id: str,
        scopes: str | Iterable[str] = ("Calendars.ReadWrite",),
        client_id: str = DEFAULT_CLIENT_ID,
    ) -> str:
        """A Graph access token for a user, without a browser (tests, control API)."""
        user = self._user(user_id)
        return encode_access_token(
            self.key,
            base_url=self._base_url(),
            user=user,
            tenant=self._directory.tenant_of(user),
            client_id=client_id,
            scopes=resource_scopes(split_scopes(scopes)),
            now=self._clock.now(),
            lifetime=self.settings.access_token,
        )

    def verify(self, token: str) -> Principal:
        """AccessTokenVerifier: signature, audience, expiry (emulator clock), known user."""
        try:
            claims = decode_access_token(self.key, token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("Access token validation failure. Invalid audience.") from exc
        if int(claims.get("exp", 0)) <= int(self._clock.now().timestamp()):
            raise InvalidToken("Lifetime validation failed, the token is expired.")
        user = self._directory.users.get(str(claims.get("oid", "")))
        if user is None or user.tenant_id != claims.get("tid"):
            raise InvalidToken("Access token validation failure.")
        return Principal(
            user_id=user.id,
            tenant_id=user.tenant_id,
            client_id=str(claims.get("appid", "")),
            scopes=frozenset(str(claims.get("scp", "")).split()),
        )

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.jwk()]}

    def _user(self, user_id: str) -> User:
        user = self._directory.find_user(user_id)
        if user is None:
            raise KeyError(f"unknown user {user_id}")
        return user

    def _token_response(
        self, user: User, client_id: str, scopes: list[str], *, nonce: str | None
    ) -> dict[str, Any]:
        tenant = self._directory.tenant_of(user)
        now = self._clock.now()
        graph_scopes = resource_scopes(scopes)
        lifetime = self.settings.access_token
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(
                [s for s in scopes if s.lower() not in OIDC_SCOPES]
                + [s for s in scopes if s.lower() in OIDC_SCOPES - {"offline_access"}]
            ),
            "expires_in": int(lifetime.total_seconds()),
            "ext_expires_in": int(lifetime.total_seconds()),
            "access_token": self.mint_access_token(user.id, graph_scopes, client_id),
        }
        if contains(scopes, "offline_access"):
            refresh = secrets.token_urlsafe(64)
            self._refresh[_hash(refresh)] = RefreshTokenRecord(
                token_hash=_hash(refresh),
                client_id=client_id,
                user_id=user.id,
                scopes=list(scopes),
                expires_at=now + self.settings.refresh_token,
            )
            body["refresh_token"] = refresh
        if contains(scopes, "openid"):
            body["id_token"] = encode_id_token(
                self.key,
                base_url=self._base_url(),
                user=user,
                tenant=tenant,
                client_id=client_id,
                now=now,
                lifetime=self.settings.id_token,
                nonce=nonce,
            )
        client_info = {"uid": user.id, "utid": tenant.id}
        body["client_info"] = _b64url(json.dumps(client_info).encode("utf-8"))
        return body

    # --- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Apps, refresh tokens (hashed) and the signing key survive a restart; codes don't."""
        return {
            "signing_key_pem": self.key.private_pem(),
            "apps": [app.to_dict() for app in self.apps.values()],
            "refresh_tokens": [r.to_dict() for r in self._refresh.values()],
        }

    def load_dict(self, data: dict[str, Any]) -> None:
        if data.get("signing_key_pem"):
            self.key = SigningKey.from_pem(data["signing_key_pem"])
        self.apps = {a["client_id"]: AppRegistration.from_dict(a) for a in data.get("apps", [])}
        self._refresh = {
            r["token_hash"]: RefreshTokenRecord.from_dict(r) for r in data.get("refresh_tokens", [])
        }
        self._codes = {}

    def reset(self) -> None:
        """Forget apps and grants; keep the signing key (tokens in flight stay verifiable)."""
        self.apps.clear()
        self._codes.clear()
        self._refresh.clear()

"""MSAL's ConfidentialClientApplication, built from settings for the real cloud or the emulator.

The HTTP session is our own so that (a) an extra CA bundle (the emulator's) is trusted and
(b) `REQUESTS_CA_BUNDLE`-style environment variables can't silently replace it.
"""

from __future__ import annotations

import warnings

import msal
import requests

from shared.settings import Settings


def ignore_response_mode_warning() -> None:
    """MSAL warns "response_mode='form_post' is recommended" (RFC 9700 §4.3.1) on every
    auth code flow that is not form_post. SMVue asks for `response_mode=query` on purpose:
    its callback is a GET that the emulator and the identity platform both support, the
    code is single-use, PKCE-bound and redeemed at once by a confidential client, and the
    callback answers with a redirect that drops the query (no Referer or history leak of
    a usable code). The warning is noise on every connect, so exactly it — this message,
    from MSAL's module — is ignored; every other warning stays."""
    warnings.filterwarnings(
        "ignore",
        message=r"response_mode='form_post' is recommended",
        category=UserWarning,
        module=r"msal\.oauth2cli\.oauth2",
    )


ignore_response_mode_warning()


def http_session(settings: Settings) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    if settings.ca_bundle:
        session.verify = settings.ca_bundle
    return session


def authority(settings: Settings) -> str:
    return f"{settings.authority_host.rstrip('/')}/{settings.tenant}"


def confidential_client(
    settings: Settings,
    cache: msal.SerializableTokenCache | None = None,
    session: requests.Session | None = None,
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        settings.client_id,
        client_credential=settings.client_secret.get_secret_value(),
        authority=authority(settings),
        token_cache=cache,
        http_client=session or http_session(settings),
        instance_discovery=settings.msal_instance_discovery,
    )

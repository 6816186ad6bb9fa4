"""MSAL's ConfidentialClientApplication, built from settings for the real cloud or the emulator.

The HTTP session is our own so that (a) an extra CA bundle (the emulator's) is trusted and
(b) `REQUESTS_CA_BUNDLE`-style environment variables can't silently replace it.
"""

from __future__ import annotations

import msal
import requests

from shared.settings import Settings


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

"""How the emulator reaches webhook receivers: one httpx client config for all outbound POSTs."""

from __future__ import annotations

import functools
import ssl

import httpx


def outbound_client(verify: bool | str, timeout: float) -> httpx.AsyncClient:
    """`verify` may be a CA bundle path (a receiver behind the demo's local CA)."""
    return httpx.AsyncClient(verify=_trust(verify), timeout=timeout, follow_redirects=False)


@functools.cache
def _trust(verify: bool | str) -> ssl.SSLContext | bool:
    """One TLS context per setting, shared by every outbound client: each subscription's
    validation builds a client, and a context is ~60 ms of CPU to build (its CA bundle is
    read each time); 200 subscriptions at once spent seconds of it."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context() if verify else False

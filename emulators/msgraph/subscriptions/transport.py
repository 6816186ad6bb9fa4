"""How the emulator reaches webhook receivers: one httpx client config for all outbound POSTs."""

from __future__ import annotations

import ssl

import httpx


def outbound_client(verify: bool | str, timeout: float) -> httpx.AsyncClient:
    """`verify` may be a CA bundle path (a receiver behind the demo's local CA)."""
    tls = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
    return httpx.AsyncClient(verify=tls, timeout=timeout, follow_redirects=False)

"""Loopback ports: is one taken, and which free one to use instead."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Collection

LOOPBACK = "127.0.0.1"


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """True when something accepts connections on the port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port(preferred: int | None = None, avoid: Collection[int] = ()) -> int:
    """The preferred port when it can be bound on loopback, else one the OS picks.

    `avoid` holds ports already chosen for sibling servers. The port is released again
    before returning, so another process may take it first; the server's start then fails
    with a clear error rather than binding elsewhere silently.
    """
    if preferred is not None and preferred not in avoid and not port_open(preferred):
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.bind((LOOPBACK, preferred))
            return preferred
    while True:
        with socket.socket() as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def wait_port_closed(port: int, timeout: float = 15.0) -> bool:
    """True once nothing listens on the port (a just-killed server may still hold it)."""
    deadline = time.monotonic() + timeout
    while port_open(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True

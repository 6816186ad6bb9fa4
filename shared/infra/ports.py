"""Loopback ports: is one taken, and which free one to use instead."""

from __future__ import annotations

import contextlib
import random
import socket
import time
from collections.abc import Collection
from pathlib import Path

LOOPBACK = "127.0.0.1"

# Ports for our servers are drawn below the OS's ephemeral range (Linux default
# 32768-60999): a port the OS picks for `bind(0)` comes from that range, and once released
# an outgoing connection (any Kafka or MongoDB client) may take it as its local port before
# the server binds it — a flaky "address already in use".
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 20000


def _candidates() -> tuple[int, int]:
    try:
        first = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32768
    return _LOWEST, max(first - 1, _LOWEST + 1000)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """True when something accepts connections on the port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port(preferred: int | None = None, avoid: Collection[int] = ()) -> int:
    """The preferred port when it can be bound on loopback, else a free one below the
    ephemeral range (see above), else one the OS picks.

    `avoid` holds ports already chosen for sibling servers. The port is released again
    before returning, so another process may take it first; the server's start then fails
    with a clear error rather than binding elsewhere silently.
    """
    if preferred is not None and preferred not in avoid and not port_open(preferred):
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.bind((LOOPBACK, preferred))
            return preferred
    low, high = _candidates()
    pick = random.SystemRandom()
    for _ in range(200):
        port = pick.randint(low, high)
        if port not in avoid and _bindable(port):
            return port
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

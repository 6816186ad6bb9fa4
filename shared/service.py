"""Running one service: broker + HTTP in one event loop, stopped gracefully on SIGTERM.

Shutdown order matters: stop taking HTTP requests, let in-flight handlers finish and
commit their offsets (FastStream's graceful timeout), then close Mongo and HTTP clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from shared.observability.logging import get_logger

log = get_logger(__name__)

Hook = Callable[[], Awaitable[None]]


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service's stop event owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class Service:
    name: str
    http_app: FastAPI
    host: str
    port: int
    broker: KafkaBroker | None = None
    on_start: Sequence[Hook] = field(default_factory=list)  # after the broker connected
    on_stop: Sequence[Hook] = field(default_factory=list)  # after the broker stopped
    background: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=list)


async def run_service(service: Service, stop: asyncio.Event | None = None) -> None:
    """Runs until SIGTERM/SIGINT (or `stop` is set), then shuts down in order."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    server = _QuietServer(
        uvicorn.Config(
            service.http_app,
            host=service.host,
            port=service.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
    )
    if service.broker is not None:
        await service.broker.connect()
    for hook in service.on_start:
        await hook()
    if service.broker is not None:
        await service.broker.start()
    tasks: list[asyncio.Task[None]] = [asyncio.ensure_future(job()) for job in service.background]
    http_task = asyncio.create_task(server.serve(), name=f"{service.name}-http")
    log.info("service started", port=service.port)
    stop_task = asyncio.create_task(stop.wait())
    await asyncio.wait({stop_task, http_task}, return_when=asyncio.FIRST_COMPLETED)
    log.info("service stopping")
    server.should_exit = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if service.broker is not None:
        await service.broker.stop()  # waits for in-flight handlers (graceful timeout)
    for hook in service.on_stop:
        await hook()
    with contextlib.suppress(asyncio.CancelledError):
        await http_task
    stop_task.cancel()
    log.info("service stopped")

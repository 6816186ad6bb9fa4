"""Run the emulator as a real server (HTTPS by default) for the demo, benchmarks and shells.

On start it prints lines a shell can eval:
    EMULATOR_CA_BUNDLE=/path/emulator-ca.pem
    GRAPH_BASE_URL=https://127.0.0.1:PORT/v1.0
    AUTHORITY_HOST=https://127.0.0.1:PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import tempfile
from pathlib import Path

import uvicorn

from emulators.msgraph import persistence, tls
from emulators.msgraph.app import create_app
from emulators.msgraph.state import EmulatorState


def run(
    host: str = "127.0.0.1",
    port: int = 8600,
    http: bool = False,
    state_file: Path | None = None,
    ca_out: Path | None = None,
) -> None:
    asyncio.run(serve(host, port, http=http, state_file=state_file, ca_out=ca_out))


def _prepare_tls(scratch: Path, ca_out: Path | None) -> tuple[tls.TlsFiles, Path]:
    """Certificates in the scratch dir (the server key never leaves it); CA copied to ca_out."""
    files = tls.generate(scratch)
    if ca_out is None:
        return files, files.ca_bundle.resolve()
    ca_out.parent.mkdir(parents=True, exist_ok=True)
    ca_out.write_bytes(files.ca_bundle.read_bytes())
    return files, ca_out.resolve()


async def serve(
    host: str,
    port: int,
    *,
    http: bool = False,
    state_file: Path | None = None,
    ca_out: Path | None = None,
) -> None:
    scheme = "http" if http else "https"
    state = EmulatorState(base_url=f"{scheme}://{host}:{port}")
    if state_file is not None:
        persistence.load_file(state, state_file)
    with tempfile.TemporaryDirectory(prefix="graph-emulator-") as scratch:
        ssl_certfile: str | None = None
        lines = []
        if not http:
            files, ca_bundle = _prepare_tls(Path(scratch), ca_out)
            ssl_certfile = str(files.server_pem)
            lines.append(f"EMULATOR_CA_BUNDLE={ca_bundle.resolve()}")
        lines += [f"GRAPH_BASE_URL={state.base_url}/v1.0", f"AUTHORITY_HOST={state.base_url}"]
        config = uvicorn.Config(
            create_app(state),
            host=host,
            port=port,
            ssl_certfile=ssl_certfile,
            log_level="warning",
            access_log=False,
        )
        server = uvicorn.Server(config)
        _stop_on_signals(server)
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn offers a flag only
            await asyncio.sleep(0.05)
        for line in lines:
            print(line, flush=True)  # the documented eval-able output
        try:
            await task
        finally:
            if state_file is not None:
                with contextlib.suppress(OSError):
                    persistence.save_file(state, state_file)
                    print(f"state saved to {state_file}", file=sys.stderr, flush=True)


def _stop_on_signals(server: uvicorn.Server) -> None:
    """SIGINT/SIGTERM stop the server and then `serve` saves the state. uvicorn's own
    handling re-raises the signal once it has shut down, which killed the process before
    the state was written (issue 9: the demo came back with an empty emulator while
    MongoDB still had connected users)."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        server.force_exit = server.should_exit  # a second signal: stop waiting for requests
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]

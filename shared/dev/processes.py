"""Child processes with multiplexed, prefixed logs, stopped together on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass, field

COLOURS = ("36", "35", "33", "32", "34", "31")


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = None


class ProcessGroup:
    def __init__(self) -> None:
        self.children: list[Child] = []
        self._pumps: list[asyncio.Task[None]] = []
        self._width = 9

    async def start(self, child: Child) -> Child:
        env = {**os.environ, **child.env, "PYTHONUNBUFFERED": "1"}
        child.process = await asyncio.create_subprocess_exec(
            *child.argv,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        self.children.append(child)
        self._width = max(self._width, len(child.name))
        colour = COLOURS[(len(self.children) - 1) % len(COLOURS)]
        self._pumps.append(asyncio.create_task(self._pump(child, colour)))
        return child

    async def _pump(self, child: Child, colour: str) -> None:
        assert child.process is not None and child.process.stdout is not None
        tty = sys.stdout.isatty()
        prefix = child.name.ljust(self._width)
        prefix = f"\x1b[{colour}m{prefix}\x1b[0m" if tty else prefix
        async for line in child.process.stdout:
            sys.stdout.write(f"{prefix} | {line.decode(errors='replace')}")
            sys.stdout.flush()

    async def wait_any(self) -> Child:
        """Returns the first child that exits (something went wrong, or it was stopped)."""
        waits = {asyncio.create_task(c.process.wait()): c for c in self.children if c.process}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waits[next(iter(done))]

    async def stop(self, grace: float = 20.0) -> None:
        """SIGTERM in reverse start order (services before what they depend on)."""
        for child in reversed(self.children):
            process = child.process
            if process is None or process.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

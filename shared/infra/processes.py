"""Detached server processes: own session, log file, pid file; stop = TERM, then KILL.

A pid file alone can outlive its process and the pid be reused by a stranger, so every
lookup also checks that the process's command line mentions the server's home directory
(`owner`): we never signal a process we did not start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def start_detached(argv: list[str], log_file: Path, pid_file: Path, cwd: Path) -> int:
    """Starts `argv` in its own session (outlives the CLI, immune to the terminal's Ctrl-C)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file.write_text(f"{process.pid}\n")
    return process.pid


def read_pid(pid_file: Path, owner: Path | None = None) -> int | None:
    """The live pid in `pid_file`, or None (no file, dead, or not a process of `owner`)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not is_alive(pid):
        return None
    if owner is not None and not _mentions(pid, str(owner)):
        return None
    return pid


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # our own child (tests): reap it once it ends
    except ChildProcessError:
        return _state(pid) not in {"Z", "X"}  # someone else's: a zombie has ended
    return waited != pid  # 0 while any thread of it still runs (a JVM's take a moment)


def _state(pid: int) -> str:
    """The /proc state letter ('Z' for a zombie nobody reaped yet); '' where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[0] if ")" in stat else ""


def _mentions(pid: int, text: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc (not Linux): trust the pid file
    # Empty while the process is still exec'ing (a pid file is written right after fork).
    return not cmdline or text.encode() in cmdline


def stop_process(pid_file: Path, owner: Path | None = None, timeout: float = 30.0) -> bool:
    """SIGTERM its process group, SIGKILL after `timeout`; True if something was running."""
    pid = read_pid(pid_file, owner)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_alive(pid):
        time.sleep(0.1)
    if is_alive(pid):
        _signal_group(pid, signal.SIGKILL)
        _wait_gone(pid)
    pid_file.unlink(missing_ok=True)
    return True


def kill_hard(pid_file: Path, owner: Path | None = None) -> None:
    """SIGKILL, as a crash would: for tests that prove a restart loses nothing.

    The pid file is left in place, as a crash leaves it.
    """
    pid = read_pid(pid_file, owner)
    if pid is not None:
        _signal_group(pid, signal.SIGKILL)
        _wait_gone(pid)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # the server leads its own session, so its group is its own


def _wait_gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"

"""Supervision of the JVMs the local stack runs: start, log, signal, stop, and clean up at exit.

Shared by :mod:`gateway.infra.kafka` and :mod:`gateway.infra.registry`. Every JVM runs in its own
session so its whole process group can be signalled, and carries ``-D{WORKDIR_PROPERTY}=<dir>`` so a
pid read back from a pid file is only ever signalled while it is still ours.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from gateway.errors import InfraError, InvalidStateError
from gateway.infra import maven

log = logging.getLogger(__name__)

DEFAULT_STOP_GRACE_S = 10.0
LOOPBACK = "127.0.0.1"
# Every JVM we launch carries -D<this>=<its work dir>: it tells our processes apart from any other
# java (``pgrep -af gateway.infra.workdir``), and lets ``down`` check a pid file still names ours.
WORKDIR_PROPERTY = "gateway.infra.workdir"

POLL_S = 0.1
_TAIL_LINES = 40
_TAIL_BYTES = 64 * 1024


class JavaProcess:
    """One JVM in its own session (so its whole process group can be signalled), with its stdout
    and stderr appended to ``log_path`` and its pid written to ``pid_path``."""

    def __init__(self, name: str, argv: Sequence[str], *, log_path: Path, pid_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.pid_path = pid_path
        self._argv = list(argv)
        self._popen: subprocess.Popen[bytes] | None = None
        self._scan_offset = 0
        self._scan_carry = b""

    def __repr__(self) -> str:
        return f"JavaProcess({self.name!r}, pid={self.pid}, running={self.is_running()})"

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    @property
    def exit_code(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        if self.is_running():
            raise InvalidStateError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            # Readiness markers are looked for only in what this run writes, not in earlier runs.
            self._scan_offset = out.seek(0, os.SEEK_END)
            self._scan_carry = b""
            try:
                self._popen = subprocess.Popen(
                    self._argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    # Own session: Ctrl-C in a terminal does not hit the JVM behind our back, the
                    # group id equals the pid, and a detached stack outlives the launching CLI.
                    start_new_session=True,
                )
            except OSError as exc:
                raise InfraError(f"cannot start {self.name}: {exc}") from exc
        self.pid_path.write_text(f"{self._popen.pid}\n")

    def saw(self, marker: bytes) -> bool:
        """True once ``marker`` appeared in the log since the last :meth:`start`."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self._scan_offset)
                chunk = handle.read()
        except OSError:
            return False
        self._scan_offset += len(chunk)
        window = self._scan_carry + chunk
        if marker in window:
            return True
        # Keep enough of the end to find a marker split across two reads.
        self._scan_carry = window[-len(marker) :]
        return False

    def log_tail(self, lines: int = _TAIL_LINES) -> str:
        return read_tail(self.log_path, lines)

    def signal(self, sig: signal.Signals) -> None:
        if self._popen is not None:
            signal_group(self._popen.pid, sig)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the JVM to exit; True if it has."""
        if self._popen is None:
            return True
        try:
            self._popen.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, grace: float = DEFAULT_STOP_GRACE_S) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        stop_processes([self], grace)

    def kill(self) -> None:
        """SIGKILL at once: a crash, as fault tests want it."""
        stop_processes([self], 0.0)

    def reap(self) -> None:
        """After the JVM exited: kill anything left in its group, drop the pid file."""
        if self._popen is not None:
            self._popen.wait()
            signal_group(self._popen.pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)


def stop_processes(processes: Sequence[JavaProcess], grace: float) -> None:
    """Stop several JVMs at once: SIGTERM to all, one shared grace period, then SIGKILL."""
    live = [p for p in processes if p.is_running()]
    if grace > 0:
        for process in live:
            process.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in live:
            if not process.wait(deadline - time.monotonic()):
                log.warning("%s ignored SIGTERM for %.0f s; sending SIGKILL", process.name, grace)
    for process in live:
        if process.is_running():
            process.signal(signal.SIGKILL)
    for process in processes:
        process.reap()


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group led by ``pid`` (our JVMs are session leaders), ignoring one gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (an exited process its parent has not reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust kill(0)
    # The state letter follows the parenthesised command name, which may itself contain spaces.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def pid_command_line(pid: int) -> str | None:
    """The command line of ``pid`` (Linux /proc, else ``ps``), or None if it is gone."""
    if Path("/proc/self/cmdline").exists():
        try:
            raw = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        except OSError:
            return None
        return raw.replace(b"\0", b" ").decode(errors="replace") or None
    result = subprocess.run(
        ["ps", "-o", "command=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or None


def terminate_pids(pids: Sequence[int], *, marker: str, grace: float = DEFAULT_STOP_GRACE_S) -> int:
    """Stop JVMs started by an earlier process, known only by their pid files, all at once.

    Only signals a pid whose command line still contains ``marker`` (the work-dir property), so a
    recycled pid is never killed. Returns how many such processes were found.
    """
    ours = [pid for pid in pids if marker in (pid_command_line(pid) or "")]
    for pid in ours:
        signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(pid_alive(pid) for pid in ours) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    for pid in ours:
        if pid_alive(pid):
            log.warning("pid %d ignored SIGTERM for %.0f s; sending SIGKILL", pid, grace)
        signal_group(pid, signal.SIGKILL)
    return len(ours)


def read_tail(path: Path, lines: int = _TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(size - _TAIL_BYTES, 0))
            data = handle.read()
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return maven.tail_text(data.decode(errors="replace"), lines) or f"({path} is empty)"


def reserve_ports(explicit: Sequence[int], extra: int) -> list[int]:
    """``explicit`` (checked to be free) followed by ``extra`` free loopback ports.

    Free ports come from binding port 0; every socket stays open until all are chosen, so the
    ports are distinct. A small race with other programs remains, which a start-up error reports.
    """
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for wanted in [*explicit, *([0] * extra)]:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            # As the JVMs do, so a port in TIME_WAIT after a restart counts as free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOOPBACK, wanted))
            except OSError as exc:
                raise InfraError(f"port {wanted} on {LOOPBACK} is not free: {exc}") from exc
            ports.append(sock.getsockname()[1])
        return ports


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_STOP_AT_EXIT: set[_Stoppable] = set()


def stop_at_exit(resource: _Stoppable) -> None:
    """Stop ``resource`` when the interpreter exits, if nobody did before (a crashed test run)."""
    _STOP_AT_EXIT.add(resource)


def forget_at_exit(resource: _Stoppable) -> None:
    _STOP_AT_EXIT.discard(resource)


@atexit.register
def _stop_leftovers() -> None:
    for resource in list(_STOP_AT_EXIT):
        log.warning("stopping %r left running at exit", resource)
        resource.stop()

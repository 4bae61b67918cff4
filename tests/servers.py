"""Real server processes for the slow suites: start, signal, observe, always kill.

Every process runs from the repository root as the leader of a session (and
so a process group) of its own, like a job in a terminal or a systemd unit: a
test can signal the master, one worker or the whole group, and teardown kills
the whole group -- Hypercorn's ``-w N`` workers and the task pools included,
which would otherwise live on as orphans holding database connections.

* :class:`Hypercorn` -- ``hypercorn [options] <app>`` on a free port, ready
  when the port answers (and, if set, a path answers 200 and a log line was
  printed once per worker).
* :class:`TasksWorker` -- ``python -m tasks worker <app>``.
* :func:`serving` -- start one and always kill it.

Output goes to ``<root>/<name>.log``. Every wait polls with a deadline.
Every process started here carries a marker in its environment; the
session fixture in ``tests/conftest.py`` calls :func:`reap_leaks` at the end
and fails, naming the test, if any of them (or a descendant) is still alive.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self, TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[1]
HYPERCORN = str(Path(sys.executable).with_name("hypercorn"))
T = TypeVar("T")

#: Environment variable set to ``<pytest pid>-<n>`` in every process started here.
MARKER = "TESTS_SERVERS_LAUNCH"
_launches = itertools.count(1)
#: Marker value -> (test that started it, command, leader), for every process started.
#: Holding the leader keeps it from being garbage collected while it runs.
_LAUNCHED: dict[str, tuple[str, str, subprocess.Popen[bytes]]] = {}


def poll(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.05,
    ignore: type[BaseException] | tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds.

    An exception of a type in ``ignore`` counts as a falsy answer.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value: T | None = check()
        except ignore:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last value: {value!r})")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the process table --------------------------------------------------------


def _proc_table() -> list[tuple[int, int, int]]:
    """(pid, ppid, pgid) of every live, non-zombie process."""
    rows = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            rows.append((int(entry), int(fields[1]), int(fields[2])))
    return rows


def cmdline(pid: int) -> str:
    """The command line of ``pid`` ("" once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _marked(prefix: str) -> dict[int, str]:
    """Live processes whose environment has a marker starting with ``prefix``: pid -> marker."""
    found = {}
    needle = f"{MARKER}={prefix}".encode()
    for pid, _, _ in _proc_table():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        for entry in environ.split(b"\0"):
            if entry.startswith(needle):
                found[pid] = entry.split(b"=", 1)[1].decode()
    return found


def _sigkill(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def reap_leaks() -> list[str]:
    """SIGKILL every process started here (or by one) that is still alive.

    Returns one line per leaked launch, naming the test that started it;
    an empty list means nothing leaked.
    """
    leaked = _marked(f"{os.getpid()}-")
    for _, _, leader in _LAUNCHED.values():
        leader.poll()  # reap leaders that exited by themselves
    if not leaked:
        return []
    for pgid in {_pgid(pid) for pid in leaked} - {None, os.getpgrp()}:
        assert pgid is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    _sigkill(list(leaked))
    for marker in set(leaked.values()) & set(_LAUNCHED):
        with contextlib.suppress(subprocess.TimeoutExpired):
            _LAUNCHED[marker][2].wait(10)
    with contextlib.suppress(AssertionError):
        poll(lambda: not _marked(f"{os.getpid()}-"), 10, "leaked processes gone")
    lines = []
    for marker in sorted(set(leaked.values())):
        test, command, _ = _LAUNCHED.get(marker, ("an unknown test", "?", None))
        pids = sorted(pid for pid, seen in leaked.items() if seen == marker)
        lines.append(f"{test} left {len(pids)} process(es) {pids} of `{command}` running")
    return lines


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


# -- one process group ----------------------------------------------------------


@dataclass(eq=False)
class ProcessGroup:
    """A command run from the repository root in a process group of its own.

    Subclasses say what to run (:meth:`command`) and when it is ready
    (:meth:`is_ready`). ``env`` is laid over a copy of this process's
    environment without its ``TASKS_*`` settings, so the developer's shell
    never leaks into a test server.
    """

    root: Path
    name: str = "server"
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    starts: int = field(default=0, init=False)
    _log_offset: int = field(default=0, init=False)

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """The environment the process starts with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKS_")}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        return env

    def is_ready(self) -> bool:
        """True once the process does its job (polled by :meth:`wait_ready`)."""
        return True

    @property
    def log_path(self) -> Path:
        """Combined stdout and stderr of every start."""
        return self.root / f"{self.name}.log"

    # -- lifecycle -----------------------------------------------------------

    def start(self, *, ready: bool = True, timeout: float = 60.0) -> Self:
        """Start the process; with ``ready``, wait until :meth:`is_ready`."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        marker = f"{os.getpid()}-{next(_launches)}"
        command = self.command()
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**self.environment(), MARKER: marker},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        test = os.environ.get("PYTEST_CURRENT_TEST", "outside a test").rsplit(" (", 1)[0]
        _LAUNCHED[marker] = (test, " ".join(command), self.proc)
        self.starts += 1
        if ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until :meth:`is_ready`; fail at once if the process exits."""

        def check() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited during startup:\n{self.output()}")
            return self.is_ready()

        try:
            poll(check, timeout, f"{self.name} ready")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.name} output:\n{self.output()[-3000:]}") from None

    def output(self, *, all_starts: bool = False) -> str:
        """What the process printed since the last start (or over every start)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(0 if all_starts else self._log_offset)
            return log.read().decode(errors="replace")

    def wait_for_output(self, text: str, count: int = 1, timeout: float = 60.0) -> None:
        """Wait until ``text`` was printed ``count`` times since the start."""

        def seen() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.output()}")
            return self.output().count(text) >= count

        poll(seen, timeout, f"{count} x {text!r} in the output of {self.name}")

    @property
    def pid(self) -> int:
        """The process group leader (Hypercorn's master)."""
        assert self.proc is not None, "not started"
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        """The leader's exit code; None while it runs."""
        assert self.proc is not None, "not started"
        return self.proc.poll()

    def group_pids(self) -> list[int]:
        """Every live process of the group (master, workers, pools)."""
        if self.proc is None:
            return []
        return [pid for pid, _, pgid in _proc_table() if pgid == self.proc.pid]

    def worker_pids(self) -> list[int]:
        """The spawned children of the leader (Hypercorn workers), not pool processes."""
        table = _proc_table()
        group = {pid for pid, _, pgid in table if pgid == self.pid}
        return sorted(
            pid
            for pid, ppid, _ in table
            if ppid == self.pid
            and pid in group
            and "spawn_main" in cmdline(pid)
            and "resource_tracker" not in cmdline(pid)
        )

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the leader only (what ``kill PID`` does)."""
        os.kill(self.pid, sig)

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to every process of the group (Ctrl-C in a terminal, systemd)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the leader to exit; return its exit code."""
        assert self.proc is not None, "not started"
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running {timeout} s later:\n{self.output()[-3000:]}"
            ) from None

    def stop(self, sig: int, timeout: float = 60.0) -> int:
        """Stop the way a terminal does; return the leader's exit code.

        SIGINT goes to the whole group, as Ctrl-C does; any other signal to
        the leader only, as ``kill PID`` does.
        """
        if sig == signal.SIGINT:
            self.signal_group(sig)
        else:
            self.signal(sig)
        return self.wait_exit(timeout)

    def wait_group_gone(self, timeout: float) -> None:
        """Wait until no process of the group is left (orphaned workers included)."""
        poll(lambda: not self.group_pids(), timeout, f"every {self.name} process gone")

    def kill(self) -> None:
        """SIGKILL the whole group, reap the leader and wait until all are gone.

        Teardown: safe to call again, and after the process exited by itself.
        """
        if self.proc is None:
            return
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        with contextlib.suppress(AssertionError):
            self.wait_group_gone(10)


# -- what runs in it -------------------------------------------------------------


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(eq=False)
class Hypercorn(ProcessGroup):
    """``hypercorn -b 127.0.0.1:<port> -w <workers> [args] <app>``.

    Ready when the port answers, ``ready_path`` (if set) answers 200 and
    ``ready_log`` (if set) was printed at least once per worker.
    """

    app: str = "asgi:app"
    args: Sequence[str] = ()
    workers: int = 1
    port: int = field(default_factory=free_port)
    ready_path: str | None = None
    ready_log: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url

    def options(self) -> list[str]:
        """Command-line options between the bind address and the app."""
        return ["-w", str(self.workers), *self.args]

    def command(self) -> list[str]:
        return [HYPERCORN, "-b", f"127.0.0.1:{self.port}", *self.options(), self.app]

    def is_ready(self) -> bool:
        if self.ready_log is not None and self.output().count(self.ready_log) < self.workers:
            return False
        if not _port_open(self.port):
            return False
        if self.ready_path is None:
            return True
        try:
            return httpx.get(f"{self.base_url}{self.ready_path}", timeout=5).status_code == 200
        except httpx.TransportError:
            return False


@dataclass(eq=False)
class TasksWorker(ProcessGroup):
    """``python -m tasks worker <app> [args]``: ready once it says it runs."""

    app: str = "asgi:app"
    args: Sequence[str] = ()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "tasks", "worker", self.app, *self.args]

    def is_ready(self) -> bool:
        return "worker running for" in self.output()


P = TypeVar("P", bound=ProcessGroup)


@contextlib.contextmanager
def serving(process: P, *, timeout: float = 60.0) -> Iterator[P]:
    """Start ``process``, wait until it is ready, yield it; always kill its group."""
    try:
        yield process.start(timeout=timeout)
    finally:
        process.kill()

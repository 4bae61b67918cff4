"""Wake-ups between processes sharing one SQLite file: a datagram socket per listener.

Every process with workers binds a unix datagram socket in a directory next
to the database (``<database>-wake/<pid>-<token>``) and watches it with the
event loop (no thread, no timer: an idle process spends no CPU on it). A
process whose commit made work due sends an empty datagram to every other
socket in that directory, from the thread that committed, right after the
commit. The receiver's dispatcher then claims at once.

Wake-ups are an optimisation, never needed for correctness: a datagram that
is lost (socket removed, receive buffer full, directory not writable, a
process that stopped listening) only means the task is found by the
dispatcher's fallback poll (at most ``TASKS_POLL_INTERVAL`` later). Sockets
left behind by a process that was killed answer "connection refused" and are
removed by the next sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import stat
import threading
import time
from collections.abc import Callable

log = logging.getLogger("tasks.store")

_MAX_PATH = 100
_RACY_NS = 1_000_000_000
"""A unix socket path must fit in 108 bytes; longer ones go through /proc/self/fd."""


class WakeSockets:
    """Signal other processes of this database; listen for their signals."""

    def __init__(self, database_path: str) -> None:
        self.directory = os.path.abspath(database_path) + "-wake"
        self._sender: socket.socket | None = None
        self._receiver: socket.socket | None = None
        self._own: str | None = None
        self._dir_fd: int | None = None
        self._peers: list[str] = []
        self._listed: int | None = None
        """The directory's mtime (ns) when :attr:`_peers` was read."""
        self._racy = False
        """Whether that mtime was too recent to tell a later change from it."""
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def listening(self) -> bool:
        """Whether this process has a socket other processes can wake."""
        return self._receiver is not None

    def _address(self, name: str) -> str:
        """The path to bind or send to, short enough for ``sockaddr_un``."""
        full = os.path.join(self.directory, name)
        if len(full.encode()) <= _MAX_PATH:
            return full
        if self._dir_fd is None:
            self._dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        return f"/proc/self/fd/{self._dir_fd}/{name}"

    def listen(self, callback: Callable[[], None]) -> None:
        """Bind this process's socket and call ``callback`` on the loop for every signal.

        Failing to listen is logged, not raised: the dispatcher polls instead.
        """
        if self._receiver is not None:
            return
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            os.makedirs(self.directory, exist_ok=True)
            receiver.setblocking(False)
            receiver.bind(self._address(name))
            loop = asyncio.get_running_loop()
            loop.add_reader(receiver.fileno(), self._drain, receiver, callback)
        except OSError as exc:
            receiver.close()
            log.warning(
                "cannot listen for wake-ups in %s (other processes' tasks are found by"
                " polling): %s",
                self.directory,
                exc,
            )
            return
        self._receiver, self._own, self._loop = receiver, name, loop

    @staticmethod
    def _drain(receiver: socket.socket, callback: Callable[[], None]) -> None:
        """Read every pending datagram (one wake covers them all), then call back once."""
        while True:
            try:
                receiver.recv(16)
            except OSError:  # BlockingIOError: nothing more to read
                break
        try:
            callback()
        except Exception:
            log.exception("wake-up callback %r failed", callback)

    def signal(self) -> None:
        """Wake every other listening process; never raises, never blocks.

        Safe from any thread (the store calls it on its writer thread right
        after a commit).
        """
        with self._lock:
            try:
                peers = self._current_peers()
                if not peers:
                    return
                if self._sender is None:
                    self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sender.setblocking(False)
                for name in peers:
                    self._send(name)
            except OSError as exc:
                log.debug("could not signal other processes: %s", exc)

    def _current_peers(self) -> list[str]:
        """The other sockets in the directory, read again only when it changed."""
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            self._peers, self._listed = [], None
            return []
        if mtime != self._listed or self._racy:
            self._peers = [n for n in os.listdir(self.directory) if n != self._own]
            self._listed = mtime
            # File times are coarse (a clock tick): a socket bound in the same tick
            # as the listing leaves the time unchanged, so list again until it is old.
            self._racy = time.time_ns() - mtime < _RACY_NS
        return self._peers

    def _send(self, name: str) -> None:
        assert self._sender is not None
        try:
            self._sender.sendto(b"", self._address(name))
        except BlockingIOError:
            pass  # its buffer is full of wake-ups it has not read yet: it will look
        except ConnectionRefusedError:  # nobody listens: left by a process that died
            path = os.path.join(self.directory, name)
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    os.unlink(path)
        except FileNotFoundError:
            pass  # removed since the directory was listed
        except OSError as exc:  # one peer we cannot reach must not stop the others
            log.debug("could not wake %s: %s", name, exc)

    def close(self) -> None:
        """Stop listening and remove this process's socket."""
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(receiver.fileno())
            receiver.close()
            if self._own is not None:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.directory, self._own))
        with self._lock:
            if self._sender is not None:
                self._sender.close()
                self._sender = None
            if self._dir_fd is not None:
                os.close(self._dir_fd)
                self._dir_fd = None

"""Liveness on SQLite: one exclusive ``flock`` per registered process, on a file.

Every process that can own a task of a SQLite file runs on the machine that
holds the file, so the kernel knows which of them live. A registered process
holds an exclusive :func:`fcntl.flock` on ``<database>-workers/<owner>.lock``;
the kernel drops it when the process ends, however it ends (``kill -9``
included), and never while it lives, however long its event loop is blocked.

Another process probes a file with a non-blocking lock: refused means the
owner lives; granted means it is gone (the probe lets go at once). A file is
created under a temporary name and renamed into place only once locked, so a
probe never sees a new owner's file before its lock. ``flock`` locks belong
to the open file, so a probe from the same process sees another owner's lock
as it should; a forked child closes its copy (``os.register_at_fork``) so that
it cannot keep a dead parent looking alive.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from urllib.parse import quote, unquote

_SUFFIX = ".lock"


def lock_directory(database_path: str) -> str:
    """The directory of the lock files of a database file."""
    return f"{os.path.abspath(database_path)}-workers"


def _file(directory: str, owner: str) -> str:
    return os.path.join(directory, quote(owner, safe="") + _SUFFIX)


class OwnerLock:
    """The lock file this process holds while it is registered as ``owner``."""

    def __init__(self, directory: str, owner: str) -> None:
        self.path = _file(directory, owner)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether the lock is held."""
        return self._fd is not None

    def acquire(self) -> None:
        """Create the file, lock it, and rename it into place (idempotent)."""
        if self._fd is not None:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        staging = f"{self.path}.{os.getpid()}.new"
        fd = os.open(staging, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.replace(staging, self.path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(staging)
            raise
        self._fd = fd
        os.register_at_fork(after_in_child=self._forget_in_child)

    def release(self, *, remove: bool) -> None:
        """Let go of the lock; with ``remove``, delete the file first (a clean stop)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if remove:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        os.close(fd)

    def _forget_in_child(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def probe(directory: str) -> dict[str, bool]:
    """Every owner with a lock file in ``directory``: True if its lock is held, else False."""
    try:
        names = os.listdir(directory)
    except OSError:  # none yet, or unusable: nobody's liveness can be told
        return {}
    found: dict[str, bool] = {}
    for name in names:
        if name.endswith(_SUFFIX):
            held = _held(os.path.join(directory, name))
            if held is not None:
                found[unquote(name[: -len(_SUFFIX)])] = held
    return found


def _held(path: str) -> bool | None:
    """Whether someone holds the lock on ``path``; None if the file is gone or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing lets go of a lock the probe took
    return False


def remove_dead(directory: str, owners: list[str]) -> None:
    """Delete the lock files of ``owners`` whose lock is (still) free."""
    for owner in owners:
        path = _file(directory, owner)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(path)
        except OSError:
            pass  # held again (cannot be: owners are unique), or already removed
        finally:
            os.close(fd)

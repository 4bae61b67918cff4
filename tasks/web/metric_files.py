"""The directory where every worker process of one server writes its counters.

Counters and histograms use prometheus-client's multiprocess mode: each
process writes its values into memory-mapped files of its own in one shared
directory, and a scrape of any process merges every file there. So one scrape
of one port of ``hypercorn -w N`` answers the sum over all N workers, and the
sum never goes backwards: a worker that dies or is replaced (``--reload``,
SIGHUP, a crash) leaves its files, which keep counting in the sum.

Which directory (:func:`fleet_directory`):

* ``PROMETHEUS_MULTIPROC_DIR`` when it is set: the operator owns it (create it
  empty before the server starts, as prometheus-client documents);
* otherwise one directory per *fleet* under
  ``<tempdir>/quart-taskqueue-metrics-<uid>/``, named after the fleet's
  leader: Hypercorn's master for ``-w N`` workers (their parent process), the
  process itself otherwise. The first worker to start creates it. Hypercorn's
  master runs none of the app's code, so nobody deletes it at shutdown;
  instead each start deletes the directories of leaders that are gone (pid
  not running, or running with another start time). A restart of the whole
  server starts from zero (Prometheus sees one reset, as for any restart);
  a reload keeps the master and so the directory and the sums.

The chosen directory is also set as ``PROMETHEUS_MULTIPROC_DIR`` in this
process (prometheus-client reads it there), marked as chosen here so that
child processes that inherit it choose their own. Metrics the application made with
prometheus-client before are unaffected: the library chose their mode when it
was first imported.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

from tasks.errors import ConfigurationError

ENV = "PROMETHEUS_MULTIPROC_DIR"
OURS = "QUART_TASKQUEUE_METRICS_DIR"
"""Set beside ``ENV`` when this module chose it: a child process inheriting both
(a server started by a script or a test) works out its own fleet instead."""


def fleet_directory() -> Path:
    """The directory of this process's fleet, created if needed (see the module doc)."""
    configured = os.environ.get(ENV)
    if configured and configured != os.environ.get(OURS):
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    base = _base()
    leader = _leader()
    _sweep(base, keep=leader)
    path = base / leader
    path.mkdir(mode=0o700, exist_ok=True)
    os.environ[ENV] = os.environ[OURS] = str(path)
    return path


def _base() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else 0
    base = Path(tempfile.gettempdir()) / f"quart-taskqueue-metrics-{uid}"
    base.mkdir(mode=0o700, exist_ok=True)
    if hasattr(os, "getuid") and base.stat().st_uid != uid:
        raise ConfigurationError(
            f"{base} belongs to another user; set {ENV} to a directory of your own"
        )
    return base


def _leader() -> str:
    """``<pid>-<start time>`` of Hypercorn's master (our parent) or of this process."""
    parent = multiprocessing.parent_process()
    pid = parent.pid if parent is not None and parent.pid is not None else os.getpid()
    return f"{pid}-{_start_time(pid)}"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux); "0" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    return stat[stat.rindex(")") + 2 :].split()[19]


def _alive(name: str) -> bool:
    pid_text, _, started = name.partition("-")
    if not pid_text.isdigit():
        return True  # not ours: leave it
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started in ("0", _start_time(pid))


def _sweep(base: Path, keep: str) -> None:
    """Delete the directories of fleets whose leader is gone."""
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            if entry.name != keep and entry.is_dir() and not _alive(entry.name):
                shutil.rmtree(entry, ignore_errors=True)

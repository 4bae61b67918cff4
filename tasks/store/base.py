"""The contract every task store backend fulfils.

A backend owns all SQL and connection handling; nothing outside its module
knows which database it talks to. Every method that changes state does so
atomically: it either commits completely or raises and leaves nothing behind.
Concurrent calls may be merged into one transaction (group commit), but each
call returns only after its own change is committed, and a call whose own
values the database refuses fails alone (:class:`~tasks.errors.WriteRejectedError`)
without failing the calls it shares a transaction with.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tasks.errors import QueueFullError
from tasks.model import TERMINAL_STATES, Finish, NewTask, Progress, State, TaskRecord
from tasks.store.fleet import Reclaimed as Reclaimed  # defined with the registry
from tasks.store.fleet import WorkerRegistry
from tasks.store.graphs import Workflows
from tasks.summary import SummaryPage, TaskSummary


@dataclass(frozen=True, slots=True)
class Inserted:
    """Outcome of one insert: the task's id and whether a new row was written.

    ``created`` is false when an idempotency key matched an existing task, whose
    id is returned instead.
    """

    id: str
    created: bool


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a newest-first listing; ``next_cursor`` is None on the last page."""

    tasks: list[TaskRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a backend's claim returns to its store: the records, and when a rate
    limit that held tasks back frees a start (None: none did)."""

    records: list[TaskRecord]
    reopens: float | None = None


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """What holds one queued task's limits now (see :meth:`Store.limit_usage`)."""

    running: int
    """Tasks of its concurrency key running or cancelling."""
    started: int
    """Starts of its rate key within the current window."""
    reopens_in: float | None
    """Seconds until the first of those starts leaves the window (None: no start in it)."""
    queue_running: int
    """Tasks of its queue running or cancelling."""


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One queue's load: tasks waiting, tasks held by workers, and the earliest waiting one.

    ``running`` counts ``running`` and ``cancelling`` tasks (both hold a worker's
    slot); ``oldest_run_at`` is the earliest ``run_at`` of its queued tasks
    (None when none is queued), so ``now - oldest_run_at`` is how long the
    oldest due task has waited (negative: nothing is due yet).
    """

    queue: str
    queued: int
    running: int
    oldest_run_at: float | None


@dataclass(frozen=True, slots=True)
class Activity:
    """Tasks that finished in one time bucket starting at ``start`` (Unix time).

    ``latency_mean`` and ``latency_max`` are the seconds from due time
    (``run_at``) to start of the last run, over those of them that ran (None if
    none did, e.g. all were cancelled while queued).
    """

    start: float
    finished: int
    failed: int
    latency_mean: float | None
    latency_max: float | None


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What the store keeps of a schedule: the latest slot fired, and whether it is paused."""

    name: str
    last_slot: float
    paused: bool


def terminal_values(states: Collection[State]) -> builtins.list[str]:
    """The values of ``states``, sorted; :class:`ValueError` if one is not terminal."""
    live = sorted(s.value for s in states if s not in TERMINAL_STATES)
    if live:
        raise ValueError(f"only finished tasks can be purged, not {', '.join(live)} ones")
    return sorted(s.value for s in states)


def queue_full(queued: int, bound: int) -> QueueFullError:
    """The error for an insert refused by the backlog bound (``TASKS_MAX_QUEUED``)."""
    return QueueFullError(f"the task queue is full ({queued} of {bound} queued); try again later")


class Store(WorkerRegistry, Workflows, Protocol):
    """A durable home for tasks. See the module docstring for the guarantees.

    The worker registry and lease recovery are in
    :class:`~tasks.store.fleet.WorkerRegistry`, workflows in
    :class:`~tasks.store.graphs.Workflows`.
    """

    url: str

    async def open(self) -> None:
        """Connect, apply pending migrations, and get ready for use."""

    async def close(self) -> None:
        """Flush pending writes and close every connection."""

    def on_new_work(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when another process signals new or due work.

        PostgreSQL: LISTEN/NOTIFY; SQLite: a datagram socket per listening
        process next to the database file. A signal may be lost; the
        dispatcher's poll then finds the work.
        """

    def wake_others(self) -> None:
        """Signal every other process listening (:meth:`on_new_work`) to look for work.

        The store signals by itself after a commit that made work due (an
        insert, a requeue, a release); this is for commits that made work
        claimable otherwise (a freed slot of a limit shared between
        processes). Never blocks, never raises; a lost signal is made up by
        polling.
        """

    def on_limit_wait(self, callback: Callable[[float], None]) -> None:
        """Call ``callback(when)`` after a claim of this process left due tasks waiting on a
        rate limit; ``when`` is the Unix time the first of their windows frees a start."""

    async def insert(self, tasks: Sequence[NewTask], *, max_queued: int = 0) -> list[Inserted]:
        """Insert tasks in one transaction; return one :class:`Inserted` per task, in order.

        With ``max_queued`` (0: no bound), raise :class:`QueueFullError` and
        insert nothing if the queued tasks plus these would exceed it; the
        count and the insert are one atomic step, across processes too.
        """

    async def insert_in(self, connection: Any, tasks: Sequence[NewTask]) -> list[Inserted]:
        """Insert tasks through the caller's own open connection and transaction.

        Nothing is committed here: the tasks become visible when the caller
        commits and vanish if it rolls back (transactional enqueue). The
        connection type is the backend's own (aiosqlite / asyncpg connection).
        """

    async def claim(
        self,
        owner: str,
        queues: Sequence[str],
        limit: int | Callable[[], int],
        lease_seconds: float,
        caps: Mapping[str, int] | None = None,
    ) -> list[TaskRecord]:
        """Atomically move up to ``limit`` due queued tasks to running for ``owner``.

        Order: highest priority first, then earliest ``run_at``, within the
        limits: a task with a concurrency key is claimed only while fewer than
        its limit of that key run (``running`` or ``cancelling``), one with a
        rate key only while fewer than its limit of that key started within
        its period, and no more than ``caps[queue]`` tasks of a capped queue
        run at once (see :mod:`tasks.store.admission`); a task held back
        stays queued and those behind it are still claimed. Each claimed task
        gets ``attempts + 1``, ``started_at`` and a lease expiring after
        ``lease_seconds``. ``limit`` may be a function: it is called once, on
        the event loop, just before the claim's transaction begins (a
        dispatcher then claims for the slots free at that moment).
        """

    async def finish(self, changes: Sequence[Finish]) -> list[bool]:
        """Apply end-of-run state changes; each applies only while ``owner`` holds it.

        A change applies to a ``running`` task; to a ``cancelling`` one only a
        change to ``cancelled`` does (the owner confirming that the run has
        ended). Returns, per change, whether it applied (false: the task was
        asked to stop, cancelled or reclaimed meanwhile).

        A change with an ``error`` (not refunded) appends it to the task's error
        history (``TaskRecord.errors``) with the attempt it ended, ``at`` the
        error's own time or else the batch's clock; a ``snooze`` gives the
        attempt back and counts one more snooze; all in the same write.
        """

    async def set_progress(self, task_id: str, owner: str, progress: Progress) -> None:
        """Record progress of a running task held by ``owner``."""

    async def renew_leases(
        self, owner: str, task_ids: Sequence[str], lease_seconds: float
    ) -> set[str]:
        """Extend the leases ``owner`` holds (running or cancelling tasks).

        Returns the ids that are no longer its own.
        """

    async def release(self, owner: str, task_ids: Sequence[str]) -> int:
        """Put tasks held by ``owner`` back to queued and give back their attempt.

        A task that was asked to stop (``cancelling``) ends ``cancelled`` instead.
        """

    async def cancel(self, task_id: str) -> TaskRecord | None:
        """Cancel a task; None if it does not exist.

        A queued task ends ``cancelled`` at once. A running one becomes
        ``cancelling``, keeping its owner and lease, until the owner confirms
        that its run has ended (:meth:`finish` with ``cancelled``) or its lease
        expires: until then it cannot be retried, so two runs of one task never
        overlap. The returned record shows the state after the call.
        """

    async def cancel_requests(self, owner: str) -> list[str]:
        """Ids of the tasks ``owner`` runs that were asked to stop (``cancelling``)."""

    async def retry(self, task_id: str) -> TaskRecord | None:
        """Queue a failed or cancelled task again with fresh attempts and snoozes; None if
        absent. Its error history is kept."""

    async def get(self, task_id: str) -> TaskRecord | None:
        """The task with this id, or None."""

    async def get_many(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        """The tasks with these ids that exist, in no particular order."""

    async def list(
        self,
        *,
        state: State | None = None,
        name: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Tasks newest first, filtered (every given filter applies).

        ``cursor`` is a previous page's ``next_cursor``.
        """

    async def list_summaries(
        self,
        *,
        state: State | None = None,
        name: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        after: str | None = None,
    ) -> SummaryPage:
        """As :meth:`list`, but :class:`~tasks.summary.TaskSummary` items.

        With ``after`` (an id), the page holds the ``limit`` tasks just newer than
        it (the previous page when paging back), still newest first; its
        ``next_cursor`` is then None unless even newer tasks exist, and is the
        ``after`` to ask for those.

        The query reads only the size and a bounded prefix of each task's args,
        kwargs and result (and bounded prefixes of its texts), so a page costs
        memory in proportion to its rows, not to what the tasks carry.
        """

    async def get_summary(self, task_id: str) -> TaskSummary | None:
        """The summary of the task with this id (read as in :meth:`list_summaries`), or None."""

    async def get_summaries(self, task_ids: Sequence[str]) -> builtins.list[TaskSummary]:
        """The summaries of those of at most 500 tasks that exist, newest first."""

    async def finished_by_queue(self, since: float) -> dict[str, int]:
        """Per queue, how many tasks reached a terminal state at or after ``since``."""

    async def activity(self, since: float, bucket: float) -> builtins.list[Activity]:
        """Tasks finished at or after ``since``, per ``bucket`` seconds, oldest first.

        Buckets where nothing finished are left out.
        """

    async def count_by_state(self) -> dict[State, int]:
        """How many tasks are in each state (every state present, zero included)."""

    async def count_by_name(self) -> dict[str, dict[State, int]]:
        """Per task name, how many tasks are in each state."""

    async def limit_usage(self, record: TaskRecord) -> LimitUsage:
        """How much of ``record``'s concurrency key, rate key and queue is taken now."""

    async def queue_stats(self) -> builtins.list[QueueStats]:
        """Per queue with queued, running or cancelling tasks, its :class:`QueueStats`, by name."""

    async def next_run_at(self, queues: Sequence[str], after: float) -> float | None:
        """The earliest ``run_at`` later than ``after`` of the queued tasks in ``queues``."""

    async def register_schedules(self, first_slots: Mapping[str, float]) -> None:
        """Record the schedules not seen before, as fired up to the given slot.

        Schedules already recorded keep their state: whichever process comes
        first decides where a new schedule starts.
        """

    async def schedule_states(self) -> dict[str, ScheduleState]:
        """Every recorded schedule's state, by name."""

    async def fire_schedule(
        self, name: str, slot: float, tasks: Sequence[NewTask]
    ) -> builtins.list[Inserted]:
        """Insert the tasks of a schedule's due slots and record ``slot`` as fired.

        One transaction: the tasks (keyed by schedule and slot, so a slot's task
        exists once however many processes fire it) and the schedule's latest
        fired slot, which only moves forward.
        """

    async def set_schedule_paused(self, name: str, paused: bool) -> ScheduleState | None:
        """Pause or resume a recorded schedule; None if it was never recorded."""

    async def count_queued(self) -> int:
        """How many tasks wait in the queue (for the bounded backlog)."""

    async def purge_finished(
        self, finished_before: float, limit: int, states: Collection[State] = TERMINAL_STATES
    ) -> int:
        """Delete up to ``limit`` tasks in ``states`` (terminal ones) finished before the given
        time; return how many. A state that is not terminal raises :class:`ValueError`."""

"""The dispatcher: claims tasks from the store into a bounded queue that N workers drain.

store --claim (batch, up to the free slots)--> asyncio.Queue --> worker coroutines

A local enqueue wakes the claimer at once; work written by other processes is
pushed by the store (PostgreSQL LISTEN/NOTIFY, SQLite wake sockets: see
:meth:`~tasks.store.base.Store.on_new_work`) and, should a wake-up be lost,
found by polling with a pause that starts short, doubles up to
``TASKS_POLL_INTERVAL`` while polls find nothing, and starts short again as
soon as a claim finds work.

A claim asks for the slots that are free when its transaction is cut, so the
outcomes of a burst of finished tasks and the claim for all their slots share
one transaction. Several claims may be in flight; each reserves the slots it
asked for, so a process never holds more claimed tasks than it has slots (plus
``TASKS_PREFETCH``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import time
from typing import TYPE_CHECKING

from tasks import timings
from tasks.execution import CancelReason, Execution, run_execution
from tasks.model import TaskRecord

if TYPE_CHECKING:
    from tasks.runtime import Runtime

log = logging.getLogger("tasks")

_MIN_POLL = 0.02


class Dispatcher:
    """Claims and runs tasks for one process; :meth:`drain` stops it safely."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._size = runtime.config.concurrency
        self._capacity = self._size + runtime.config.prefetch
        """Tasks held at once (buffered or running): a slot per worker plus the
        prefetch (see ``TASKS_PREFETCH``)."""
        self._buffer: asyncio.Queue[TaskRecord] = asyncio.Queue(self._capacity)
        self._buffered: set[str] = set()
        self._stop_before_start: dict[str, CancelReason] = {}
        """Buffered tasks asked to stop before a worker took them."""
        """Ids of the claimed tasks waiting in the buffer (their leases need renewing too)."""
        self.running: dict[str, Execution] = {}
        self._busy = 0
        """Workers whose task body has not ended yet (each holds one slot)."""
        self._reserved = 0
        """Slots promised to claims in flight (a claim asks for at most the free slots)."""
        self._unbound = False
        """A claim is waiting for its batch: it will ask for every slot free at that point."""
        self._claims: set[asyncio.Task[None]] = set()
        """Claims in flight. Several may be: a slot freed while one is being
        committed is claimed for at once, in the transaction that commits the
        freed slot's outcome, instead of after the claim in flight returns."""
        self._look = True
        """Whether the store may have claimable work (false after a short claim)."""
        self._wakes = 0
        self._interval = _MIN_POLL
        self._attention = asyncio.Event()
        """Set when the claimer has something to look at: a wake, a freed slot, a claim's end."""
        self._claimer: asyncio.Task[None] | None = None
        self._stopping = False
        self._unstarted: list[str] = []
        """Ids claimed by claims that ended after the drain began (they never start)."""
        self._workers: list[asyncio.Task[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        """One timer, for the earliest known due time (see :meth:`wake_at`)."""
        self._rearm: asyncio.Task[None] | None = None

    @property
    def claimed_ids(self) -> list[str]:
        """Every task this process holds a lease on: waiting in the buffer or running."""
        return [*self._buffered, *self.running]

    @property
    def poll_pause(self) -> float:
        """Seconds the claimer waits before it next polls when nothing wakes it.

        :data:`_MIN_POLL` after any claim that found work; doubled (up to
        ``TASKS_POLL_INTERVAL``) by each poll that found none.
        """
        return self._interval

    def start(self) -> None:
        """Start the claimer and the worker coroutines."""
        self._claimer = asyncio.create_task(self._claim_loop(), name="tasks-claimer")
        self._workers = [
            asyncio.create_task(self._worker(), name=f"tasks-worker-{n}") for n in range(self._size)
        ]

    def wake(self) -> None:
        """Look for work now (a task was enqueued or became due)."""
        self._wakes += 1
        self._look = True
        self._interval = _MIN_POLL
        self._attention.set()

    def wake_at(self, when: float) -> None:
        """Look for work at Unix time ``when`` (a delayed task or a retry).

        Costs O(1) memory however many tasks wait: one timer is kept, for the
        earliest time asked for. When it fires, the next due time is read
        from the store and the timer re-armed for it. The timer runs in an
        empty context, so it holds no reference to the request (or task)
        that asked for it. Polling still finds due work should a time be
        missed (another process's retry, say).
        """
        delay = when - time.time()
        if delay <= 0:
            self.wake()
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        if self._timer is not None:
            if self._timer.when() <= deadline:
                return
            self._timer.cancel()
        self._timer = loop.call_at(deadline, self._timer_fired, context=contextvars.Context())

    def _timer_fired(self) -> None:
        self._timer = None
        self.wake()
        if not self._stopping and (self._rearm is None or self._rearm.done()):
            self._rearm = asyncio.create_task(self._rearm_timer(), name="tasks-timer")

    async def _rearm_timer(self) -> None:
        """Arm the timer for the next due time of this process's queues, from the store."""
        try:
            when = await self._rt.store.next_run_at(self._rt.config.queues, time.time())
        except Exception as exc:  # polling finds the work instead
            log.warning("could not read the next due time (polling instead): %s", exc)
            return
        if when is not None and not self._stopping:
            self.wake_at(when)

    def cancel_local(self, task_id: str, reason: str = "cancelled") -> bool:
        """Stop ``task_id`` if this process holds it; True if it does.

        A task still waiting in the buffer is not started: it confirms its
        cancel (or, when ``lost``, just ends) as soon as a worker takes it.
        """
        kind: CancelReason = "lost" if reason == "lost" else "cancelled"
        execution = self.running.get(task_id)
        if execution is not None:
            execution.cancel(kind)
            return True
        if task_id in self._buffered:
            self._stop_before_start[task_id] = kind
            return True
        return False

    def _free_slots(self) -> int:
        return self._capacity - self._buffer.qsize() - self._busy - self._reserved

    async def _claim_loop(self) -> None:
        """Claim for the free slots whenever there may be work; poll when there seems none."""
        while True:
            if self._look and not self._unbound and self._free_slots() > 0:
                self._start_claim()
            self._attention.clear()
            if self._look or self._reserved or self._unbound:
                await self._attention.wait()
                continue
            try:
                async with asyncio.timeout(self._interval):
                    await self._attention.wait()
            except TimeoutError:
                self._interval = min(self._interval * 2, self._rt.config.poll_interval)
                self._look = True

    def _start_claim(self) -> None:
        self._unbound = True
        claim = asyncio.create_task(self._claim(self._wakes), name="tasks-claim")
        self._claims.add(claim)
        claim.add_done_callback(self._claims.discard)

    async def _claim(self, wakes: int) -> None:
        """Claim tasks into the buffer, as many as slots are free when its batch is cut.

        Until then the claim is "unbound": slots that free up meanwhile join it
        instead of needing a claim of their own. Once bound, its slots are
        reserved until its rows are in the buffer.
        """
        config = self._rt.config
        limit, bound = 0, False

        def bind() -> int:
            nonlocal limit, bound
            bound, self._unbound = True, False
            limit = 0 if self._stopping else max(self._free_slots(), 0)
            self._reserved += limit
            return limit

        began = time.perf_counter()
        try:
            records = await self._rt.store.claim(
                self._rt.owner, config.queues, bind, config.lease_seconds, config.queue_concurrency
            )
            timings.CLAIM.observe(time.perf_counter() - began)
        except Exception as exc:
            log.warning("could not claim tasks: %s", exc)
            records = []
            self._interval = config.poll_interval
        finally:
            if not bound:  # it failed before its batch was cut
                self._unbound = False
            self._reserved -= limit
        if self._stopping:
            self._unstarted += [record.id for record in records]
            return
        for record in records:
            self._buffered.add(record.id)
            self._buffer.put_nowait(record)
        if records:  # work turned up: the next poll comes soon again
            self._interval = _MIN_POLL
        if len(records) < limit and self._wakes == wakes:
            self._look = False  # nothing more is due, unless enqueued since this claim began
        self._attention.set()

    async def _worker(self) -> None:
        """Start one task at a time; move on once its run is over.

        The slot is freed when the task body has ended and its outcome is
        submitted, not when that commit returns: the claim for the next task
        then shares the outcome's transaction. The execution stays in
        ``running`` (so its lease is renewed and drain waits for it) until
        its outcome is committed.
        """
        loop = asyncio.get_running_loop()
        while True:
            record = await self._buffer.get()
            self._buffered.discard(record.id)
            slot: asyncio.Future[None] = loop.create_future()
            self._busy += 1
            execution = Execution(
                record, on_settled=functools.partial(self._free_slot, slot, record)
            )
            execution.cancel_reason = self._stop_before_start.pop(record.id, None)
            self.running[record.id] = execution
            execution.task = asyncio.create_task(run_execution(self._rt, execution))
            execution.task.add_done_callback(functools.partial(self._finished, execution))
            await slot

    def _free_slot(self, slot: asyncio.Future[None], record: TaskRecord) -> None:
        self._busy -= 1
        if self._holds_a_limit(record):
            self.wake()  # its limit has a free slot: tasks held back by it may be claimable
        self._attention.set()
        if not slot.done():
            slot.set_result(None)

    def _holds_a_limit(self, record: TaskRecord) -> bool:
        """Whether ``record`` holds a slot of a concurrency limit or a queue cap."""
        return record.limits.concurrency_key is not None or (
            record.queue in self._rt.config.queue_concurrency
        )

    def _finished(self, execution: Execution, _: object) -> None:
        execution.settle()
        self.running.pop(execution.record.id, None)
        if self._holds_a_limit(execution.record):
            # Its outcome is committed: a task held back by the same limit may now
            # start in another process (this one claimed at the finish already).
            self._rt.store.wake_others()
        task = execution.task
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("task runner crashed", exc_info=task.exception())

    async def drain(self, timeout: float) -> None:
        """Stop claiming, requeue what has not started, give running tasks ``timeout`` s.

        Each step leaves the store consistent if the process is killed during
        it: unstarted tasks go back in one short transaction first; a running
        task that is cut short requeues itself as soon as it is cancelled;
        whatever a kill interrupts keeps a lease that expires and is reclaimed.
        """
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
        if self._rearm is not None:
            self._rearm.cancel()
        for task in [self._claimer, *self._workers]:
            if task is not None:
                task.cancel()
        for execution in self.running.values():  # cooperative tasks may stop before the deadline
            execution.ask_to_stop()
        await asyncio.gather(
            *(t for t in [self._claimer, *self._workers] if t), return_exceptions=True
        )
        if self._claims:  # each ends by adding what it claimed to self._unstarted
            await asyncio.wait(list(self._claims))
        unstarted = self._unstarted
        while not self._buffer.empty():
            unstarted.append(self._buffer.get_nowait().id)
        self._buffered.clear()
        if unstarted:
            try:
                released = await self._rt.store.release(self._rt.owner, unstarted)
                log.info("requeued %d claimed tasks that had not started", released)
            except Exception as exc:
                log.error("could not requeue unstarted tasks (their leases will expire): %s", exc)
        running = {e.task for e in self.running.values() if e.task is not None}
        if running:
            log.info("waiting up to %.1f s for %d running tasks", timeout, len(running))
            _, pending = await asyncio.wait(running, timeout=timeout)
            if pending:
                log.warning(
                    "requeueing %d tasks still running at the shutdown deadline", len(pending)
                )
                for execution in list(self.running.values()):
                    execution.cancel("shutdown")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await asyncio.wait(pending)

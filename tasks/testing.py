"""Testing code that enqueues tasks, without workers or a database.

Three tools for a user's own test suite (see docs/testing.md):

- :func:`eager`: every enqueue runs the task at once, inline, and its handle
  holds the result or the error (Celery's ``task_always_eager``, RQ's
  ``is_async=False``, Oban's ``:inline``).
- :func:`capture`: every enqueue is recorded and nothing runs; assert what was
  enqueued, then run the captured tasks on demand, in order (Oban's
  ``:manual`` with ``assert_enqueued``, Django's ``DummyBackend``).
- :func:`engine`: the real engine on a temporary SQLite file, with
  :meth:`Engine.drain` to wait until no task is due or running.

In both test modes a task runs as the engine would run it, one attempt at a
time: arguments and results go through JSON, the app context and
``current_task()`` are set, failures are retried (without the backoff)
while attempts and ``retry_on`` allow (each one kept in ``errors``), and a
``Retry`` runs the task again at once, up to its ``max_snoozes``. Blocking
and process tasks run in a thread of this process. ``get``, ``wait``,
``cancel`` and the handles answer from the test mode's own records; listings
and stats read the store.
The pytest fixtures are in :mod:`tasks.pytest_plugin`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.context import TaskContext, set_current
from tasks.errors import InvalidStateError, TaskNotFoundError
from tasks.events import TaskEvent
from tasks.handle import TaskHandle
from tasks.model import ErrorInfo, Progress, State, TaskRecord, new_id
from tasks.retrying import Retry
from tasks.serialization import dumps, encode_result
from tasks.store.graphs import Edge, NewWorkflow
from tasks.testing_workflows import WorkflowRuns, refuse_in_batch

if TYPE_CHECKING:
    from quart import Quart

    from tasks.extension import Tasks
    from tasks.registry import TaskCall


@dataclass(slots=True)
class Captured:
    """One enqueue seen by a test mode: the task's name, its arguments and its record."""

    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    record: TaskRecord = field(repr=False)

    @property
    def id(self) -> str:
        """The task id its handle carries."""
        return self.record.id


class TestMode(WorkflowRuns):
    """What a :class:`~tasks.extension.Tasks` in a test mode does instead of storing tasks."""

    __test__ = False  # not a pytest test class

    def __init__(self, tasks: Tasks, *, propagate: bool = False) -> None:
        self.tasks = tasks
        self.propagate = propagate
        """Raise a task's exception from the enqueue (Celery's ``task_eager_propagates``)."""
        self.enqueued: list[Captured] = []
        """Every enqueue, in order."""
        self._workflows: dict[str, NewWorkflow] = {}
        self._to: dict[str, list[Edge]] = {}
        self._from: dict[str, list[Edge]] = {}
        self._records: dict[str, TaskRecord] = {}

    async def enqueue(self, calls: Iterable[TaskCall[Any]]) -> list[TaskHandle[Any]]:
        """Record the calls (and, in eager mode, run them); return their handles."""
        calls = list(calls)
        refuse_in_batch(calls)
        handles = []
        for call in calls:
            args = json.loads(dumps(list(call.args), f"the arguments of task {call.task.name}"))
            kwargs = json.loads(
                dumps(call.kwargs, f"the keyword arguments of task {call.task.name}")
            )
            now = time.time()
            options = call.options
            record = TaskRecord(
                id=new_id(),
                name=call.task.name,
                queue=options.queue or call.task.queue,
                state=State.QUEUED,
                args=args,
                kwargs=kwargs,
                priority=call.task.priority if options.priority is None else options.priority,
                attempts=0,
                max_attempts=options.max_attempts or call.task.max_attempts or 3,
                run_at=now + (options.delay or 0),
                created_at=now,
                idempotency_key=options.idempotency_key,
            )
            self._add(record)
            await self._enqueued(record)
            handles.append(TaskHandle[Any](self.tasks, record.id))
        return handles

    async def _enqueued(self, record: TaskRecord) -> None:
        """What happens right after an enqueue (eager mode runs the task)."""

    def _add(self, record: TaskRecord) -> None:
        self._records[record.id] = record
        self.enqueued.append(Captured(record.name, record.args, record.kwargs, record))

    def _drop(self, task_id: str) -> None:
        self._records.pop(task_id, None)
        self.enqueued = [c for c in self.enqueued if c.id != task_id]

    def get(self, task_id: str) -> TaskRecord:
        """The record of a task enqueued in this mode."""
        try:
            return self._records[task_id]
        except KeyError:
            raise TaskNotFoundError(f"no task with id {task_id!r} in this test mode") from None

    def knows(self, task_id: str) -> bool:
        """Whether ``task_id`` was enqueued in this mode."""
        return task_id in self._records

    async def wait(self, task_id: str) -> TaskRecord:
        """The finished record; a task that has not run yet raises InvalidStateError."""
        record = self.get(task_id)
        if not record.done:
            raise InvalidStateError(
                f"task {task_id} ({record.name}) was captured and has not run: call"
                " capture.run() first"
            )
        return record

    def cancel(self, task_id: str) -> TaskRecord:
        """Cancel a task that has not run; InvalidStateError if it has."""
        record = self.get(task_id)
        if record.done:
            raise InvalidStateError(f"task {task_id} has already {record.state.value}")
        record.state, record.finished_at = State.CANCELLED, time.time()
        self.moved(record)
        return record

    async def _run(self, record: TaskRecord) -> None:
        """Run one task to its end as the engine would (attempts, retries, JSON),
        then move its workflow on.

        A :class:`~tasks.Retry` runs it again at once (no delay), without
        spending an attempt up to the task's ``max_snoozes``.
        """
        record.args = self.step_arguments(record)
        try:
            await self._attempts(record)
        finally:
            if record.done:
                self.moved(record)

    async def _attempts(self, record: TaskRecord) -> None:
        task = self.tasks.get_task(record.name)
        while True:
            record.attempts += 1
            record.state, record.started_at = State.RUNNING, time.time()
            try:
                value = await self._call(task, record)
                record.result = json.loads(encode_result(value, task.name))
            except Retry as snooze:
                if not snooze.spends_attempt and record.snoozes < task.max_snoozes:
                    record.snoozes += 1
                    record.attempts -= 1
                    continue
                if self._failed(task, record, snooze.cause or snooze):
                    continue
                return
            except Exception as exc:
                if self._failed(task, record, exc):
                    continue
                return
            record.state, record.finished_at, record.error = State.SUCCEEDED, time.time(), None
            return

    def _failed(self, task: Any, record: TaskRecord, exc: BaseException) -> bool:
        """Record a failed attempt; True if the task is to run again."""
        record.error = ErrorInfo(
            type(exc).__qualname__,
            str(exc),
            "".join(traceback.format_exception(exc)),
            at=time.time(),
            attempt=record.attempts,
        )
        record.errors.append(record.error)
        if record.attempts < record.max_attempts and task.retries(exc):
            return True
        record.state, record.finished_at = State.FAILED, time.time()
        if self.propagate:
            raise exc
        return False

    async def _call(self, task: Any, record: TaskRecord) -> Any:
        def report(progress: Progress) -> None:
            record.progress = progress

        context = TaskContext(record.id, record.name, record.attempts, record.max_attempts, report)
        app = self.tasks.app
        async with app.app_context() if app is not None else nullcontext():
            set_current(context)
            try:
                if task.executor == "async":
                    return await task.fn(*record.args, **record.kwargs)
                run = contextvars.copy_context().run
                return await asyncio.to_thread(run, task.fn, *record.args, **record.kwargs)
            finally:
                set_current(None)


class Eager(TestMode):
    """Every enqueue runs the task at once; see :func:`eager`."""

    async def _enqueued(self, record: TaskRecord) -> None:
        await self._run(record)

    async def _run_ready(self, workflow_id: str) -> None:
        while ready := [
            r for r in self._records.values()
            if r.workflow_id == workflow_id and r.state == State.QUEUED
        ]:  # fmt: skip
            for record in ready:
                await self._run(record)


class Capture(TestMode):
    """Every enqueue is recorded and nothing runs until :meth:`run`; see :func:`capture`."""

    def pending(self) -> list[Captured]:
        """The captured tasks that have not run (and were not cancelled), in order."""
        return [c for c in self.enqueued if c.record.state == State.QUEUED]

    def named(self, name: str) -> list[Captured]:
        """Every captured enqueue of the task called ``name``."""
        return [c for c in self.enqueued if c.name == name]

    def assert_enqueued(self, name: str, *args: Any, **kwargs: Any) -> Captured:
        """The enqueue of ``name`` with exactly these (JSON) arguments; AssertionError if none."""
        wanted = (json.loads(dumps(list(args), "args")), json.loads(dumps(kwargs, "kwargs")))
        for captured in self.named(name):
            if (captured.args, captured.kwargs) == wanted:
                return captured
        seen = [(c.args, c.kwargs) for c in self.named(name)]
        raise AssertionError(f"{name} was not enqueued with {wanted}; its enqueues: {seen}")

    async def run(self, limit: int = 1000) -> list[TaskRecord]:
        """Run the pending tasks in the order they were enqueued, then those they enqueued.

        Returns the records of the tasks run. ``limit`` bounds the total (a
        task that always enqueues another would otherwise never end).
        """
        done: list[TaskRecord] = []
        while pending := self.pending():
            for captured in pending:
                if len(done) >= limit:
                    raise RuntimeError(f"captured tasks still pending after {limit} runs")
                await self._run(captured.record)
                done.append(captured.record)
        return done

    def run_sync(self, limit: int = 1000) -> list[TaskRecord]:
        """:meth:`run` for plain (non-async) tests."""
        return asyncio.run(self.run(limit))


@contextmanager
def eager(tasks: Tasks, *, propagate: bool = False) -> Iterator[Eager]:
    """Within the block, ``tasks`` runs every enqueued task at once, inline."""
    with _mode(tasks, Eager(tasks, propagate=propagate)) as mode:
        yield mode


@contextmanager
def capture(tasks: Tasks) -> Iterator[Capture]:
    """Within the block, ``tasks`` records every enqueue and runs nothing."""
    with _mode(tasks, Capture(tasks)) as mode:
        yield mode


@contextmanager
def _mode(tasks: Tasks, mode: TestMode) -> Iterator[Any]:
    if tasks.test_mode is not None:
        raise RuntimeError("a test mode is already active on this Tasks")
    tasks.test_mode = mode
    try:
        yield mode
    finally:
        tasks.test_mode = None


class Engine:
    """The real engine on a temporary SQLite file; made by :func:`engine`."""

    def __init__(self, tasks: Tasks) -> None:
        self.tasks = tasks

    async def drain(self, timeout: float = 30.0, interval: float = 0.05) -> None:
        """Wait until no task is running and none is due; TimeoutError after ``timeout``.

        Every task event of this process wakes the check; it also runs every
        ``interval`` seconds (a delayed task coming due makes no event).
        """
        changed = asyncio.Event()

        def wake(event: TaskEvent) -> None:
            changed.set()

        self.tasks.add_listener(wake)
        try:
            async with asyncio.timeout(timeout):
                while await self._busy():
                    changed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(interval):
                            await changed.wait()
        finally:
            self.tasks.remove_listener(wake)

    async def _busy(self) -> bool:
        counts = await self.tasks.store.count_by_state()
        if counts[State.RUNNING] or counts[State.CANCELLING]:
            return True
        if not counts[State.QUEUED]:
            return False
        due = await self.tasks.store.next_run_at(self.tasks.config.queues, 0.0)
        # None: claimed since the count (look again); else busy only if one is due.
        return due is None or due <= time.time()


@asynccontextmanager
async def engine(app: Quart, **config: Any) -> AsyncIterator[Engine]:
    """Serve ``app`` (``app.test_app()``) with its tasks on a fresh temporary SQLite file.

    ``config`` adds ``TASKS_*`` keys (for example ``TASKS_CONCURRENCY=4``).
    """
    tasks: Tasks = app.extensions["tasks"]
    with tempfile.TemporaryDirectory(prefix="tasks-test-") as folder:
        url = f"sqlite:///{Path(folder) / 'tasks.sqlite3'}"
        saved = {key: app.config.get(key) for key in ("TASKS_DATABASE_URL", *config)}
        app.config.update({"TASKS_DATABASE_URL": url, **config})
        try:
            async with app.test_app():
                yield Engine(tasks)
        finally:
            for key, value in saved.items():
                if value is None:
                    app.config.pop(key, None)
                else:
                    app.config[key] = value


__all__ = ["Capture", "Captured", "Eager", "Engine", "TestMode", "capture", "eager", "engine"]

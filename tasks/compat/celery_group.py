"""Celery's :class:`GroupResult`: the results of a group's tasks, read as one.

What ``group(...)()`` returns (:mod:`tasks.compat.celery_canvas`). Each member
is an :class:`~tasks.compat.celery_result.AsyncResult` (or, for a member that
is itself a group, a :class:`GroupResult`); the group's ``id`` is the id of the
workflow it was enqueued in (``await tasks.get_workflow(id)``).

As with ``AsyncResult``: from a thread every read asks the store; on the
event loop thread reads show what the last ``await g.arefresh()`` (or
``aget``) loaded, and raise :class:`~tasks.compat.bridge.BlockingCallError`
before it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Union

from tasks.compat.bridge import run_blocking

if TYPE_CHECKING:
    from tasks.compat.celery_result import AsyncResult
    from tasks.extension import Tasks

Member = Union["AsyncResult[Any]", "GroupResult"]


class GroupResult:
    """The results of a group, in the order its tasks were given."""

    def __init__(self, group_id: str, results: list[Member], tasks: Tasks) -> None:
        self.id = group_id
        self.results = results
        self.tasks = tasks
        self.parent: Member | None = None
        """In a chain, the result of what came before the group (Celery's ``parent``)."""

    def __repr__(self) -> str:
        return f"<GroupResult {self.id} [{', '.join(r.id for r in self.results)}]>"

    def __iter__(self) -> Iterator[Member]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> Member:
        return self.results[index]

    async def arefresh(self) -> GroupResult:
        """Load every member's current record; returns self."""
        for member in self.results:
            await member.arefresh()
        return self

    def refresh(self) -> GroupResult:
        """Blocking :meth:`arefresh` for threads."""
        return run_blocking(
            self.tasks, self.arefresh, call="GroupResult.refresh()", instead="await g.arefresh()"
        )

    def ready(self) -> bool:
        """True once every task succeeded, failed or was revoked."""
        return all(member.ready() for member in self.results)

    def waiting(self) -> bool:
        """True while some task has not finished."""
        return not self.ready()

    def successful(self) -> bool:
        """True if every task succeeded."""
        return all(member.successful() for member in self.results)

    def failed(self) -> bool:
        """True if any task failed."""
        return any(member.failed() for member in self.results)

    def completed_count(self) -> int:
        """How many tasks succeeded (Celery counts successes only)."""
        return sum(1 for member in self.results if member.successful())

    async def aget(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        """Wait for every task; their results in order (a member group gives its list).

        With ``propagate``, raises the first failure in that order, as Celery's
        ``join()`` does; else a failed task's place holds its exception.
        ``timeout`` bounds the whole wait (``TimeoutError``).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for member in self.results:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            values.append(await member.aget(left, propagate))
        return values

    def get(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        """Blocking :meth:`aget` for threads."""
        return run_blocking(
            self.tasks,
            lambda: self.aget(timeout, propagate),
            call="GroupResult.get()",
            instead="await g.aget()",
        )

    join = get
    ajoin = aget

    async def arevoke(self) -> None:
        """Revoke every task of the group that has not finished."""
        for member in self.results:
            await member.arevoke()

    def revoke(self) -> None:
        """Blocking :meth:`arevoke` for threads."""
        run_blocking(
            self.tasks, self.arevoke, call="GroupResult.revoke()", instead="await g.arevoke()"
        )

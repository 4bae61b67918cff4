"""Group commit: many concurrent writes share one transaction.

Callers submit a request and wait for its future. One writer coroutine takes
everything pending, hands it to the backend to run in a single transaction,
then answers every caller. While a transaction is in flight new requests
collect, so the batch size grows with the load and nobody waits for a timer.
A request that fails by itself (a value the database refuses, a full backlog)
fails alone: the backend answers it with :class:`RequestFailed` and commits
the rest of the batch. If the transaction as a whole fails (the database is
locked, unreachable, out of disk), every request in it fails with the same
error and none of them is committed. A payload wrapped in :class:`AtCommit`
is computed when its batch is cut (a claim asks for the worker slots free at
that moment).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tasks import timings
from tasks.errors import TasksError, WriteRejectedError

log = logging.getLogger("tasks.store")


class ClosedError(RuntimeError):
    """Raised by :meth:`GroupCommit.submit` once the writer is closed (or never started)."""


@dataclass(frozen=True, slots=True)
class AtCommit:
    """A payload computed when its batch is cut, just before the transaction.

    A claim uses it to ask for the worker slots free at that moment, which
    includes slots freed after the claim was submitted.
    """

    compute: Callable[[], Any]


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """A batch result: this one request failed with ``error``; the others committed."""

    error: BaseException


def rejected(
    failed: RequestFailed, refused_by: str, detail: Callable[[BaseException], str] = str
) -> RequestFailed:
    """A request's own failure as its caller sees it.

    The engine's own errors pass as they are; anything else (a value the
    database refused) becomes a :class:`~tasks.errors.WriteRejectedError`
    saying that ``refused_by`` (the database, described) refused the write,
    with ``detail(error)`` (a backend may strip secrets from it).
    """
    error = failed.error
    if isinstance(error, TasksError):
        return failed
    rejection = WriteRejectedError(f"{refused_by} refused the write: {detail(error)}")
    rejection.__cause__ = error
    return RequestFailed(rejection)


def claim_payload(
    owner: str,
    queues: Any,
    limit: int | Callable[[], int],
    lease_seconds: float,
    caps: Mapping[str, int] | None = None,
) -> Any:
    """A claim's payload ``(owner, queues, limit, lease_seconds, caps)``; see
    :meth:`Store.claim`.

    With a function for ``limit`` it is computed when the batch is cut.
    """
    capped = dict(caps or {})
    if callable(limit):
        count = limit
        return AtCommit(lambda: (owner, queues, count(), lease_seconds, capped))
    return (owner, queues, limit, lease_seconds, capped)


@dataclass(slots=True)
class WriteRequest:
    """One caller's write: a kind the backend knows, its payload, and its answer."""

    kind: str
    payload: Any
    future: asyncio.Future[Any] = field(repr=False)


BatchRunner = Callable[[Sequence[WriteRequest]], Awaitable[list[Any]]]


class GroupCommit:
    """Runs submitted writes in shared transactions through ``run_batch``.

    ``run_batch`` gets the requests of one batch and returns one result per
    request, in order; it commits every request whose result is not a
    :class:`RequestFailed`, or raises and commits none.
    """

    def __init__(self, run_batch: BatchRunner, *, max_batch: int = 2000) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._pending: list[WriteRequest] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Start the writer coroutine on the running loop."""
        self._task = asyncio.create_task(self._writer(), name="tasks-group-commit")

    async def submit(self, kind: str, payload: Any) -> Any:
        """Queue a write and wait until the transaction holding it has committed."""
        if self._closing or self._task is None:
            raise ClosedError("the task store is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(WriteRequest(kind, payload, future))
        self._wake.set()
        return await future

    async def close(self) -> None:
        """Commit what is pending, then stop the writer."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            # One more turn of the loop lets writes that were started in the same
            # turn (a claim task just created, the other finishes of a burst) join.
            await asyncio.sleep(0)
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                batch = [request for request in batch if _compute_payload(request)]
                if batch:
                    await self._commit(batch)
            if self._closing:
                return

    async def _commit(self, batch: list[WriteRequest]) -> None:
        began = time.perf_counter()
        try:
            results = await self._run_batch(batch)
        except Exception as exc:
            log.debug("batch of %d writes failed: %r", len(batch), exc)
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        timings.COMMIT.observe(time.perf_counter() - began)
        for request, result in zip(batch, results, strict=True):
            if request.future.done():
                continue
            if isinstance(result, RequestFailed):
                request.future.set_exception(result.error)
            else:
                request.future.set_result(result)


def _compute_payload(request: WriteRequest) -> bool:
    """Compute an :class:`AtCommit` payload; False (and the caller gets the error) if it fails."""
    if isinstance(request.payload, AtCommit):
        try:
            request.payload = request.payload.compute()
        except Exception as exc:
            if not request.future.done():
                request.future.set_exception(exc)
            return False
    return True

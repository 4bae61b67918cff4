"""Operations over HTTP: ``GET /tasks/queues`` and ``/tasks/activity`` (read from the
store, so every process answers the same), ``POST /tasks/bulk/retry-failed`` and
``POST /tasks/bulk/purge`` (under ``bulk/``: a path ``/tasks/<word>`` would also match
the task route ``GET /tasks/<task_id>``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from quart import Blueprint, Response, current_app, jsonify, request
from quart_schema import document_querystring, document_request, document_response

from tasks.errors import InvalidStateError, TaskNotFoundError
from tasks.model import State, iso
from tasks.web.openapi import openapi_extra
from tasks.web.ops_schemas import (
    Activity,
    ActivityQuery,
    PurgeOut,
    PurgeRequest,
    QueueList,
    RetryFailedOut,
    RetryFailedRequest,
)
from tasks.web.payload import object_body, validate

if TYPE_CHECKING:
    from pydantic import BaseModel

    from tasks.extension import Tasks

Decorator = Callable[..., Callable[[Any], Any]]
THROUGHPUT_WINDOW = 60.0
"""Seconds over which ``finished_last_minute`` counts."""
MAX_RETRIED = 10_000
"""Most failed tasks one ``POST /tasks/bulk/retry-failed`` queues again."""
MAX_BUCKETS = 200
_PAGE = 500
_PURGE_BATCH = 1000


def add_ops_routes(bp: Blueprint, tasks: Tasks, errors: Decorator) -> None:
    """Mount the operations routes on the task API blueprint; ``errors`` documents errors."""

    async def json_body(model: type[BaseModel]) -> Any:
        limit = tasks.config.max_body_bytes
        return await object_body(request, model, limit, current_app.config.get("BODY_TIMEOUT"))

    @bp.get("/queues")
    @document_response(QueueList, 200)
    @errors()
    async def list_queues() -> Response:
        """Per queue: depth, running tasks, age of the oldest due task, recent throughput."""
        now = time.time()
        stats = {s.queue: s for s in await tasks.store.queue_stats()}
        finished = await tasks.store.finished_by_queue(now - THROUGHPUT_WINDOW)
        queues = []
        for name in sorted({*stats, *finished}):
            s = stats.get(name)
            oldest = None if s is None else s.oldest_run_at
            queues.append(
                {
                    "queue": name,
                    "queued": 0 if s is None else s.queued,
                    "running": 0 if s is None else s.running,
                    "oldest_queued_age": None if oldest is None or oldest > now else now - oldest,
                    "oldest_run_at": iso(oldest),
                    "finished_last_minute": finished.get(name, 0),
                }
            )
        return jsonify({"queues": queues})

    @bp.get("/activity")
    @document_querystring(ActivityQuery)
    @document_response(Activity, 200)
    @errors(400)
    async def activity() -> Response:
        """Tasks finished per time bucket over the last minutes, with their start latency.

        Every bucket is listed, quiet ones with zero; ``bucket`` is widened when
        the range would need over 200 buckets (``bucket_seconds`` says which was
        used). Read from the store, so every process of a deployment answers the same.
        """
        query: ActivityQuery = validate(ActivityQuery, request.args.to_dict(), "query")
        span = query.minutes * 60
        bucket = max(query.bucket, -(-span // MAX_BUCKETS))  # widened to stay within the bound
        count = span // bucket
        now = time.time()
        first = (now // bucket - count + 1) * bucket  # the last bucket holds "now"
        found = {
            round((a.start - first) / bucket): a
            for a in await tasks.store.activity(first, float(bucket))
        }
        buckets = []
        for i in range(count):
            a = found.get(i)
            buckets.append(
                {
                    "start": iso(first + i * bucket),
                    "finished": 0 if a is None else a.finished,
                    "failed": 0 if a is None else a.failed,
                    "latency_mean": None if a is None else a.latency_mean,
                    "latency_max": None if a is None else a.latency_max,
                }
            )
        return jsonify({"bucket_seconds": bucket, "buckets": buckets})

    @bp.post("/bulk/retry-failed")
    @document_request(RetryFailedRequest)
    @document_response(RetryFailedOut, 202)
    @errors(400, 408, 413, 415)
    @openapi_extra(request_body_required=True)
    async def retry_failed() -> Response:
        """Queue failed tasks again (those of one ``name``, or all), at most 10,000 per call."""
        body: RetryFailedRequest = await json_body(RetryFailedRequest)
        ids: list[str] = []
        cursor: str | None = None
        while len(ids) <= MAX_RETRIED:  # collect first: a retried task leaves the listing
            page = await tasks.store.list_summaries(
                state=State.FAILED, name=body.name, limit=_PAGE, cursor=cursor
            )
            ids += [summary.id for summary in page.tasks]
            if (cursor := page.next_cursor) is None:
                break
        retried = 0
        for task_id in ids[:MAX_RETRIED]:
            try:
                await tasks.retry(task_id)
            except (InvalidStateError, TaskNotFoundError):
                continue  # retried, deleted or changed meanwhile
            retried += 1
        response = jsonify({"retried": retried, "more": len(ids) > MAX_RETRIED})
        response.status_code = 202
        return response

    @bp.post("/bulk/purge")
    @document_request(PurgeRequest)
    @document_response(PurgeOut, 200)
    @errors(400, 408, 413, 415)
    @openapi_extra(request_body_required=True)
    async def purge() -> Response:
        """Delete finished tasks in the given states that finished over ``older_than`` s ago."""
        body: PurgeRequest = await json_body(PurgeRequest)
        before = time.time() - body.older_than
        states = {State(s) for s in body.states}
        deleted = 0
        while batch := await tasks.store.purge_finished(before, _PURGE_BATCH, states):
            deleted += batch
        return jsonify({"deleted": deleted})

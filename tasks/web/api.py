"""The task API blueprint: enqueue, inspect, list, stream, cancel, retry, stats."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from quart import Blueprint, Response, current_app, jsonify, request, url_for
from quart_schema import document_headers, document_querystring, document_request, document_response

from tasks.model import State
from tasks.registry import EnqueueOptions, TaskCall
from tasks.web import apidocs, auth
from tasks.web.enqueue_schema import enqueue_body_schema
from tasks.web.errors import (
    HANDLED_ERRORS,
    ApiError,
    render_api_error,
    render_http_exception,
    render_tasks_error,
)
from tasks.web.openapi import openapi_extra
from tasks.web.ops_routes import add_ops_routes
from tasks.web.payload import object_body, validate
from tasks.web.schedule_routes import add_schedule_routes
from tasks.web.schemas import (
    TASK_ID_PATTERN,
    EnqueueRequest,
    ErrorBody,
    HeadersIn,
    ListQuery,
    Stats,
    TaskOut,
    TaskPage,
    TaskSummaryOut,
)
from tasks.web.shutdown import SCOPE_KEY, Terminated
from tasks.web.sse import RETRY_MS, event_stream_response, parse_last_event_id, task_events
from tasks.web.summaries import page_json
from tasks.web.worker_routes import add_worker_routes
from tasks.web.workflow_routes import add_workflow_routes, task_workflow
from tasks.web.workflow_schemas import TaskDetailOut

if TYPE_CHECKING:
    from tasks.web.extension import TasksWeb

F = TypeVar("F", bound=Callable[..., Any])
_TASK_ID = re.compile(TASK_ID_PATTERN)
_RETRY_AFTER = {"Retry-After": "Seconds to wait before trying again"}
_ID = {"task_id": TASK_ID_PATTERN}
_PLACEHOLDER_ID = "f" * 32
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
# One server-sent event as the WHATWG parser delivers it. In an OpenAPI 3.1 document
# the ``schema`` of an event stream describes each event (3.2 calls it ``itemSchema``).
_TASK_EVENT = {
    "type": "object",
    "required": ["event", "data", "id"],
    "properties": {
        "event": {"const": "task"},
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The task's version"},
        "retry": {"const": RETRY_MS},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/TaskSummaryOut"},
        },
    },
}


def _errors(*statuses: int) -> Callable[[F], F]:
    """Document the JSON error body for each status (401 and 503 always apply)."""

    def decorate(func: F) -> F:
        for status in {*statuses, 401, 503}:
            func = document_response(ErrorBody, status)(func)
        return func

    return decorate


def create_blueprint(web: TasksWeb) -> Blueprint:
    """The ``tasks`` blueprint serving ``web.tasks``; mount it with a ``url_prefix``."""
    bp = Blueprint("tasks", __name__, static_folder="static", template_folder="templates")
    tasks = web.tasks

    @bp.before_request
    async def authenticate() -> None:
        if request.endpoint in ("tasks.static", apidocs.ENDPOINT):
            return
        token = tasks.config.api_token
        auth.refuse_cross_site(request, token)
        if not token:
            return
        if request.endpoint == "tasks.dashboard" and auth.same_token(
            request.args.get("token"), token
        ):
            return
        auth.check_request(request, token)

    bp.register_error_handler(ApiError, render_api_error)
    for error in HANDLED_ERRORS:
        bp.register_error_handler(error, render_tasks_error)

    def task_response(record_dict: dict[str, Any], status: int) -> Response:
        response = jsonify(record_dict)
        response.status_code = status
        return response

    def known_id(task_id: str) -> str:
        if not _TASK_ID.match(task_id):
            raise ApiError(404, "task_not_found", f"no task with id {task_id[:64]!r}")
        return task_id

    @bp.post("")
    @document_request(EnqueueRequest)
    @document_response(TaskOut, 202)
    @document_response(TaskOut, 200)
    @_errors(400, 408, 413, 415, 422, 429)
    @openapi_extra(
        headers={
            202: {"Location": "URL of the new task"},
            200: {"Location": "URL of the existing task"},
            429: _RETRY_AFTER,
            503: _RETRY_AFTER,
        },
        request_body_required=True,
        request_schema=lambda: enqueue_body_schema(
            EnqueueRequest.model_json_schema(),
            (task for _, task in tasks.registry.items() if task.http),
        ),
    )
    async def enqueue() -> Response:
        """Enqueue a task.

        202 with the new task and its ``Location``; 200 with the existing task when
        ``idempotency_key`` matched an earlier request, or ``unique_key`` (or the
        task's own uniqueness) a task that is still queued or running. Nothing is enqueued on any
        4xx answer.
        """
        body: EnqueueRequest = await object_body(
            request,
            EnqueueRequest,
            tasks.config.max_body_bytes,
            current_app.config.get("BODY_TIMEOUT"),
        )
        task = tasks.registry.get(body.name)
        if task is None or not task.http:
            raise ApiError(
                422, "unknown_task", f"no task named {body.name!r} can be started over HTTP"
            )
        args, kwargs = task.bounds.whole_numbers(tuple(body.args), body.kwargs)
        task.check_arguments(args, kwargs)
        options = EnqueueOptions(
            delay=body.delay,
            run_at=None if body.run_at is None else body.run_at.timestamp(),
            queue=body.queue,
            priority=body.priority,
            max_attempts=body.max_attempts,
            idempotency_key=body.idempotency_key,
            unique_key=body.unique_key,
        )
        call = TaskCall(task, args, kwargs, options)
        handle, record = await tasks.enqueue_with_record(call)
        # The hot path: one shared encoder instead of jsonify's per-call setup,
        # and the task URL from a template built once per mount point.
        return Response(
            _ENCODER.encode(record.to_dict()),
            202 if handle.created else 200,
            headers={"Location": task_location(handle.id)},
            content_type="application/json",
        )

    locations: dict[str, str] = {}

    def task_location(task_id: str) -> str:
        """``url_for("tasks.get_task", task_id=...)``, without building a URL per request."""
        template = locations.get(request.root_path)
        if template is None:
            template = url_for("tasks.get_task", task_id=_PLACEHOLDER_ID)
            locations[request.root_path] = template
        return template.replace(_PLACEHOLDER_ID, task_id)

    @bp.get("")
    @document_querystring(ListQuery)
    @document_response(TaskPage, 200)
    @_errors(400)
    async def list_tasks() -> Response:
        """List task summaries, newest first, with keyset paging.

        Filter by ``state`` and ``name``; pass ``next_cursor`` back as ``cursor``
        for the next page. A page holds at most ``limit`` tasks and stops early
        at ``TASKS_MAX_PAGE_BYTES``; each summary's ``url`` is the full task.
        """
        query: ListQuery = validate(ListQuery, request.args.to_dict(), "query")
        page = await tasks.list_summaries(
            state=State(query.state) if query.state else None,
            name=query.name,
            limit=query.limit,
            cursor=query.cursor,
        )
        body = page_json(page, task_location, tasks.config.max_page_bytes)
        return Response(body, 200, content_type="application/json")

    @bp.get("/stats")
    @document_response(Stats, 200)
    @_errors()
    async def stats() -> Response:
        """Task counts by state, and by task name and state."""
        by_state = await tasks.store.count_by_state()
        by_name = await tasks.store.count_by_name()
        return jsonify(
            {
                "by_state": {state.value: n for state, n in by_state.items()},
                "by_name": {
                    name: {state.value: n for state, n in counts.items()}
                    for name, counts in sorted(by_name.items())
                },
            }
        )

    add_schedule_routes(bp, tasks, _errors)
    add_ops_routes(bp, tasks, _errors)
    add_worker_routes(bp, tasks, _errors)
    add_workflow_routes(bp, tasks, _errors)

    @bp.get("/<task_id>")
    @document_response(TaskDetailOut, 200)
    @_errors(404)
    @openapi_extra(path_patterns=_ID)
    async def get_task(task_id: str) -> Response:
        """One task: state, progress, result or error; why it waits; its workflow, if any."""
        record = await tasks.get(known_id(task_id))
        view = record.to_dict()
        waiting = await tasks.why_waiting(record)
        if waiting is not None:
            view["waiting"] = waiting.to_dict()
        view["workflow"] = await task_workflow(tasks, record)
        return task_response(view, 200)

    @bp.get("/<task_id>/events")
    @document_headers(HeadersIn)
    @_errors(404)
    @openapi_extra(
        content={200: {"text/event-stream": {"schema": _TASK_EVENT}}},
        descriptions={200: "A stream of `task` events, one per stored change"},
        models=(TaskSummaryOut,),
        path_patterns=_ID,
    )
    async def task_event_stream(task_id: str) -> Response:
        """Live updates of one task as server-sent events.

        Each ``task`` event carries the task's summary as JSON, with the task's
        ``version`` as event id. The first event is sent at once; the stream
        ends after the task's terminal state. Send ``Last-Event-ID`` to resume.
        """
        await tasks.get_summary(known_id(task_id))
        stream = task_events(
            tasks,
            task_id,
            url=task_location(task_id),
            last_version=parse_last_event_id(request.headers.get("Last-Event-ID")),
            terminated=cast("Terminated | None", request.scope.get(SCOPE_KEY)),
            poll_interval=web.poll_interval,
            keepalive=web.keepalive,
        )
        return event_stream_response(stream)

    @bp.post("/<task_id>/cancel")
    @document_response(TaskOut, 202)
    @_errors(404, 409)
    @openapi_extra(path_patterns=_ID)
    async def cancel(task_id: str) -> Response:
        """Cancel a queued or running task (409 if it has finished)."""
        record = await tasks.cancel(known_id(task_id))
        return task_response(record.to_dict(), 202)

    @bp.post("/<task_id>/retry")
    @document_response(TaskOut, 202)
    @_errors(404, 409)
    @openapi_extra(path_patterns=_ID)
    async def retry(task_id: str) -> Response:
        """Queue a failed or cancelled task again (409 otherwise)."""
        record = await tasks.retry(known_id(task_id))
        return task_response(record.to_dict(), 202)

    return bp


def json_http_errors(prefixes: tuple[str, ...]) -> Any:
    """An app error handler: werkzeug HTTP errors as JSON for paths under ``prefixes``."""

    async def handle(exc: Any) -> Any:
        if request.path.startswith(prefixes):
            return render_http_exception(exc)
        return exc

    return handle

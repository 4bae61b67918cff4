"""The workflow page's one live stream: its steps as they change, and the workflow's state.

``GET /tasks/dashboard/workflow/<id>/events`` works like the list page's stream
(:mod:`tasks.web.live`): no queue of events; each round re-reads the steps'
summaries (bounded in size, at most 1,000 steps in two queries) and sends those
whose ``version`` differs from what it sent. Rounds run when this process
commits a change to one of the steps, and every ``poll_interval`` seconds
otherwise (changes made by other processes, and steps the database moved on by
itself). A reconnecting client gets every step again.

Events: ``step`` (a ``StepOut``), ``removed`` (``{"id"}``: an error step the
store dropped once it was not needed) and ``workflow`` (``{"id", "state",
"done", "counts"}``, when it changes). The stream ends after the ``workflow``
event that says ``done``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from tasks.errors import NotAcceptingError, StoreUnavailableError
from tasks.events import TaskEvent
from tasks.extension import Tasks
from tasks.model import State
from tasks.store.graphs import WorkflowRecord
from tasks.summary import TaskSummary
from tasks.web.live import MIN_ROUND, wait_round
from tasks.web.shutdown import Terminated
from tasks.web.sse import RETRY_MS, stopping
from tasks.web.workflow_views import parents_of, status_view, step_view

READ_BATCH = 500
"""Ids per summary query (the store's bound)."""
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


def _event(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {_ENCODER.encode(data)}\n\n".encode()


async def _summaries(tasks: Tasks, ids: list[str]) -> dict[str, TaskSummary]:
    found: dict[str, TaskSummary] = {}
    for start in range(0, len(ids), READ_BATCH):
        for summary in await tasks.store.get_summaries(ids[start : start + READ_BATCH]):
            found[summary.id] = summary
    return found


async def workflow_events(
    tasks: Tasks,
    workflow: WorkflowRecord,
    *,
    terminated: Terminated | None,
    poll_interval: float,
    keepalive: float,
) -> AsyncIterator[bytes]:
    """Yield ``step``, ``removed`` and ``workflow`` events until the workflow is done,
    the client leaves or the server stops (see the module)."""
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    stop = asyncio.ensure_future(terminated.wait()) if terminated is not None else None
    step_ids = sorted(step.id for step in workflow.steps)
    parents = parents_of(workflow.edges)
    followed = set(step_ids)

    def wake(event: TaskEvent) -> None:
        if event.task_id in followed:
            woken.set()

    sent: dict[str, int] = {}
    status: dict[str, Any] | None = None
    tasks.add_listener(wake)
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        quiet_until = loop.time() + keepalive
        while not stopping(tasks, stop):
            woken.clear()
            started = loop.time()
            try:
                found = await _summaries(tasks, step_ids)
            except (NotAcceptingError, StoreUnavailableError):
                return  # the client reconnects once the server is back
            out: list[bytes] = []
            states: dict[str, State] = {}
            for task_id in step_ids:
                summary = found.get(task_id)
                if summary is None:
                    out.append(_event("removed", {"id": task_id}))
                    continue
                states[task_id] = summary.state
                if sent.get(task_id) != summary.version:
                    sent[task_id] = summary.version
                    out.append(_event("step", step_view(summary, parents.get(task_id, []))))
            step_ids = list(states)
            now = status_view(workflow.id, states, workflow.result_ids)
            if now != status:
                status = now
                out.append(_event("workflow", now))
            for chunk in out:
                yield chunk
            if now["done"]:
                return
            if out:
                quiet_until = loop.time() + keepalive
            elif loop.time() >= quiet_until:
                yield b": keep-alive\n\n"
                quiet_until = loop.time() + keepalive
            await wait_round(woken, stop, poll_interval)
            await wait_round(None, stop, started + MIN_ROUND - loop.time())
    finally:
        tasks.remove_listener(wake)
        if stop is not None:
            stop.cancel()

"""The worker registry over HTTP: ``GET /tasks/workers``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from quart import Blueprint, Response, jsonify
from quart_schema import document_response

from tasks.fleet import workers_json
from tasks.web.schemas import WorkerList

if TYPE_CHECKING:
    from tasks.extension import Tasks

Decorator = Callable[..., Callable[[Any], Any]]


def add_worker_routes(bp: Blueprint, tasks: Tasks, errors: Decorator) -> None:
    """Mount the registry route on the task API blueprint; ``errors`` documents error bodies."""

    @bp.get("/workers")
    @document_response(WorkerList, 200)
    @errors()
    async def list_workers() -> Response:
        """Every process that runs workers: its queues, concurrency, last heartbeat, the tasks
        it runs now, and whether it is alive or lost (a lost one's tasks are recovered)."""
        found = await workers_json(tasks.store, tasks.config.lease_seconds)
        return jsonify({"workers": found})

"""Schedules over HTTP: ``GET /tasks/schedules``, ``POST .../<name>/pause`` and ``/resume``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from quart import Blueprint, Response, jsonify
from quart_schema import document_response

from tasks.web.schemas import ScheduleList, ScheduleOut

if TYPE_CHECKING:
    from tasks.extension import Tasks

Decorator = Callable[..., Callable[[Any], Any]]


def add_schedule_routes(bp: Blueprint, tasks: Tasks, errors: Decorator) -> None:
    """Mount the schedule routes on the task API blueprint; ``errors`` documents error bodies."""

    @bp.get("/schedules")
    @document_response(ScheduleList, 200)
    @errors()
    async def list_schedules() -> Response:
        """Every declared schedule, with its latest and next slot and whether it is paused."""
        now = time.time()
        views = await tasks.schedule_views()
        return jsonify({"schedules": [view.to_dict(now) for view in views]})

    async def set_paused(name: str, paused: bool) -> Response:
        view = await tasks.pause_schedule(name) if paused else await tasks.resume_schedule(name)
        return jsonify(view.to_dict(time.time()))

    @bp.post("/schedules/<name>/pause")
    @document_response(ScheduleOut, 200)
    @errors(404)
    async def pause_schedule(name: str) -> Response:
        """Pause a schedule: no slot fires until it is resumed (held in the store)."""
        return await set_paused(name, True)

    @bp.post("/schedules/<name>/resume")
    @document_response(ScheduleOut, 200)
    @errors(404)
    async def resume_schedule(name: str) -> Response:
        """Resume a paused schedule; slots missed meanwhile follow its missed-slot policy."""
        return await set_paused(name, False)

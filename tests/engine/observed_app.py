"""Tasks for the log, hook and trace tests, importable by pool processes."""

from __future__ import annotations

import logging
from typing import Any

from quart import Quart

from tasks import Tasks

tasks = Tasks()
user_log = logging.getLogger("user.code")
attempts: dict[str, int] = {}


@tasks.task(name="obs.async")
async def logs_async(text: str) -> str:
    user_log.info("async body says %s", text)
    return text


@tasks.task(name="obs.thread")
def logs_thread(text: str) -> str:
    user_log.info("thread body says %s", text)
    return text


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@tasks.task(name="obs.process", executor="process")
def logs_process(text: str) -> dict[str, Any]:
    """Logs in the pool process and returns the fields its record carried."""
    keep = _Keep()
    user_log.addHandler(keep)
    try:
        user_log.warning("process body says %s", text)
    finally:
        user_log.removeHandler(keep)
    [record] = keep.records
    fields = ("task_id", "task_name", "task_queue", "task_attempt")
    return {name: getattr(record, name, None) for name in fields}


@tasks.task(name="obs.flaky", max_attempts=2, retry_backoff=0.01)
async def flaky(key: str) -> str:
    attempts[key] = attempts.get(key, 0) + 1
    if attempts[key] == 1:
        raise ConnectionError(f"first try of {key} fails")
    return "ok"


@tasks.task(name="obs.broken", max_attempts=1)
async def broken(message: str) -> None:
    raise ValueError(message)


@tasks.task(name="obs.process_broken", executor="process", max_attempts=1)
def process_broken(message: str) -> None:
    raise KeyError(message)


@tasks.task(name="obs.nested")
def nested() -> None:
    """Opens a span of its own in a pool thread: a child of the run's span."""
    from opentelemetry import trace

    from tasks import current_task

    with trace.get_tracer("user").start_as_current_span(f"inner {current_task().id}"):
        pass


def create_app(database_url: str = "sqlite:///:memory:", **settings: Any) -> Quart:
    """A fresh app bound to the module's ``tasks``."""
    app = Quart("observed")
    app.config.update(
        TASKS_DATABASE_URL=database_url,
        TASKS_APP_IMPORT="tests.engine.observed_app:create_app",
        TASKS_PROCESSES=1,
        **{f"TASKS_{k.upper()}": v for k, v in settings.items()},
    )
    tasks.init_app(app)
    return app

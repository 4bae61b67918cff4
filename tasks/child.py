"""What runs inside a pool process: load the app once, then run tasks by name.

Like a Celery prefork child, each process imports the application when it
starts (``TASKS_APP_IMPORT``), so tasks run with the real app context and
configuration. Results travel back as JSON text and errors as plain strings,
so nothing unpicklable ever crosses the process boundary.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import traceback
from multiprocessing.queues import Queue
from typing import Any

from tasks import logs
from tasks.context import TaskContext, set_current
from tasks.model import Progress
from tasks.retrying import Retry
from tasks.serialization import encode_result

ChildOutcome = tuple[str, str | None, str | None, str | None, Progress | None]
"""("ok", result_json, None, None, progress), ("error", type, message, traceback, progress)
or, for a :class:`~tasks.retrying.Retry` that spends no attempt, ("snooze", delay, reason,
None, progress).

The last progress report travels with the outcome: the relay queue may deliver
it after the outcome arrives.
"""

_state: dict[str, Any] = {}


def load_app(import_path: str) -> Any:
    """Import ``module:attribute``; call it if it is a factory rather than an app."""
    module_name, _, attribute = import_path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"TASKS_APP_IMPORT must look like 'module:app', got {import_path!r}")
    target = getattr(importlib.import_module(module_name), attribute)
    if not hasattr(target, "extensions") and callable(target):
        target = target()
    return target


def init_child(
    import_path: str, progress: Queue[tuple[str, float, float | None, str | None]]
) -> None:
    """Pool initializer: load the app (errors are reported by the first task)."""
    _state["progress"] = progress
    _state["loop"] = asyncio.new_event_loop()
    logs.install()
    try:
        _state["app"] = load_app(import_path)
    except BaseException as exc:
        _state["load_error"] = (
            f"cannot load the app from {import_path!r} in a pool process: {exc!r}"
        )


def run_in_child(
    name: str,
    task_id: str,
    attempt: int,
    max_attempts: int,
    args: list[Any],
    kwargs: dict[str, Any],
    queue: str = "default",
) -> ChildOutcome:
    """Run one task by name inside the app context, its log fields bound; never raises."""
    last: list[Progress] = []
    fields = logs.bind(task_id, name, queue, attempt)
    try:
        if "load_error" in _state:
            raise RuntimeError(_state["load_error"])
        app = _state["app"]
        task = app.extensions["tasks"].registry[name]
        relay = _state["progress"]

        def report(p: Progress) -> None:
            last[:] = [p]
            relay.put((task_id, p.current, p.total, p.message))

        set_current(TaskContext(task_id, name, attempt, max_attempts, report))

        async def call() -> Any:
            async with app.app_context():
                result = task.fn(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                return result

        value = _state["loop"].run_until_complete(call())
        result = encode_result(value, name)
        return ("ok", result, None, None, last[0] if last else None)
    except Retry as exc:
        if not exc.spends_attempt:
            return ("snooze", repr(exc.delay), exc.reason, None, last[0] if last else None)
        cause = exc.cause or exc
        failure = (type(cause).__qualname__, str(cause), traceback.format_exc())
        return ("error", *failure, last[0] if last else None)
    except BaseException as exc:
        failure = (type(exc).__qualname__, str(exc), traceback.format_exc())
        return ("error", *failure, last[0] if last else None)
    finally:
        set_current(None)
        logs.unbind(fields)

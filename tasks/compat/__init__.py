"""Flask-era background-work APIs on durable tasks, for porting Flask apps to Quart.

- :class:`TaskQueue`: a ``queue.Queue``-like object whose items become durable tasks.
- :class:`Executor`: Flask-Executor's ``submit``/``map``/stored futures (in memory only).
- :class:`CeleryTasks`: ``@celery.task``, ``.delay()``, ``.apply_async()``, ``AsyncResult``,
  and the canvas: ``.s()``, ``.si()``, ``chain``, ``group``, ``chord``, ``|``.

Blocking calls work from plain ``def`` views (Quart runs them in threads) and
hand their work to the app's event loop; on the loop thread they raise
:class:`BlockingCallError` naming the awaitable variant (``aput``, ``adelay``,
``aget``...). See ``docs/porting.md``.
"""

from tasks.compat.bridge import BlockingCallError
from tasks.compat.celery_api import CeleryTasks
from tasks.compat.celery_beat import crontab
from tasks.compat.celery_canvas import CanvasError, Signature, chain, chord, group, signature
from tasks.compat.celery_group import GroupResult
from tasks.compat.celery_result import AsyncResult, RemoteTaskError, TaskRevokedError
from tasks.compat.celery_retry import MaxRetriesExceededError
from tasks.compat.celery_task import CeleryTask, TaskRequest
from tasks.compat.executor_api import AwaitableFuture, Executor, FutureCollection
from tasks.compat.queue_api import TaskQueue

__all__ = [
    "AsyncResult",
    "AwaitableFuture",
    "BlockingCallError",
    "CanvasError",
    "CeleryTask",
    "CeleryTasks",
    "Executor",
    "FutureCollection",
    "GroupResult",
    "MaxRetriesExceededError",
    "RemoteTaskError",
    "Signature",
    "TaskQueue",
    "TaskRequest",
    "TaskRevokedError",
    "chain",
    "chord",
    "crontab",
    "group",
    "signature",
]

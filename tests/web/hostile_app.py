"""The reference app plus a task that reports a client's text as its progress message.

Served by the dashboard's browser security tests (``hypercorn tests.web.hostile_app:app``):
the demo tasks put client text in errors and results; this one puts it in the
progress message, then waits to be cancelled (at most a minute).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from pydantic import Field

from app import create_app
from app.extensions import tasks
from tasks import current_task


@tasks.task(name="hostile.report", http=True, timeout=90)
async def report(message: Annotated[str, Field(max_length=1000)]) -> None:
    """Report ``message`` as progress, then wait."""
    current_task().progress(1, 2, message)
    await asyncio.sleep(60)


app = create_app({"TASKS_APP_IMPORT": "tests.web.hostile_app:app"})

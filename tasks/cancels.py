"""Delivering cancels to the process that runs the task, within about a second.

``Tasks.cancel`` marks a running task ``cancelling`` in the store. When the
task runs in the same process it is stopped at once; any other process learns
of it here: while it runs tasks, each process asks the store every
:data:`CANCEL_POLL` seconds which of its own tasks were asked to stop (one
indexed read, nothing while it runs none) and stops them. The task's run then
confirms the cancel (``cancelled``) once its body has ended.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.runtime import Runtime

log = logging.getLogger("tasks")

CANCEL_POLL = 0.5
"""Seconds between two looks for cancel requests, while this process runs tasks."""


async def deliver_cancels(rt: Runtime) -> None:
    """Stop the tasks this process runs that were asked to stop elsewhere; runs until cancelled."""
    while True:
        await asyncio.sleep(CANCEL_POLL)
        dispatcher = rt.dispatcher
        if dispatcher is None or not dispatcher.claimed_ids:
            continue
        try:
            requested = await rt.store.cancel_requests(rt.owner)
        except Exception as exc:  # the heartbeat notices a lost store; try again
            log.debug("could not read cancel requests: %s", exc)
            continue
        for task_id in requested:
            if dispatcher.cancel_local(task_id):
                log.info("stopping task %s: it was cancelled", task_id)

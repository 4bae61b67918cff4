"""Admin commands that change tasks: ``retry``, ``cancel``, ``purge``.

They apply the same rules as :mod:`tasks.control` (only failed or cancelled
tasks are retried, a finished task is not cancelled), but straight on the
store: a worker finds a retried task by notification or polling, and a
``cancelling`` task through its cancel poll.
"""

from __future__ import annotations

import time

import click

from tasks.cli.output import Duration, span
from tasks.cli.target import fail, run, store_options
from tasks.model import TERMINAL_STATES, State
from tasks.store import Store

_PAGE = 500
_PURGE_BATCH = 1000


@click.command()
@click.argument("task_id", metavar="ID", required=False)
@click.option("--failed", is_flag=True, help="retry every failed task (instead of one ID)")
@click.option("--name", help="with --failed: only tasks with this task name")
@store_options
def retry(
    task_id: str | None,
    failed: bool,
    name: str | None,
    database_url: str | None,
    app_path: str | None,
) -> None:
    """Queue a failed or cancelled task again (ID), or every failed one (--failed)."""
    if (task_id is None) == (not failed):
        raise click.UsageError("give a task ID or --failed, not both")
    if name is not None and not failed:
        raise click.UsageError("--name goes with --failed")

    async def action(store: Store) -> None:
        if task_id is not None:
            await _retry_one(store, task_id)
            click.echo(f"queued {task_id} again")
            return
        ids: list[str] = []
        cursor: str | None = None
        while True:  # collect first: a retried task leaves the listing being paged
            page = await store.list(state=State.FAILED, name=name, limit=_PAGE, cursor=cursor)
            ids += [record.id for record in page.tasks]
            if (cursor := page.next_cursor) is None:
                break
        retried = [i for i in ids if (r := await store.retry(i)) and r.state is State.QUEUED]
        click.echo(f"queued {len(retried)} failed task(s) again")

    run(action, database_url, app_path)


async def _retry_one(store: Store, task_id: str) -> None:
    before = await store.get(task_id)
    if before is None:
        fail(f"no task with id {task_id!r}")
    if before.state is State.CANCELLING:
        fail(f"task {task_id} is still stopping (cancelling); retry it once it is cancelled")
    if before.state not in (State.FAILED, State.CANCELLED):
        fail(f"only failed or cancelled tasks can be retried; task {task_id} is {before.state}")
    record = await store.retry(task_id)
    if record is None or record.state is not State.QUEUED:
        fail(f"task {task_id} could not be retried")


@click.command()
@click.argument("task_id", metavar="ID")
@store_options
def cancel(task_id: str, database_url: str | None, app_path: str | None) -> None:
    """Cancel a queued task, or ask a running one to stop (it becomes ``cancelling``)."""

    async def action(store: Store) -> None:
        before = await store.get(task_id)
        if before is None:
            fail(f"no task with id {task_id!r}")
        if before.done:
            fail(f"task {task_id} has already {before.state}")
        record = await store.cancel(task_id)
        if record is None:
            fail(f"no task with id {task_id!r}")
        if record.state is State.CANCELLED:
            click.echo(f"cancelled {task_id}")
        elif record.state is State.CANCELLING:
            click.echo(f"asked {task_id} to stop: cancelling until its worker confirms")
        else:
            fail(f"task {task_id} has already {record.state}")

    run(action, database_url, app_path)


@click.command()
@click.option(
    "--state",
    "states",
    type=click.Choice(sorted(s.value for s in TERMINAL_STATES)),
    multiple=True,
    required=True,
    help="finished state to delete (repeatable)",
)
@click.option(
    "--older-than", type=Duration(), required=True, help="finished this long ago: 7d, 12h, 30m, 45s"
)
@click.option("--yes", is_flag=True, help="do not ask before deleting")
@store_options
def purge(
    states: tuple[str, ...],
    older_than: float,
    yes: bool,
    database_url: str | None,
    app_path: str | None,
) -> None:
    """Delete finished tasks in the given states that finished longer ago than --older-than."""
    chosen = {State(s) for s in states}
    before = time.time() - older_than
    described = f"{'/'.join(sorted(states))} tasks finished more than {span(older_than)} ago"
    if not yes:  # "no" or no answer (stdin closed) aborts with exit code 1
        click.confirm(f"Delete {described}?", abort=True)

    async def action(store: Store) -> None:
        deleted = 0
        while batch := await store.purge_finished(before, _PURGE_BATCH, chosen):
            deleted += batch
        click.echo(f"deleted {deleted} task(s)")

    run(action, database_url, app_path)


COMMANDS = (retry, cancel, purge)

"""Admin commands that read tasks: ``list``, ``show``, ``stats``.

Each opens the store named by ``--database-url``/``--app`` (see
:mod:`tasks.cli.target`), reads, prints a table (or JSON with ``--json``)
and closes it.
"""

from __future__ import annotations

import os
from typing import Any

import click

from tasks.cli import actions
from tasks.cli.output import echo_json, echo_table, when
from tasks.cli.target import fail, run, store_options
from tasks.limits import parse_queue_limits
from tasks.model import State
from tasks.store import Store
from tasks.waiting import why_waiting

STATE = click.Choice([s.value for s in State])
as_json = click.option("--json", "json_output", is_flag=True, help="print JSON instead of a table")


@click.command(name="list")
@click.option("--state", type=STATE, help="only tasks in this state")
@click.option("--name", help="only tasks with this task name")
@click.option("--queue", help="only tasks in this queue")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@as_json
@store_options
def list_tasks(
    state: str | None,
    name: str | None,
    queue: str | None,
    limit: int,
    json_output: bool,
    database_url: str | None,
    app_path: str | None,
) -> None:
    """List tasks, newest first."""

    async def action(store: Store) -> None:
        page = await store.list(
            state=None if state is None else State(state), name=name, queue=queue, limit=limit
        )
        if json_output:
            echo_json([record.to_dict() for record in page.tasks])
            return
        echo_table(
            ("id", "name", "queue", "state", "attempts", "created", "finished"),
            [
                (
                    r.id,
                    r.name,
                    r.queue,
                    r.state.value,
                    f"{r.attempts}/{r.max_attempts}",
                    when(r.created_at),
                    when(r.finished_at),
                )
                for r in page.tasks
            ],
        )
        if page.next_cursor is not None:
            click.echo(f"(more than {limit}: raise --limit or narrow the filters)")

    run(action, database_url, app_path)


@click.command()
@click.argument("task_id", metavar="ID")
@as_json
@store_options
def show(task_id: str, json_output: bool, database_url: str | None, app_path: str | None) -> None:
    """Show everything about one task, its error history and tracebacks included."""

    async def action(store: Store) -> None:
        record = await store.get(task_id)
        if record is None:
            fail(f"no task with id {task_id!r}")
        view = record.to_dict()
        caps = parse_queue_limits(os.environ.get("TASKS_QUEUE_CONCURRENCY", ""))
        waiting = await why_waiting(store, record, caps)
        if waiting is not None:
            view["waiting"] = waiting.to_dict()
        if json_output:
            echo_json(view)
        else:
            _describe(view)

    run(action, database_url, app_path)


def _describe(view: dict[str, Any]) -> None:
    """Print a task field by field, then each failed attempt with its traceback."""
    errors = view.pop("errors")
    error = view.pop("error")
    width = max(len(key) for key in view)
    for key, value in view.items():
        click.echo(f"{key.ljust(width)}  {'-' if value is None else value}")
    if error is not None and not errors:
        errors = [error]
    for entry in errors:
        attempt = entry.get("attempt", "?")
        at = entry.get("at", "")
        click.echo(f"\nattempt {attempt} failed {at}: {entry['type']}: {entry['message']}")
        if entry.get("traceback"):
            click.echo(entry["traceback"].rstrip())


@click.command()
@as_json
@store_options
def stats(json_output: bool, database_url: str | None, app_path: str | None) -> None:
    """Count tasks per state, in all and per task name."""

    async def action(store: Store) -> None:
        totals = await store.count_by_state()
        by_name = await store.count_by_name()
        if json_output:
            echo_json(
                {
                    "states": {s.value: n for s, n in totals.items()},
                    "names": {
                        name: {s.value: n for s, n in counts.items()}
                        for name, counts in sorted(by_name.items())
                    },
                }
            )
            return
        states = list(State)
        rows = [
            (name, *(counts.get(s, 0) for s in states)) for name, counts in sorted(by_name.items())
        ]
        rows.append(("(all)", *(totals.get(s, 0) for s in states)))
        echo_table(("name", *(s.value for s in states)), rows)

    run(action, database_url, app_path)


COMMANDS = (list_tasks, show, stats, *actions.COMMANDS)

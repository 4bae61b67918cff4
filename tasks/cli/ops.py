"""Operations commands: ``queues`` (load per queue), ``schedules``, ``workers``."""

from __future__ import annotations

import time

import click

from tasks.cli.admin import as_json
from tasks.cli.output import age, echo_json, echo_table, when
from tasks.cli.target import USAGE, run, store_options
from tasks.store import Store


@click.command()
@as_json
@store_options
def queues(json_output: bool, database_url: str | None, app_path: str | None) -> None:
    """Per queue: tasks queued, running (or cancelling), and how long the oldest due one waits."""

    async def action(store: Store) -> None:
        now = time.time()
        stats = await store.queue_stats()
        if json_output:
            echo_json(
                [
                    {
                        "queue": s.queue,
                        "queued": s.queued,
                        "running": s.running,
                        "oldest_queued_age": None
                        if s.oldest_run_at is None
                        else max(0.0, now - s.oldest_run_at),
                    }
                    for s in stats
                ]
            )
            return
        echo_table(
            ("queue", "queued", "running", "oldest queued"),
            [(s.queue, s.queued, s.running, age(s.oldest_run_at, now)) for s in stats],
        )

    run(action, database_url, app_path)


@click.command()
@as_json
@store_options
def schedules(json_output: bool, database_url: str | None, app_path: str | None) -> None:
    """Recorded periodic schedules: the latest slot fired and whether each is paused."""

    async def action(store: Store) -> None:
        states = sorted((await store.schedule_states()).values(), key=lambda s: s.name)
        if json_output:
            echo_json(
                [
                    {"name": s.name, "last_fired": when(s.last_slot), "paused": s.paused}
                    for s in states
                ]
            )
            return
        echo_table(
            ("name", "last fired", "paused"),
            [(s.name, when(s.last_slot), "yes" if s.paused else "no") for s in states],
        )

    run(action, database_url, app_path)


@click.command()
def workers() -> None:
    """Not available yet: workers do not register themselves in the store (exit code 2)."""
    click.echo(
        "tasks workers: not available yet: workers do not record themselves in the store"
        " (no worker registry); see the running tasks' lease owners with"
        " `list --state running --json`",
        err=True,
    )
    raise SystemExit(USAGE)


COMMANDS = (queues, schedules, workers)

"""Operations commands: ``queues`` (load per queue), ``schedules``, ``workers`` (the registry)."""

from __future__ import annotations

import time
from datetime import datetime

import click

from tasks.cli.admin import as_json
from tasks.cli.output import age, echo_json, echo_table, when
from tasks.cli.target import run, store_options
from tasks.fleet import workers_json
from tasks.store import Store

DEFAULT_LEASE = 30.0
"""``TASKS_LEASE_SECONDS``'s default: a heartbeat older than this means lost (if nothing
else tells)."""


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
@as_json
@store_options
def workers(json_output: bool, database_url: str | None, app_path: str | None) -> None:
    """Processes that run workers (the registry): alive or lost, heartbeat, tasks running now.

    A process whose liveness cannot be told is shown lost once its heartbeat is
    older than the default lease (30 s).
    """

    async def action(store: Store) -> None:
        found = await workers_json(store, DEFAULT_LEASE)
        if json_output:
            echo_json(found)
            return
        now = time.time()
        echo_table(
            ("id", "status", "pid", "queues", "conc", "running", "heartbeat", "started", "version"),
            [
                (
                    w["id"],
                    w["status"],
                    w["pid"],
                    ",".join(w["queues"]),
                    w["concurrency"],
                    len(w["running"]),
                    f"{age(_unix(w['heartbeat_at']), now)} ago",
                    when(_unix(w["started_at"])),
                    w["version"],
                )
                for w in found
            ],
        )

    run(action, database_url, app_path)


def _unix(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


COMMANDS = (queues, schedules, workers)

"""Seed 000's ``manage.py`` world: CLI commands enqueue, a served app runs the tasks.

``quart --app tests.compat.cli_app:app enqueue N`` (plain code, blocking calls) and
``... aenqueue`` (async code) print one task id a line. Settings come from the
environment (``TASKS_DATABASE_URL``).
"""

from __future__ import annotations

import asyncio

import click
from quart import Quart, jsonify
from quart.typing import ResponseReturnValue

from tasks import Tasks
from tasks.compat import CeleryTasks, TaskQueue

tasks = Tasks()
celery = CeleryTasks(tasks)
tq = TaskQueue(tasks, maxsize=100)


@tq.handler
def save_record(data: str) -> dict[str, str]:
    return {"saved": data}


@celery.task
def add(a: int, b: int) -> int:
    return a + b


app = Quart(__name__)
tasks.init_app(app)
tq.init_app(app)


@app.cli.command("enqueue")
@click.argument("count", type=int)
def enqueue(count: int) -> None:
    """Put COUNT records on the queue and start one Celery-style task (plain code)."""
    with tasks.running():
        for n in range(count):
            click.echo(tq.put(f"record-{n}").id)
        click.echo(add.delay(2, 3).id)


@app.cli.command("aenqueue")
def aenqueue() -> None:
    """Start one Celery-style task from async code."""

    async def main() -> None:
        async with tasks.running():
            click.echo((await add.adelay(4, 5)).id)

    asyncio.run(main())


@app.get("/health")
async def health() -> ResponseReturnValue:
    return jsonify(ok=tasks.accepting)


@app.get("/task/<task_id>")
async def task_record(task_id: str) -> ResponseReturnValue:
    return jsonify((await tasks.get(task_id)).to_dict())

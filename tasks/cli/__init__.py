"""Command line: ``python -m tasks ...`` and the same commands as ``quart tasks ...``.

One click group, :data:`cli`, holds every command: ``worker`` (run task
workers without serving HTTP, :mod:`~tasks.cli.worker`), the admin commands
``list``, ``show``, ``retry``, ``cancel``, ``purge``, ``stats``
(:mod:`~tasks.cli.admin`) and ``queues``, ``schedules``, ``workers``
(:mod:`~tasks.cli.ops`). Exit codes are in :mod:`~tasks.cli.target`.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from tasks.cli import admin as admin
from tasks.cli import ops as ops
from tasks.cli import worker as worker

__all__ = ["cli", "main"]


@click.group(name="tasks", help="Run task workers and administer the task database.")
def cli() -> None:
    """The ``tasks`` command group."""


for command in (worker.worker, *admin.COMMANDS, *ops.COMMANDS):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tasks``; returns the exit code."""
    try:
        cli.main(args=argv, prog_name="python -m tasks", standalone_mode=True)
    except SystemExit as exc:
        if exc.code is not None and not isinstance(exc.code, int):
            raise  # a message (``worker``: no Tasks extension): Python prints it, exit code 1
        return exc.code or 0
    return 0

"""``python -m tasks worker module:app``: run task workers without serving HTTP."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import click

from tasks.child import load_app

log = logging.getLogger("tasks")


async def run_worker(
    app_path: str,
    *,
    concurrency: int | None = None,
    queues: str | None = None,
    shutdown_timeout: float | None = None,
) -> None:
    """Run the app's task workers until SIGTERM or SIGINT, then drain."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    app = load_app(app_path)
    if "tasks" not in getattr(app, "extensions", {}):
        raise SystemExit(f"{app_path} has no Tasks extension (call tasks.init_app(app))")
    app.config["TASKS_WORKERS"] = True
    app.config["TASKS_WORKER_ONLY"] = True
    for key, value in (
        ("TASKS_CONCURRENCY", concurrency),
        ("TASKS_QUEUES", queues),
        ("TASKS_SHUTDOWN_TIMEOUT", shutdown_timeout),
    ):
        if value is not None:
            app.config[key] = value
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await app.startup()
        log.info("worker running for %s; SIGTERM or Ctrl-C to stop", app_path)
        try:
            await stop.wait()
            log.info("stopping: draining tasks")
        finally:
            await app.shutdown()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


@click.command(
    help=(
        "Run task workers for an app, without serving HTTP.\n\nLoad the app (APP is"
        " module:app or module:create_app, e.g. asgi:app), run its serving lifespan"
        " (before_serving/after_serving) with TASKS_WORKERS on and TASKS_WORKER_ONLY set,"
        " and run tasks until SIGTERM or SIGINT, then drain exactly as a web process does."
    )
)
@click.argument("app")
@click.option("--concurrency", type=int, help="tasks run at once (TASKS_CONCURRENCY)")
@click.option("--queues", help="comma-separated queues to serve (TASKS_QUEUES)")
@click.option("--shutdown-timeout", type=float, help="seconds to finish running tasks on stop")
@click.option("--log-level", default="INFO", show_default=True, help="logging level")
def worker(
    app: str,
    concurrency: int | None,
    queues: str | None,
    shutdown_timeout: float | None,
    log_level: str,
) -> None:
    """The ``worker`` command."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(
        run_worker(app, concurrency=concurrency, queues=queues, shutdown_timeout=shutdown_timeout)
    )

"""The cost of flow control: end to end, 10,000 tasks with limits against none.

Each figure is a fresh engine (concurrency 100) running 10,000 tasks enqueued
with ``enqueue_many`` in chunks, clock from the first enqueue to the last
outcome, like ``bench.throughput``:

- no limits (the fast claim path);
- ``concurrency=50`` on the task name (the limit binds: half the workers);
- ``concurrency=1`` per key over 1,000 keys (every claim counts running keys);
- a rate limit too high to bind (the claim records every start in the window);
- a queue cap of 50 (``TASKS_QUEUE_CONCURRENCY``) on tasks without limits;
- no limits, beside 1,000 due tasks of the same queue held back by a rate
  limit (``"1/h"``): what a limited backlog costs the tasks behind it.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import Figure, Options, engine, options_from, parser, run

TASKS = 10_000
CHUNK = 500


async def one(
    options: Options, label: str, task: str, keyed: bool, held: int = 0, **settings: Any
) -> Figure:
    """Run ``TASKS`` tasks of ``task`` and return the end-to-end rate; with ``held``, that
    many rate-limited tasks (one start an hour) wait in the same queue first."""
    async with engine(options, concurrency=100, **settings) as bench:
        target = bench.tasks.get_task(task)
        if held:
            throttled = bench.tasks.get_task("throttled")
            await bench.tasks.enqueue_many([throttled.call() for _ in range(held)])
            await bench.until_finished(1)  # the one start of the hour
        start = time.perf_counter()
        for first in range(0, TASKS, CHUNK):
            count = min(CHUNK, TASKS - first)
            calls = [target.call(n % 1000) if keyed else target.call() for n in range(count)]
            await bench.tasks.enqueue_many(calls)
        await bench.until_finished(TASKS + (1 if held else 0))
        elapsed = time.perf_counter() - start
    return Figure(f"limits: {label}", TASKS / elapsed, "tasks/s", "")


async def measure(options: Options) -> list[Figure]:
    """Every variant, one after another."""
    return [
        await one(options, "none (10,000 no-op tasks)", "noop", False),
        await one(options, "concurrency=50 on the name", "capped", False),
        await one(options, "concurrency=1 per key, 1,000 keys", "per_key", True),
        await one(options, "rate limit (not binding)", "rated", False),
        await one(options, "queue cap 50", "noop", False, queue_concurrency="default=50"),
        await one(options, "none, beside 1,000 rate-held tasks", "noop", False, held=1000),
    ]


def main() -> None:
    """Command line entry point."""
    options = options_from(parser(__doc__ or "").parse_args())
    run(lambda: measure(options), options)


if __name__ == "__main__":
    main()

"""End to end: 10,000 no-op tasks enqueued through the Python API, run, and committed.

The clock runs from the first enqueue to the last committed outcome. Tasks are
enqueued with ``enqueue_many`` in chunks while the workers already run them.
"""

from __future__ import annotations

import time

from bench.common import Figure, Options, engine, options_from, parser, run

TASKS = 10_000
CHUNK = 500


async def measure(options: Options, count: int = TASKS, concurrency: int = 100) -> list[Figure]:
    """Run ``count`` no-op tasks and return the end-to-end rate."""
    async with engine(options, concurrency=concurrency) as bench:
        noop = bench.tasks.get_task("noop")
        start = time.perf_counter()
        for first in range(0, count, CHUNK):
            await bench.tasks.enqueue_many([noop.call() for _ in range(min(CHUNK, count - first))])
        await bench.until_finished(count)
        elapsed = time.perf_counter() - start
    return [
        Figure(
            f"end to end, {count:,} no-op tasks (conc. {concurrency})",
            count / elapsed,
            "tasks/s",
            ">= 14,000 (PG)",
        )
    ]


def main() -> None:
    """Command line entry point."""
    p = parser(__doc__ or "")
    p.add_argument("--tasks", type=int, default=TASKS)
    p.add_argument("--concurrency", type=int, default=100)
    args = p.parse_args()
    options = options_from(args)
    run(lambda: measure(options, args.tasks, args.concurrency), options)


if __name__ == "__main__":
    main()

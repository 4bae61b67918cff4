"""Enqueue-to-start latency: tasks enqueued one at a time, 10 ms apart.

Measured in-process with ``time.perf_counter``: from just before ``enqueue``
is called to the moment the task body starts. The clock therefore includes
the enqueue commit, the claim commit, and handing the task to a worker.
"""

from __future__ import annotations

import asyncio
import time

from bench.common import Figure, Options, engine, options_from, parser, percentile, run

TASKS = 500
GAP = 0.01


async def measure(options: Options, count: int = TASKS) -> list[Figure]:
    """Enqueue ``count`` tasks ``GAP`` apart; return p50 and p99 of enqueue-to-start."""
    async with engine(options, concurrency=10) as bench:
        mark = bench.tasks.get_task("mark")
        before: dict[int, float] = {}
        for n in range(count):
            before[n] = time.perf_counter()
            await mark.enqueue(n)
            await asyncio.sleep(GAP)
        await bench.until_finished(count)
    delays = [(bench.started[n] - before[n]) * 1000 for n in range(count)]
    return [
        Figure("enqueue-to-start latency p50", percentile(delays, 0.50), "ms", "<= 1"),
        Figure("enqueue-to-start latency p99", percentile(delays, 0.99), "ms", "<= 5"),
    ]


def main() -> None:
    """Command line entry point."""
    p = parser(__doc__ or "")
    p.add_argument("--tasks", type=int, default=TASKS)
    args = p.parse_args()
    options = options_from(args)
    run(lambda: measure(options, args.tasks), options)


if __name__ == "__main__":
    main()

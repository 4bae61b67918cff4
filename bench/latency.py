"""Enqueue-to-start latency: tasks enqueued one at a time, 10 ms apart.

Measured in-process with ``time.perf_counter``: from just before ``enqueue``
is called to the moment the task body starts. The clock therefore includes
the enqueue's commit (the claim shares it) and handing the task to a worker.

It also prints the p50 with the tasks 2 ms apart: on a machine whose CPUs
fall idle between enqueues (a VM especially), most of the 10 ms figure is the
time the CPUs take to come back, which the 2 ms figure mostly avoids.
"""

from __future__ import annotations

import asyncio
import time

from bench.common import Figure, Options, engine, options_from, parser, percentile, run

TASKS = 500
GAP = 0.01
SHORT_GAP = 0.002


async def delays(options: Options, count: int, gap: float) -> list[float]:
    """Enqueue ``count`` tasks ``gap`` seconds apart; each one's enqueue-to-start in ms."""
    async with engine(options, concurrency=10) as bench:
        mark = bench.tasks.get_task("mark")
        before: dict[int, float] = {}
        for n in range(count):
            before[n] = time.perf_counter()
            await mark.enqueue(n)
            await asyncio.sleep(gap)
        await bench.until_finished(count)
    return [(bench.started[n] - before[n]) * 1000 for n in range(count)]


async def measure(options: Options, count: int = TASKS) -> list[Figure]:
    """p50 and p99 of enqueue-to-start, tasks ``GAP`` apart; then the p50 ``SHORT_GAP`` apart."""
    spaced = await delays(options, count, GAP)
    close = await delays(options, count, SHORT_GAP)
    return [
        Figure("enqueue-to-start latency p50", percentile(spaced, 0.50), "ms", "<= 1"),
        Figure("enqueue-to-start latency p99", percentile(spaced, 0.99), "ms", "<= 5"),
        Figure("  p50 with the tasks 2 ms apart", percentile(close, 0.50), "ms", "(warm CPUs)"),
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

"""2,000 tasks that each ``await asyncio.sleep(0.05)``, at concurrency 100.

The ideal is 2,000 tasks/s (100 slots, 50 ms each); the gap to it is the
engine's overhead per task: claim, start, commit of the outcome. The clock
runs from the commit of the ``enqueue_many`` that stores all 2,000 tasks (none
can start earlier) to the last committed outcome.

It also prints the rate with ``TASKS_PREFETCH=10`` (ten tasks claimed ahead of
the free slots; the default claims for free slots only), and the ceiling of
this machine for the same workload: 100 plain
coroutines taking the 2,000 sleeps from an ``asyncio.Queue``, nothing stored.
That falls short of 2,000/s too, because every ``sleep(0.05)`` ends a little
late (the event loop waits in whole milliseconds).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from bench.common import Figure, Options, engine, options_from, parser, run

TASKS = 2_000
SLEEP = 0.05
CONCURRENCY = 100
PREFETCH = 10
"""Claim-ahead of the second figure: the default (0) claims for free slots only."""


async def ceiling(count: int = TASKS) -> float:
    """The same sleeps through a plain ``asyncio.Queue`` and 100 coroutines; tasks/s."""
    backlog: asyncio.Queue[float] = asyncio.Queue()
    for _ in range(count):
        backlog.put_nowait(SLEEP)

    async def worker() -> None:
        while True:
            try:
                seconds = backlog.get_nowait()
            except asyncio.QueueEmpty:
                return
            await asyncio.sleep(seconds)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return count / (time.perf_counter() - start)


async def rate(options: Options, count: int = TASKS) -> float:
    """Run ``count`` sleeping tasks through the engine; tasks/s."""
    async with engine(options, concurrency=CONCURRENCY) as bench:
        nap = bench.tasks.get_task("nap")
        calls = [nap.call(SLEEP) for _ in range(count)]
        await bench.tasks.enqueue_many(calls)
        # The clock starts when the rows are committed: no task can start before.
        start = time.perf_counter()
        await bench.until_finished(count)
        return count / (time.perf_counter() - start)


async def measure(options: Options, count: int = TASKS) -> list[Figure]:
    """The rate as configured; with the default (no prefetch) also the rate with
    ``TASKS_PREFETCH=10``; then this machine's ceiling."""
    name = f"{count:,} x sleep({SLEEP}) at concurrency {CONCURRENCY}"
    figures = [Figure(name, await rate(options, count), "tasks/s", ">= 1,900")]
    if options.prefetch == 0:
        ahead = dataclasses.replace(options, prefetch=PREFETCH)
        figures.append(
            Figure(
                f"  same with TASKS_PREFETCH={PREFETCH}",
                await rate(ahead, count),
                "tasks/s",
                "(claims ahead of free slots)",
            )
        )
    figures.append(
        Figure(
            "  same sleeps, plain asyncio, nothing stored",
            await ceiling(count),
            "tasks/s",
            "(ceiling here)",
        )
    )
    return figures


def main() -> None:
    """Command line entry point."""
    p = parser(__doc__ or "")
    p.add_argument("--tasks", type=int, default=TASKS)
    args = p.parse_args()
    options = options_from(args)
    run(lambda: measure(options, args.tasks), options)


if __name__ == "__main__":
    main()

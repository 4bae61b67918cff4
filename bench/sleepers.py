"""2,000 tasks that each ``await asyncio.sleep(0.05)``, at concurrency 100.

The ideal is 2,000 tasks/s (100 slots, 50 ms each); the gap to it is the
engine's overhead per task: claim, start, commit of the outcome. The clock
runs from the commit of the ``enqueue_many`` that stores all 2,000 tasks (none
can start earlier) to the last committed outcome.
"""

from __future__ import annotations

import time

from bench.common import Figure, Options, engine, options_from, parser, run

TASKS = 2_000
SLEEP = 0.05
CONCURRENCY = 100


async def measure(options: Options, count: int = TASKS) -> list[Figure]:
    """Run ``count`` sleeping tasks and return their rate."""
    async with engine(options, concurrency=CONCURRENCY) as bench:
        nap = bench.tasks.get_task("nap")
        calls = [nap.call(SLEEP) for _ in range(count)]
        await bench.tasks.enqueue_many(calls)
        # The clock starts when the rows are committed: no task can start before.
        start = time.perf_counter()
        await bench.until_finished(count)
        elapsed = time.perf_counter() - start
    return [
        Figure(
            f"{count:,} x sleep({SLEEP}) at concurrency {CONCURRENCY}",
            count / elapsed,
            "tasks/s",
            ">= 1,900",
        )
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

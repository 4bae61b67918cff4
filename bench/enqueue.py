"""Durable enqueue rate: one sequential caller, single calls from concurrent coroutines, batched.

Workers are off (``TASKS_WORKERS=false``), so this measures the enqueue path
alone: every call returns only after its row is committed. The sequential
caller awaits one ``enqueue`` after another (a request handler's case: nothing
to share a transaction with). Concurrent single
calls share transactions through group commit; ``enqueue_many`` writes a whole
batch in one transaction.
"""

from __future__ import annotations

import asyncio
import time

from bench.common import Figure, Options, engine, options_from, parser, run

SEQUENTIAL = 5_000
SINGLE = 10_000
CALLERS = 100
BATCHED = 50_000
BATCH = 1_000


async def measure(
    options: Options, single: int = SINGLE, callers: int = CALLERS, batched: int = BATCHED
) -> list[Figure]:
    """Enqueue ``single`` tasks one call each from ``callers`` coroutines, then ``batched``."""
    async with engine(options, workers=False) as bench:
        noop = bench.tasks.get_task("noop")
        for _ in range(200):  # warm-up: statements prepared, connections open
            await noop.enqueue()

        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(SEQUENTIAL):
            await noop.enqueue()
        sequential_rate = SEQUENTIAL / (time.perf_counter() - start)
        sequential_cpu = (time.process_time() - cpu) / SEQUENTIAL * 1e6

        async def caller(count: int) -> None:
            for _ in range(count):
                await noop.enqueue()

        start = time.perf_counter()
        await asyncio.gather(*(caller(single // callers) for _ in range(callers)))
        single_rate = (single // callers * callers) / (time.perf_counter() - start)

        start = time.perf_counter()
        for _ in range(0, batched, BATCH):
            await bench.tasks.enqueue_many([noop.call() for _n in range(BATCH)])
        batched_rate = batched / (time.perf_counter() - start)
    return [
        Figure(
            "enqueue, one sequential caller", sequential_rate, "tasks/s", ">= 6,000 / 3,000 (PG)"
        ),
        Figure("  CPU of this process per sequential enqueue", sequential_cpu, "µs"),
        Figure(f"enqueue, single calls ({callers} coroutines)", single_rate, "tasks/s", ">= 5,000"),
        Figure(f"enqueue, enqueue_many of {BATCH:,}", batched_rate, "tasks/s"),
    ]


def main() -> None:
    """Command line entry point."""
    p = parser(__doc__ or "")
    p.add_argument("--tasks", type=int, default=SINGLE)
    p.add_argument("--callers", type=int, default=CALLERS)
    args = p.parse_args()
    options = options_from(args)
    run(lambda: measure(options, args.tasks, args.callers), options)


if __name__ == "__main__":
    main()

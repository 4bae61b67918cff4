"""``python -m bench``: every figure, one after another, then a table.

``--quick`` skips the slow ones (memory over 100,000 tasks, HTTP, the
cross-process wake-ups). ``--runs N`` repeats each figure N times and reports
the median. The figures run on each backend of ``--backends`` (default:
SQLite, and PostgreSQL too when ``BENCH_POSTGRES_URL`` or the local test
server answers) and are printed side by side (memory and HTTP are measured
on SQLite only). Each figure runs in a fresh process, so one cannot warm up
or pollute the next.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

MODULES = [
    "enqueue",
    "throughput",
    "limits",
    "sleepers",
    "latency",
    "wakeup",
    "recovery",
    "memory",
    "http",
]
SLOW = {"memory", "http", "wakeup"}
SQLITE_ONLY = {"memory", "http"}


def main() -> None:
    """Run the benchmarks and print the table of figures."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="skip the memory and HTTP figures")
    p.add_argument("--runs", type=int, default=1, help="runs per figure; the median is shown")
    p.add_argument("--only", nargs="*", choices=MODULES, help="run only these figures")
    p.add_argument(
        "--backends",
        default=None,
        help="comma-separated: sqlite, postgres (default: both if PostgreSQL answers)",
    )
    args, passthrough = p.parse_known_args()
    chosen = args.backends or ("sqlite,postgres" if _postgres_answers() else "sqlite")
    backends = [b.strip() for b in chosen.split(",") if b.strip()]
    modules = args.only or [m for m in MODULES if not (args.quick and m in SLOW)]
    rows: dict[str, tuple[dict[str, list[float]], str, str]] = {}
    order: list[str] = []
    start = time.perf_counter()
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"load average at the start: {load} ({os.cpu_count()} CPUs)", flush=True)
    for backend in backends:
        for module in modules:
            if backend != "sqlite" and module in SQLITE_ONLY:
                continue
            for run in range(args.runs):
                print(f"-- bench.{module} on {backend} (run {run + 1} of {args.runs})", flush=True)
                out = subprocess.run(
                    [sys.executable, "-m", f"bench.{module}", "--backend", backend, *passthrough],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                print(out.stdout, end="", flush=True)
                if out.returncode != 0:
                    print(out.stderr, file=sys.stderr)
                    raise SystemExit(f"bench.{module} failed on {backend}")
                for line in out.stdout.splitlines():
                    if line.startswith("skipped"):
                        key = f"{module}: {line}"
                        if key not in rows:
                            order.append(key)
                            rows[key] = ({}, "", "")
                        continue
                    name, value, unit, target = _parse(line)
                    if name not in rows:
                        order.append(name)
                        rows[name] = ({}, unit, target)
                    rows[name][0].setdefault(backend, []).append(value)
    columns = "".join(f" | {b:>10}" for b in backends)
    print(f"\n{'figure (median)':<52}{columns} | {'unit':<8} | target")
    for name in order:
        values, unit, target = rows[name]
        if not values:
            print(name)
            continue
        cells = "".join(f" | {_median(values.get(b)):>10}" for b in backends)
        print(f"{name:<52}{cells} | {unit:<8} | {target}")
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"\n({time.perf_counter() - start:.0f} s; {json.dumps(passthrough)}; load now {load})")


def _postgres_answers() -> bool:
    """Whether the benchmark PostgreSQL server (``BENCH_POSTGRES_URL``) accepts a connection."""
    import asyncio

    import asyncpg

    from bench.common import POSTGRES_URL

    async def check() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(check())
    except Exception as exc:
        print(f"PostgreSQL figures skipped ({POSTGRES_URL}: {exc})")
        return False
    return True


def _median(values: list[float] | None) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[len(ordered) // 2]:.2f}"


def _parse(line: str) -> tuple[str, float, str, str]:
    """Read a line printed by :meth:`bench.common.Figure.line`."""
    name, value, unit, target = (part.strip() for part in line.split(" | "))
    return name, float(value), unit, target


if __name__ == "__main__":
    main()

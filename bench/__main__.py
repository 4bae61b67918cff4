"""``python -m bench``: every figure, one after another, then a table.

``--quick`` skips the slow ones (memory over 100,000 tasks, HTTP). ``--runs N``
repeats each figure N times and reports the median. Each figure runs in a
fresh process, so one cannot warm up or pollute the next.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

MODULES = ["enqueue", "throughput", "sleepers", "latency", "memory", "http"]
SLOW = {"memory", "http"}


def main() -> None:
    """Run the benchmarks and print the table of figures."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="skip the memory and HTTP figures")
    p.add_argument("--runs", type=int, default=1, help="runs per figure; the median is shown")
    p.add_argument("--only", nargs="*", choices=MODULES, help="run only these figures")
    args, passthrough = p.parse_known_args()
    modules = args.only or [m for m in MODULES if not (args.quick and m in SLOW)]
    rows: dict[str, tuple[list[float], str, str]] = {}
    order: list[str] = []
    start = time.perf_counter()
    for module in modules:
        for run in range(args.runs):
            print(f"-- bench.{module} (run {run + 1} of {args.runs})", flush=True)
            out = subprocess.run(
                [sys.executable, "-m", f"bench.{module}", *passthrough],
                capture_output=True,
                text=True,
                check=False,
            )
            print(out.stdout, end="", flush=True)
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                raise SystemExit(f"bench.{module} failed")
            for line in out.stdout.splitlines():
                if line.startswith("skipped"):
                    rows.setdefault(f"{module}: {line}", ([], "", ""))
                    if f"{module}: {line}" not in order:
                        order.append(f"{module}: {line}")
                    continue
                name, value, unit, target = _parse(line)
                if name not in rows:
                    order.append(name)
                    rows[name] = ([], unit, target)
                rows[name][0].append(value)
    print(f"\n{'figure':<52} | {'median':>10} | {'unit':<8} | target")
    for name in order:
        values, unit, target = rows[name]
        if not values:
            print(name)
            continue
        values.sort()
        median = values[len(values) // 2]
        print(f"{name:<52} | {median:>10.2f} | {unit:<8} | {target}")
    print(f"\n({time.perf_counter() - start:.0f} s; {json.dumps(passthrough)})")


def _parse(line: str) -> tuple[str, float, str, str]:
    """Read a line printed by :meth:`bench.common.Figure.line`."""
    name, value, unit, target = (part.strip() for part in line.split(" | "))
    return name, float(value), unit, target


if __name__ == "__main__":
    main()

"""What the commands print: aligned tables, JSON, times and durations."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON."""
    click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows under headers, columns padded to their widest cell."""
    cells = [[str(h).upper() for h in headers]] + [
        ["-" if v is None else str(v) for v in r] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def when(timestamp: float | None) -> str | None:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS`` UTC (None stays None)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def age(timestamp: float | None, now: float | None = None) -> str | None:
    """How long ago ``timestamp`` was, as ``1d2h``, ``5m3s``; None for None, ``0s`` if ahead."""
    if timestamp is None:
        return None
    return span(max(0.0, (time.time() if now is None else now) - timestamp))


def span(seconds: float) -> str:
    """A duration, its two largest units: ``3d4h``, ``12m5s``, ``7s``."""
    left = int(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts[:2])


class Duration(click.ParamType[float]):
    """A duration such as ``7d``, ``12h``, ``30m``, ``45s``, in seconds."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        """Seconds in ``value``; a usage error (exit code 2) names the accepted forms."""
        if isinstance(value, float):
            return value
        match = _DURATION.match(str(value))
        if match is None:
            self.fail(f"{value!r} is not a duration like 7d, 12h, 30m or 45s", param, ctx)
        return float(match[1]) * _SECONDS[match[2]]

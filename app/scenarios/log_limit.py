"""A logging filter that bounds how fast a logger can grow the log.

A flood of bad clients must not turn into a flood of log lines: each one is
cheap for the client and costs the operator disk and attention. The filter
lets a burst through per time window, drops the rest, and says how many it
dropped on the next line it lets through.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable


class RateLimitFilter(logging.Filter):
    """At most ``burst`` records per ``interval`` seconds; the rest are counted and dropped."""

    def __init__(
        self, burst: int = 20, interval: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if burst < 1 or interval <= 0:
            raise ValueError("burst must be at least 1 and interval positive")
        super().__init__()
        self.burst = burst
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = -math.inf
        self._passed = 0
        self._dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            now = self._clock()
            if now - self._window_start >= self.interval:
                self._window_start, self._passed = now, 0
            if self._passed >= self.burst:
                self._dropped += 1
                return False
            self._passed += 1
            if self._dropped:
                # Appended to the format string, so the note itself must hold no "%".
                record.msg = f"{record.msg} ({self._dropped} similar messages dropped before this)"
                self._dropped = 0
            return True

    def take_dropped(self) -> int:
        """How many records were dropped since the last note (and reset that count)."""
        with self._lock:
            dropped, self._dropped = self._dropped, 0
            return dropped

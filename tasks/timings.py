"""Latency probes on the hot path: each group-commit transaction and each claim.

The store's group commit (:mod:`tasks.store.batching`) and the dispatcher
(:mod:`tasks.dispatch`) time their work with a ``perf_counter`` pair and
report the seconds to a :class:`Probe`; subscribers (the Prometheus
histograms of :mod:`tasks.web.metrics`) get every report. With nobody
subscribed a report is one call over an empty list. The probes are
process-wide: every store and dispatcher of the process reports to them.
"""

from __future__ import annotations

from collections.abc import Callable

Observer = Callable[[float], None]


class Probe:
    """A named stream of durations in seconds; subscribers must be quick and not raise."""

    __slots__ = ("_observers", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._observers: tuple[Observer, ...] = ()

    def observe(self, seconds: float) -> None:
        """Report one duration to every subscriber."""
        for observer in self._observers:
            observer(seconds)

    def subscribe(self, observer: Observer) -> None:
        """Receive every later report (copy on write: reports never see a half-made list)."""
        self._observers = (*self._observers, observer)

    def unsubscribe(self, observer: Observer) -> None:
        """Stop receiving reports; a no-op for an observer never subscribed."""
        self._observers = tuple(o for o in self._observers if o != observer)


COMMIT = Probe("commit")
"""Seconds one group-commit transaction took (its batch run and commit)."""
CLAIM = Probe("claim")
"""Seconds from a claim's submission to its claimed rows (batch wait included)."""

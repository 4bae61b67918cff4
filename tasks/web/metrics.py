"""Prometheus metrics: fleet-wide counters and histograms, store-derived gauges.

* Counters (``tasks_<kind>_total`` by task name) and histograms (run time,
  queue wait, claim and commit latency) are written by each process into
  prometheus-client's multiprocess files (:mod:`tasks.web.metric_files`) and
  merged at scrape time: one scrape of any worker of ``hypercorn -w N``
  answers the sum over its workers, and the sums never go backwards while
  the server runs. They count what *this server's* processes did; a store
  shared with other servers (PostgreSQL) is counted by each server's own
  scrape, so sum over instances in Prometheus.
* Gauges are read from the store at scrape time, so every process of every
  server answers the same: the backlog and running totals, and per queue the
  depth, running count and age of the oldest due task
  (:meth:`~tasks.store.Store.queue_stats`), and ``tasks_workers_alive``, the
  processes the worker registry shows alive (:attr:`TaskMetrics.workers_alive`).

Counters are not derived from the store because retention deletes finished
rows: a count of them would go down.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, values
from prometheus_client import generate_latest as _generate
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from quart import Response

from tasks import timings
from tasks.events import TaskEvent
from tasks.extension import Tasks
from tasks.fleet import workers_json
from tasks.model import State
from tasks.web.metric_files import fleet_directory

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_KINDS = ("enqueued", "started", "succeeded", "failed", "retried", "cancelled")
_instances = itertools.count(1)
M = TypeVar("M", Counter, Histogram)

WorkersAlive = Callable[[Tasks], Awaitable[int]]
"""How many worker processes are alive (from the worker registry), for ``tasks_workers_alive``."""


async def registry_alive(tasks: Tasks) -> int:
    """Worker processes the registry shows alive (see :mod:`tasks.fleet`)."""
    found = await workers_json(tasks.store, tasks.config.lease_seconds)
    return sum(1 for worker in found if worker["status"] == "alive")


def _in_files(kind: type[M], value_class: type) -> type[M]:
    """``kind`` whose values live in this process's multiprocess files.

    prometheus-client picks the value class of every metric from one module
    global; swapping it only while our metrics make their values keeps the
    application's own metrics as they are.
    """

    class FileBacked(kind):  # type: ignore[valid-type,misc]
        def _metric_init(self) -> None:
            chosen = values.ValueClass
            values.ValueClass = value_class
            try:
                super()._metric_init()
            finally:
                values.ValueClass = chosen

    return FileBacked


class _Snapshot:
    """A collector answering the metrics computed for the scrape under way."""

    def __init__(self) -> None:
        self.metrics: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        return self.metrics


class TaskMetrics:
    """The metrics of one app's task system (see the module doc).

    The counters start with :meth:`start` (the app's serving lifespan), so
    importing the app (Hypercorn's reloader, pool processes) writes no file.
    """

    def __init__(self) -> None:
        self.workers_alive: WorkersAlive | None = registry_alive
        """The coroutine function behind ``tasks_workers_alive`` (None: not exported)."""
        self._directory: Path | None = None
        self._snapshot = _Snapshot()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self._snapshot)
        self._counters: dict[str, Any] = {}
        self._histograms: dict[str, Any] = {}
        self._children: dict[tuple[str, str], Any] = {}
        self._suffix = ""

    def start(self) -> None:
        """Open this process's files (once) and subscribe to claim and commit timings."""
        if self._directory is None:
            self._make()
        timings.COMMIT.subscribe(self._commit_seconds.observe)
        timings.CLAIM.subscribe(self._claim_seconds.observe)

    def stop(self) -> None:
        """Unsubscribe from the timings and close this process's files.

        The files stay on disk, so their counts stay in the fleet's sums. A
        later :meth:`start` in the same process (a test serving the app
        again) counts in new files, from zero.
        """
        if self._directory is not None:
            timings.COMMIT.unsubscribe(self._commit_seconds.observe)
            timings.CLAIM.unsubscribe(self._claim_seconds.observe)
            self._value_class.close_all_files()
            self._directory = None
            self._counters, self._histograms, self._children = {}, {}, {}

    def _make(self) -> None:
        directory = fleet_directory()
        # Files are <kind>_<pid>-<n>.db: the n-th metrics of each process of the fleet.
        self._suffix = f"-{next(_instances)}"
        ident = f"{os.getpid()}{self._suffix}"
        value_class = values.MultiProcessValue(lambda: ident)  # type: ignore[no-untyped-call]
        self._value_class = value_class
        counter = _in_files(Counter, value_class)
        histogram = _in_files(Histogram, value_class)
        registry = CollectorRegistry(auto_describe=False)  # only holds them: scrapes read files
        by_name = ["task"]
        for kind in _KINDS:
            self._counters[kind] = counter(
                f"tasks_{kind}", f"Tasks {kind}, by task name.", by_name, registry=registry
            )
        self._run_time = histogram(
            "tasks_run_seconds",
            "Run time of finished task runs, by task name.",
            by_name,
            buckets=_BUCKETS,
            registry=registry,
        )
        self._queue_wait = histogram(
            "tasks_queue_wait_seconds",
            "Time from a task being due to it starting, by task name.",
            by_name,
            buckets=_BUCKETS,
            registry=registry,
        )
        self._counters["limited_wait"] = counter(
            "tasks_limited_wait_seconds",
            "Seconds from due to start of tasks under a concurrency or rate limit or a queue"
            " cap (time held back by the limits, and by busy workers), by task name.",
            by_name,
            registry=registry,
        )
        self._claim_seconds = histogram(
            "tasks_claim_seconds",
            "Time from a claim's submission to its claimed tasks (group-commit wait included).",
            buckets=_FAST_BUCKETS,
            registry=registry,
        )
        self._commit_seconds = histogram(
            "tasks_commit_seconds",
            "Time one group-commit transaction of the store took.",
            buckets=_FAST_BUCKETS,
            registry=registry,
        )
        self._histograms = {"run_time": self._run_time, "queue_wait": self._queue_wait}
        self._directory = directory

    def observe(self, event: TaskEvent) -> None:
        """Listener for :meth:`Tasks.add_listener`."""
        if event.kind in self._counters:
            self._child(event.kind, event.name).inc()
        if event.queue_wait is not None:
            self._child("queue_wait", event.name).observe(max(event.queue_wait, 0.0))
            if event.limited:
                self._child("limited_wait", event.name).inc(max(event.queue_wait, 0.0))
        if event.run_time is not None:
            self._child("run_time", event.name).observe(max(event.run_time, 0.0))

    def _child(self, metric: str, name: str) -> Any:
        """The labelled child of a metric for a task name (``labels()`` once per pair)."""
        key = (metric, name)
        child = self._children.get(key)
        if child is None:
            parent = self._counters.get(metric) or self._histograms[metric]
            child = self._children[key] = parent.labels(name)
        return child

    async def render(self, tasks: Tasks) -> Response:
        """The text exposition: the fleet's merged files and gauges read from the store now."""
        store = tasks.store  # NotAcceptingError (503) when the app does not serve
        counts = await store.count_by_state()
        queues = await store.queue_stats()
        alive = None if self.workers_alive is None else await self.workers_alive(tasks)
        now = time.time()
        metrics: list[Metric] = []
        if self._directory is not None and self._suffix:
            files = sorted(str(p) for p in self._directory.glob(f"*_*{self._suffix}.db"))
            merged = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
            metrics.extend(merged)
        metrics.append(
            GaugeMetricFamily("tasks_queued", "Tasks waiting in the queue.", counts[State.QUEUED])
        )
        metrics.append(
            GaugeMetricFamily("tasks_running", "Tasks running now.", counts[State.RUNNING])
        )
        depth = GaugeMetricFamily("tasks_queue_depth", "Queued tasks, by queue.", labels=["queue"])
        running = GaugeMetricFamily(
            "tasks_queue_running", "Running or cancelling tasks, by queue.", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "tasks_queue_oldest_age_seconds",
            "How long the oldest due queued task has waited, by queue (0: none due).",
            labels=["queue"],
        )
        for stats in queues:
            depth.add_metric([stats.queue], stats.queued)
            running.add_metric([stats.queue], stats.running)
            waited = 0.0 if stats.oldest_run_at is None else max(0.0, now - stats.oldest_run_at)
            oldest.add_metric([stats.queue], waited)
        metrics += [depth, running, oldest]
        if alive is not None:
            metrics.append(
                GaugeMetricFamily("tasks_workers_alive", "Worker processes alive.", alive)
            )
        self._snapshot.metrics = metrics  # no await from here to the text: scrapes can't mix
        return Response(_generate(self.registry), content_type=CONTENT_TYPE_LATEST)

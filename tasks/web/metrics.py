"""Prometheus metrics fed by task events, in a registry of their own per app."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from quart import Response

from tasks.events import TaskEvent
from tasks.extension import Tasks
from tasks.model import State

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class TaskMetrics:
    """Counters, histograms and gauges of one app's task system.

    Counters and histograms count what this process did (with several server
    workers, each exposes its own); the backlog and running gauges are read from
    the store at scrape time and so cover every process sharing it.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        by_name = ["task"]
        self._counters = {
            kind: Counter(
                f"tasks_{kind}", f"Tasks {kind}, by task name.", by_name, registry=self.registry
            )
            for kind in ("enqueued", "started", "succeeded", "failed", "retried", "cancelled")
        }
        self.run_time = Histogram(
            "tasks_run_seconds",
            "Run time of finished task runs, by task name.",
            by_name,
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "tasks_queue_wait_seconds",
            "Time from a task being due to it starting, by task name.",
            by_name,
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.queued = Gauge("tasks_queued", "Tasks waiting in the queue.", registry=self.registry)
        self.running = Gauge("tasks_running", "Tasks running now.", registry=self.registry)

    def observe(self, event: TaskEvent) -> None:
        """Listener for :meth:`Tasks.add_listener`."""
        counter = self._counters.get(event.kind)
        if counter is not None:
            counter.labels(event.name).inc()
        if event.queue_wait is not None:
            self.queue_wait.labels(event.name).observe(max(event.queue_wait, 0.0))
        if event.run_time is not None:
            self.run_time.labels(event.name).observe(max(event.run_time, 0.0))

    async def render(self, tasks: Tasks) -> Response:
        """The text exposition, with the gauges refreshed from the store."""
        counts = await tasks.store.count_by_state()
        self.queued.set(counts[State.QUEUED])
        self.running.set(counts[State.RUNNING])
        return Response(generate_latest(self.registry), content_type=CONTENT_TYPE_LATEST)

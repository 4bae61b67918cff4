"""The HTTP face of quart-taskqueue: task API, live events, dashboard, metrics, probes."""

from tasks.web.extension import TasksWeb

__all__ = ["TasksWeb"]

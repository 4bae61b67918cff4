"""Exceptions raised by quart-taskqueue. All derive from :class:`TasksError`."""

from __future__ import annotations


class TasksError(Exception):
    """Base class of every error this package raises."""


class ConfigurationError(TasksError):
    """A configuration value is missing or invalid."""


class UnknownTaskError(TasksError):
    """A task name is not registered (or not allowed from where it was asked)."""


class InvalidArgumentsError(TasksError):
    """Task arguments do not bind to the task's signature or are not JSON."""


class PayloadError(InvalidArgumentsError):
    """A value cannot be stored as JSON."""


class UnstorableResultError(PayloadError):
    """A task's body returned a value that cannot be stored; the task fails, not retried."""


class WriteRejectedError(InvalidArgumentsError):
    """The task database refused to store a value (the other writes of its batch went on)."""


class NotAcceptingError(TasksError):
    """Enqueues are refused because the task system is starting or draining."""


class QueueFullError(TasksError):
    """The bounded backlog (``TASKS_MAX_QUEUED``) is full."""


class StoreUnavailableError(TasksError):
    """The task store cannot be opened or written; nothing was half-written."""


class TaskNotFoundError(TasksError):
    """No task has the given id."""


class WorkflowNotFoundError(TasksError):
    """No workflow has the given id."""


class ScheduleNotFoundError(TasksError):
    """No schedule has the given name."""


class InvalidStateError(TasksError):
    """The operation does not apply to the task in its current state."""


class TaskFailedError(TasksError):
    """Raised by :meth:`TaskHandle.result` when the task ended without a result."""


class TaskTimeoutError(TasksError):
    """A task ran past its ``timeout``."""


class WorkerLostError(TasksError):
    """The process running a task died before the task finished."""


class TooManySnoozesError(TasksError):
    """A task put itself back with :class:`tasks.Retry` more often than its ``max_snoozes``."""

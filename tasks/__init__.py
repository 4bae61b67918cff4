"""quart-taskqueue: durable background tasks for Quart apps served by Hypercorn."""

from tasks.context import TaskContext, current_task
from tasks.errors import (
    ConfigurationError,
    InvalidArgumentsError,
    InvalidStateError,
    NotAcceptingError,
    PayloadError,
    QueueFullError,
    ScheduleNotFoundError,
    StoreUnavailableError,
    TaskFailedError,
    TaskNotFoundError,
    TasksError,
    TaskTimeoutError,
    TooManySnoozesError,
    UnknownTaskError,
    UnstorableResultError,
    WorkerLostError,
    WorkflowNotFoundError,
    WriteRejectedError,
)
from tasks.events import TaskEvent
from tasks.extension import Tasks
from tasks.handle import TaskHandle
from tasks.model import ErrorInfo, Progress, State, TaskRecord
from tasks.registry import EnqueueOptions, Task, TaskCall
from tasks.retrying import Retry
from tasks.workflow_handle import WorkflowHandle

__all__ = [
    "ConfigurationError",
    "EnqueueOptions",
    "ErrorInfo",
    "InvalidArgumentsError",
    "InvalidStateError",
    "NotAcceptingError",
    "PayloadError",
    "Progress",
    "QueueFullError",
    "Retry",
    "ScheduleNotFoundError",
    "State",
    "StoreUnavailableError",
    "Task",
    "TaskCall",
    "TaskContext",
    "TaskEvent",
    "TaskFailedError",
    "TaskHandle",
    "TaskNotFoundError",
    "TaskRecord",
    "TaskTimeoutError",
    "Tasks",
    "TasksError",
    "TooManySnoozesError",
    "UnknownTaskError",
    "UnstorableResultError",
    "WorkerLostError",
    "WorkflowHandle",
    "WorkflowNotFoundError",
    "WriteRejectedError",
    "current_task",
]

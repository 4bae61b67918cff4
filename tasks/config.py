"""Settings, read from ``TASKS_*`` keys of the app config or the environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tasks.errors import ConfigurationError
from tasks.limits import parse_queue_limits


def parse_bool(value: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case) as a bool; ValueError otherwise."""
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def _queues(value: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    if not names:
        raise ValueError("expected at least one queue name")
    return names


@dataclass(frozen=True, slots=True)
class TasksConfig:
    """Every setting, with its default. The key of field ``x`` is ``TASKS_X``."""

    database_url: str = ""
    """``sqlite:///path`` (default: ``tasks.sqlite3`` in the app's instance folder)
    or ``postgresql://...``."""
    concurrency: int = 10
    """Worker coroutines per process: how many tasks run at once."""
    prefetch: int = 0
    """Tasks claimed ahead of free workers (0: none). Keeps workers busy while a
    claim commits, which speeds up short tasks; a task claimed ahead keeps its
    place before higher-priority tasks enqueued after it was claimed."""
    threads: int = 0
    """Thread-pool size for plain functions (0: same as concurrency)."""
    processes: int = 0
    """Process-pool size for ``executor="process"`` tasks (0: CPU count)."""
    process_max_tasks: int = 1000
    """Replace a pool process after this many tasks (0: never)."""
    shutdown_timeout: float = 10.0
    """Seconds running tasks get to finish at shutdown before they are requeued."""
    poll_interval: float = 1.0
    """Longest pause between looks for work written by other processes."""
    lease_seconds: float = 30.0
    """How long a claimed task stays owned without a heartbeat."""
    heartbeat_seconds: float = 10.0
    """How often running tasks' leases are renewed (one write for all of them)."""
    result_ttl: float = 7 * 24 * 3600.0
    """Seconds finished tasks are kept before the background purge removes them."""
    max_queued: int = 0
    """Bound on the backlog of queued tasks (0: unbounded)."""
    progress_interval: float = 0.2
    """Minimum seconds between two progress writes of one task."""
    queues: tuple[str, ...] = ("default",)
    """Queues this process's workers take tasks from."""
    queue_concurrency: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Fleet-wide cap on tasks running at once per queue: ``"mail=5,reports=2"`` or a
    mapping. Enforced by the claim of every process that has it: set it alike
    everywhere."""
    workers: bool = True
    """Run workers in this process (false: enqueue only, for web-only processes)."""
    default_max_attempts: int = 3
    """Attempts for tasks that do not set ``max_attempts``."""
    app_import: str = ""
    """``module:attribute`` of the app or app factory, imported by pool processes."""
    sqlite_synchronous: str = "NORMAL"
    """SQLite ``synchronous`` pragma: NORMAL survives process crashes, FULL power loss."""
    pool_size: int = 10
    """PostgreSQL connection-pool size."""
    api_token: str = ""
    """Bearer token the HTTP API and dashboard require (empty: no authentication)."""
    max_body_bytes: int = 1024 * 1024
    """Largest request body the HTTP API accepts (``POST /tasks``), in bytes."""
    max_page_bytes: int = 1024 * 1024
    """Largest ``GET /tasks`` page, in bytes: a page stops early rather than grow past it."""
    tracing: bool = False
    """OpenTelemetry spans for task runs, continuing the enqueuer's trace (:mod:`tasks.tracing`)."""

    @classmethod
    def load(
        cls,
        config: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        instance_path: str | None = None,
    ) -> TasksConfig:
        """Resolve each field: explicit override, then app config, then environment."""
        environ = os.environ if environ is None else environ
        overrides = overrides or {}
        values: dict[str, Any] = {}
        for spec in fields(cls):
            key = f"TASKS_{spec.name.upper()}"
            default = spec.default
            if default is MISSING and spec.default_factory is not MISSING:
                default = spec.default_factory()
            parse: Callable[[str], Any] = type(default)
            if isinstance(default, bool):
                parse = parse_bool
            elif isinstance(default, tuple):
                parse = _queues
            elif isinstance(default, Mapping):
                parse = parse_queue_limits
            raw = overrides.get(spec.name)
            if raw is None:
                raw = config.get(key)
            if raw is None:
                raw = environ.get(key)
            if raw is None:
                continue
            try:
                value = parse(raw) if isinstance(raw, str) else raw
                if isinstance(default, tuple) and isinstance(value, list):
                    value = tuple(value)
                if isinstance(default, Mapping):
                    value = MappingProxyType(parse_queue_limits(value))
                if isinstance(default, int | float) and not isinstance(default, bool):
                    value = type(default)(value)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"invalid {key}={raw!r}: {exc}") from exc
            values[spec.name] = value
        if not values.get("database_url"):
            folder = Path(instance_path or "instance")
            folder.mkdir(parents=True, exist_ok=True)
            values["database_url"] = f"sqlite:///{(folder / 'tasks.sqlite3').resolve()}"
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise :class:`ConfigurationError` for values that cannot work."""
        positive = ("concurrency", "shutdown_timeout", "poll_interval", "lease_seconds")
        for name in (*positive, "heartbeat_seconds", "default_max_attempts", "pool_size"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"TASKS_{name.upper()} must be positive")
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ConfigurationError("TASKS_HEARTBEAT_SECONDS must be below TASKS_LEASE_SECONDS")
        for name in ("threads", "processes", "process_max_tasks", "max_queued", "prefetch"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"TASKS_{name.upper()} must not be negative")

    @property
    def thread_count(self) -> int:
        """Threads in the pool for plain-function tasks."""
        return self.threads or self.concurrency

    @property
    def process_count(self) -> int:
        """Processes in the pool for ``executor="process"`` tasks."""
        return self.processes or os.cpu_count() or 1

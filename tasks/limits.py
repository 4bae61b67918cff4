"""Flow control a task declares: fleet-wide concurrency and rate limits, uniqueness.

``@tasks.task(concurrency=2, rate_limit="10/s", unique=True)`` is turned into a
:class:`TaskLimits` once, when the decorator is made (a bad value fails at
import time). At enqueue, :func:`row_limits` turns it and the call's
arguments into the values stored with the row (:class:`RowLimits`): the
concurrency group, the rate group and the unique key, each scoped by the task
name. The store enforces them in its claim (see :mod:`tasks.store.admission`),
so they hold across every process and machine sharing the store; a task's
limits are the ones in force when it was enqueued.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from tasks.errors import InvalidArgumentsError
from tasks.model import NO_LIMITS, RowLimits
from tasks.serialization import check_text, dumps

KeyFunction = Callable[..., object]
"""Called with the task's arguments; returns the key (a string or an integer)."""

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/\s*(\d*(?:\.\d+)?)\s*([smhd]))?\s*$")
MAX_KEY_LENGTH = 200
"""Longest key (after the task name is put in front) a limit or unique key may have."""


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` starts in any window of ``period`` seconds."""

    count: int
    period: float

    @classmethod
    def parse(cls, text: str | int) -> Rate:
        """``"10/s"``, ``"100/m"``, ``"5/h"``, ``"1/d"`` or ``"3/10s"``; as in Celery, a bare
        number (``10`` or ``"10"``) is per second. ValueError otherwise."""
        if isinstance(text, int) and not isinstance(text, bool):
            text = str(text)
        match = _RATE.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(
                f"rate_limit must look like '10/s', '100/m', '5/h' or '3/10s', got {text!r}"
            )
        count, multiple, unit = match.groups()
        period = float(multiple or 1) * _UNITS[unit or "s"]
        if int(count) < 1 or period <= 0:
            raise ValueError(f"rate_limit needs a positive count and period, got {text!r}")
        return cls(int(count), period)

    def __str__(self) -> str:
        return f"{self.count}/{self.period:g}s"


@dataclass(frozen=True, slots=True)
class TaskLimits:
    """The flow control of one registered task (all optional)."""

    concurrency: int | None = None
    concurrency_key: KeyFunction | None = None
    rate: Rate | None = None
    rate_key: KeyFunction | None = None
    unique: bool = False
    unique_key: KeyFunction | None = None

    @classmethod
    def build(
        cls,
        *,
        concurrency: int | None = None,
        concurrency_key: KeyFunction | None = None,
        rate_limit: str | int | None = None,
        rate_key: KeyFunction | None = None,
        unique: bool = False,
        unique_key: KeyFunction | None = None,
    ) -> TaskLimits:
        """Checked options of ``@tasks.task``; raises ValueError for an impossible one."""
        if concurrency is not None and (
            isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
        ):
            raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}")
        if concurrency_key is not None and concurrency is None:
            raise ValueError("concurrency_key needs concurrency (the limit per key)")
        if rate_key is not None and rate_limit is None:
            raise ValueError("rate_key needs rate_limit (the limit per key)")
        for label, function in (
            ("concurrency_key", concurrency_key),
            ("rate_key", rate_key),
            ("unique_key", unique_key),
        ):
            if function is not None and not callable(function):
                raise ValueError(f"{label} must be a function of the task's arguments")
        rate = None if rate_limit is None else Rate.parse(rate_limit)
        return cls(
            concurrency,
            concurrency_key,
            rate,
            rate_key,
            unique or unique_key is not None,
            unique_key,
        )

    @property
    def any(self) -> bool:
        """Whether the task declares any limit or uniqueness."""
        return self.concurrency is not None or self.rate is not None or self.unique


def row_limits(
    name: str,
    limits: TaskLimits,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    keys: Mapping[str, str | None],
) -> RowLimits:
    """The limits stored with one call of task ``name``.

    ``keys`` holds keys given at enqueue (``concurrency_key``, ``rate_key``,
    ``unique_key``); each overrides the task's key function. A key given for
    a limit the task does not declare raises :class:`InvalidArgumentsError`,
    as does a key function that fails or returns something other than a
    string or an integer.
    """
    given = {label: value for label, value in keys.items() if value is not None}
    if "concurrency_key" in given and limits.concurrency is None:
        raise InvalidArgumentsError(f"task {name} has no concurrency limit to key")
    if "rate_key" in given and limits.rate is None:
        raise InvalidArgumentsError(f"task {name} has no rate limit to key")
    if not limits.any and "unique_key" not in given:
        return NO_LIMITS
    result = RowLimits()
    if limits.concurrency is not None:
        key = _key(name, "concurrency_key", given, limits.concurrency_key, args, kwargs)
        result = replace(result, concurrency_key=key, concurrency_limit=limits.concurrency)
    if limits.rate is not None:
        key = _key(name, "rate_key", given, limits.rate_key, args, kwargs)
        result = replace(
            result, rate_key=key, rate_limit=limits.rate.count, rate_period=limits.rate.period
        )
    if limits.unique or "unique_key" in given:
        if "unique_key" in given or limits.unique_key is not None:
            key = _key(name, "unique_key", given, limits.unique_key, args, kwargs)
        else:
            key = f"{name}:{_digest(name, args, kwargs)}"
        result = replace(result, unique_key=key)
    return result


def _key(
    name: str,
    label: str,
    given: Mapping[str, str],
    function: KeyFunction | None,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> str:
    """``name`` alone (a task-wide limit), or ``name:key`` for a key given or computed."""
    if label in given:
        value: object = given[label]
    elif function is None:
        return name
    else:
        try:
            value = function(*args, **kwargs)
        except Exception as exc:
            raise InvalidArgumentsError(
                f"the {label} function of task {name} failed: {type(exc).__name__}: {exc}"
            ) from exc
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidArgumentsError(
            f"the {label} of task {name} must be a string or an integer, got {value!r}"
        )
    key = f"{name}:{value}"
    check_text(key, label)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidArgumentsError(f"the {label} of task {name} is longer than {MAX_KEY_LENGTH}")
    return key


def _digest(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """A stable hash of the arguments: equal calls get the same unique key."""
    text = dumps([list(args), dict(sorted(kwargs.items()))], f"the arguments of task {name}")
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def parse_queue_limits(value: str | Mapping[str, Any]) -> dict[str, int]:
    """``TASKS_QUEUE_CONCURRENCY``: ``"mail=5,reports=2"`` or a mapping, as {queue: cap}."""
    if isinstance(value, str):
        pairs: list[tuple[str, Any]] = []
        for part in value.split(","):
            if not part.strip():
                continue
            queue, sep, cap = part.partition("=")
            if not sep:
                raise ValueError(f"expected queue=limit, got {part.strip()!r}")
            pairs.append((queue.strip(), cap.strip()))
    else:
        pairs = list(value.items())
    caps: dict[str, int] = {}
    for queue, cap in pairs:
        if not isinstance(queue, str) or not queue:
            raise ValueError(f"a queue name must be a non-empty string, got {queue!r}")
        try:
            number = int(cap)
        except (TypeError, ValueError):
            raise ValueError(
                f"the limit of queue {queue!r} must be an integer, got {cap!r}"
            ) from None
        if number < 1 or isinstance(cap, bool):
            raise ValueError(f"the limit of queue {queue!r} must be positive, got {cap!r}")
        caps[queue] = number
    return caps

"""Which due tasks a claim may start under the fleet's limits; shared by both backends.

A backend's claim takes the limited path when due tasks with a concurrency
or rate limit exist in the claimed queues, or when a claimed queue has a cap
(``TASKS_QUEUE_CONCURRENCY``). In that path, holding the store's write lock
(SQLite) or the limits advisory lock (PostgreSQL), it reads the
:class:`Usage` (tasks running per concurrency key and per capped queue,
starts per rate key whose window is still open), fetches candidates in claim
order and lets an :class:`Admission` pick them:

- a task with a concurrency key starts only while fewer than its limit of
  that key run;
- a task with a rate key starts only while fewer than its limit of that key
  started within its period;
- a task of a capped queue starts only while fewer than the cap run there.

Tasks skipped stay queued, in order; tasks behind them (limited by something
else, or not limited at all) are still claimed, so one full key never holds
up the rest of its queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

ROUNDS = 4
"""Limited candidate reads per claim at most (each skips the keys found full)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A due queued task as the claim sees it (claim order: priority, run_at, id)."""

    id: str
    queue: str
    priority: int
    run_at: float
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    rate_key: str | None = None
    rate_limit: int | None = None

    @property
    def order(self) -> tuple[int, float, str]:
        """The claim order key."""
        return (-self.priority, self.run_at, self.id)


@dataclass(slots=True)
class Usage:
    """What is taken now: running per concurrency key and queue, open-window starts per rate key.

    ``*_limits`` hold the limit stored with the tasks counted (the lowest, if
    they differ); a key whose count reached it is full and skipped by the
    candidate reads.
    """

    running: dict[str, int] = field(default_factory=dict)
    running_limits: dict[str, int] = field(default_factory=dict)
    started: dict[str, int] = field(default_factory=dict)
    started_limits: dict[str, int] = field(default_factory=dict)
    queue_free: dict[str, int] = field(default_factory=dict)
    """Free slots per capped queue (absent: the queue has no cap)."""

    @classmethod
    def read(
        cls,
        running: Iterable[tuple[str, int, int]],
        started: Iterable[tuple[str, int, int]],
        queue_running: Mapping[str, int],
        caps: Mapping[str, int],
    ) -> Usage:
        """From ``(key, count, limit)`` rows and the running count of each capped queue."""
        usage = cls()
        for key, count, limit in running:
            usage.running[key], usage.running_limits[key] = int(count), int(limit)
        for key, count, limit in started:
            usage.started[key], usage.started_limits[key] = int(count), int(limit)
        usage.queue_free = {q: cap - queue_running.get(q, 0) for q, cap in caps.items()}
        return usage

    def full_concurrency_keys(self) -> list[str]:
        """Concurrency keys with no free slot (under the limit of the tasks running)."""
        return [k for k, n in self.running.items() if n >= self.running_limits[k]]

    def spent_rate_keys(self) -> list[str]:
        """Rate keys whose window holds as many starts as their limit."""
        return [k for k, n in self.started.items() if n >= self.started_limits[k]]

    def open_queues(self, queues: Iterable[str]) -> list[str]:
        """The queues of ``queues`` with room: uncapped, or capped with a free slot."""
        return [q for q in queues if self.queue_free.get(q, 1) > 0]


class Admission:
    """Admits candidates in claim order while every limit they carry has room."""

    def __init__(self, usage: Usage) -> None:
        self._usage = usage
        self.full: set[str] = set(usage.full_concurrency_keys())
        """Concurrency keys that are full now (for the next candidate read to skip)."""
        self.spent: set[str] = set(usage.spent_rate_keys())
        """Rate keys whose window is full now."""

    def offer(self, c: Candidate) -> bool:
        """Admit ``c`` and count it, if its keys and queue have room; else leave usage as is."""
        u = self._usage
        if u.queue_free.get(c.queue, 1) <= 0:
            return False
        key, limit = c.concurrency_key, c.concurrency_limit
        if key is not None and limit is not None and u.running.get(key, 0) >= limit:
            self.full.add(key)
            return False
        key, limit = c.rate_key, c.rate_limit
        if key is not None and limit is not None and u.started.get(key, 0) >= limit:
            self.spent.add(key)
            return False
        if c.queue in u.queue_free:
            u.queue_free[c.queue] -= 1
        if c.concurrency_key is not None and c.concurrency_limit is not None:
            u.running[c.concurrency_key] = u.running.get(c.concurrency_key, 0) + 1
            if u.running[c.concurrency_key] >= c.concurrency_limit:
                self.full.add(c.concurrency_key)
        if c.rate_key is not None and c.rate_limit is not None:
            u.started[c.rate_key] = u.started.get(c.rate_key, 0) + 1
            if u.started[c.rate_key] >= c.rate_limit:
                self.spent.add(c.rate_key)
        return True


def merge(
    limited: list[Candidate], unlimited: list[Candidate], queue_free: Mapping[str, int], n: int
) -> list[Candidate]:
    """The first ``n`` of both lists in claim order, within each capped queue's free slots.

    ``limited`` were admitted against their keys already; a subset of them
    keeps within those limits, so only the queue caps are counted again here.
    """
    free = dict(queue_free)
    chosen: list[Candidate] = []
    for c in sorted([*limited, *unlimited], key=lambda c: c.order):
        if len(chosen) >= n:
            break
        if c.queue in free:
            if free[c.queue] <= 0:
                continue
            free[c.queue] -= 1
        chosen.append(c)
    return chosen

"""What this process knows of its queues' limited tasks: held back, until when.

On PostgreSQL a claim that finds a due task with limits in its queues takes
the limited path (an advisory lock and several statements), so that limits
and priorities are respected. When that path admitted none of them (every
due limited task is over its concurrency or rate limit), running it again
on the next claim would only cost the tasks without limits beside them. For
a short while, :class:`HeldLimits` lets claims take the fast path that
ignores limited tasks instead.

The hint is process-local and never needed for correctness (limits are
enforced by the limited path alone); what it costs is order: for at most
:data:`HOLD_SECONDS`, a limited task that became admissible may be passed by
tasks without limits queued after it. It ends early when a rate window
reopens (the time is known), when any process of the fleet frees a
concurrency slot (its ``wake_others`` notification), and when the
notification connection comes back after a loss.
"""

from __future__ import annotations

HOLD_SECONDS = 0.1
"""How long a claim that admitted no limited task lets later claims skip limited tasks."""


class HeldLimits:
    """Until when claims of this process may skip the due limited tasks (wall clock)."""

    __slots__ = ("until",)

    def __init__(self) -> None:
        self.until = 0.0

    def active(self, now: float) -> bool:
        """Whether claims may skip limited tasks at ``now``."""
        return now < self.until

    def hold(self, now: float, reopens: float | None) -> None:
        """Every due limited task was held back at ``now``; the first rate window reopens
        at ``reopens`` (None: no rate limit held one)."""
        until = now + HOLD_SECONDS
        self.until = until if reopens is None else min(until, reopens)

    def clear(self) -> None:
        """Limited tasks may be admissible again: the next claim takes the limited path."""
        self.until = 0.0

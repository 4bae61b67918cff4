"""Everything one serving app's task system holds while it runs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tasks.config import TasksConfig
from tasks.events import EventBus
from tasks.executors import Executors
from tasks.hooks import Hooks
from tasks.store import Store

if TYPE_CHECKING:
    from quart import Quart

    from tasks.dispatch import Dispatcher
    from tasks.fleet import Fleet
    from tasks.registry import Task


@dataclass(eq=False)
class Runtime:
    """The store, pools, dispatcher and settings of one running app."""

    app: Quart
    config: TasksConfig
    store: Store
    owner: str
    registry: dict[str, Task[..., Any]]
    executors: Executors
    bus: EventBus
    dispatcher: Dispatcher | None = None
    fleet: Fleet | None = None
    """This process's worker registry row, while it runs workers."""
    accepting: bool = False
    background: list[Any] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    """The loop the app serves on: sync callers in other threads hand work to it."""
    hooks: Hooks = field(default_factory=Hooks)
    """The lifecycle hooks registered on the :class:`~tasks.Tasks` (:mod:`tasks.hooks`)."""

    def wake(self) -> None:
        """Tell the local dispatcher (if any) to look for work now."""
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def wake_at(self, when: float) -> None:
        """Tell the local dispatcher to look for work at Unix time ``when``."""
        if self.dispatcher is not None:
            self.dispatcher.wake_at(when)

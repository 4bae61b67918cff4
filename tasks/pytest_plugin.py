"""pytest fixtures for :mod:`tasks.testing`; enable with one line in ``conftest.py``::

    pytest_plugins = ["tasks.pytest_plugin"]

``tasks_eager`` and ``tasks_capture`` put the app's :class:`~tasks.Tasks` in
the eager or the capture mode for one test. They find it among the live
``Tasks`` objects; with more than one, use ``tasks.testing.eager(my_tasks)``
or ``tasks.testing.capture(my_tasks)`` directly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tasks.extension import Tasks
from tasks.testing import Capture, Eager, capture, eager


def _the_tasks() -> Tasks:
    live = Tasks.live()
    if len(live) != 1:
        raise RuntimeError(
            f"the tasks fixtures need exactly one Tasks object, found {len(live)}:"
            " use tasks.testing.eager(tasks) / capture(tasks) with yours"
        )
    return live[0]


@pytest.fixture
def tasks_eager() -> Iterator[Eager]:
    """Every enqueue in the test runs its task at once; handles hold results and errors."""
    with eager(_the_tasks()) as mode:
        yield mode


@pytest.fixture
def tasks_capture() -> Iterator[Capture]:
    """Every enqueue in the test is recorded, nothing runs until ``tasks_capture.run()``."""
    with capture(_the_tasks()) as mode:
        yield mode

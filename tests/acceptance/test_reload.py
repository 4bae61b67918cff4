"""``hypercorn --reload``: a source change mid-run drains, reloads, and loses nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.acceptance import served
from tests.acceptance.conftest import ServerFactory
from tests.acceptance.server import poll

pytestmark = pytest.mark.slow


def test_touching_a_source_file_mid_run_reloads_and_every_task_succeeds(
    make_server: ServerFactory,
) -> None:
    server = make_server(reload=True)
    server.start()
    processes_before = len(server.group_pids())
    [worker_before] = server.worker_pids()
    ids = server.enqueue("demo.sleep", [[0.2]] * 150)
    poll(lambda: server.states(ids)["succeeded"] >= 20, 60, "the run under way")

    source = Path(served.__file__)
    os.utime(source)  # the reloader compares modification times
    poll(lambda: server.output().count("tasks started") >= 2, 60, "the app reloaded")

    server.wait_states(ids, "succeeded", 120)
    started = server.executions("started")
    assert {started[task_id] for task_id in ids} == {1}
    [worker_after] = server.worker_pids()
    assert worker_after != worker_before
    assert server.proc is not None
    assert server.proc.poll() is None  # still serving
    assert len(server.group_pids()) == processes_before  # no worker (or pool) left behind
    assert server.output().count("tasks stopped") == 1

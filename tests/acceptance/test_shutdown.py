"""Issue 2's lifespan promises, with a real ``hypercorn`` process: SIGTERM, restart, Ctrl-C."""

from __future__ import annotations

import signal

import pytest

from tests.acceptance.conftest import ServerFactory
from tests.acceptance.server import poll

pytestmark = pytest.mark.slow


def test_sigterm_during_200_sleeping_tasks_then_restart_runs_each_once(
    make_server: ServerFactory,
) -> None:
    server = make_server()
    server.start()
    ids = server.enqueue("demo.sleep", [[0.2]] * 200)
    poll(lambda: server.states(ids)["succeeded"] >= 20, 60, "a first batch done")

    server.signal(signal.SIGTERM)
    assert server.wait_exit(30) == 0
    stopped = server.states(ids)
    assert stopped["running"] == 0, stopped  # drained or released, nothing left mid-run
    assert stopped["succeeded"] < 200, "the run was over before the signal; test proves nothing"

    server.start()
    server.wait_states(ids, "succeeded", 90)
    for task_id in ids:
        row = server.row(task_id)
        assert row["result"] == "0.2"
        assert row["attempts"] == 1, row  # drained ones finished, released ones got it back
        assert row["lease_owner"] is None
    started = server.executions("started")
    assert {started[task_id] for task_id in ids} == {1}
    assert "Traceback" not in server.output(all_starts=True)


def test_one_ctrl_c_stops_within_the_shutdown_timeout_and_requeues(
    make_server: ServerFactory,
) -> None:
    """Ctrl-C in a terminal sends SIGINT to the whole foreground process group."""
    server = make_server(env={"TASKS_SHUTDOWN_TIMEOUT": "2"}, graceful_timeout=1)
    server.start()
    ids = server.enqueue("demo.sleep", [[600]] * 5)
    poll(lambda: server.states(ids)["running"] == 5, 30, "all five running")

    server.signal_group(signal.SIGINT)
    # The tasks would sleep 600 s: exiting at all shows the drain gave up at its deadline.
    assert server.wait_exit(2 + 1 + 15) == 0
    server.wait_group_gone(15)

    assert server.states(ids)["queued"] == 5
    assert all(server.row(task_id)["attempts"] == 0 for task_id in ids)
    output = server.output()
    assert "requeueing 5 tasks still running at the shutdown deadline" in output
    assert "tasks stopped" in output

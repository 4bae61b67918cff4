"""The reference app's demo tasks cannot wedge the queue: bounded arguments, timeouts."""

from __future__ import annotations

from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from app.extensions import tasks
from tasks import InvalidArgumentsError

WEDGES = [
    ("demo.sleep", [1e9], "seconds"),
    ("demo.blocking_sleep", [1e9], "seconds"),
    ("demo.cpu", [10**12], "n"),
    ("demo.progress", [10**9, 1], "steps"),
    ("demo.progress", [10, 1e6], "delay"),
    ("demo.sleep", ["5"], "seconds"),
    ("demo.fail", ["x" * 100_000], "message"),
]


@pytest.mark.parametrize(("name", "args", "argument"), WEDGES)
async def test_out_of_bounds_demo_arguments_get_422_naming_the_argument(
    client: Client, unchanged: Any, name: str, args: list[Any], argument: str
) -> None:
    async with unchanged():
        response = await client.post("/tasks", json={"name": name, "args": args})
    assert response.status_code == 422
    error = (await response.get_json())["error"]
    assert error["code"] == "invalid_arguments"
    assert f"argument {argument!r} of task {name}" in error["message"]


async def test_python_enqueue_is_bounded_too(client: Client, unchanged: Any) -> None:
    sleep = tasks.registry["demo.sleep"]
    async with unchanged():
        with pytest.raises(InvalidArgumentsError, match="'seconds'"):
            await sleep.enqueue(1e9)


def test_every_task_open_to_http_has_a_timeout() -> None:
    open_to_http = [task for task in tasks.registry.values() if task.http]
    assert open_to_http
    for task in open_to_http:
        assert task.timeout is not None, task.name


async def test_a_whole_number_float_for_an_integer_argument_is_that_integer(client: Client) -> None:
    """JSON Schema's ``integer`` accepts 3.0; the task receives the int 3."""
    response = await client.post(
        "/tasks", json={"name": "demo.progress", "args": [3.0, 0], "kwargs": {}}
    )
    assert response.status_code == 202
    task = await response.get_json()
    assert task["args"] == [3, 0]
    record = await tasks.wait(task["id"], timeout=10)
    assert record.state.value == "succeeded"
    refused = await client.post("/tasks", json={"name": "demo.progress", "args": [3.5, 0]})
    assert refused.status_code == 422

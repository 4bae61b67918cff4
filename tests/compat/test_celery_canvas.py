"""Celery's canvas (signatures, chain, group, chord, |, link, link_error) on workflows,
through sync (Flask-style) and async views of a Quart app on a SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart

from tasks import State
from tasks.compat import CanvasError, TaskRevokedError, chain, chord, group, signature
from tests.compat import canvas_app
from tests.compat.canvas_app import add, celery, fail, mul, on_fail, remember, tasks, xsum
from tests.conftest import eventually

STYLES = ["sync", "async"]
EXPECTED: dict[str, tuple[str, Any, list[Any]]] = {
    "chain": ("AsyncResult", 30, [3, 4]),  # results and call arguments come first
    "pipe_partial": ("AsyncResult", 96, [12]),
    "immutable": ("AsyncResult", 8, [4]),
    "nested": ("AsyncResult", 352, [44, 40, 20]),
    "group": ("GroupResult", [0, 2, 4, 6, 8], []),
    "partial_group": ("GroupResult", [10, 9, 8], []),
    "chord_call": ("AsyncResult", 20, [[0, 2, 4, 6, 8]]),
    "chord": ("AsyncResult", 6, [[2, 4]]),
    "upgraded": ("AsyncResult", 60, [6, [2, 4]]),
    "piped_chord": ("AsyncResult", 6, [[0, 2, 4]]),
    "chain_to_group": ("GroupResult", [-3, 10], [2]),
}


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Quart]:
    canvas_app.seen.clear()
    app = canvas_app.create_app(database_url)
    async with app.test_app():
        yield app


async def _post(app: Quart, path: str) -> dict[str, Any]:
    response = await app.test_client().post(path)
    assert response.status_code == 200, await response.get_data()
    body: dict[str, Any] = await response.get_json()
    return body


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_canvas_results_as_celery_gives_them(app: Quart, style: str, name: str) -> None:
    body = await _post(app, f"/{style}/canvas/{name}")
    kind, value, parents = EXPECTED[name]
    assert (body["kind"], body["value"], body["parents"]) == (kind, value, parents)
    record = await tasks.get(body["ids"][-1])
    assert record.workflow_id is not None  # one workflow, not tasks enqueued one by one


async def test_one_workflow_per_canvas_and_the_shapes_celery_builds(app: Quart) -> None:
    result = await chain(add.s(1, 1), mul.s(3), add.s(1)).aapply_async()
    assert await result.aget(timeout=20) == 7
    record = await tasks.get(result.id)
    assert record.workflow_id is not None
    workflow = await tasks.get_workflow(record.workflow_id)
    assert (workflow.kind, len(workflow.steps)) == ("chain", 3)
    assert isinstance(group(add.s(1, 1)) | xsum.s(), chord)
    upgraded = chain(group(add.s(1, 1), add.s(2, 2)), xsum.s())
    assert isinstance(upgraded.tasks[-1], chord)
    assert len(chain(add.s(1, 1), chain(mul.s(2), chain(mul.s(3)))).tasks) == 3
    assert len(group(group(add.s(1, 1), add.s(2, 2)), add.s(3, 3)).tasks) == 3
    assert signature(add, (1, 2)).args == (1, 2)
    assert celery.signature("canvas.add", (1, 2), immutable=True).immutable
    assert repr(add.s(1) | mul.si(2, 3)) == "canvas.add(1) | canvas.mul!(2, 3)"


@pytest.mark.parametrize("style", STYLES)
async def test_a_failure_raises_from_the_last_result_and_runs_link_error(
    app: Quart, style: str
) -> None:
    body = await _post(app, f"/{style}/failing")
    assert body["raised"] == "boom"
    last = await tasks.get(body["id"])
    assert last.state == State.CANCELLED
    assert last.error is not None
    assert last.error.type == "DependencyError"
    assert (await tasks.get(body["failed_id"])).state == State.FAILED
    await eventually(lambda: _true(("errback", body["failed_id"]) in canvas_app.seen))
    assert [s for s in canvas_app.seen if s[0] == "errback"] == [("errback", body["failed_id"])]
    # Looked up again later by id, the skipped step still raises the failed step's error.
    with pytest.raises(ValueError, match="boom"):
        await celery.AsyncResult(body["id"]).aget(timeout=5)
    # A step skipped because another was revoked raises TaskRevokedError.
    hold = await chain(add.s(1, 1).set(countdown=60), add.s(1)).aapply_async()
    await hold.parent.arevoke()
    with pytest.raises(TaskRevokedError, match="was cancelled"):
        await hold.aget(timeout=5)


@pytest.mark.parametrize("style", STYLES)
async def test_group_result_reads_like_celerys(app: Quart, style: str) -> None:
    body = await _post(app, f"/{style}/group_status")
    assert body["values"] == [2, "ValueError('no')", 4]
    assert (body["ready"], body["successful"], body["failed"]) == (True, False, True)
    assert (body["completed"], body["members"]) == (2, 3)
    assert (await tasks.get_workflow(body["id"])).kind == "group"


async def test_group_get_raises_the_first_failure_in_order(app: Quart) -> None:
    result = await group(add.s(1, 1), fail.s(0, "first"), fail.s(0, "second")).aapply_async()
    with pytest.raises(ValueError, match="first"):
        await result.aget(timeout=20)
    assert [r.id for r in result] == [r.id for r in result.results]


@pytest.mark.parametrize("style", STYLES)
async def test_link_receives_the_result(app: Quart, style: str) -> None:
    body = await _post(app, f"/{style}/link")
    assert body["value"] == 4
    await eventually(lambda: _true((style, 4) in canvas_app.seen))
    record = await tasks.get(body["id"])
    assert record.workflow_id is not None


async def test_link_and_link_error_on_the_whole_canvas(app: Quart) -> None:
    flow = chord([add.s(1, 1), add.s(2, 2)], xsum.s())
    flow.link(remember.s("chord"))
    result = await flow.aapply_async()
    assert await result.aget(timeout=20) == 6
    await eventually(lambda: _true(("chord", 6) in canvas_app.seen))
    body_error = chord([add.s(1, 1), fail.s(0, "header")], xsum.s().on_error(on_fail.s()))
    failed = await body_error.aapply_async()
    with pytest.raises(ValueError, match="header"):
        await failed.aget(timeout=20)
    await eventually(lambda: _true(any(s[0] == "errback" for s in canvas_app.seen)))


async def test_unsupported_canvas_features_say_so(app: Quart) -> None:
    cases: list[tuple[Any, str]] = [
        (
            lambda: add.s(1, 1).apply_async(link_error=canvas_app.new_style.s()),
            "request, exc, traceback",
        ),
        (lambda: add.s(1, 1).apply_async(link_error=on_fail.si("x")), r"use \.s\(\)|with \.s\(\)"),
        (lambda: chain(add.s(1, 1).on_error(on_fail.s()), add.s(1)).delay(), "last task"),
        (lambda: chain(add.s(1, 1), _linked(mul.s(2)), add.s(1)).delay(), "last task"),
        (lambda: _linked(group(add.s(1, 1))).delay(), "use a chord"),
        (lambda: add.s(1, 1).apply_async(expires=10), "expires is not supported"),
        (lambda: chain(add.s(1, 1), add.s(1).set(countdown=5)).delay(), "first tasks"),
        (lambda: chord([add.s(1, 1)]).delay(), "needs a body"),
        (lambda: add.chunks([(1, 1)], 1), "not supported"),
        (lambda: signature("canvas.add"), "celery.signature"),
    ]
    for make, message in cases:
        with pytest.raises(CanvasError, match=message):
            make()
    assert (await tasks.list(limit=10)).tasks == []  # nothing was written


def _linked(canvas: Any) -> Any:
    canvas.link(remember.s("never"))
    return canvas


async def _true(value: bool) -> bool:
    return value


async def test_canvases_run_eagerly_with_task_always_eager(app: Quart) -> None:
    """Celery's test setting runs a whole canvas at once, as Celery's eager mode does."""
    celery.conf.task_always_eager = True
    try:
        result = await chain(add.s(1, 2), mul.s(10)).adelay()
        assert (await tasks.get(result.id)).state == State.SUCCEEDED  # ran within adelay()
        assert await result.aget() == 30
        assert await (await group(add.s(n, n) for n in range(3)).adelay()).aget() == [0, 2, 4]
        assert await (await chord([add.s(1, 1), add.s(2, 2)], xsum.s()).adelay()).aget() == 6
    finally:
        celery.conf.task_always_eager = False

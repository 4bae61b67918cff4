"""``retry_on`` / ``dont_retry_on``: which exceptions spend an attempt and run again."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from quart import Quart

from tasks import State, Tasks, current_task
from tasks.errors import WorkerLostError

tasks = Tasks()


@tasks.task(name="only_connection", max_attempts=3, retry_on=(OSError,), retry_backoff=0.01)
async def only_connection(error: str) -> int:
    """Raises ``error`` on its first attempt."""
    if current_task().attempt == 1:
        raise {"ConnectionError": ConnectionError, "ValueError": ValueError}[error](error)
    return current_task().attempt


@tasks.task(name="not_lookups", max_attempts=3, dont_retry_on=(LookupError,), retry_backoff=0.01)
def not_lookups(error: str) -> None:
    """Always raises ``error`` (``KeyError`` or ``RuntimeError``)."""
    raise {"KeyError": KeyError, "RuntimeError": RuntimeError}[error](error)


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Quart]:
    app = Quart(__name__)
    app.config["TASKS_DATABASE_URL"] = database_url
    tasks.init_app(app)
    async with app.test_app():
        yield app


async def test_retry_on_retries_only_its_exceptions(app: Quart) -> None:
    subclass = await only_connection.enqueue("ConnectionError")  # an OSError
    other = await only_connection.enqueue("ValueError")
    record = await tasks.wait(subclass.id, timeout=30)
    assert (record.state, record.attempts, record.result) == (State.SUCCEEDED, 2, 2)
    record = await tasks.wait(other.id, timeout=30)
    assert (record.state, record.attempts) == (State.FAILED, 1)
    assert record.error is not None
    assert record.error.type == "ValueError"


async def test_dont_retry_on_fails_at_once_and_the_rest_retries(app: Quart) -> None:
    lookup = await not_lookups.enqueue("KeyError")
    other = await not_lookups.enqueue("RuntimeError")
    record = await tasks.wait(lookup.id, timeout=30)
    assert (record.state, record.attempts) == (State.FAILED, 1)
    record = await tasks.wait(other.id, timeout=30)
    assert (record.state, record.attempts) == (State.FAILED, 3)


def test_process_errors_match_by_name_and_a_lost_worker_always_retries() -> None:
    owner = Tasks()

    @owner.task(retry_on=(OSError,), dont_retry_on=(TimeoutError,))
    def by_name() -> None: ...

    assert by_name.retries("ConnectionRefusedError")  # builtin: matched with its bases
    assert not by_name.retries("TimeoutError")  # an OSError too, but dont_retry_on wins
    assert not by_name.retries("ValueError")
    assert by_name.retries(WorkerLostError("the pool process died"))

    @owner.task(retry_on=())
    def never() -> None: ...

    assert not never.retries(RuntimeError("x"))
    assert never.retries(WorkerLostError("the pool process died"))


def test_retry_on_must_be_a_tuple_of_exception_classes() -> None:
    owner = Tasks()
    with pytest.raises(ValueError, match="retry_on must be a tuple"):
        owner.task(retry_on=[OSError])(lambda: None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dont_retry_on must be a tuple"):
        owner.task(dont_retry_on=(int,))(lambda: None)  # type: ignore[arg-type]

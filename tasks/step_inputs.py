"""What a workflow step receives as its first argument, read when it runs.

A step stores only its own arguments; what it receives from the steps before
it is read from the store at the start of each run (so a retry or a resumed
workflow sees the results as they are then):

- ``result``: the result of the one step it needs (a chain's next step);
- ``results``: the list of the results of the steps it needs, in order (a
  chord's callback, a step after a group);
- ``failure``: the id of the step whose failure started it (an error step),
  the earliest to fail when several could have.
"""

from __future__ import annotations

from typing import Any

from tasks.errors import InvalidStateError
from tasks.model import TaskRecord
from tasks.store.base import Store
from tasks.store.graphs import StepInput


async def step_arguments(store: Store, record: TaskRecord) -> list[Any]:
    """``record``'s positional arguments with what it receives put first."""
    if record.receives is None:
        return record.args
    return with_inputs(record, await store.step_inputs(record.id))


def with_inputs(record: TaskRecord, inputs: list[StepInput]) -> list[Any]:
    """``record``'s arguments after what ``inputs`` (its edges' parents, in position
    order) give it; :class:`InvalidStateError` if they cannot give it yet."""
    if record.receives is None:
        return record.args
    if record.receives == "failure":
        failed = [i.parent_id for i in inputs if i.kind == "error" and i.state == "failed"]
        if not failed:
            raise InvalidStateError(f"error step {record.id} runs but none of its steps failed")
        return [failed[0], *record.args]
    needed = [i for i in inputs if i.kind == "needs"]
    unfinished = [i.parent_id for i in needed if i.state != "succeeded"]
    if unfinished:
        raise InvalidStateError(
            f"step {record.id} runs before step {unfinished[0]} it needs succeeded"
        )
    results = [i.result for i in needed]
    if record.receives == "result":
        return [results[0] if results else None, *record.args]
    return [results, *record.args]

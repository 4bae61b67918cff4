"""Checked by mypy in CI, never run: workflows are typed from their steps.

What mypy checks: each step's own arguments, and the result type of a chain
of up to four steps, a group and a chord. What it does not: whether one
step's result fits the next step's first parameter (a mismatch falls back to
the untyped overload); that is checked when the step runs.

Each ``type: ignore[...]`` marks a line mypy must reject; with
``warn_unused_ignores`` (mypy strict), one it stopped rejecting fails CI.
"""

from __future__ import annotations

from tasks import Tasks
from tasks.workflow_handle import WorkflowHandle

tasks = Tasks()


@tasks.task
async def fetch(url: str) -> str:
    return url


@tasks.task
async def parse(page: str, strict: bool = False) -> dict[str, int]:
    return {page: int(strict)}


@tasks.task
async def count(data: dict[str, int]) -> int:
    return len(data)


@tasks.task
async def add_up(sizes: list[int], unit: str) -> str:
    return f"{sum(sizes)} {unit}"


async def workflows() -> None:
    chained: WorkflowHandle[int] = await tasks.chain(
        fetch.call("u"), parse.then(strict=True), count.then()
    ).enqueue()
    total: int = await chained.result()
    chord: WorkflowHandle[str] = await tasks.chord(
        [count.call({"a": 1}), count.call({})], add_up.then("bytes")
    ).enqueue()
    text: str = await chord.result()
    group: WorkflowHandle[list[int]] = await tasks.group([count.call({})]).enqueue()
    sizes: list[int] = await group.result()
    parse.then(strict="yes")  # type: ignore[arg-type]
    add_up.then(3)  # type: ignore[arg-type]
    wrong: WorkflowHandle[str] = await tasks.chain(  # type: ignore[assignment]
        fetch.call("u"), parse.then()
    ).enqueue()
    del total, text, sizes, wrong

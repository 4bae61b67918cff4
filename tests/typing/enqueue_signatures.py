"""Checked by mypy in CI, never run: ``enqueue`` is typed by the task's signature.

Each ``type: ignore[...]`` below marks a call mypy must reject; with
``warn_unused_ignores`` (mypy strict), a call it stopped rejecting fails CI.
"""

from __future__ import annotations

from tasks import TaskHandle, Tasks

tasks = Tasks()


@tasks.task
async def fetch(url: str, retries: int = 3) -> int:
    return len(url) + retries


@tasks.task
def resize(path: str) -> str:
    return path


async def calls() -> None:
    ok: TaskHandle[int] = await fetch.enqueue("https://example.org", retries=1)
    also_ok: TaskHandle[str] = await resize.options(delay=5).enqueue("a.png")
    result: int = await ok.result()
    text: str = await also_ok.result()
    await fetch.enqueue(42)  # type: ignore[arg-type]
    await fetch.enqueue("u", tries=2)  # type: ignore[call-arg]
    await resize.enqueue()  # type: ignore[call-arg]
    wrong: TaskHandle[str] = await fetch.enqueue("u")  # type: ignore[assignment]
    del result, text, wrong

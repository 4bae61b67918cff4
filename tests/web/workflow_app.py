"""The reference app plus a route that starts a chain of demo tasks, for the browser tests
of the workflow page (``hypercorn tests.web.workflow_app:app``).

``POST /test-workflows/chain`` with ``{"steps": [{"name": "demo.echo", "args": [1]}, ...]}``
enqueues the steps as one chain (each with exactly its own arguments) and answers
``{"id": <workflow id>, "steps": [<step ids>]}``.
"""

from __future__ import annotations

from typing import Any

from quart import jsonify, request

from app import create_app
from app.extensions import tasks

app = create_app({"TASKS_APP_IMPORT": "tests.web.workflow_app:app"})


@app.post("/test-workflows/chain")
async def start_chain() -> Any:
    body = await request.get_json()
    calls = [tasks.get_task(step["name"]).call(*step["args"]) for step in body["steps"]]
    handle = await tasks.chain(*calls).enqueue()
    return jsonify({"id": handle.id, "steps": handle.step_ids})

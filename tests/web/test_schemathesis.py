"""The API against its OpenAPI document, as schemathesis checks it from outside.

``st run --checks all`` against the reference app under real Hypercorn: every
check (no 5xx, responses within the schema, schema-valid requests accepted,
schema-invalid ones refused, ...), with a fixed seed and a bounded number of
examples per operation so that CI time stays bounded. SQLite only: this checks
the HTTP layer against its document, not the store (the other web tests run on
both backends). Workers off: what the generated requests enqueue stays queued,
so every run sees the same server.

An event stream stays open, by design, until its task ends (here: never). So
the stateful phase (which follows the link from ``POST /tasks`` to the stream
of the task just queued) is left out, and the events operation does not reuse
ids seen in responses; either would only run into the client's timeout. The
stream of a finished task is checked below instead.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import schemathesis

from tests.servers import poll
from tests.web.server import hypercorn

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 100
SEED = 1
API_PATHS = r"^/(tasks|healthz|readyz|metrics)"
CONFIG = """
[[operations]]
include-path = "/tasks/{task_id}/events"
phases.coverage.extra-data-sources.responses = false
phases.fuzzing.extra-data-sources.responses = false
"""


def test_st_run_checks_all_is_clean(tmp_path: Path) -> None:
    env = {"TASKS_WORKERS": "false", "TASKS_MAX_QUEUED": "50"}
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    with hypercorn(tmp_path, env=env) as server:
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("st")),
                f"--config-file={config}",
                "run",
                f"{server.url}/openapi.json",
                "--checks=all",
                "--phases=examples,coverage,fuzzing",
                f"--max-examples={EXAMPLES_PER_OPERATION}",
                f"--seed={SEED}",
                "--request-timeout=10",
                f"--include-path-regex={API_PATHS}",
                "--no-color",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=100,
            check=False,
        )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "Schema-valid request rejected" not in report, report
    assert "FAILURES" not in report, report
    assert "ERRORS" not in report, report
    assert "Tested: 20" in report, report  # every API operation: schedules, workers, workflows


def test_event_stream_conforms_to_its_documented_events(tmp_path: Path) -> None:
    # The generated requests above only reach streams of unknown or queued tasks;
    # here a finished task's stream (every event, then its end) is validated.
    with hypercorn(tmp_path) as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        enqueued = httpx.post(f"{server.url}/tasks", json={"name": "demo.echo", "args": [[1]]})
        assert enqueued.status_code == 202, enqueued.text
        task_id = enqueued.json()["id"]
        poll(
            lambda: httpx.get(f"{server.url}/tasks/{task_id}").json()["state"] == "succeeded",
            timeout=20,
            what="the task to finish",
        )
        operation = schema["/tasks/{task_id}/events"]["GET"]
        case = operation.Case(path_parameters={"task_id": task_id})
        response = case.call_and_validate(base_url=server.url)
    assert response.status_code == 200
    assert '"state":"succeeded"' in response.text

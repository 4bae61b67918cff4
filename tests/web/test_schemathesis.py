"""Property-based run of the OpenAPI document: no 5xx, no response outside the schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.web.conftest import reference_app

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 25


def test_api_conforms_to_its_openapi_document(tmp_path: Path) -> None:
    # SQLite only: this checks the HTTP layer against its OpenAPI document, not the
    # store (the other web tests run on both backends); it is the slowest web test.
    # Workers off: whatever the generated requests enqueue stays queued and harmless.
    app = reference_app(tmp_path, TASKS_WORKERS=False, TASKS_MAX_QUEUED=50)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(
        path_regex=r"^/(tasks|healthz|readyz|metrics)"
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = sorted(operation.label for operation in operations)
    assert "POST /tasks" in labels, labels
    assert "GET /tasks/{task_id}/events" in labels, labels
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        conforms()

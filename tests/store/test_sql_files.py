"""The SQL kept in files: named queries (tasks/store/queries.py) beside the migrations."""

from __future__ import annotations

import pytest

from tasks.store.migrations import load_migrations
from tasks.store.queries import load_queries, parse_queries


def test_sections_become_named_queries_without_comments() -> None:
    text = (
        "-- file comment\n\n-- name: first\n-- what it does\nSELECT 1\n  FROM t;\n\n"
        "-- name: second\nUPDATE t SET a = {marks} -- keeps a trailing comment\n"
    )
    assert parse_queries(text) == {
        "first": "SELECT 1\n  FROM t",
        "second": "UPDATE t SET a = {marks} -- keeps a trailing comment",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n", "'a' is defined twice"),
        ("SELECT 1\n-- name: a\nSELECT 2\n", "line 1: SQL before the first"),
        ("-- name: a\n-- only a comment\n", "'a' is empty"),
    ],
)
def test_malformed_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_queries(text)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_each_backend_has_its_queries_and_migrations_skip_them(backend: str) -> None:
    queries = load_queries(backend)
    assert {"finish", "claim", "cancel", "release", "purge", "get"} <= set(queries)
    assert load_queries(backend) is queries  # read once
    names = [m.name for m in load_migrations(backend)]
    assert names[:2] == ["0001_initial.sql", "0002_cancelling.sql"]
    assert "queries.sql" not in names

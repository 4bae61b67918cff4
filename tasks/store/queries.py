"""Named SQL queries, one ``sql/<backend>/queries.sql`` file per backend.

A file holds sections that each start with a ``-- name: <name>`` line; the
SQL up to the next such line is that query. Whole-line ``--`` comments are
documentation for the reader and are left out of the query text, as are
surrounding blank lines and a trailing ``;``. Some queries are templates
with ``{placeholders}`` (a variable ``IN`` list, the selected columns) that
the backend fills with :meth:`str.format`.

Files are read once per process (:func:`load_queries` caches), when a
backend module is imported; the numbered migration files in the same folder
are not queries (see :mod:`tasks.store.migrations`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

_HEADER = re.compile(r"^--\s*name:\s*(?P<name>[a-z_][a-z0-9_]*)\s*$")


def parse_queries(text: str) -> dict[str, str]:
    """The named queries in ``text``; a repeated name or SQL before the first name is an error."""
    queries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line.strip())
        if header:
            name = header["name"]
            if name in queries:
                raise ValueError(f"line {number}: query {name!r} is defined twice")
            current = queries[name] = []
        elif line.lstrip().startswith("--"):
            continue
        elif current is not None:
            current.append(line.rstrip())
        elif line.strip():
            raise ValueError(f"line {number}: SQL before the first '-- name:' line")
    parsed = {}
    for name, lines in queries.items():
        sql = "\n".join(lines).strip().rstrip(";").rstrip()
        if not sql:
            raise ValueError(f"query {name!r} is empty")
        parsed[name] = sql
    return parsed


@functools.cache
def load_queries(backend: str) -> Mapping[str, str]:
    """The named queries of a backend (``sqlite`` or ``postgres``), read once."""
    path = resources.files("tasks.store").joinpath("sql", backend, "queries.sql")
    return MappingProxyType(parse_queries(path.read_text("utf-8")))

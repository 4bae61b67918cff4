"""The OpenAPI document says what the server does: keywords, integers, task arguments."""

from __future__ import annotations

import inspect
import itertools
from typing import Any

import jsonschema_rs
import pytest
from quart.typing import TestClientProtocol as Client

from tasks.web.enqueue_schema import argument_shapes
from tests.web.test_api import enqueue

NOT_JSON_SCHEMA = {"ge", "le", "gt", "lt"}  # pydantic's names, not JSON Schema keywords


def keys(value: Any) -> set[str]:
    """Every object key anywhere in a decoded JSON document."""
    if isinstance(value, dict):
        return set(value).union(*(keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys(v) for v in value))
    return set()


async def test_bounds_are_json_schema_keywords(client: Client) -> None:
    document = await (await client.get("/openapi.json")).get_json()
    assert not keys(document) & NOT_JSON_SCHEMA
    body = document["paths"]["/tasks"]["post"]["requestBody"]["content"]["application/json"]
    delay = body["schema"]["anyOf"][0]["properties"]["delay"]
    assert {"type": "number", "minimum": 0, "maximum": 315360000.0}.items() <= (
        delay["anyOf"][0].items()
    )


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_whole_numbers_are_integers(client: Client) -> None:
    # JSON Schema counts 3.0 as an integer; the server agrees.
    task = await enqueue(client, "demo.echo", 1, max_attempts=3.0, priority=-2.0, delay=5)
    assert (task["max_attempts"], task["priority"]) == (3, -2)
    assert isinstance(task["max_attempts"], int)
    for options in ({"max_attempts": 2.5}, {"priority": True}, {"max_attempts": "3"}):
        body = {"name": "demo.echo", "args": [1], **options}
        response = await client.post("/tasks", json=body)
        assert response.status_code == 400, options


def f_plain(a: Any, b: Any, c: Any = 1) -> None: ...
def f_positional_only(a: Any, /, b: Any = 1) -> None: ...
def f_positional_only_with_var_kwargs(a: Any, /, **rest: Any) -> None: ...
def f_keyword_only(a: Any, *, k: Any, m: Any = 2) -> None: ...
def f_variadic(a: Any, *more: Any, **rest: Any) -> None: ...
def f_nothing() -> None: ...


@pytest.mark.parametrize(
    "func",
    [
        f_plain,
        f_positional_only,
        f_positional_only_with_var_kwargs,
        f_keyword_only,
        f_variadic,
        f_nothing,
    ],
)
def test_argument_shapes_accept_exactly_the_calls_that_bind(func: Any) -> None:
    signature = inspect.signature(func)
    alternatives = [
        {"type": "object", "properties": shape["properties"], "required": shape["required"]}
        for shape in argument_shapes(signature)
    ]
    validator = jsonschema_rs.validator_for({"anyOf": alternatives or [False]})
    names = ["a", "b", "c", "k", "m", "x"]
    for count in range(5):
        for chosen in itertools.chain.from_iterable(
            itertools.combinations(names, n) for n in range(len(names) + 1)
        ):
            args, kwargs = list(range(count)), dict.fromkeys(chosen, 0)
            try:
                signature.bind(*args, **kwargs)
                binds = True
            except TypeError:
                binds = False
            body: dict[str, Any] = {"args": args, "kwargs": kwargs}
            assert validator.is_valid(body) == binds, (func.__name__, args, kwargs)
            if not args and not kwargs:  # absent args/kwargs mean [] and {}
                assert validator.is_valid({}) == binds, func.__name__

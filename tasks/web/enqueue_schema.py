"""The JSON Schema of a ``POST /tasks`` body that the server accepts, task by task.

``POST /tasks`` refuses (422) a name that is not a registered HTTP task and
arguments that do not bind to the task's signature. So that the document says
what the server does, the body schema is one alternative per task and per way
of splitting its parameters between ``args`` and ``kwargs``: ``name`` is that
task's name, ``args`` has exactly as many items as the parameters given by
position, and ``kwargs`` names the rest (required ones required, the ones
already given by position forbidden). A parameter bounded with ``Annotated``
(see :mod:`tasks.arguments`) carries its JSON Schema; any other argument value
is any JSON: the server checks how those bind, not their types.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from tasks.registry import Task

_P = inspect.Parameter
_BOTH_START_TIMES = {
    "required": ["delay", "run_at"],
    "properties": {"delay": {"type": "number"}, "run_at": {"type": "string"}},
}
"""``delay`` and ``run_at`` are not given together (either may be null)."""
_POSITIONAL = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)


def argument_shapes(
    signature: inspect.Signature, values: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """JSON Schema properties (``args``, ``kwargs``) and ``required`` of each way to call.

    Each item is ``{"properties": {"args": ..., "kwargs": ...}, "required": [...]}``;
    a call binds to ``signature`` exactly when it matches one of them. ``values``
    gives the schema of a parameter's value by name (default: any JSON).
    """
    values = values or {}
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind in _POSITIONAL]
    keyword_only = [p for p in params if p.kind is _P.KEYWORD_ONLY]
    var_args = any(p.kind is _P.VAR_POSITIONAL for p in params)
    var_kwargs = any(p.kind is _P.VAR_KEYWORD for p in params)
    shapes = []
    for count in range(len(positional) + 1):
        rest = positional[count:]
        if any(p.kind is _P.POSITIONAL_ONLY and p.default is _P.empty for p in rest):
            continue  # a positional-only parameter without default would be missing
        by_name = [p for p in rest if p.kind is _P.POSITIONAL_OR_KEYWORD] + keyword_only
        # Given by position, a name may not come again as a keyword ("multiple values").
        given = [p.name for p in positional[:count] if p.kind is _P.POSITIONAL_OR_KEYWORD]
        kwargs: dict[str, Any] = {
            "type": "object",
            "properties": {
                **{p.name: values.get(p.name, {}) for p in by_name},
                **dict.fromkeys(given, False),
            },
            "additionalProperties": var_kwargs,
        }
        needed = [p.name for p in by_name if p.default is _P.empty]
        if needed:
            kwargs["required"] = needed
        args: dict[str, Any] = {"type": "array", "minItems": count}
        if any(p.name in values for p in positional[:count]):
            args["prefixItems"] = [values.get(p.name, {}) for p in positional[:count]]
        if not (var_args and count == len(positional)):
            args["maxItems"] = count
        required = (["args"] if count else []) + (["kwargs"] if needed else [])
        shapes.append({"properties": {"args": args, "kwargs": kwargs}, "required": required})
    return shapes


def enqueue_body_schema(options: dict[str, Any], tasks: Iterable[Task[Any, Any]]) -> dict[str, Any]:
    """The body schema for ``tasks`` (the HTTP-enabled ones).

    ``options`` is the generic body schema (``EnqueueRequest``): its
    properties other than ``name``, ``args`` and ``kwargs`` are kept as they are.
    """
    alternatives = []
    for task in sorted(tasks, key=lambda t: t.name):
        for shape in argument_shapes(task.signature, task.bounds.json_schemas()):
            properties = {
                **options["properties"],
                "name": {"const": task.name},
                **shape["properties"],
            }
            alternatives.append(
                {
                    "type": "object",
                    "properties": properties,
                    "required": ["name", *shape["required"]],
                    "additionalProperties": False,
                    "not": _BOTH_START_TIMES,
                }
            )
    description = options.get("description", "")
    if not alternatives:
        return {"description": description, "not": {}}  # no task can be started over HTTP
    return {"description": description, "title": options.get("title"), "anyOf": alternatives}

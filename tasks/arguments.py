"""Bounds on task arguments, declared with ``Annotated`` and checked when a task is enqueued.

A parameter annotated as ``Annotated[T, constraint, ...]`` (pydantic's
``Field(ge=..., le=..., max_length=...)`` or ``annotated_types`` markers) is
validated in pydantic's strict mode before the task is stored, from Python and
over HTTP alike: ``"5"`` is not a number and ``True`` is not an integer. The
stored arguments are the ones given, never converted. Parameters with plain
annotations are not checked at run time (mypy checks them in Python code).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Annotated, Any, get_origin

from pydantic import TypeAdapter, ValidationError

from tasks.errors import InvalidArgumentsError


def _annotation(fn: Callable[..., Any], parameter: inspect.Parameter) -> Any:
    """The parameter's annotation, evaluated when it is a string (``from __future__``)."""
    annotation = parameter.annotation
    if not isinstance(annotation, str):
        return annotation
    try:
        # What typing.get_type_hints does, one parameter at a time.
        return eval(annotation, getattr(fn, "__globals__", {}))
    except Exception as exc:
        if "Annotated" in annotation:
            raise ValueError(
                f"cannot evaluate the annotation {annotation!r} of {fn.__qualname__}: {exc}"
            ) from exc
        return None  # a name imported only for type checkers: nothing to validate


class ArgumentBounds:
    """The ``Annotated`` parameters of one task function and their validators."""

    def __init__(self, fn: Callable[..., Any], signature: inspect.Signature) -> None:
        self._fn = fn
        self._signature = signature
        self._adapters: dict[str, tuple[TypeAdapter[Any], inspect._ParameterKind]] | None = None

    def _resolve(self) -> dict[str, tuple[TypeAdapter[Any], inspect._ParameterKind]]:
        # Resolved on first use: a string annotation may name something defined
        # later in the task's module.
        if self._adapters is None:
            adapters = {}
            for name, parameter in self._signature.parameters.items():
                annotation = _annotation(self._fn, parameter)
                if get_origin(annotation) is Annotated:
                    adapters[name] = (TypeAdapter(annotation), parameter.kind)
            self._adapters = adapters
        return self._adapters

    def whole_numbers(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments with whole-number floats given to integer parameters made ints.

        JSON does not tell ``3`` from ``3.0`` (JSON Schema's ``integer`` accepts
        both), so an HTTP client may send either for a bounded ``int`` parameter.
        Arguments that do not bind are returned as they are (the check reports them).
        """
        integers = [
            name for name, schema in self.json_schemas().items() if schema.get("type") == "integer"
        ]
        if not integers:
            return args, kwargs
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError:
            return args, kwargs
        for name in integers:
            value = bound.arguments.get(name)
            if isinstance(value, float) and value.is_integer():
                bound.arguments[name] = int(value)
        return bound.args, bound.kwargs

    def json_schemas(self) -> dict[str, dict[str, Any]]:
        """The JSON Schema of each bounded parameter's value, by parameter name.

        Only single-value parameters (not ``*args``/``**kwargs``) are listed.
        """
        single = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return {
            name: adapter.json_schema()
            for name, (adapter, kind) in self._resolve().items()
            if kind not in single
        }

    def check(self, task_name: str, arguments: Mapping[str, Any]) -> None:
        """Raise :class:`InvalidArgumentsError` naming the first argument out of bounds."""
        for name, (adapter, kind) in self._resolve().items():
            if name not in arguments:
                continue  # left to its default
            value = arguments[name]
            # ``*args: Annotated[...]`` bounds each extra argument, as for mypy.
            if kind == inspect.Parameter.VAR_POSITIONAL:
                values = list(value)
            elif kind == inspect.Parameter.VAR_KEYWORD:
                values = list(value.values())
            else:
                values = [value]
            for each in values:
                try:
                    adapter.validate_python(each, strict=True)
                except ValidationError as exc:
                    problem = exc.errors()[0]["msg"]
                    raise InvalidArgumentsError(
                        f"argument {name!r} of task {task_name}: {problem}"
                    ) from None

"""OpenAPI details quart-schema cannot express: non-JSON bodies, headers, path patterns.

Also request schemas computed when the document is served (the enqueue body
depends on the tasks registered by then), and component schemas that only
non-JSON bodies refer to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel
from quart_schema import OpenAPIProvider
from werkzeug.routing import Rule

F = TypeVar("F", bound=Callable[..., Any])
_ATTRIBUTE = "_tasks_openapi"


def openapi_extra(
    *,
    content: dict[int, dict[str, Any]] | None = None,
    headers: dict[int, dict[str, str]] | None = None,
    path_patterns: dict[str, str] | None = None,
    request_body_required: bool | None = None,
    request_schema: Callable[[], dict[str, Any]] | None = None,
    descriptions: dict[int, str] | None = None,
    models: tuple[type[BaseModel], ...] = (),
) -> Callable[[F], F]:
    """Amend a route's generated operation.

    ``content``: status -> media type -> media type object (``schema`` and
    more), replacing the JSON body quart-schema would document.
    ``headers``: status -> header name -> description (string headers).
    ``path_patterns``: parameter -> regex. ``request_schema``: called at each
    generation, its result replaces the JSON request body schema.
    ``descriptions``: status -> response description. ``models``: added to
    the document's component schemas (for ``$ref`` in ``content``).
    """

    def decorate(func: F) -> F:
        setattr(
            func,
            _ATTRIBUTE,
            {
                "content": content or {},
                "headers": headers or {},
                "path_patterns": path_patterns or {},
                "request_body_required": request_body_required,
                "request_schema": request_schema,
                "descriptions": descriptions or {},
                "models": models,
            },
        )
        return func

    return decorate


class TasksOpenAPIProvider(OpenAPIProvider):
    """quart-schema's provider plus the amendments recorded by :func:`openapi_extra`.

    Static-file routes are left out: they serve files, not the API.
    """

    def generate_rules(self) -> Iterable[Rule]:
        for rule in super().generate_rules():
            if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
                continue
            yield rule

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        extra = getattr(self._app.view_functions[rule.endpoint], _ATTRIBUTE, None)
        if extra is None:
            return paths, components
        for path_item in paths.values():
            for method, operation in list(path_item.items()):
                path_item[method] = _amend(operation, extra)
        for model in extra["models"]:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components = {**components, **schema.pop("$defs", {}), model.__name__: schema}
        return paths, components


def _amend(operation: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    operation = dict(operation)
    responses = {code: dict(response) for code, response in operation["responses"].items()}
    for status, media in extra["content"].items():
        response = responses.setdefault(status, {"description": ""})
        response["content"] = media
    for status, text in extra["descriptions"].items():
        responses.setdefault(status, {})["description"] = text
    for status, headers in extra["headers"].items():
        response = responses.setdefault(status, {"description": ""})
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    operation["responses"] = responses
    parameters = []
    for parameter in operation.get("parameters", []):
        pattern = extra["path_patterns"].get(parameter["name"])
        if parameter.get("in") == "path" and pattern is not None:
            parameter = {**parameter, "schema": {"type": "string", "pattern": pattern}}
        parameters.append(parameter)
    operation["parameters"] = parameters
    if extra["request_body_required"] is not None and "requestBody" in operation:
        operation["requestBody"] = {
            **operation["requestBody"],
            "required": extra["request_body_required"],
        }
    if extra["request_schema"] is not None and "requestBody" in operation:
        operation["requestBody"] = {
            **operation["requestBody"],
            "content": {"application/json": {"schema": extra["request_schema"]()}},
        }
    return operation

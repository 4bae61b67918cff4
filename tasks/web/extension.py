"""``TasksWeb``: mounts the task API, dashboard, metrics, probes and OpenAPI on a Quart app."""

from __future__ import annotations

from quart import Quart, Response
from quart_schema import QuartSchema, document_response
from werkzeug.exceptions import HTTPException

from tasks.errors import ConfigurationError
from tasks.extension import Tasks
from tasks.web.api import create_blueprint, json_http_errors
from tasks.web.apidocs import add_swagger_ui_assets, use_local_swagger_ui
from tasks.web.dashboard import add_dashboard
from tasks.web.errors import HANDLED_ERRORS, ApiError, api_error, render_api_error
from tasks.web.health import healthz, readyz
from tasks.web.metrics import TaskMetrics
from tasks.web.openapi import TasksOpenAPIProvider, openapi_extra
from tasks.web.schemas import ErrorBody, Health
from tasks.web.shutdown import ShutdownBridge


class TasksWeb:
    """The HTTP face of a :class:`~tasks.Tasks` instance.

    ``TasksWeb(tasks).init_app(app)`` mounts, on any Quart app:

    - the task API and the dashboard under ``url_prefix`` (default ``/tasks``);
    - ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz``;
    - ``/openapi.json`` and a docs page at ``/docs`` (quart-schema's Swagger UI
      page, its script and stylesheet served from this package, so it works
      offline), unless the app already set up quart-schema itself.

    ``TASKS_API_TOKEN`` protects the API and dashboard; ``TASKS_MAX_BODY_BYTES``
    bounds request bodies and ``TASKS_MAX_PAGE_BYTES`` listing pages (see
    :class:`~tasks.config.TasksConfig`).
    ``poll_interval`` is how often event streams re-read a task changed by other
    processes; ``keepalive`` the seconds of silence before a comment line.
    """

    def __init__(
        self,
        tasks: Tasks,
        app: Quart | None = None,
        *,
        url_prefix: str = "/tasks",
        poll_interval: float = 0.3,
        keepalive: float = 15.0,
        metrics_path: str | None = "/metrics",
        health_paths: tuple[str, str] | None = ("/healthz", "/readyz"),
        openapi_path: str | None = "/openapi.json",
        docs_path: str | None = "/docs",
    ) -> None:
        if poll_interval <= 0 or keepalive <= 0:
            raise ValueError("poll_interval and keepalive must be positive")
        self.tasks = tasks
        self.url_prefix = url_prefix.rstrip("/")
        self.poll_interval = poll_interval
        self.keepalive = keepalive
        self.metrics_path = metrics_path
        self.health_paths = health_paths
        self.openapi_path = openapi_path
        self.docs_path = docs_path
        self.metrics = TaskMetrics()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        """Mount everything on ``app``; call once per app."""
        app.extensions["tasks_web"] = self
        blueprint = create_blueprint(self)
        add_dashboard(blueprint, self)
        add_swagger_ui_assets(blueprint)
        app.register_blueprint(blueprint, url_prefix=self.url_prefix)
        self._add_probes_and_metrics(app)
        prefixes = tuple(
            p for p in (self.url_prefix, self.metrics_path, *(self.health_paths or ())) if p
        )
        app.register_error_handler(HTTPException, json_http_errors(prefixes))
        app.register_error_handler(ApiError, render_api_error)
        app.asgi_app = ShutdownBridge(app.asgi_app)  # type: ignore[method-assign]
        if self.openapi_path is not None and "QUART_SCHEMA" not in app.extensions:
            use_local_swagger_ui(app, self.url_prefix)
            QuartSchema(
                app,
                openapi_path=self.openapi_path,
                swagger_ui_path=self.docs_path,
                redoc_ui_path=None,
                scalar_ui_path=None,
                info={"title": "Task API", "version": "1"},
                security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
                openapi_provider_class=TasksOpenAPIProvider,
            )
        app.before_serving(self._start)
        app.after_serving(self._stop)

    async def _start(self) -> None:
        for key in ("max_body_bytes", "max_page_bytes"):
            if getattr(self.tasks.config, key) <= 0:
                raise ConfigurationError(f"TASKS_{key.upper()} must be positive")
        self.metrics.start()
        self.tasks.add_listener(self.metrics.observe)

    async def _stop(self) -> None:
        self.tasks.remove_listener(self.metrics.observe)
        self.metrics.stop()

    def _add_probes_and_metrics(self, app: Quart) -> None:
        tasks = self.tasks

        if self.health_paths is not None:
            live_path, ready_path = self.health_paths

            @document_response(Health, 200)
            async def tasks_healthz() -> Response:
                """Liveness: the process serves HTTP."""
                return await healthz()

            @document_response(Health, 200)
            @document_response(Health, 503)
            @openapi_extra(headers={503: {"Retry-After": "Seconds to wait"}})
            async def tasks_readyz() -> Response:
                """Readiness: 503 while the task system starts, drains, or lacks its store."""
                return await readyz(tasks)

            app.add_url_rule(live_path, "tasks_healthz", tasks_healthz, methods=["GET"])
            app.add_url_rule(ready_path, "tasks_readyz", tasks_readyz, methods=["GET"])

        if self.metrics_path is not None:
            metrics = self.metrics

            @document_response(ErrorBody, 503)
            @openapi_extra(
                content={200: {"text/plain": {"schema": {"type": "string"}}}},
                headers={503: {"Retry-After": "Seconds to wait"}},
            )
            async def tasks_metrics() -> Response:
                """Prometheus metrics of the task system (text exposition format)."""
                try:
                    return await metrics.render(tasks)
                except HANDLED_ERRORS as exc:
                    return render_api_error(api_error(exc))

            app.add_url_rule(self.metrics_path, "tasks_metrics", tasks_metrics, methods=["GET"])

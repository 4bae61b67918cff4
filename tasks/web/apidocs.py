"""The ``/docs`` page's viewer, Swagger UI, served from this process instead of a CDN.

quart-schema's page loads Swagger UI's script and stylesheet from the URLs in
``QUART_SCHEMA_SWAGGER_JS_URL`` and ``QUART_SCHEMA_SWAGGER_CSS_URL``, which
default to a CDN: on a machine without internet the page stays blank. The
files come from the ``flask-swagger-ui`` distribution, which tracks Swagger UI
releases and ships its built files (only those files are used, not its Flask
blueprint).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from quart import Blueprint, Quart, Response, abort, send_from_directory
from quart_schema import hide

SWAGGER_UI_DIR = Path(str(files("flask_swagger_ui") / "dist"))
"""Swagger UI's built files, as installed with the ``flask-swagger-ui`` package."""
ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css"})
"""The files quart-schema's page loads; nothing else in the folder is served."""
ENDPOINT = "tasks.swagger_ui_asset"


def add_swagger_ui_assets(bp: Blueprint) -> None:
    """Add ``GET /swagger-ui/<name>`` to the task blueprint (public, like its static files)."""

    @bp.get("/swagger-ui/<name>")
    @hide
    async def swagger_ui_asset(name: str) -> Response:
        if name not in ASSETS:
            abort(404)
        return await send_from_directory(SWAGGER_UI_DIR, name)


def use_local_swagger_ui(app: Quart, url_prefix: str) -> None:
    """Point quart-schema's docs page at the files above, unless the app chose other URLs."""
    app.config.setdefault(
        "QUART_SCHEMA_SWAGGER_JS_URL", f"{url_prefix}/swagger-ui/swagger-ui-bundle.js"
    )
    app.config.setdefault("QUART_SCHEMA_SWAGGER_CSS_URL", f"{url_prefix}/swagger-ui/swagger-ui.css")

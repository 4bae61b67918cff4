"""Which database the admin commands open, and the exit codes a script can rely on.

The URL comes from ``--database-url``; else from ``--app module:app`` (that
app's resolved ``TASKS_DATABASE_URL``); else, under ``quart tasks``, from
the app Quart discovers; else from the ``TASKS_DATABASE_URL`` environment
variable. The store is opened with :func:`tasks.store.create_store`, exactly
as the app opens it (pending migrations are applied), except that a SQLite
file that does not exist is an error rather than created.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, NoReturn, ParamSpec

import click

from tasks.errors import ConfigurationError, StoreUnavailableError
from tasks.store import Store, create_store

OK = 0
REFUSED = 1
"""The operation was refused or found nothing: unknown id, a state that does not allow it."""
USAGE = 2
"""Bad usage or configuration: unknown option, bad URL, no URL at all (click uses 2 too)."""
UNAVAILABLE = 3
"""The store cannot be used: SQLite file missing or locked, PostgreSQL unreachable."""

_P = ParamSpec("_P")


class Refused(click.ClickException):
    """An operation the store refused or an id it does not know: exit code 1."""

    exit_code = REFUSED


class BadConfiguration(click.ClickException):
    """No usable database URL: exit code 2."""

    exit_code = USAGE


class Unavailable(click.ClickException):
    """The store cannot be opened or read: exit code 3."""

    exit_code = UNAVAILABLE


def store_options(command: Callable[_P, None]) -> Callable[_P, None]:
    """Add ``--database-url`` and ``--app`` to an admin command."""
    command = click.option(
        "--app",
        "app_path",
        metavar="MODULE:APP",
        help="read TASKS_DATABASE_URL as this app resolves it",
    )(command)
    return click.option(
        "--database-url",
        metavar="URL",
        help="sqlite:///path or postgresql://... (default: the app's, else $TASKS_DATABASE_URL)",
    )(command)


def database_url(url: str | None, app_path: str | None) -> str:
    """The URL to open; see the module docstring for the order."""
    if url:
        return url
    app = _load_app(app_path) if app_path else _discovered_app()
    if app is not None:
        extension = app.extensions.get("tasks")
        if extension is None:
            raise BadConfiguration(f"{app_path or 'the app'} has no Tasks extension")
        from tasks.config import TasksConfig

        settings = getattr(extension, "_settings", {})
        try:
            config = TasksConfig.load(app.config, settings, instance_path=app.instance_path)
        except ConfigurationError as exc:
            raise BadConfiguration(str(exc)) from exc
        return config.database_url
    env = os.environ.get("TASKS_DATABASE_URL", "")
    if not env:
        raise BadConfiguration(
            "no database: pass --database-url or --app, or set TASKS_DATABASE_URL"
        )
    return env


def _load_app(app_path: str) -> Any:
    from tasks.child import load_app

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return load_app(app_path)
    except (ImportError, AttributeError, ValueError) as exc:
        raise BadConfiguration(f"cannot load app {app_path!r}: {exc}") from exc


def _discovered_app() -> Any:
    """The app of ``quart tasks ...`` (Quart's ScriptInfo), or None under ``python -m tasks``."""
    from quart.cli import ScriptInfo

    context = click.get_current_context(silent=True)
    info = None if context is None else context.find_object(ScriptInfo)
    return None if info is None else info.load_app()


def _create(url: str) -> Store:
    """The (unopened) store at ``url``; a missing SQLite file is not created."""
    try:
        store = create_store(url, pool_size=2)
    except (ConfigurationError, ValueError) as exc:
        raise BadConfiguration(str(exc)) from exc
    path = getattr(store, "path", None)
    if path is not None and not os.path.isfile(path):
        raise Unavailable(f"no task database at {path} (check the URL; nothing was created)")
    return store


@asynccontextmanager
async def _opened(store: Store) -> AsyncIterator[Store]:
    """``store``, open; a store that cannot be used becomes :class:`Unavailable`."""
    try:
        await store.open()
    except StoreUnavailableError as exc:
        raise Unavailable(str(exc)) from exc
    try:
        yield store
    except StoreUnavailableError as exc:
        raise Unavailable(str(exc)) from exc
    finally:
        await store.close()


def run(action: Callable[[Store], Awaitable[None]], url: str | None, app_path: str | None) -> None:
    """Open the store named by the options, run ``action`` on it, close it."""
    store = _create(database_url(url, app_path))

    async def main() -> None:
        async with _opened(store) as opened:
            await action(opened)

    asyncio.run(main())


def fail(message: str) -> NoReturn:
    """Stop with exit code 1 (refused / not found)."""
    raise Refused(message)

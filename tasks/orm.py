"""Transactional enqueue through SQLAlchemy's asyncio API.

``Tasks.enqueue_in`` takes the caller's own connection to the task database,
with a transaction in progress. Besides a plain aiosqlite or asyncpg
connection, it may be an SQLAlchemy ``AsyncSession`` or ``AsyncConnection``
bound to that database (``sqlite+aiosqlite:///...`` on the same file, or
``postgresql+asyncpg://...`` on the same database): the tasks are written
through the driver connection under it, inside the session's transaction, so
the ORM's writes and the tasks commit or roll back together. SQLAlchemy is
optional (``pip install 'quart-taskqueue[sqlalchemy]'``); it is only imported
when such an object is passed.
"""

from __future__ import annotations

from typing import Any


async def driver_connection(connection: Any) -> Any:
    """The aiosqlite/asyncpg connection behind an SQLAlchemy session or connection.

    Anything that is not an SQLAlchemy asyncio object is returned as it is.
    A session without a connection yet is given one (its transaction begins).
    """
    if not type(connection).__module__.startswith("sqlalchemy."):
        return connection
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    if isinstance(connection, AsyncSession):
        connection = await connection.connection()
    if not isinstance(connection, AsyncConnection):
        raise TypeError(
            f"enqueue_in takes an AsyncSession or AsyncConnection, not {type(connection).__name__}"
        )
    if not connection.in_transaction():
        await connection.begin()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if hasattr(driver, "is_in_transaction") and not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter starts the server transaction at its
        # first statement; without one, the tasks would be autocommitted.
        await connection.exec_driver_sql("SELECT 1")
    return driver

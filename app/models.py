"""SQLAlchemy 2 models of the reference app's tables, in its two databases.

:class:`AppBase` holds the tables of the app's own SQLite file
(``app/db.py``); :class:`TaskDbBase` the one table kept in the task database
(``app/taskdb.py``), because its rows must commit with their tasks. The
schemas themselves are created by the Alembic revisions in ``app/alembic/``;
``tests/app/test_migrations.py`` checks that these models match them.
"""

from __future__ import annotations

from sqlalchemy import Double, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class AppBase(DeclarativeBase):
    """Tables of the app's own SQLite file."""


class TaskDbBase(DeclarativeBase):
    """The app's tables inside the task database (SQLite or PostgreSQL)."""


class Record(AppBase):
    """A record written by ``records.store`` or ``records.fulfil``, once per task."""

    __tablename__ = "records"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(String, unique=True)
    data: Mapped[str] = mapped_column(String)
    created_at: Mapped[float] = mapped_column(Double)


class User(AppBase):
    """A signed-up user (scenario 5)."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    created_at: Mapped[float] = mapped_column(Double)


class Outbox(AppBase):
    """A rendered mail waiting for a relay, once per task (scenario 5)."""

    __tablename__ = "outbox"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(String, unique=True)
    sender: Mapped[str] = mapped_column(String)
    recipient: Mapped[str] = mapped_column(String)
    subject: Mapped[str] = mapped_column(String)
    body: Mapped[str] = mapped_column(String)
    created_at: Mapped[float] = mapped_column(Double)


class Upload(AppBase):
    """A file received by the TCP side server (scenario 6)."""

    __tablename__ = "uploads"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String)
    path: Mapped[str] = mapped_column(String)
    size: Mapped[int] = mapped_column()
    task_id: Mapped[str] = mapped_column(String)
    received_at: Mapped[float] = mapped_column(Double)


class RecordRequest(TaskDbBase):
    """A request for a record, committed in one transaction with its task (scenario 1b)."""

    __tablename__ = "record_requests"

    task_id: Mapped[str] = mapped_column(String, primary_key=True)
    data: Mapped[str] = mapped_column(String)
    request_key: Mapped[str | None] = mapped_column(String, unique=True)
    requested_at: Mapped[float] = mapped_column(Double)
    done_at: Mapped[float | None] = mapped_column(Double)

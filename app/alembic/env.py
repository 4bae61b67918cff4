"""Alembic environment: runs on the connection app/migrations.py hands in.

There is no ``alembic.ini`` and no engine here: :func:`app.migrations.migrate`
opens the transaction (holding the database's write lock), passes its
connection and the target's metadata in ``config.attributes`` and calls
``alembic.command``. Being already in a transaction, Alembic does not commit;
the caller does, so a failed revision leaves nothing behind.
"""

from alembic import context

from app.migrations import VERSION_TABLE

config = context.config
context.configure(
    connection=config.attributes["connection"],
    target_metadata=config.attributes["metadata"],
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()

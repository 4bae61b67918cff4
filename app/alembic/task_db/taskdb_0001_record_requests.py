"""Task database 1: record requests (scenario 1b). Version 1 of the previous runner."""

import sqlalchemy as sa
from alembic import op

revision = "taskdb_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_requests",
        sa.Column("task_id", sa.String, primary_key=True),
        sa.Column("data", sa.String, nullable=False),
        sa.Column("request_key", sa.String, unique=True),
        sa.Column("requested_at", sa.Double, nullable=False),
        sa.Column("done_at", sa.Double),
    )


def downgrade() -> None:
    op.drop_table("record_requests")

"""App file 3: uploads of the TCP side server (scenario 6). Version 3 of the previous runner."""

import sqlalchemy as sa
from alembic import op

revision = "app_0003"
down_revision = "app_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("path", sa.String, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("task_id", sa.String, nullable=False),
        sa.Column("received_at", sa.Double, nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("uploads")

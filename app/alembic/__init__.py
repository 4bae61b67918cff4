"""Alembic environment and revisions of the app's tables (see app/migrations.py)."""

"""ASGI entry point: ``hypercorn asgi:app`` serves the reference app."""

from app import create_app

app = create_app()

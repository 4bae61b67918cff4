"""Benchmarks of quart-taskqueue; ``python -m bench`` runs every figure and prints a table."""

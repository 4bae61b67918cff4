"""Extension instances shared by the reference app's modules."""

from tasks import Tasks

tasks = Tasks()

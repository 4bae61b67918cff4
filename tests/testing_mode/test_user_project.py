"""A user's test suite written with tasks.testing passes, in a process of its own.

``tests/testing_mode/project`` is a small user app (``shop.py``) and its tests,
with the one line ``pytest_plugins = ["tasks.pytest_plugin"]`` in its
``conftest.py``. It runs as its own pytest process, as in a user's project:
the fixtures find that app's one ``Tasks`` object.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).with_name("project")


def test_a_user_suite_with_eager_capture_and_engine_passes(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKS_", "PYTEST_"))}
    env["PYTHONPATH"] = str(project)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-W", "error"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "7 passed" in done.stdout

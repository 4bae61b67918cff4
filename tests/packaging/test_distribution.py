"""What ``pip install quart-taskqueue`` gives a user, checked on the real artefacts.

The sdist and wheel are built with ``python -m build`` and checked with
``twine check``; each install goes into a fresh venv with its dependencies
(from pip's cache or index), and a tiny user project outside the repository
is type-checked against it with the test venv's mypy. The same check runs
against the README's editable install (``pip install -e .``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.servers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

USER_TASKS = """\
from tasks import TaskHandle, Tasks

tasks = Tasks()


@tasks.task
async def add(a: int, b: int) -> int:
    return a + b
"""
GOOD = """\
from jobs import add
from tasks import TaskHandle


async def start() -> int:
    handle: TaskHandle[int] = await add.enqueue(1, b=2)
    return await handle.result()
"""
BAD = """\
from jobs import add


async def start() -> None:
    await add.enqueue("one", 2)
"""
# Read by the installed package at run time: missing files break it only when used.
DATA_FILES = [
    "tasks/py.typed",
    "tasks/store/sql/sqlite/0001_initial.sql",
    "tasks/store/sql/postgres/0001_initial.sql",
    "tasks/web/templates/tasks_dashboard.html",
    "tasks/web/templates/tasks_layout.html",
    "tasks/web/templates/tasks_task.html",
    "tasks/web/templates/tasks_queues.html",
    "tasks/web/templates/tasks_workers.html",
    "tasks/web/templates/tasks_missing.html",
    "tasks/web/templates/tasks_workflow.html",
    "tasks/web/static/common.js",
    "tasks/web/static/dashboard.js",
    "tasks/web/static/task.js",
    "tasks/web/static/queues.js",
    "tasks/web/static/workers.js",
    "tasks/web/static/workflow.js",
    "tasks/web/static/dashboard.css",
]


def run(*command: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def fresh_venv(path: Path, *requirement: str | Path) -> Path:
    """A venv at ``path`` with ``requirement`` and its dependencies; returns its python."""
    ok(run(sys.executable, "-m", "venv", "--without-pip", path, cwd=path.parent, timeout=60))
    python = path / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "-q", *requirement]
    ok(run(*pip, cwd=path.parent))
    return python


def user_project(path: Path) -> Path:
    """A project of its own (outside the repository) that uses the installed package."""
    path.mkdir()
    (path / "jobs.py").write_text(USER_TASKS)
    (path / "good.py").write_text(GOOD)
    (path / "bad.py").write_text(BAD)
    (path / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    return path


def check_types(project: Path, python: Path) -> None:
    """mypy, resolving imports in ``python``'s environment, accepts good and rejects bad."""
    mypy = [sys.executable, "-m", "mypy", "--python-executable", python, "--no-incremental"]
    good = run(*mypy, "good.py", cwd=project)
    # strict mode would report an unresolved or untyped (no py.typed) import here.
    assert good.returncode == 0, good.stdout + good.stderr
    bad = run(*mypy, "bad.py", cwd=project)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert 'bad.py:5: error: Argument 1 to "enqueue"' in bad.stdout, bad.stdout
    assert "[arg-type]" in bad.stdout
    assert "import" not in bad.stdout, bad.stdout


def test_wheel_holds_the_engine_only_and_is_typed(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    ok(run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path))
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    ok(run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist, cwd=tmp_path))

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert {name.split("/")[0] for name in names} == {"tasks", "quart_taskqueue-0.1.0.dist-info"}
    assert set(DATA_FILES) <= set(names)
    with tarfile.open(sdist) as archive:
        members = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
    assert not [m for m in members if m.split("/")[0] in ("app", "tests", "bench", "docs")]
    assert "asgi.py" not in members

    python = fresh_venv(tmp_path / "venv", wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = (
        "import importlib.resources as r, tasks.web.apidocs as d;"
        " print(r.files('tasks') / 'py.typed'); print(d.SWAGGER_UI_DIR / 'swagger-ui-bundle.js')"
    )
    # The package's own data and the /docs viewer's files, as installed.
    for installed in ok(run(python, "-c", probe, cwd=elsewhere)).splitlines():
        assert installed.startswith(str(tmp_path / "venv")), installed
        assert Path(installed).is_file(), installed
    no_app = run(python, "-c", "import app", cwd=elsewhere)
    assert "No module named 'app'" in no_app.stderr, no_app.stderr

    check_types(user_project(tmp_path / "project"), python)


def test_editable_install_is_visible_to_mypy(tmp_path: Path) -> None:
    python = fresh_venv(tmp_path / "venv", "-e", ROOT)
    pth = [p.read_text() for p in (tmp_path / "venv").glob("lib/python*/site-packages/*.pth")]
    # A path entry, not setuptools' import hook, which static tools cannot follow.
    assert str(ROOT) in [line.strip() for text in pth for line in text.splitlines()], pth
    check_types(user_project(tmp_path / "project"), python)

"""docs/porting.md, pattern 5: the example ``hypercorn.toml`` works as written."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import ROOT, Hypercorn, serving

pytestmark = pytest.mark.slow


def documented_config() -> str:
    """The TOML block that follows "Example `hypercorn.toml`" in the porting guide."""
    text = (ROOT / "docs" / "porting.md").read_text()
    start = text.index("Example `hypercorn.toml`")
    match = re.compile(r"```toml\n(.*?)```", re.S).search(text, start)
    assert match is not None
    return match.group(1)


@dataclass(eq=False)
class FromFolder(Hypercorn):
    """``hypercorn --config hypercorn.toml`` run from ``root``, as a deployer would."""

    def options(self) -> list[str]:
        return ["--config", "hypercorn.toml"]

    def command(self) -> list[str]:
        # Only the address changes (a free port instead of 5000): -b overrides `bind`.
        return ["sh", "-c", 'cd "$0" && exec "$@"', str(self.root), *super().command()]


def test_example_config_serves_and_stops_from_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "hypercorn.toml").write_text(documented_config())
    server = FromFolder(
        tmp_path,
        workers=4,
        ready_path="/readyz",
        env={
            "PYTHONPATH": str(ROOT),
            "TASKS_DATABASE_URL": f"sqlite:///{tmp_path / 'tasks.sqlite3'}",
            "TASKS_PROCESSES": "1",
            "APP_INSTANCE_PATH": str(tmp_path / "instance"),
            "SIDE_SERVER_ENABLED": "false",
        },
    )
    with serving(server):
        assert server.stop(signal.SIGTERM) == 0
    assert "Running on" in server.output()

"""The reference app (``asgi:app``) under real Hypercorn, with its side server on a free port."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from tests.servers import Hypercorn, free_port

LISTENING = "side server listening"


@dataclass(eq=False)
class HypercornServer(Hypercorn):
    """``asgi:app`` with every file under ``root``; ready when every side server listens."""

    side_port: int = field(default_factory=free_port)
    ready_path: str | None = "/records"
    ready_log: str | None = LISTENING

    def environment(self) -> dict[str, str]:
        return {
            **super().environment(),
            "TASKS_DATABASE_URL": f"sqlite:///{self.root / 'tasks.sqlite3'}",
            "TASKS_PROCESSES": "1",
            "TASKS_SHUTDOWN_TIMEOUT": "3",
            "APP_INSTANCE_PATH": str(self.root / "instance"),
            "SIDE_SERVER_PORT": str(self.side_port),
            **self.env,
        }


def send_file(port: int, name: str, data: bytes, *, sized: bool = True) -> str:
    """Upload ``data`` to the side server; returns its one-line answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        header = f"{name} {len(data)}\n" if sized else f"{name}\n"
        sock.sendall(header.encode() + data)
        if not sized:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(1024)
            if not chunk:
                break
            answer += chunk
    return answer.decode()

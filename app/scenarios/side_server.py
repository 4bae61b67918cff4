"""Scenario 6 (seed 003): a TCP file-receiving server living inside the app's lifespan.

The Flask version started a ``socketserver.ThreadingTCPServer`` in a thread:
the reloader ran it twice (port clash), and Ctrl-C hung on
``serve_forever`` until a timeout killed the process. Here it is an
``asyncio.start_server`` on the app's own loop, started by ``while_serving``
after the task system and closed before the task system drains, so SIGTERM,
Ctrl-C and ``--reload`` stop it with the rest of the worker.

Protocol, one file per connection::

    client: NAME [SIZE]\\n, then the file's bytes (to EOF when SIZE is left out)
    server: OK <upload id> <checksum task id>\\n   or   ERR <code> <message>\\n

The file is streamed to ``<instance>/uploads/``, recorded in the ``uploads``
table, and ``uploads.checksum`` runs on it in the process pool. The listening
socket uses ``SO_REUSEPORT``: under ``hypercorn -w N`` every worker listens on
the same port and the kernel spreads connections between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import BinaryIO

from quart import Quart

from app.db import AppDatabase
from app.scenarios.settings import AppSettings
from app.scenarios.uploads import checksum, record_upload
from tasks import NotAcceptingError, QueueFullError

log = logging.getLogger("app.side_server")

HEADER_MAX = 1024
HEADER_TIMEOUT = 10.0
IDLE_TIMEOUT = 30.0
CHUNK = 64 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class ProtocolError(Exception):
    """A refused upload: answered as ``ERR <code> <message>``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SideServerError(RuntimeError):
    """The side server cannot listen (port taken, bad address)."""


def parse_header(line: bytes, max_bytes: int) -> tuple[str, int | None]:
    """``NAME [SIZE]`` -> (name, size or None); raises ProtocolError."""
    if not line.endswith(b"\n"):
        raise ProtocolError("bad_header", "expected 'NAME [SIZE]' and a newline")
    try:
        parts = line.decode("utf-8").split()
    except UnicodeDecodeError:
        raise ProtocolError("bad_header", "the header must be UTF-8") from None
    if not 1 <= len(parts) <= 2:
        raise ProtocolError("bad_header", "expected 'NAME [SIZE]' and a newline")
    name = parts[0]
    if not _NAME.fullmatch(name):
        raise ProtocolError("bad_name", "use 1-100 characters from A-Z a-z 0-9 . _ -")
    if len(parts) == 1:
        return name, None
    if not parts[1].isdigit():
        raise ProtocolError("bad_size", "SIZE must be a whole number of bytes")
    size = int(parts[1])
    if size > max_bytes:
        raise ProtocolError("too_large", f"files are limited to {max_bytes} bytes")
    return name, size


class SideServer:
    """Receives files over TCP; started and stopped by the app's serving lifespan."""

    def __init__(
        self, database: AppDatabase, folder: Path, host: str, port: int, max_bytes: int
    ) -> None:
        self.database = database
        self.folder = folder
        self.host = host
        self.port = port
        self.max_bytes = max_bytes
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen; with port 0 the chosen port is in :attr:`port` and in the log."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._server = await asyncio.start_server(
                self._serve, self.host, self.port, reuse_address=True, reuse_port=True
            )
        except OSError as exc:
            raise SideServerError(
                f"the side server cannot listen on {self.host}:{self.port}: {exc.strerror};"
                " set SIDE_SERVER_PORT to a free port (0 picks one)"
                " or SIDE_SERVER_ENABLED=false"
            ) from None
        self.port = self._server.sockets[0].getsockname()[1]
        log.info(
            "side server listening on %s:%d, storing files in %s (pid %d)",
            self.host,
            self.port,
            self.folder,
            os.getpid(),
        )

    async def stop(self) -> None:
        """Stop listening, abort uploads in progress (their clients get no OK), close."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for connection in self._connections:
            connection.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()
        log.info("side server on port %d stopped", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            reply = await self._receive(reader)
            writer.write(reply.encode())
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _receive(self, reader: asyncio.StreamReader) -> str:
        try:
            async with asyncio.timeout(HEADER_TIMEOUT):
                header = await reader.readline()
            if len(header) > HEADER_MAX:
                raise ProtocolError("bad_header", f"the header is limited to {HEADER_MAX} bytes")
            name, size = parse_header(header, self.max_bytes)
            path = self.folder / f"{uuid.uuid4().hex[:12]}-{name}"
            received = await self._store(reader, path, size)
            try:
                handle = await checksum.enqueue(str(path))
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            upload_id = await record_upload(self.database, name, str(path), received, handle.id)
        except ProtocolError as exc:
            return f"ERR {exc.code} {exc}\n"
        except TimeoutError:
            return "ERR timeout the client sent nothing for too long\n"
        except ValueError:  # readline: a line longer than the stream's buffer
            return f"ERR bad_header the header is limited to {HEADER_MAX} bytes\n"
        except QueueFullError:
            return "ERR queue_full queue is full, try later\n"
        except NotAcceptingError:
            return "ERR not_accepting the server is shutting down, try later\n"
        log.info("received %s (%d bytes) as upload %d", name, received, upload_id)
        return f"OK {upload_id} {handle.id}\n"

    async def _store(self, reader: asyncio.StreamReader, path: Path, size: int | None) -> int:
        """Stream the body to ``path`` (through a ``.part`` file); returns its size."""
        partial = path.with_name(path.name + ".part")
        received = 0
        file: BinaryIO = await asyncio.to_thread(open, partial, "wb")
        try:
            while size is None or received < size:
                want = CHUNK if size is None else min(CHUNK, size - received)
                async with asyncio.timeout(IDLE_TIMEOUT):
                    chunk = await reader.read(want)
                if not chunk:
                    break
                received += len(chunk)
                if received > self.max_bytes:
                    raise ProtocolError("too_large", f"files are limited to {self.max_bytes} bytes")
                await asyncio.to_thread(file.write, chunk)
            await asyncio.to_thread(file.close)
            if size is not None and received < size:
                raise ProtocolError("truncated", f"expected {size} bytes, received {received}")
            partial.replace(path)
        except BaseException:
            file.close()
            partial.unlink(missing_ok=True)
            raise
        return received


def init_side_server(app: Quart, settings: AppSettings, database: AppDatabase) -> None:
    """Run the side server while ``app`` serves (after the task system starts, before it drains)."""
    if not settings.side_server_enabled:
        return
    server = SideServer(
        database,
        Path(settings.app_instance_path) / "uploads",
        settings.side_server_host,
        settings.side_server_port,
        settings.side_server_max_bytes,
    )
    app.extensions["side_server"] = server

    @app.while_serving
    async def serve() -> AsyncGenerator[None, None]:
        if app.config.get("TASKS_WORKER_ONLY"):  # `python -m tasks worker`: no listeners
            yield
            return
        await server.start()
        yield
        await server.stop()

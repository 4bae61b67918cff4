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

Hostile clients are bounded, since the server shares its process (and its
file descriptors) with the HTTP API: at most ``SIDE_SERVER_MAX_CONNECTIONS``
uploads at once (the next client gets ``ERR busy`` at once), each within
``SIDE_SERVER_UPLOAD_SECONDS`` from connect to last byte and with at most
``IDLE_TIMEOUT`` seconds of silence; refusals are logged, at a bounded rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import BinaryIO

from quart import Quart

from app.db import AppDatabase
from app.scenarios.log_limit import RateLimitFilter
from app.scenarios.settings import AppSettings
from app.scenarios.side_protocol import ProtocolError, create_inside, parse_header
from app.scenarios.uploads import checksum, record_upload
from tasks import NotAcceptingError, QueueFullError

log = logging.getLogger("app.side_server")
client_log = logging.getLogger("app.side_server.clients")
"""What single clients did wrong: rate-limited, as anyone can cause these lines."""
client_log_limit = RateLimitFilter(burst=20, interval=10.0)
client_log.addFilter(client_log_limit)

HEADER_MAX = 1024
HEADER_TIMEOUT = 10.0
IDLE_TIMEOUT = 30.0
BUSY_LINGER = 1.0
CHUNK = 64 * 1024


class SideServerError(RuntimeError):
    """The side server cannot listen (port taken, bad address)."""


class SideServer:
    """Receives files over TCP; started and stopped by the app's serving lifespan."""

    def __init__(
        self,
        database: AppDatabase,
        folder: Path,
        host: str,
        port: int,
        max_bytes: int,
        *,
        max_connections: int = 64,
        upload_seconds: float = 300.0,
    ) -> None:
        self.database = database
        self.folder = folder.resolve()
        self.host = host
        self.port = port
        self.max_bytes = max_bytes
        self.max_connections = max_connections
        self.upload_seconds = upload_seconds
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._refusing = 0

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
        dropped = client_log_limit.take_dropped()
        log.info("side server on port %d stopped (%d client messages dropped)", self.port, dropped)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        if len(self._connections) >= self.max_connections:
            client_log.warning("refused %s: %d uploads in progress", peer, self.max_connections)
            await self._refuse_busy(reader, writer)
            return
        self._connections.add(task)
        try:
            reply = await self._receive(reader)
            if reply.startswith("ERR"):
                client_log.warning("refused upload from %s: %s", peer, reply.rstrip())
            writer.write(reply.encode())
            await writer.drain()
        except ConnectionError:
            pass
        except Exception:
            client_log.exception("upload from %s failed", peer)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _refuse_busy(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Answer ``ERR busy`` without opening a file; the client costs a socket for a moment.

        Closing a socket with unread input resets the connection, and a reset can
        discard the answer before the client reads it: so the input is drained
        for up to ``BUSY_LINGER`` seconds first, unless too many refusals linger.
        """
        writer.write(b"ERR busy too many uploads at once, try later\n")
        if self._refusing < self.max_connections:
            self._refusing += 1
            try:
                writer.write_eof()
                with contextlib.suppress(TimeoutError, ConnectionError):
                    async with asyncio.timeout(BUSY_LINGER):
                        while await reader.read(CHUNK):
                            pass
            finally:
                self._refusing -= 1
        writer.close()

    async def _receive(self, reader: asyncio.StreamReader) -> str:
        deadline = asyncio.timeout(self.upload_seconds)
        try:
            async with deadline:
                name, path, size = await self._read_header(reader)
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
            if deadline.expired():
                return f"ERR timeout an upload may take at most {self.upload_seconds:g} s\n"
            return "ERR timeout the client sent nothing for too long\n"
        except ValueError:  # readline: a line longer than the stream's buffer
            return f"ERR bad_header the header is limited to {HEADER_MAX} bytes\n"
        except QueueFullError:
            return "ERR queue_full queue is full, try later\n"
        except NotAcceptingError:
            return "ERR not_accepting the server is shutting down, try later\n"
        except ConnectionError:
            raise
        except OSError as exc:  # no file descriptor left, disk full...
            client_log.error("cannot store an upload: %s", exc)
            return "ERR unavailable the server cannot store files now, try later\n"
        log.info("received %s (%d bytes) as upload %d", name, received, upload_id)
        return f"OK {upload_id} {handle.id}\n"

    async def _read_header(self, reader: asyncio.StreamReader) -> tuple[str, Path, int | None]:
        """The client's file name, the new file's path in the folder, and the size if given."""
        async with asyncio.timeout(HEADER_TIMEOUT):
            header = await reader.readline()
        if len(header) > HEADER_MAX:
            raise ProtocolError("bad_header", f"the header is limited to {HEADER_MAX} bytes")
        name, size = parse_header(header, self.max_bytes)
        return name, self.folder / f"{uuid.uuid4().hex[:12]}-{name}", size

    async def _store(self, reader: asyncio.StreamReader, path: Path, size: int | None) -> int:
        """Stream the body to ``path`` (through a ``.part`` file); returns its size."""
        partial = path.with_name(path.name + ".part")
        received = 0
        file: BinaryIO = await asyncio.to_thread(create_inside, self.folder, partial.name)
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
        max_connections=settings.side_server_max_connections,
        upload_seconds=settings.side_server_upload_seconds,
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

"""The side server's wire protocol and its one way of writing into the uploads folder.

A client names its file; the name is never trusted to choose a place on disk:
it must be a plain file name (no separators, no leading dot), the server puts
a random prefix before it, and the file is created new inside the folder
without following symlinks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class ProtocolError(Exception):
    """A refused upload: answered as ``ERR <code> <message>``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


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


def create_inside(folder: Path, file_name: str) -> BinaryIO:
    """Open a new file ``folder/file_name`` for writing; refuse anything that would leave it.

    Raises ValueError when ``file_name`` is not one plain name (separators,
    ``..``), and OSError when the entry exists already, symlink or not
    (``O_EXCL | O_NOFOLLOW``: nothing is ever written through a planted link).
    """
    if not file_name or file_name in (".", "..") or os.sep in file_name or "\0" in file_name:
        raise ValueError(f"{file_name!r} is not a plain file name")
    if os.altsep and os.altsep in file_name:
        raise ValueError(f"{file_name!r} is not a plain file name")
    fd = os.open(folder / file_name, _CREATE, 0o644)
    return os.fdopen(fd, "wb")

"""What an upload sends: a path or bytes, opened as a binary file whose reads report how far
the upload has gone (the progress bar), streamed by httpx in chunks."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

Source = str | os.PathLike[str] | bytes


class ReadProgress:
    """A binary file that reports how far it has been read: the upload's progress bar moves
    as httpx streams the file in chunks. `fileno`/`tell`/`seek` pass through, so httpx
    still knows the length and sends a Content-Length."""

    def __init__(self, file: IO[bytes], on_read: Callable[[int], None]) -> None:
        self._file = file
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._on_read(self._file.tell())
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def fileno(self) -> int:
        return self._file.fileno()


def open_source(source: Source) -> tuple[IO[bytes], str]:
    """The file to upload, opened, and the name to send with it."""
    if isinstance(source, bytes):
        return io.BytesIO(source), "upload.bin"
    path = Path(source)
    return path.open("rb"), path.name


def source_size(source: Source) -> int:
    return len(source) if isinstance(source, bytes) else Path(source).stat().st_size

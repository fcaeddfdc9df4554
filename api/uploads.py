"""Reading uploaded files with a size limit that a chunked upload cannot walk past."""

from __future__ import annotations

from fastapi import UploadFile

from api.errors import ApiError

CHUNK = 1024 * 1024


def read_upload(file: UploadFile, max_bytes: int) -> bytes:
    """The whole file, or 413 as soon as it is over `max_bytes` (counted as it is read, not
    taken from a header a client controls)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := file.file.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(
                413,
                "upload_too_large",
                f"the file is over the upload limit of {max_bytes} bytes",
                field="file",
            )
        chunks.append(chunk)
    if size == 0:
        raise ApiError(422, "empty_file", "the uploaded file is empty", field="file")
    return b"".join(chunks)

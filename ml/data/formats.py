"""Upload file formats: recognised by content, read without trusting a byte of them.

An upload is one of three things, told apart by its first bytes and never by its name:

- a zip archive (`PK\\x03\\x04`, or `PK\\x05\\x06` when empty): an `.npz` of `.npy` arrays;
- JSON: UTF-8 text whose first non-blank character is `{` or `[`;
- CSV: any other UTF-8 text without NUL bytes.

Reading never unpickles and never inflates more than the caller allows. Before a member of an
`.npz` is opened, its declared uncompressed size is checked against `max_bytes` (one member
and all of them together); before its data is read, its `.npy` header (shape and dtype) is
checked to fit in that declared size and to hold plain numbers, and only then is it read with
`allow_pickle=False`. zipfile never returns more than a member declares, so a zip bomb that
lies about its size is cut short and fails its CRC. Only stored and deflated members are
accepted (what `np.savez` and `np.savez_compressed` write): bzip2 and lzma members inflate
without a bound per read.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Literal

import numpy as np

from ml.core.errors import DatasetError
from ml.data.validate import NUMERIC_KINDS, numeric

Format = Literal["npz", "json", "csv"]
FORMAT_NAMES: dict[Format, str] = {"npz": ".npz", "json": "JSON", "csv": "CSV"}

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
NPY_MAGIC = b"\x93NUMPY"
CENTRAL_ENTRY = b"PK\x01\x02"  # signature of a zip central-directory entry
MAX_ARRAYS = 64  # more arrays than any kind names: the file is not one of ours
MAX_ERROR_DETAIL = 200

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class KindSpec:
    """One dataset kind: its documented format, the file formats it accepts, and its parser.

    `read(format, data, max_bytes)` turns a file into named raw arrays; `canonical(arrays)`
    validates them and returns the canonical arrays and the summary. The canonical arrays are
    themselves a valid `.npz` upload, so stored datasets are read back by the same code.
    """

    name: str
    description: str
    formats: tuple[Format, ...]
    read: Callable[[Format, bytes, int | None], Arrays]
    canonical: Callable[[Mapping[str, Any]], tuple[Arrays, dict[str, Any]]]


def sniff(data: bytes) -> Format:
    """The upload's format, from its content alone."""
    if data.startswith(ZIP_MAGIC):
        return "npz"
    if data.startswith(NPY_MAGIC):
        raise DatasetError(
            "this is a single .npy array; upload an .npz that names each array "
            "(np.savez(file, x=...))",
            field="file",
        )
    text = _text(data)
    first = next((char for char in text if not char.isspace()), "")  # no copy of the text
    return "json" if first in ("{", "[") else "csv"


def _text(data: bytes) -> str:
    """The upload as UTF-8 text (a BOM is allowed), or a DatasetError if it is binary."""
    not_text = "the file is not an .npz archive, JSON or CSV text"
    if b"\x00" in data:
        raise DatasetError(f"{not_text} (it holds NUL bytes)", field="file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{not_text} (it is not UTF-8)", field="file") from exc


def _detail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_DETAIL]


def read_npz(data: bytes, *, max_bytes: int | None) -> Arrays:
    """The arrays of an `.npz`, name -> array, after the size and dtype checks above."""
    # zipfile builds an object per central-directory entry before we can count them, and
    # each entry starts with this signature: a few million of them would take gigabytes.
    if data.count(CENTRAL_ENTRY) > MAX_ARRAYS:
        raise DatasetError(f"the .npz holds more than {MAX_ARRAYS} files", field="file")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # zipfile raises a dozen types on a broken archive
        raise DatasetError(f"the .npz archive is damaged ({_detail(exc)})", field="file") from exc
    with archive:
        members = _members(archive, max_bytes)
        return {name: _read_member(archive, name, info) for name, info in members.items()}


def _members(archive: zipfile.ZipFile, max_bytes: int | None) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    if not infos:
        raise DatasetError("the .npz archive holds no arrays", field="file")
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = _member_name(info)
        if name in members:
            raise DatasetError(f"the .npz holds {name}.npy twice", field=name)
        total += info.file_size
        if max_bytes is not None:
            _check_size(name, info.file_size, total, max_bytes)
        members[name] = info
    return members


def _check_size(name: str, size: int, total: int, max_bytes: int) -> None:
    """A member's declared uncompressed size, and the running total, within the limit."""
    if size > max_bytes:
        message = f"{name}.npy unpacks to {size} bytes; the limit is {max_bytes}"
        raise DatasetError(message, field=name)
    if total > max_bytes:
        message = f"the arrays unpack to {total} bytes or more; the limit is {max_bytes}"
        raise DatasetError(message, field=name)


def _member_name(info: zipfile.ZipInfo) -> str:
    """The array name of a member, refusing anything `np.savez` would not have written."""
    if not info.filename.endswith(".npy") or info.is_dir():
        message = f"the .npz holds {info.filename[:100]!r}, which is not a .npy array"
        raise DatasetError(message, field="file")
    name = info.filename[: -len(".npy")]
    if info.flag_bits & 0x1:
        raise DatasetError(f"{name}.npy is encrypted", field=name)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        message = (
            f"{name}.npy is compressed with zip method {info.compress_type}; "
            "write the file with np.savez or np.savez_compressed"
        )
        raise DatasetError(message, field=name)
    return name


def _read_member(archive: zipfile.ZipFile, name: str, info: zipfile.ZipInfo) -> np.ndarray:
    try:
        with archive.open(info) as member:
            _check_header(name, member, info.file_size)
        with archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    except DatasetError:
        raise
    except Exception as exc:  # numpy and zlib raise many types on damaged data
        raise DatasetError(f"{name}.npy is damaged ({_detail(exc)})", field=name) from exc


def _check_header(name: str, member: IO[bytes], size: int) -> None:
    """The `.npy` header holds plain numbers whose declared shape fits the member's size."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise DatasetError(f"{name}.npy has unsupported .npy version {version}", field=name)
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None:
        message = f"{name} holds {dtype} values; expected numbers (bool, int or float)"
        raise DatasetError(message, field=name)
    if any(d < 0 for d in shape):
        raise DatasetError(f"{name}.npy declares an impossible shape {shape}", field=name)
    needed = math.prod(shape) * dtype.itemsize
    held = size - member.tell()
    if needed > held:
        message = f"{name}.npy declares shape {shape} ({needed} bytes) but holds {held} bytes"
        raise DatasetError(message, field=name)


def read_json(data: bytes) -> Any:
    """The parsed JSON document (NaN and Infinity parse, and are refused by the checks)."""
    try:
        return json.loads(_text(data))
    except (ValueError, RecursionError) as exc:
        raise DatasetError(f"the JSON is malformed ({_detail(exc)})", field="file") from exc


def json_arrays(document: Any, kind: str) -> Arrays:
    """A JSON object mapping array names to numbers or (nested) lists, as arrays."""
    if not isinstance(document, dict):
        message = f'{kind} JSON uploads are an object of arrays, e.g. {{"name": [...], ...}}'
        raise DatasetError(message, field="file")
    if len(document) > MAX_ARRAYS:
        raise DatasetError(f"the JSON names {len(document)} arrays", field="file")
    return {name: numeric(name, value) for name, value in document.items()}


def read_arrays(fmt: Format, data: bytes, max_bytes: int | None, kind: str) -> Arrays:
    """Named arrays from an `.npz` or a JSON object: the form every kind accepts."""
    if fmt == "npz":
        return read_npz(data, max_bytes=max_bytes)
    if fmt == "json":
        return json_arrays(read_json(data), kind)
    raise DatasetError(f"{kind} datasets are not read from {FORMAT_NAMES[fmt]}", field="file")


def read_csv(data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-blank rows of comma-separated text, each with its line number."""
    try:
        reader = csv.reader(io.StringIO(_text(data), newline=""), strict=True)
        lines = [(reader.line_num, row) for row in reader if row]
    except csv.Error as exc:
        raise DatasetError(f"the CSV is malformed ({_detail(exc)})", field="file") from exc
    if not lines:
        raise DatasetError("the CSV file is empty", field="file")
    header = [name.strip() for name in lines[0][1]]
    return header, lines[1:]


def write_npz(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The canonical storage form: `np.savez_compressed`, plain numbers only, no pickle."""
    for name, array in arrays.items():
        if array.dtype.kind not in NUMERIC_KINDS:
            raise DatasetError(f"{name} holds {array.dtype} values; not storable", field=name)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()

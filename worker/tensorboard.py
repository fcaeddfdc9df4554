"""A job's metric points as TensorBoard event files, for teams that already look there
(setting `TENSORBOARD_DIR`; `tensorboard --logdir $TENSORBOARD_DIR` then shows every job as a
run named by its id).

The format is small and stable, so it is written here rather than pulling in TensorFlow or
the tensorboard package: a file of TFRecords (length, masked CRC-32C of the length, data,
masked CRC-32C of the data), each an `Event` protocol buffer: first `file_version`
("brain.Event:2"), then one event per step with a `Summary` of `simple_value`s. Field numbers
are those of tensorboard's `event.proto` and `summary.proto`.
"""

from __future__ import annotations

import socket
import struct
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord frames use."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(data: bytes) -> bytes:
    """One TFRecord frame."""
    length = struct.pack("<Q", len(data))
    return (
        length + struct.pack("<I", masked_crc(length)) + data + struct.pack("<I", masked_crc(data))
    )


# -- protocol buffers, the few wire types needed ---------------------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def event(wall_time: float, step: int = 0, **content: bytes) -> bytes:
    """An `Event`: wall_time (1, double), step (2, int64), then file_version (3, string) or
    summary (5, message)."""
    out = _varint(1 << 3 | 1) + struct.pack("<d", wall_time)
    if step:
        out += _varint(2 << 3 | 0) + _varint(step)
    if "file_version" in content:
        out += _bytes_field(3, content["file_version"])
    if "summary" in content:
        out += _bytes_field(5, content["summary"])
    return out


def summary(values: Iterable[tuple[str, float]]) -> bytes:
    """A `Summary` of `Value`s: tag (1, string), simple_value (2, float)."""
    out = b""
    for tag, value in values:
        item = _bytes_field(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", value)
        out += _bytes_field(1, item)
    return out


class EventFile:
    """The event file of one attempt of a job: `<root>/<job id>/events.out.tfevents.*`."""

    def __init__(self, root: Path, job_id: str, attempt: int) -> None:
        folder = root / job_id
        folder.mkdir(parents=True, exist_ok=True)
        now = time.time()
        name = f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{attempt}"
        self.path = folder / name
        with self.path.open("ab") as file:
            file.write(record(event(now, file_version=b"brain.Event:2")))

    def add(self, points: Iterable[tuple[str, int, float]]) -> None:
        """Append points (name, step, value), one event per step."""
        by_step: dict[int, list[tuple[str, float]]] = defaultdict(list)
        for name, step, value in points:
            by_step[step].append((name, value))
        now = time.time()
        frames = b"".join(
            record(event(now, step, summary=summary(values)))
            for step, values in sorted(by_step.items())
        )
        if frames:
            with self.path.open("ab") as file:
                file.write(frames)

"""The `samples` kind: points a generative model learns to imitate, optionally labelled.

A GAN learns the distribution of `x`; the labels `y` are there for conditional models and for
colouring embeddings and confusion matrices. Canonical arrays:

    x: float32 [N, d] (or [N, ...] for images)   # x[i] is sample i
    y: int64 [N], optional                       # y[i] in 0..n_classes-1

`n_classes` is one more than the largest label, so classes are numbered from 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ml.core.errors import DatasetError
from ml.data.formats import Arrays, Format, KindSpec, read_arrays, read_csv
from ml.data.validate import (
    FLOAT32_MAX,
    MAX_INDEX,
    check_names,
    features,
    first,
    index_column,
    show,
    summarize,
)

LABEL = "label"

DESCRIPTION = (
    "Samples for a generative model to learn. An .npz (or a JSON object of arrays) with `x`, "
    "finite numbers of shape [N, d] (or [N, ...] for images, up to 4 dimensions; a 1-D `x` is "
    "N samples of one feature), and optionally `y`, N non-negative integer class labels. Or a "
    "comma-separated CSV file whose first line is a header naming the columns: every column "
    "is a feature, except an optional integer column named `label`. Stored as `x` float32 and "
    "`y` int64; the summary gives `n_features` and, when labelled, `n_classes` (the largest "
    "label plus one)."
)


def read(fmt: Format, data: bytes, max_bytes: int | None) -> Arrays:
    if fmt == "csv":
        return _from_csv(data)
    return read_arrays(fmt, data, max_bytes, "samples")


def canonical(raw: Mapping[str, Any]) -> tuple[Arrays, dict[str, Any]]:
    """Validate x (and y) and return the canonical arrays with their summary."""
    check_names(raw, "samples", required=("x",), optional=("y",))
    x = features("x", raw["x"])  # x[N, ...]
    arrays = {"x": x}
    facts: dict[str, Any] = {
        "n_features": math.prod(x.shape[1:]),
        "sample_shape": [int(d) for d in x.shape[1:]],
    }
    if "y" in raw:
        arrays["y"], facts["n_classes"] = index_column(raw, "y", "n_classes", len(x), "x")
    return arrays, summarize(arrays, len(x), **facts)


def _from_csv(data: bytes) -> Arrays:
    """x (and y from the `label` column) from CSV text with a header line."""
    header, lines = read_csv(data)
    _check_header(header)
    if not lines:
        raise DatasetError("the CSV has a header but no rows", field="file")
    values = np.empty((len(lines), len(header)), dtype=np.float64)  # values[row, column]
    for row, (line, cells) in enumerate(lines):
        if len(cells) != len(header):
            message = f"line {line} has {len(cells)} fields; the header has {len(header)}"
            raise DatasetError(message, field="file")
        values[row] = [
            _number(line, column, cell) for column, cell in zip(header, cells, strict=True)
        ]
    label = header.index(LABEL) if LABEL in header else None
    feature_columns = [c for c in range(len(header)) if c != label]
    x = values[:, feature_columns]  # x[N, d]
    bad = ~np.isfinite(x) | (np.abs(x) > FLOAT32_MAX)
    _reject_cell(bad, x, lines, [header[c] for c in feature_columns], ", not a finite float32")
    if label is None:
        return {"x": x}
    y = values[:, [label]]  # y[N, 1]
    bad = ~np.isfinite(y) | (y != np.floor(y)) | (y < 0) | (y > MAX_INDEX)
    _reject_cell(bad, y, lines, [LABEL], ", not a non-negative integer")
    return {"x": x, "y": y[:, 0]}


def _check_header(header: list[str]) -> None:
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if not name:
            message = f"the CSV header names no column {position}"
            raise DatasetError(message, field="header")
        if name in seen:
            raise DatasetError(f"column {name!r} appears twice in the CSV header", field=name)
        seen.add(name)
    if all(_is_number(name) for name in header):
        message = "the first line of the CSV must be a header naming the columns; it holds numbers"
        raise DatasetError(message, field="header")
    if header == [LABEL]:
        raise DatasetError("the CSV has a label column but no feature columns", field="header")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(line: int, column: str, cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        message = f"line {line}, column {column!r}: {cell[:40]!r} is not a number"
        raise DatasetError(message, field=column) from None


def _reject_cell(
    bad: np.ndarray,
    values: np.ndarray,
    lines: list[tuple[int, list[str]]],
    columns: list[str],
    problem: str,
) -> None:
    """Raise for the first bad cell, by line number and column name as the file shows them."""
    index = first(bad)
    if index is not None:
        row, column = index
        message = f"line {lines[row][0]}, column {columns[column]!r} is {show(values[index])}"
        raise DatasetError(message + problem, field=columns[column])


SPEC = KindSpec(
    name="samples",
    description=DESCRIPTION,
    formats=("npz", "json", "csv"),
    read=read,
    canonical=canonical,
)

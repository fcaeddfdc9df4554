"""`ml.core.metadata.metadata_problem`: the metadata of an imported model file is anyone's, and
must be plain JSON a database can store before it is."""

from __future__ import annotations

from typing import Any

import pytest

from ml.core.metadata import MAX_DEPTH, metadata_problem


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"kind": "dqn", "algorithm": "dqn", "shapes": {"grid": (3, 3)}, "seed": 2**40},
        {"summary": {"return": -1.5e300, "converged": True, "note": None, "tab\there": "ok"}},
        {"deep": nested(MAX_DEPTH - 1)},
        {"text": "é ✓ 😀"},
    ],
)
def test_plain_json_passes(metadata: dict[str, Any]) -> None:
    assert metadata_problem(metadata) is None


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ({"algorithm": "a" * 65}, "names no algorithm"),
        ({"algorithm": 5}, "names no algorithm"),
        ({"algorithm": ""}, "names no algorithm"),
        ({"summary": {"loss": float("nan")}}, "holds nan at metadata.summary.loss"),
        ({"x": [1.0, float("-inf")]}, "holds -inf at metadata.x[1]"),
        ({"note": "a\x00b"}, "NUL or a lone surrogate at metadata.note"),
        ({"note": "\ud800"}, "NUL or a lone surrogate"),
        ({"x": {1: "a"}}, "key at metadata.x that is not a plain string"),
        ({"x": {"k\x00": "a"}}, "key at metadata.x that is not a plain string"),
        ({"x": nested(MAX_DEPTH + 1)}, "nests more than 32 levels deep"),
        ({"x": b"bytes"}, "holds a bytes at metadata.x"),
        ({"x": "y" * 1_000_001}, "longer than 1,000,000 characters"),
        ({"x": [0] * 1_000_001}, "longer than 1,000,000 characters"),
    ],
)
def test_what_a_database_cannot_store_is_named(metadata: dict[str, Any], says: str) -> None:
    problem = metadata_problem(metadata)
    assert problem is not None and says in problem, problem

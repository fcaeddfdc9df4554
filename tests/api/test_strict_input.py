"""`api.strict_input` on its own: the parser, the nesting count, the string check, the media
types, and strict validation of a config."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pydantic import ValidationError

from api.errors import ApiError
from api.strict_input import (
    MAX_DEPTH,
    check_strings,
    is_json_media_type,
    loads,
    nesting_exceeds,
    validate_strictly,
)
from ml.registry import ALGORITHMS
from tests.tiny_configs import TINY_CONFIGS


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, 2.5, -3e10, 1e-400, true, null, "x"]}',
        '"\\ud83d\\ude00 a pair is one character"',
        '["\\\\u0000 is an escaped backslash, then text"]',
        "1" * 4000,
        "1e308",
        '{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',
    ],
)
def test_json_is_parsed_as_python_would(text: str) -> None:
    assert loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"NaN", "NaN is not a JSON number"),
        (b"[-Infinity]", "-Infinity is not a JSON number"),
        (b"[1e309]", "'1e309' is too large"),
        (b"[-" + b"9" * 310 + b".5]", "too large for a 64-bit float"),
        (b"1" * 5000, "too many digits"),
        (b"[" * 10_000, "more than 64 levels deep"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "more than 64 levels deep"),
        (b'{"a": \xff}', "not valid UTF-8 (byte 6)"),
        (b'{"a": 1,}', "not valid JSON: Expecting property name enclosed in double quotes"),
        (b'["a\nb"]', "Invalid control character"),
        (b"", "not valid JSON: Expecting value at line 1 column 1"),
    ],
)
def test_what_is_not_strict_json(body: bytes, says: str) -> None:
    with pytest.raises(ApiError) as refused:
        loads(body)
    assert refused.value.status == 400 and refused.value.code == "invalid_json"
    assert says in refused.value.message


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [{"b": []}]}', 4),
        ("[" * MAX_DEPTH + "]" * MAX_DEPTH, MAX_DEPTH),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), MAX_DEPTH + 1),
        ('[{"k": "[[[[{{{{\\"]]]]"}, [], [[]]]', 3),
        ("[" + ",".join(["[[0]]"] * 100) + "]", 3),
    ],
)
def test_nesting_is_counted_exactly(text: str, depth: int) -> None:
    assert not nesting_exceeds(text, depth)
    assert depth == 0 or nesting_exceeds(text, depth - 1)


def test_nesting_is_counted_fast() -> None:
    body = json.dumps({"observations": [[0.1, -2.5, 3.0, 4e-3]] * 30_000})  # about 1 MB
    started = time.perf_counter()
    assert not nesting_exceeds(body, MAX_DEPTH)
    assert time.perf_counter() - started < 0.2


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("a\x00", None),
        ({"a": ["ok", {"b": "x\x00"}]}, "a.1.b"),
        ({"ok": 1, "k\x00": 2}, "k\x00"),
        ([["fine"], ["\ud800"]], "1.0"),
        ({"first": "\x00", "second": "\x00"}, "first"),
    ],
)
def test_strings_with_nul_or_lone_surrogates_name_their_field(
    value: Any, field: str | None
) -> None:
    with pytest.raises(ApiError) as refused:
        check_strings(value)
    assert refused.value.status == 422 and refused.value.code == "invalid_characters"
    assert refused.value.field == field


def test_strings_are_checked_only_when_an_escape_may_hide_nul() -> None:
    assert loads(b'{"a": "\\u0000"}'.replace(b"\\u0000", b"\\u0041")) == {"a": "A"}
    with pytest.raises(ApiError):
        loads(b'{"a": {"b": "\\u0000"}}')
    with pytest.raises(ApiError):
        loads(b'["\\uDBFF"]')


@pytest.mark.parametrize(
    ("content_type", "is_json"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/problem+json", True),
        ("application/jsonp", False),
        ("text/json", False),
        ("text/plain", False),
        ("", False),
        (None, False),
    ],
)
def test_json_media_types(content_type: str | None, is_json: bool) -> None:
    assert is_json_media_type(content_type) == is_json


@pytest.mark.parametrize("algorithm", sorted(TINY_CONFIGS))
def test_strict_validation_keeps_every_valid_config(algorithm: str) -> None:
    config = ALGORITHMS[algorithm].config
    for data in ({}, TINY_CONFIGS[algorithm]):
        strict = validate_strictly(config, data).model_dump(mode="json")
        assert strict == config.model_validate(data).model_dump(mode="json")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"total_steps": "5"}, "total_steps"),
        ({"total_steps": True}, "total_steps"),
        ({"total_steps": 5.0}, "total_steps"),
        ({"learning_rate": "0.1"}, "learning_rate"),
        ({"learning_rate": False}, "learning_rate"),
        ({"hidden": [8, "8"]}, "hidden"),
        ({"double_dqn": 1}, "double_dqn"),
    ],
)
def test_strict_validation_refuses_what_json_would_not_call_a_number(
    data: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_strictly(ALGORITHMS["dqn"].config, data)
    assert str(refused.value.errors()[0]["loc"][0]) == field


def test_strict_validation_takes_ints_for_floats() -> None:
    assert validate_strictly(ALGORITHMS["dqn"].config, {"learning_rate": 1}).learning_rate == 1.0

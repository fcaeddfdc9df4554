"""The samples kind: .npz, JSON and CSV files, canonical dtypes, and every rejection rule."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tests.ml.data.builders import (
    Arrays,
    as_json,
    assert_round_trip,
    npz,
    npz_compressed,
    poke,
    put,
    rejects,
    samples_arrays,
)


def test_npz_with_labels() -> None:
    dataset = assert_round_trip("samples", npz(**samples_arrays()))
    assert dataset.arrays["x"].dtype == np.float32 and dataset.arrays["y"].dtype == np.int64
    assert dataset.summary == {
        "rows": 20,
        "arrays": {
            "x": {"shape": [20, 3], "dtype": "float32"},
            "y": {"shape": [20], "dtype": "int64"},
        },
        "n_features": 3,
        "sample_shape": [3],
        "n_classes": 4,
    }


def test_unlabelled_images_and_one_feature() -> None:
    images = np.random.default_rng(0).uniform(size=(6, 1, 4, 4)).astype(np.float16)
    dataset = assert_round_trip("samples", npz_compressed(x=images))
    assert dataset.summary["n_features"] == 16 and dataset.summary["sample_shape"] == [1, 4, 4]
    assert "n_classes" not in dataset.summary and "y" not in dataset.arrays
    column = assert_round_trip("samples", npz(x=np.arange(5)))  # 1-D: one feature
    assert column.arrays["x"].shape == (5, 1)


def test_labels_as_integral_floats_bools_and_a_column() -> None:
    x = np.zeros((3, 2))
    for y in ([0.0, 2.0, 1.0], [[0], [2], [1]], np.array([0, 2, 1], np.uint8)):
        dataset = assert_round_trip("samples", npz(x=x, y=y))
        np.testing.assert_array_equal(dataset.arrays["y"], [0, 2, 1])
    assert assert_round_trip("samples", npz(x=x, y=[True, False, True])).summary["n_classes"] == 2


def test_json_object() -> None:
    arrays = samples_arrays()
    dataset = assert_round_trip("samples", as_json(arrays))
    np.testing.assert_allclose(dataset.arrays["x"], arrays["x"], rtol=1e-6)


def test_csv_with_and_without_a_label_column() -> None:
    text = "\ufeffsepal, petal ,label\r\n5.1,3.5,0\n\n 4.9 ,3.0,1\n1e3,-2,1.0\n"
    dataset = assert_round_trip("samples", text.encode())
    np.testing.assert_allclose(dataset.arrays["x"], [[5.1, 3.5], [4.9, 3.0], [1e3, -2]], 1e-6)
    np.testing.assert_array_equal(dataset.arrays["y"], [0, 1, 1])
    assert dataset.summary["n_classes"] == 2
    plain = assert_round_trip("samples", b"label_free,b\n1,2\n")  # "label" must match exactly
    assert plain.summary["n_features"] == 2 and "y" not in plain.arrays


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (put(x=None), "x", "samples datasets need x"),
        (put(labels=np.zeros(20)), "labels", "unexpected array 'labels'"),
        (poke("x", (7, 2), np.nan), "x", "x[7, 2] is NaN"),
        (poke("x", (3, 0), -np.inf), "x", "x[3, 0] is -inf"),
        (poke("x", (4, 1), 1e39), "x", "x[4, 1] is 1e+39, too large for float32"),
        (poke("y", (5,), -1), "y", "y[5] is -1, not a non-negative integer"),
        (poke("y", (6,), 1.5), "y", "y[6] is 1.5, not an integer"),
        (poke("y", (2,), np.nan), "y", "y[2] is NaN, not an integer"),
        (poke("y", (2,), 2.0**40), "y", "y[2] is 1.09951e+12, beyond the largest index"),
        (put(y=np.arange(19)), "y", "y has 19 rows; x has 20"),
        (put(y=np.zeros((20, 2))), "y", "y has shape (20, 2); expected [20]"),
        (put(y=np.array(3)), "y", "y is a single number"),
        (put(x=np.array(1.0)), "x", "x has shape (); expected [N, d]"),
        (put(x=np.zeros((0, 3)), y=None), "x", "x has no rows"),
        (put(x=np.zeros((4, 0)), y=None), "x", "rows without values"),
        (put(x=np.zeros((2, 1, 1, 1, 1)), y=None), "x", "up to 4 dimensions"),
    ],
)
def test_npz_rejections(change: Callable[[Arrays], Arrays], field: str, message: str) -> None:
    rejects("samples", npz(**change(samples_arrays())), field, message)


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("a,b\n1,2\n3,x\n", "b", "line 3, column 'b': 'x' is not a number"),
        ("a,b\n1,2\n3,\n", "b", "line 3, column 'b': '' is not a number"),
        ("a,b\n1,2\n3,inf\n", "b", "line 3, column 'b' is inf, not a finite float32"),
        ("a,b\n1,nan\n", "b", "line 2, column 'b' is NaN"),
        ("a,b\n1,1e39\n", "b", "line 2, column 'b' is 1e+39, not a finite float32"),
        ("a,label\n1,0\n2,-1\n", "label", "line 3, column 'label' is -1, not a non-negative"),
        ("a,label\n1,0.5\n", "label", "line 2, column 'label' is 0.5, not a non-negative integer"),
        ("a,b\n1,2\n3\n", "file", "line 3 has 1 fields; the header has 2"),
        ("a,b\n1,2,3\n", "file", "line 2 has 3 fields"),
        ("a,a\n1,2\n", "a", "column 'a' appears twice"),
        ("a,,c\n1,2,3\n", "header", "names no column 2"),
        ("1,2\n3,4\n", "header", "must be a header naming the columns"),
        ("label\n1\n", "header", "no feature columns"),
        ("a,b\n", "file", "a header but no rows"),
        ('a,b\n"1,2\n', "file", "the CSV is malformed"),
        ('a,b\n"1"2,3\n', "file", "the CSV is malformed"),
        ("a,b\n" + "9" * 200_000 + ",1\n", "file", "the CSV is malformed"),
    ],
)
def test_csv_rejections(text: str, field: str, message: str) -> None:
    rejects("samples", text.encode(), field, message)

"""Recognising files by content, reading them without trusting them, and the public API.

Hostile and damaged files must only ever raise DatasetError: zip bombs, lying sizes, pickles,
huge declared shapes, random bytes, truncations and mutations of valid files.
"""

from __future__ import annotations

import io
import struct
import warnings
import zipfile

import numpy as np
import pytest

from ml.core.errors import ConfigError, DatasetError
from ml.data import (
    DATASET_KINDS,
    Dataset,
    UploadedDataset,
    describe_kind,
    from_npz,
    parse_upload,
    resolve,
    to_npz,
)
from ml.data.formats import sniff
from tests.ml.data.builders import (
    LIMIT,
    as_json,
    mdp_arrays,
    npy,
    npz,
    npz_compressed,
    rejects,
    samples_arrays,
    sparse_mdp,
    trajectories_arrays,
    transitions_arrays,
    zip_of,
)

VALID = {
    "samples": samples_arrays(),
    "transitions": transitions_arrays(),
    "trajectories": trajectories_arrays(),
    "mdp": mdp_arrays(),
}


def test_kinds_and_their_descriptions() -> None:
    assert DATASET_KINDS == ("samples", "transitions", "trajectories", "mdp")
    for kind in DATASET_KINDS:
        text = describe_kind(kind)
        assert "\n" not in text and len(text) > 200
        for name in VALID[kind]:
            assert f"`{name}`" in text, (kind, name)
    with pytest.raises(DatasetError) as info:
        describe_kind("spreadsheets")
    assert info.value.field == "kind"


def test_unknown_kind_is_refused_everywhere() -> None:
    rejects("spreadsheets", npz(**VALID["samples"]), "kind", "unknown dataset kind")
    with pytest.raises(DatasetError) as info:
        from_npz("spreadsheets", npz(**VALID["samples"]))
    assert info.value.field == "kind"


def test_formats_are_recognised_by_content_not_name() -> None:
    assert sniff(npz(x=np.zeros(2))) == "npz"
    assert sniff(b'  \n{"x": [1]}') == "json"
    assert sniff(b"\xef\xbb\xbf[1]") == "json"
    assert sniff(b"a,b\n1,2\n") == "csv"
    rejects("samples", b"\x89PNG\r\n\x1a\n\x00\x00", "file", "not an .npz archive, JSON or CSV")
    rejects("samples", bytes([0xFF, 0xFE, 0x41]), "file", "not UTF-8")
    rejects("samples", npy(np.zeros(3)), "file", "single .npy array")


def test_a_kind_refuses_formats_it_does_not_read() -> None:
    rejects("transitions", b"a,b\n1,2\n", "file", "transitions datasets are .npz or JSON", "CSV")
    rejects("mdp", b"[1, 2]", "file", "object of arrays")
    rejects("samples", b"[[1, 2]]", "file", "object of arrays")


@pytest.mark.parametrize("data", [b"", b"   \n\t"])
def test_empty_files(data: bytes) -> None:
    rejects("samples", data, "file", "empty")


def test_the_size_limit_applies_to_the_file() -> None:
    data = npz(**VALID["samples"])
    rejects("samples", data, "file", f"the file is {len(data)} bytes", limit=len(data) - 1)
    assert parse_upload("samples", data, max_bytes=len(data)).summary["rows"] == 20


def test_zip_bomb_is_refused_by_declared_size_before_inflating() -> None:
    bomb = npz_compressed(x=np.zeros((4_000, 64)))  # 2 MB of zeros in a few kB
    assert len(bomb) < 20_000
    rejects("samples", bomb, "x", "x.npy unpacks to 2048128 bytes", "limit is 1048576")


def test_the_size_limit_applies_to_all_members_together() -> None:
    x = np.zeros((20, 3_000))  # 480 kB and 640 kB: each fits in 1 MiB, together they do not
    data = npz_compressed(x=x, y=np.zeros(80_000, dtype=np.int64))
    rejects("samples", data, "y", "the arrays unpack to", "limit is 1048576")


def _patch_uncompressed_size(data: bytes, size: int) -> bytes:
    """Make the (non-zip64) member lie about its uncompressed size, in both headers."""
    patched = bytearray(data)
    local = patched.find(b"PK\x03\x04")
    central = patched.find(b"PK\x01\x02")
    struct.pack_into("<I", patched, local + 22, size)
    struct.pack_into("<I", patched, central + 24, size)
    return bytes(patched)


def test_a_member_that_lies_about_its_size_is_cut_short() -> None:
    honest = zip_of({"x.npy": npy(np.zeros((1_000, 100)))}, zipfile.ZIP_DEFLATED)
    for size in (20, 200, 5_000):  # a CRC error at the declared end, or a too-small member
        message = rejects("samples", _patch_uncompressed_size(honest, size), "x", "x.npy ")
        assert "damaged" in message or "declares shape (1000, 100)" in message


def test_huge_and_impossible_declared_shapes() -> None:
    for shape in [(10**12,), (10**6, 10**6, 10**6), (-1, 2)]:
        buffer = io.BytesIO()
        header = {"descr": "<f8", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(buffer, header)
        buffer.write(b"\x00" * 64)
        message = rejects("samples", zip_of({"x.npy": buffer.getvalue()}), "x", "x.npy declares")
        assert str(shape) in message


def test_pickles_are_never_loaded() -> None:
    evil = np.array([{"a": 1}, None], dtype=object)
    rejects("samples", npz(x=evil), "x", "object values")
    rejects("samples", npz(x=np.zeros((2, 2)), y=evil), "y", "object values")


@pytest.mark.parametrize(
    ("array", "fragment"),
    [
        (np.array([["a", "b"]]), "<U1 values"),
        (np.array([b"ab"]), "|S2 values"),
        (np.ones((2, 2), dtype=np.complex64), "complex64 values"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), "datetime64[D] values"),
        (np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]), "values; expected numbers"),
    ],
)
def test_arrays_of_anything_but_numbers_are_refused(array: np.ndarray, fragment: str) -> None:
    rejects("samples", npz(x=array), "x", fragment)


def test_archives_np_savez_would_not_write() -> None:
    good = npy(np.zeros((2, 2)))
    rejects("samples", zip_of({"x.npy": good, "notes.txt": b"hi"}), "file", "'notes.txt'")
    rejects("samples", zip_of({"x.npy": good}, zipfile.ZIP_BZIP2), "x", "zip method 12")
    rejects("samples", zip_of({}), "file", "holds no arrays")
    many = {f"a{i}.npy": good for i in range(65)}
    rejects("samples", zip_of(many), "file", "more than 64 files")
    rejects("samples", npz(x=np.zeros(2), z=np.zeros(2)), "z", "unexpected array 'z'")
    rejects("samples", zip_of({"x.npy": good, ".npy": good}), "file", "unexpected array ''")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("x.npy", good)
            archive.writestr("x.npy", good)
    rejects("samples", buffer.getvalue(), "x", "x.npy twice")


def test_encrypted_members_are_refused() -> None:
    data = bytearray(zip_of({"x.npy": npy(np.zeros((2, 2)))}))
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 0x1  # the "encrypted" flag bit
    rejects("samples", bytes(data), "x", "encrypted")


def test_unsupported_npy_version() -> None:
    member = bytearray(npy(np.zeros((2, 2))))
    for major in (3, 9):  # 3.0 is only written for non-ASCII field names: records
        member[6] = major
        message = f"unsupported .npy version ({major}, 0)"
        rejects("samples", zip_of({"x.npy": bytes(member)}), "x", message)
    member[0] = 0
    rejects("samples", zip_of({"x.npy": bytes(member)}), "x", "x.npy is damaged")


def test_truncated_archives() -> None:
    data = npz_compressed(**VALID["transitions"])
    for end in (4, 30, len(data) // 3, len(data) // 2, len(data) - 10, len(data) - 1):
        with pytest.raises(DatasetError):
            parse_upload("transitions", data[:end], max_bytes=LIMIT)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b'{"x": [1, 2', "JSON is malformed"),
        (b"[" * 100_000, "JSON is malformed"),
        (b'{"x": [' + b"9" * 5_000 + b"]}", "JSON is malformed"),
        (b'{"x": "abc"}', "x holds <U3 values"),
        (b'{"x": [[1, 2], [3]]}', "x is not a rectangular array"),
        (b'{"x": [1, null]}', "x holds object values"),
        (b'{"x": {"a": 1}}', "x holds object values"),
        (b'{"x": [1e999, 2]}', "x[0, 0] is inf"),
        (b'{"x": [NaN, 2]}', "x[0, 0] is NaN"),
    ],
)
def test_bad_json(data: bytes, fragment: str) -> None:
    with pytest.raises(DatasetError) as info:
        parse_upload("samples", data, max_bytes=LIMIT)
    assert fragment in info.value.message


def _upload_or_refuse(kind: str, data: bytes) -> None:
    """The contract under fuzzing: a Dataset or a DatasetError, nothing else."""
    try:
        dataset = parse_upload(kind, data, max_bytes=LIMIT)
    except DatasetError as error:
        assert error.message and error.field
    else:
        assert isinstance(dataset, Dataset) and dataset.summary["rows"] >= 1


def test_fuzz_random_bytes() -> None:
    rng = np.random.default_rng(1234)
    prefixes = [b"", b"PK\x03\x04", b"PK\x05\x06", b"{", b"[", b"a,b\n", b"\x93NUMPY"]
    for i in range(300):
        body = rng.integers(0, 256, size=int(rng.integers(0, 400)), dtype=np.uint8).tobytes()
        if i % 3 == 0:  # text-like bytes reach the JSON and CSV readers
            body = bytes(rng.choice(list(b'0123456789,.-e\n"[]{}: abxNa'), size=len(body)))
        _upload_or_refuse(DATASET_KINDS[i % 4], prefixes[i % len(prefixes)] + body)


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    mutated = bytearray(data)
    where = int(rng.integers(0, len(mutated)))
    match int(rng.integers(0, 4)):
        case 0:  # flip a few bytes
            for spot in rng.integers(0, len(mutated), size=int(rng.integers(1, 4))):
                mutated[int(spot)] ^= int(rng.integers(1, 256))
        case 1:  # truncate
            del mutated[where:]
        case 2:  # insert garbage
            mutated[where:where] = rng.integers(0, 256, size=8, dtype=np.uint8).tobytes()
        case _:  # overwrite a span with a boundary value
            mutated[where : where + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"])
    return bytes(mutated)


VALID_FILES = [
    ("samples", npz(**VALID["samples"])),
    ("samples", npz_compressed(**VALID["samples"])),
    ("samples", b"a,b,label\n1,2,0\n3,4.5,1\n-1,0,2\n"),
    ("transitions", npz(**VALID["transitions"])),
    ("transitions", npz_compressed(**transitions_arrays(discrete=False))),
    ("trajectories", npz(**VALID["trajectories"])),
    (
        "trajectories",
        as_json([{"states": [0, 1], "actions": [1, 0]}, {"states": [2], "actions": [1]}]),
    ),
    ("mdp", npz(**VALID["mdp"])),
    ("mdp", npz_compressed(**sparse_mdp())),
    ("mdp", as_json(sparse_mdp())),
]


@pytest.mark.parametrize(("kind", "data"), VALID_FILES)
def test_fuzz_mutations_of_valid_files(kind: str, data: bytes) -> None:
    parse_upload(kind, data, max_bytes=LIMIT)  # the seed file itself is valid
    rng = np.random.default_rng(len(data))
    for _ in range(120):
        _upload_or_refuse(kind, _mutate(data, rng))


def test_from_npz_reads_only_archives_and_checks_again() -> None:
    with pytest.raises(DatasetError) as info:
        from_npz("samples", b'{"x": [1]}')
    assert info.value.field == "file"
    with pytest.raises(DatasetError) as info:
        from_npz("samples", npz(x=np.array([np.inf])))
    assert info.value.field == "x"
    stored = to_npz(parse_upload("samples", npz(**VALID["samples"]), max_bytes=LIMIT))
    with pytest.raises(DatasetError):
        from_npz("samples", stored, max_bytes=100)


def test_to_npz_refuses_what_it_could_only_pickle() -> None:
    dataset = Dataset(kind="samples", arrays={"x": np.array([None], dtype=object)})
    with pytest.raises(DatasetError) as info:
        to_npz(dataset)
    assert info.value.field == "x"


def test_resolve_hands_a_parsed_dataset_to_a_job() -> None:
    dataset = parse_upload("samples", npz(**VALID["samples"]), max_bytes=LIMIT)
    spec = UploadedDataset(id="d1")
    assert resolve(spec, {"d1": dataset}, "samples") is dataset
    with pytest.raises(ConfigError):
        resolve(spec, {"d1": dataset}, "mdp")

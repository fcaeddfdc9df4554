"""TensorBoard export: the event files a job's worker writes are read back by TensorBoard's
own reader (the tensorboard package, a test dependency only) with every point."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.api.conftest import make_api
from tests.tiny_configs import TINY_CONFIGS
from worker.tensorboard import EventFile, crc32c


def test_crc32c_matches_the_published_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # RFC 3720's check value for CRC-32C


def test_tensorboard_reads_back_every_point(tmp_path: Path) -> None:
    events = EventFile(tmp_path, "job1", attempt=1)
    points = [("losses/td", step, 1.0 / step) for step in range(1, 51)]
    points += [("eval/return", 25, 120.5), ("eval/return", 50, 180.25)]
    events.add(points)
    reader = EventAccumulator(str(tmp_path / "job1"))
    reader.Reload()
    assert set(reader.Tags()["scalars"]) == {"losses/td", "eval/return"}
    returns = [(e.step, e.value) for e in reader.Scalars("eval/return")]
    assert returns == [(25, 120.5), (50, 180.25)]
    td = reader.Scalars("losses/td")
    assert [e.step for e in td] == list(range(1, 51))
    assert abs(td[9].value - 0.1) < 1e-7  # stored as float32


def test_a_job_s_points_go_to_its_run_folder(tmp_path: Path) -> None:
    api = make_api(tmp_path, tensorboard_dir=tmp_path / "tb")
    job = api.train("gan")
    reader = EventAccumulator(str(tmp_path / "tb" / job["id"]))
    reader.Reload()
    stored = api.client.get(f"/v1/jobs/{job['id']}/metrics").json()["metrics"]
    assert set(reader.Tags()["scalars"]) == set(stored)
    for name, series in stored.items():
        assert [e.step for e in reader.Scalars(name)] == series["steps"]
    assert TINY_CONFIGS["gan"]["total_steps"] in series["steps"]

"""The embedded broker is pruned of delivered messages; undelivered ones stay."""

from __future__ import annotations

from pathlib import Path

from kombu import Connection
from sqlalchemy import create_engine, text

from worker.sweeper import prune_embedded_broker


def test_prune_keeps_only_undelivered_messages(tmp_path: Path) -> None:
    url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    assert prune_embedded_broker(url) == 0  # no broker tables yet
    with Connection(url) as conn:
        queue = conn.SimpleQueue("cpu")
        for i in range(3):
            queue.put({"job": i})
        for _ in range(2):
            queue.get(timeout=5).ack()
        assert prune_embedded_broker(url) == 2
        engine = create_engine(url.removeprefix("sqla+"))
        with engine.connect() as c:
            rows = c.execute(text("SELECT visible FROM kombu_message")).all()
        engine.dispose()
        assert [bool(r.visible) for r in rows] == [True]
        assert queue.get(timeout=5).payload == {"job": 2}  # the undelivered one survived
        queue.close()
    assert prune_embedded_broker("redis://127.0.0.1:6379/0") == 0

"""The API's LRU model cache: loads once, evicts the least recently used."""

from __future__ import annotations

from ml.model import TrainedModel


class Dummy(TrainedModel):
    pass


def test_lru_loads_once_and_evicts_oldest() -> None:
    from api.model_cache import ModelCache

    loads: list[str] = []

    def loader(path: str) -> TrainedModel:
        loads.append(path)
        return Dummy({"path": path})

    cache = ModelCache(2, loader=loader)
    a = cache.get("a", "/a")
    assert cache.get("a", "/a") is a
    cache.get("b", "/b")
    cache.get("a", "/a")  # a is now the most recent
    cache.get("c", "/c")  # evicts b
    assert "a" in cache and "c" in cache and "b" not in cache and len(cache) == 2
    assert loads == ["/a", "/b", "/c"]

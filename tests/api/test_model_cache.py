"""The API's LRU model cache: loads once, evicts the least recently used."""

from __future__ import annotations

from ml.core.model import TrainedModel


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


def test_warm_loads_in_the_background_once() -> None:
    from api.model_cache import ModelCache

    loads: list[str] = []

    def loader(path: str) -> TrainedModel:
        loads.append(path)
        return Dummy({})

    cache = ModelCache(2, loader=loader)
    thread = cache.warm("a", "/a")
    assert thread is not None
    thread.join(timeout=5)
    assert "a" in cache
    assert cache.warm("a", "/a") is None  # already loaded: nothing to do
    cache.get("a", "/a")
    assert loads == ["/a"]


def test_warm_failure_is_not_fatal() -> None:
    from api.model_cache import ModelCache

    def loader(path: str) -> TrainedModel:
        raise FileNotFoundError(path)

    cache = ModelCache(2, loader=loader)
    thread = cache.warm("a", "/missing")
    assert thread is not None
    thread.join(timeout=5)
    assert "a" not in cache
    assert cache.warm("a", "/missing") is not None  # may be tried again later

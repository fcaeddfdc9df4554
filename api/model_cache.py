"""What the API keeps in memory between requests: loaded models, and where model references
point.

`ModelCache` is an LRU cache of loaded models, so a query does not reload a model file each
time (loading on every request is what makes first requests slow elsewhere, mlflow#7948). A
model is loaded once however many requests ask for it at the same moment: the first loads it,
the others wait for that load. `warm()` loads a model in the background: the API calls it when
a client first sees its job succeeded, so the first query finds the model loaded.

`ModelRows` remembers, for a short while, the row of a model reached by a reference that can
never point elsewhere (its id, or the id of the job that made it), so a query does not ask the
database again for what cannot have changed. `name@alias` and `name@N` are never remembered:
moving an alias takes effect at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future

from ml.core.model import TrainedModel
from store.tables import TrainedModelRow

log = logging.getLogger(__name__)


class ModelCache:
    def __init__(self, size: int, loader: Callable[[str], TrainedModel]) -> None:
        self._size = size
        self._loader = loader
        self._models: OrderedDict[str, TrainedModel] = OrderedDict()
        self._loading: dict[str, Future[TrainedModel]] = {}
        self._lock = threading.Lock()
        self._hits = 0  # gets that found the model loaded (or being loaded)
        self._loads = 0  # loads started, by gets and by warming

    def get(self, key: str, path: str) -> TrainedModel:
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                self._hits += 1
                return self._models[key]
            pending = self._loading.get(key)
            loads = pending is None
            if pending is None:
                pending = self._loading[key] = Future()
                self._loads += 1
            else:
                self._hits += 1
        if loads:  # outside the lock: loading may take a while
            return self._load(key, path, pending)
        return pending.result()  # another thread is loading it: wait for that load

    def _load(self, key: str, path: str, pending: Future[TrainedModel]) -> TrainedModel:
        """Load `key` (claimed in `_loading` by the caller) and hand it to whoever waits."""
        try:
            model = self._loader(path)
        except BaseException as exc:
            with self._lock:
                del self._loading[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._loading[key]
            self._models[key] = model
            self._models.move_to_end(key)
            while len(self._models) > self._size:
                self._models.popitem(last=False)
        pending.set_result(model)
        return model

    def counts(self) -> tuple[int, int, int]:
        """(hits, loads, models held): for monitoring (`api.prometheus`)."""
        with self._lock:
            return self._hits, self._loads, len(self._models)

    def warm(self, key: str, path: str) -> threading.Thread | None:
        """Start loading `key` in a background thread unless it is loaded or loading."""
        with self._lock:
            if key in self._models or key in self._loading:
                return None
            pending = self._loading[key] = Future()
            self._loads += 1

        def load() -> None:
            try:
                self._load(key, path, pending)
            except Exception:  # a query will report it properly; warming is best effort
                log.warning("could not warm model %s", key, exc_info=True)

        thread = threading.Thread(target=load, name=f"warm-{key[:8]}", daemon=True)
        thread.start()
        return thread

    def forget(self, key: str) -> None:
        """Drop a deleted model (a load under way finishes for whoever waits on it)."""
        with self._lock:
            self._models.pop(key, None)

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._models

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)


class ModelRows:
    """Model rows by a reference that always names the same model, each kept `ttl` seconds
    (the least recently used go first beyond `size`)."""

    def __init__(self, size: int = 1024, ttl: float = 30.0) -> None:
        self._size = size
        self._ttl = ttl
        self._rows: OrderedDict[str, tuple[float, TrainedModelRow]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, reference: str) -> TrainedModelRow | None:
        with self._lock:
            entry = self._rows.get(reference)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                del self._rows[reference]
                return None
            self._rows.move_to_end(reference)
            return entry[1]

    def remember(self, reference: str, row: TrainedModelRow) -> None:
        """Keep `row` for `reference` if the reference can never name another model."""
        if reference not in (row.id, row.job_id):
            return
        with self._lock:
            self._rows[reference] = (time.monotonic() + self._ttl, row)
            self._rows.move_to_end(reference)
            while len(self._rows) > self._size:
                self._rows.popitem(last=False)

    def forget(self, model_id: str) -> None:
        """Drop every reference to a deleted model."""
        with self._lock:
            for reference in [r for r, (_, row) in self._rows.items() if row.id == model_id]:
                del self._rows[reference]

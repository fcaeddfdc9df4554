"""An LRU cache of loaded models, so a query does not reload a model file each time
(loading on every request is what makes first requests slow elsewhere, mlflow#7948).

`warm()` loads a model in the background: the API calls it when a client first sees its job
succeeded, so the first query finds the model loaded.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from ml.core.model import TrainedModel

log = logging.getLogger(__name__)


class ModelCache:
    def __init__(self, size: int, loader: Callable[[str], TrainedModel]) -> None:
        self._size = size
        self._loader = loader
        self._models: OrderedDict[str, TrainedModel] = OrderedDict()
        self._warming: set[str] = set()
        self._lock = threading.Lock()

    def get(self, key: str, path: str) -> TrainedModel:
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        model = self._loader(path)  # outside the lock: loading may take a while
        with self._lock:
            self._models[key] = model
            self._models.move_to_end(key)
            while len(self._models) > self._size:
                self._models.popitem(last=False)
        return model

    def warm(self, key: str, path: str) -> threading.Thread | None:
        """Start loading `key` in a background thread unless it is loaded or loading."""
        with self._lock:
            if key in self._models or key in self._warming:
                return None
            self._warming.add(key)

        def load() -> None:
            try:
                self.get(key, path)
            except Exception:  # a query will report it properly; warming is best effort
                log.warning("could not warm model %s", key, exc_info=True)
            finally:
                with self._lock:
                    self._warming.discard(key)

        thread = threading.Thread(target=load, name=f"warm-{key[:8]}", daemon=True)
        thread.start()
        return thread

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._models

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)

"""An LRU cache of loaded models, so a query does not reload a model file each time
(loading on every request is what makes first requests slow elsewhere, mlflow#7948)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import ml
from ml.model import TrainedModel


class ModelCache:
    def __init__(self, size: int, loader: Callable[[str], TrainedModel] = ml.load) -> None:
        self._size = size
        self._loader = loader
        self._models: OrderedDict[str, TrainedModel] = OrderedDict()
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

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._models

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)

"""The artifact store: where models and checkpoints live (a local folder for now).

Paths are derived from the job id, so the database only needs to know that an artifact
exists; object storage can replace this class later behind the same methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.model import atomic_torch_save, safe_torch_load


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def model_path(self, job_id: str) -> Path:
        return self.root / "models" / f"{job_id}.pt"

    def checkpoint_path(self, job_id: str) -> Path:
        return self.root / "checkpoints" / f"{job_id}.pt"

    def save_checkpoint(self, job_id: str, state: dict[str, Any]) -> None:
        atomic_torch_save(state, self.checkpoint_path(job_id))

    def load_checkpoint(self, job_id: str) -> dict[str, Any] | None:
        path = self.checkpoint_path(job_id)
        if not path.is_file():
            return None
        state = safe_torch_load(path)
        return state if isinstance(state, dict) else None

    def delete_checkpoint(self, job_id: str) -> None:
        self.checkpoint_path(job_id).unlink(missing_ok=True)

"""What the models of agents in a Gymnasium environment share: their environment and its
spaces, read from the model's metadata (`shapes`), so that queries (`ml.queries`) can find
them under one name whatever the algorithm."""

from __future__ import annotations

from ml.core.model import TrainedModel


class EnvironmentModel(TrainedModel):
    """A trained agent of the Gymnasium environment `env_id`."""

    @property
    def observation_dim(self) -> int:
        """Numbers per observation (an image's C * H * W)."""
        return int(self.metadata["shapes"]["observation_dim"])

    @property
    def env_id(self) -> str:
        return str(self.metadata["shapes"]["env_id"])


class DiscreteActionModel(EnvironmentModel):
    """An agent choosing among `n_actions` discrete actions."""

    @property
    def n_actions(self) -> int:
        return int(self.metadata["shapes"]["n_actions"])

"""The models of inverse RL: a learned reward over a world's states, with the values and the
greedy policy optimal for it and the soft-optimal (maximum-entropy) policy.

V and Q are for the learned reward, received in s at every step, on the world with terminal
states absorbing (so their values are not 0). The reward is r[s] or, for a linear reward of
state-action features, r[s, a]. Both models also answer for feature vectors no state of the
world has: the linear one as theta . f, the deep one through its network, which is how a
reward learned on one objectworld is asked about another.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch

from ml.core.errors import QueryError
from ml.core.nets import mlp
from ml.explain.targets import Explained
from ml.tabular.models import TabularValueModel, table_arrays


class RewardModel(TabularValueModel):
    """A learned reward table with the tables of the policies it induces."""

    reward: np.ndarray  # r[s] or r[s, a]
    soft_policy: np.ndarray  # pi[s, a]

    def __init__(
        self,
        metadata: dict[str, Any],
        *,
        reward: np.ndarray,
        soft_policy: np.ndarray | None = None,
        **tables: Any,
    ) -> None:
        super().__init__(metadata, **tables)
        self.reward = np.asarray(reward, dtype=np.float64)
        if soft_policy is None:  # models saved before 2026-12-07: the softmax of Q
            shifted = np.exp(self.Q - self.Q.max(axis=1, keepdims=True))
            soft_policy = shifted / shifted.sum(axis=1, keepdims=True)
        self.soft_policy = np.asarray(soft_policy, dtype=np.float64)

    @property
    def reward_form(self) -> Literal["state", "state_action"]:
        return "state" if self.reward.ndim == 1 else "state_action"

    @property
    def n_features(self) -> int:
        return int(self.metadata["shapes"].get("n_features", 0))

    def reward_of_features(self, features: np.ndarray) -> np.ndarray:
        """r[i] (or r[i, a]) of feature vectors f[i, k]."""
        raise QueryError(f"a {self.kind} model answers by states only", field="features")

    def check_features(self, features: np.ndarray) -> np.ndarray:
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise QueryError(
                f"each feature vector needs {self.n_features} numbers (the features this "
                f"reward was learned over); got {features.shape[-1]}",
                field="features",
            )
        return features

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "reward": torch.from_numpy(self.reward.copy()),
            "soft_policy": torch.from_numpy(self.soft_policy.copy()),
        }


def _reward_arrays(state: dict[str, Any]) -> dict[str, Any]:
    soft = state.get("soft_policy")
    return {
        "reward": state["reward"].double().numpy(),
        "soft_policy": None if soft is None else soft.double().numpy(),
        **table_arrays(state),
    }


class MaxEntIRLModel(RewardModel):
    """A linear reward r = F theta (Ziebart et al. 2008)."""

    kind: ClassVar[str] = "maxent_irl"

    def __init__(
        self, metadata: dict[str, Any], *, theta: np.ndarray | None = None, **arrays: Any
    ) -> None:
        super().__init__(metadata, **arrays)
        self.theta = None if theta is None else np.asarray(theta, dtype=np.float64)

    def reward_of_features(self, features: np.ndarray) -> np.ndarray:
        if self.theta is None:
            raise QueryError(
                "this model was saved before rewards were answered for feature vectors; "
                "query it by states",
                field="features",
            )
        return self.check_features(features) @ self.theta

    def explained(self) -> Explained:
        """r = f . theta as a linear layer of the features (its gradient is theta, and its
        integrated gradients from zero are f * theta, each feature's share of the reward)."""
        if self.theta is None or self.theta.ndim != 1:
            raise QueryError(
                "explanations need a state reward of feature vectors; this model "
                + ("was saved without its weights" if self.theta is None else "rewards actions"),
                field="query",
            )
        layer = torch.nn.Linear(len(self.theta), 1, bias=False)
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(self.theta, dtype=torch.float32)[None, :])
        return reward_explained(self, layer, layer)

    def state(self) -> dict[str, Any]:
        state = super().state()
        if self.theta is not None:
            state["theta"] = torch.from_numpy(self.theta.copy())
        return state

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> MaxEntIRLModel:
        theta = state["theta"].double().numpy() if "theta" in state else None
        return cls(metadata, theta=theta, **_reward_arrays(state))


class DeepMaxEntIRLModel(RewardModel):
    """A reward network over standardised state features (Wulfmeier et al. 2015)."""

    kind: ClassVar[str] = "deep_maxent_irl"

    def __init__(
        self,
        metadata: dict[str, Any],
        *,
        network: torch.nn.Module,
        mean: np.ndarray,
        std: np.ndarray,
        **arrays: Any,
    ) -> None:
        super().__init__(metadata, **arrays)
        self.network = network.cpu().eval()
        self.mean, self.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)

    def reward_of_features(self, features: np.ndarray) -> np.ndarray:
        x = (self.check_features(features) - self.mean) / self.std  # x[i, k]
        with torch.no_grad():
            out = self.network(torch.as_tensor(x, dtype=torch.float32))[:, 0]
        return out.double().numpy()

    def explained(self) -> Explained:
        """The reward network of raw features (standardised inside, as in training)."""
        return reward_explained(self, Standardised(self.network, self.mean, self.std), self.network)

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "network": {k: v.detach().cpu().clone() for k, v in self.network.state_dict().items()},
            "mean": torch.from_numpy(self.mean.copy()),
            "std": torch.from_numpy(self.std.copy()),
        }

    @classmethod
    def from_state(cls, metadata: dict[str, Any], state: dict[str, Any]) -> DeepMaxEntIRLModel:
        config = metadata["config"]
        network = reward_network(
            int(metadata["shapes"]["n_features"]), config["hidden_sizes"], config["activation"]
        )
        network.load_state_dict(state["network"])
        return cls(
            metadata,
            network=network,
            mean=state["mean"].double().numpy(),
            std=state["std"].double().numpy(),
            **_reward_arrays(state),
        )


class Standardised(torch.nn.Module):
    """features f[B, k] -> network((f - mean) / std)."""

    def __init__(self, network: torch.nn.Module, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mean, std = self.get_buffer("mean"), self.get_buffer("std")
        return self.network((features - mean) / std)


def reward_explained(
    model: RewardModel, forward: torch.nn.Module, root: torch.nn.Module
) -> Explained:
    """A reward of state features, as explanations see it."""
    return Explained(
        forward=forward,
        root=root,
        input_shape=(model.n_features,),
        input_field="features",
        outputs=("reward",),
        output_label="learned reward",
    )


def reward_network(n_features: int, hidden: list[int], activation: str) -> torch.nn.Sequential:
    """f[k] -> hidden layers -> r: Wulfmeier et al.'s fully convolutional reward network is,
    per state, this MLP over the state's features."""
    return mlp(n_features, hidden, 1, act=activation)

"""The regressors of fitted Q iteration and evaluation (`ml.rl.fitted`): their configs, the
fitting, and the fitted regressors kept as plain arrays.

Each regressor is fitted with scikit-learn (`fit`) and kept as arrays (`TreeEnsemble`,
`MLPNet`, and `Zero` for Q_0): a model file holds tensors only and loads with
`weights_only=True`, never a pickle, and the same array code predicts during training and
after loading, so a model answers exactly as it did in its run and a resumed run continues
exactly. `regressor_cost` prices a fit and a prediction for the run's cost estimate.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

import numpy as np
import torch
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from scipy.special import expit
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from ml.core.errors import ArtifactError
from ml.core.training import Interrupt, never
from ml.rl.envs import EnvSpaces

# -- configs -------------------------------------------------------------------------------------

Trees = Annotated[int, Field(ge=1, le=1_000)]


class ExtraTrees(BaseModel):
    """Extremely randomized trees (Geurts, Ernst and Wehenkel 2006), FQI's best regressor in
    Ernst et al. 2005; their settings: M = 50 trees, n_min = 2 (grown until leaves are pure
    or hold one sample), K = every input tried at each split."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["extra_trees"] = Field("extra_trees", description="Extra-Trees.")
    n_estimators: Trees = Field(50, description="Trees in the ensemble (M).")
    min_samples_split: int = Field(
        2, ge=2, le=100_000, description="Fewest samples a node needs to be split (n_min)."
    )
    max_features: float = Field(
        1.0, gt=0.0, le=1.0, description="Fraction of the inputs tried at each split (K)."
    )


class RandomForest(BaseModel):
    """Tree bagging (Breiman 1996; Ernst et al. 2005, Section 4.2.1) with, optionally,
    random forests' feature sampling (Breiman 2001)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["random_forest"] = Field("random_forest", description="Random forest.")
    n_estimators: Trees = Field(50, description="Trees in the ensemble, each on a bootstrap.")
    min_samples_split: int = Field(
        2, ge=2, le=100_000, description="Fewest samples a node needs to be split."
    )
    max_features: float = Field(
        1.0, gt=0.0, le=1.0, description="Fraction of the inputs tried at each split."
    )


class GradientBoosting(BaseModel):
    """Gradient-boosted regression trees (Friedman 2001), least squares."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["gradient_boosting"] = Field(
        "gradient_boosting", description="Gradient boosting."
    )
    n_estimators: int = Field(100, ge=1, le=2_000, description="Boosting stages (trees).")
    learning_rate: float = Field(0.1, gt=0.0, le=1.0, description="Shrinkage of each tree.")
    max_depth: int = Field(3, ge=1, le=16, description="Depth of each tree.")
    subsample: float = Field(
        1.0, gt=0.0, le=1.0, description="Fraction of the samples each tree is fitted on."
    )


MLPActivation = Literal["relu", "tanh", "sigmoid"]
"""The hidden activations scikit-learn's `MLPRegressor` offers (its 'logistic' is sigmoid)."""

_SKLEARN_ACTIVATION: dict[str, str] = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}


class MLP(BaseModel):
    """A small multi-layer perceptron (scikit-learn's, Adam), on standardized inputs and
    targets, refitted from scratch at each iteration as in Riedmiller 2005 ("Neural Fitted Q
    Iteration", whose network used sigmoids; ReLU is the default here, as it has been)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["mlp"] = Field("mlp", description="Multi-layer perceptron.")
    hidden: list[Annotated[int, Field(ge=1, le=512)]] = Field(
        default_factory=lambda: [64, 64],
        min_length=1,
        max_length=4,
        description="Hidden layer widths.",
    )
    epochs: int = Field(30, ge=1, le=1_000, description="Passes over the transitions per fit.")
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0, description="Adam step size.")
    batch_size: int = Field(256, ge=1, le=65_536, description="Samples per gradient step.")
    alpha: float = Field(1e-4, ge=0.0, le=10.0, description="L2 penalty.")
    activation: MLPActivation = Field(
        "relu",
        description="Hidden-layer activation (the output is linear): relu, tanh or sigmoid, "
        "the ones scikit-learn's MLPRegressor, which fits this network, offers.",
    )


def _named_regressor(value: Any) -> Any:
    """A regressor's kind alone ("extra_trees") stands for its default settings."""
    return {"kind": value} if isinstance(value, str) else value


RegressorSpec = Annotated[
    ExtraTrees | RandomForest | GradientBoosting | MLP,
    Field(discriminator="kind"),
    BeforeValidator(_named_regressor),
]


# -- regressors as arrays --------------------------------------------------------------------------


class Predictor(Protocol):
    """A fitted regressor: inputs x[B, F] float32 -> predictions [B] float64."""

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def state(self) -> dict[str, Any]: ...


class Zero:
    """Q_0 = 0, the start of the sequence."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.zeros(len(x))

    def state(self) -> dict[str, Any]:
        return {"kind": "zero"}


def _floor_float32(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 threshold: for a float32 input x, x <= t exactly
    when x <= floor32(t), so the split is scikit-learn's, stored in half the bytes."""
    rounded = threshold.astype(np.float32)
    too_big = rounded.astype(np.float64) > threshold
    rounded[too_big] = np.nextafter(rounded[too_big], np.float32(-np.inf))
    return rounded


class TreeEnsemble:
    """A weighted sum of regression trees, held as flat arrays over all trees:

        prediction(x) = bias + sum_t leaf_value[leaf_t(x)]

    Internal nodes and leaves are numbered apart, all trees together. A child (or a root) is
    a code c: c >= 0 is internal node c, c < 0 is leaf ~c (-1 is leaf 0). leaf_t(x) starts
    at roots[t] and moves to left[c] when x[feature[c]] <= threshold[c], else to right[c],
    until it reaches a leaf. Children are numbered after their parents, so a descent always
    ends. A forest's leaf values are pre-divided by its size (the mean), a boosted
    ensemble's pre-multiplied by its learning rate. All trees descend together, one NumPy
    pass per level over the (tree, input) pairs not at a leaf yet. About 12 bytes a node.
    """

    def __init__(
        self,
        *,
        left: np.ndarray,  # [I] int32 child code of each internal node
        right: np.ndarray,  # [I] int32
        feature: np.ndarray,  # [I] int32 the input it splits on
        threshold: np.ndarray,  # [I] float32 its split point
        leaf_value: np.ndarray,  # [L] float64 weighted value of each leaf
        roots: np.ndarray,  # [T] int32 root code of each tree
        bias: float,
        node_leaves: list[np.ndarray] | None = None,
        estimators: list[Any] | None = None,
    ) -> None:
        self.left, self.right, self.feature, self.threshold = left, right, feature, threshold
        self.leaf_value, self.roots, self.bias = leaf_value, roots, float(bias)
        self.n_features = int(feature.max()) + 1 if len(feature) else 0  # inputs it reads
        # While the fitted scikit-learn trees are at hand (in the run that fits them), their
        # compiled descent finds the same leaves some five times faster; node_leaves[t] maps
        # tree t's node ids to leaf numbers. Neither is saved.
        self.estimators, self.node_leaves = estimators, node_leaves

    @classmethod
    def from_sklearn(cls, trees: list[Any], weight: float, bias: float = 0.0) -> TreeEnsemble:
        """The fitted `tree_` of scikit-learn estimators, each leaf value times `weight`."""
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("l", "r", "f", "t", "v")}
        roots, node_leaves = [], []
        n_internal = n_leaves = 0
        for estimator in trees:
            tree = estimator.tree_
            children_left = np.asarray(tree.children_left, dtype=np.int64)
            is_leaf = children_left < 0
            # code[node]: internal nodes and leaves numbered apart, in node order.
            code = np.empty(len(is_leaf), dtype=np.int64)
            code[~is_leaf] = n_internal + np.arange(int((~is_leaf).sum()))
            code[is_leaf] = ~(n_leaves + np.arange(int(is_leaf.sum())))
            internal = np.flatnonzero(~is_leaf)
            parts["l"].append(code[children_left[internal]])
            parts["r"].append(code[np.asarray(tree.children_right)[internal]])
            parts["f"].append(np.asarray(tree.feature)[internal])
            parts["t"].append(np.asarray(tree.threshold, dtype=np.float64)[internal])
            parts["v"].append(np.asarray(tree.value, dtype=np.float64).reshape(-1)[is_leaf])
            roots.append(code[0])
            node_leaves.append(np.where(is_leaf, ~code, -1))
            n_internal += len(internal)
            n_leaves += int(is_leaf.sum())
        return cls(
            left=np.concatenate(parts["l"]).astype(np.int32),
            right=np.concatenate(parts["r"]).astype(np.int32),
            feature=np.concatenate(parts["f"]).astype(np.int32),
            threshold=_floor_float32(np.concatenate(parts["t"])),
            leaf_value=np.concatenate(parts["v"]) * weight,
            roots=np.asarray(roots, dtype=np.int32),
            bias=bias,
            node_leaves=node_leaves,
            estimators=list(trees),
        )

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """leaf[t, b]: the leaf input b reaches in tree t."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        n, n_features = x.shape
        if n_features < self.n_features:
            raise ValueError(f"the trees read {self.n_features} inputs; x has {n_features}")
        if self.estimators is not None and self.node_leaves is not None:
            # The same leaves as the descent below: x <= threshold compares the same
            # numbers (`_floor_float32`).
            return np.stack(
                [
                    node_leaf[tree.apply(x, check_input=False)]
                    for tree, node_leaf in zip(self.estimators, self.node_leaves, strict=True)
                ]
            )
        flat = x.reshape(-1)
        code = np.repeat(self.roots.astype(np.int64), n)  # [T*n], tree-major
        row_start = np.tile(np.arange(n, dtype=np.int64) * n_features, len(self.roots))
        pending = np.arange(code.size)  # positions of the pairs not at a leaf yet
        leaf = np.empty(code.size, dtype=np.int64)
        while pending.size:
            at_leaf = code < 0
            if at_leaf.any():
                leaf[pending[at_leaf]] = ~code[at_leaf]
                going = ~at_leaf
                code, row_start, pending = code[going], row_start[going], pending[going]
            goes_left = flat[row_start + self.feature[code]] <= self.threshold[code]
            code = np.where(goes_left, self.left[code], self.right[code]).astype(np.int64)
        return leaf.reshape(len(self.roots), n)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.leaf_value[self.leaves(x)].sum(axis=0) + self.bias  # [B]

    def state(self) -> dict[str, Any]:
        return {
            "kind": "trees",
            "left": torch.from_numpy(self.left),
            "right": torch.from_numpy(self.right),
            "feature": torch.from_numpy(self.feature),
            "threshold": torch.from_numpy(self.threshold),
            "leaf_value": torch.from_numpy(self.leaf_value),
            "roots": torch.from_numpy(self.roots),
            "bias": self.bias,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TreeEnsemble:
        ensemble = cls(
            left=_numpy(state["left"]).astype(np.int32),
            right=_numpy(state["right"]).astype(np.int32),
            feature=_numpy(state["feature"]).astype(np.int32),
            threshold=_numpy(state["threshold"]).astype(np.float32),
            leaf_value=_numpy(state["leaf_value"]).astype(np.float64),
            roots=_numpy(state["roots"]).astype(np.int32),
            bias=float(state["bias"]),
        )
        ensemble._check()
        return ensemble

    @property
    def size(self) -> int:
        """Nodes, internal and leaves."""
        return len(self.left) + len(self.leaf_value)

    def _check(self) -> None:
        """Arrays from a file describe trees a descent can walk: matching lengths, every
        code in range, children after their parents (so no descent loops)."""
        n_internal, n_leaves = len(self.left), len(self.leaf_value)
        if not (len(self.right) == len(self.feature) == len(self.threshold) == n_internal):
            raise ArtifactError("tree arrays of different lengths")
        nodes = np.arange(n_internal)
        codes = np.concatenate([self.left, self.right, self.roots]).astype(np.int64)
        if (
            np.any(codes >= n_internal)
            or np.any(codes < -n_leaves)
            or np.any((self.left >= 0) & (self.left <= nodes))
            or np.any((self.right >= 0) & (self.right <= nodes))
            or np.any(self.feature < 0)
        ):
            raise ArtifactError("tree arrays that do not describe trees")


class MLPNet:
    """A multi-layer perceptron (ReLU, tanh or sigmoid hidden layers, a linear output) with
    its input and target standardization: prediction(x) = y_mean + y_scale * net((x - x_mean)
    / x_scale). A model file from before the activation was stored holds a ReLU network."""

    def __init__(
        self,
        *,
        weights: list[np.ndarray],  # [in, out] float64 per layer
        biases: list[np.ndarray],  # [out] float64 per layer
        x_mean: np.ndarray,  # [F]
        x_scale: np.ndarray,  # [F]
        y_mean: float,
        y_scale: float,
        activation: MLPActivation = "relu",
    ) -> None:
        if activation not in _SKLEARN_ACTIVATION:
            raise ArtifactError(f"unknown MLP activation {str(activation)[:32]!r}")
        self.weights, self.biases = weights, biases
        self.activation: MLPActivation = activation
        self.x_mean, self.x_scale = x_mean, x_scale
        self.y_mean, self.y_scale = float(y_mean), float(y_scale)

    def predict(self, x: np.ndarray) -> np.ndarray:
        h = (np.asarray(x, dtype=np.float64) - self.x_mean) / self.x_scale  # [B, F]
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = self._activate(h)
        return self.y_mean + self.y_scale * h[:, 0]

    def _activate(self, h: np.ndarray) -> np.ndarray:
        """The hidden activation, computed as scikit-learn computes it."""
        if self.activation == "tanh":
            return np.tanh(h)
        if self.activation == "sigmoid":
            return np.asarray(expit(h))
        return np.maximum(h, 0.0)

    def state(self) -> dict[str, Any]:
        return {
            "kind": "mlp",
            "activation": self.activation,
            "weights": [torch.from_numpy(w) for w in self.weights],
            "biases": [torch.from_numpy(b) for b in self.biases],
            "x_mean": torch.from_numpy(self.x_mean),
            "x_scale": torch.from_numpy(self.x_scale),
            "y_mean": self.y_mean,
            "y_scale": self.y_scale,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> MLPNet:
        return cls(
            weights=[_numpy(w).astype(np.float64) for w in state["weights"]],
            biases=[_numpy(b).astype(np.float64) for b in state["biases"]],
            x_mean=_numpy(state["x_mean"]).astype(np.float64),
            x_scale=_numpy(state["x_scale"]).astype(np.float64),
            y_mean=float(state["y_mean"]),
            y_scale=float(state["y_scale"]),
            activation=state.get("activation", "relu"),
        )


def _numpy(value: Any) -> np.ndarray:
    return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def predictor_from_state(state: Mapping[str, Any]) -> Predictor:
    kind = state.get("kind")
    if kind == "zero":
        return Zero()
    if kind == "trees":
        return TreeEnsemble.from_state(state)
    if kind == "mlp":
        return MLPNet.from_state(state)
    raise ArtifactError(f"unknown regressor kind {str(kind)[:32]!r}")


# -- fitting -------------------------------------------------------------------------------------


def fit(
    spec: ExtraTrees | RandomForest | GradientBoosting | MLP,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    interrupt: Interrupt = never,
) -> Predictor:
    """Fit the regressor `spec` names on inputs x[N, F] and targets y[N] (one thread), one
    tree or one epoch at a time with `interrupt` in between, and keep it as arrays."""
    if isinstance(spec, MLP):
        return _fit_mlp(spec, x, y, seed=seed, interrupt=interrupt)
    model: ExtraTreesRegressor | RandomForestRegressor | GradientBoostingRegressor
    if isinstance(spec, GradientBoosting):
        model = GradientBoostingRegressor(
            learning_rate=spec.learning_rate,
            max_depth=spec.max_depth,
            subsample=spec.subsample,
            random_state=seed,
            warm_start=True,
        )
    else:
        forest = ExtraTreesRegressor if isinstance(spec, ExtraTrees) else RandomForestRegressor
        model = forest(
            min_samples_split=spec.min_samples_split,
            max_features=spec.max_features,
            random_state=seed,
            n_jobs=1,
            warm_start=True,
        )
    # Growing the ensemble a tree at a time with warm_start gives the trees of one call:
    # scikit-learn draws each tree's seed from random_state in order.
    for n in range(1, spec.n_estimators + 1):
        interrupt()
        model.set_params(n_estimators=n)
        model.fit(x, y)
    if isinstance(model, GradientBoostingRegressor):
        trees = list(model.estimators_[:, 0])
        bias = float(np.asarray(model.init_.constant_).reshape(-1)[0])
        return TreeEnsemble.from_sklearn(trees, weight=model.learning_rate, bias=bias)
    return TreeEnsemble.from_sklearn(list(model.estimators_), weight=1.0 / spec.n_estimators)


MLP_SLICE = 8_192  # samples per `partial_fit` call: a stop check between two


def _fit_mlp(spec: MLP, x: np.ndarray, y: np.ndarray, *, seed: int, interrupt: Interrupt) -> MLPNet:
    x64 = np.asarray(x, dtype=np.float64)
    x_mean, x_scale = x64.mean(axis=0), x64.std(axis=0)
    x_scale[x_scale < 1e-8] = 1.0  # a constant input (a one-hot column never seen)
    y_mean, y_scale = float(y.mean()), float(y.std()) or 1.0
    net = MLPRegressor(
        hidden_layer_sizes=tuple(spec.hidden),
        learning_rate_init=spec.learning_rate,
        batch_size=min(spec.batch_size, len(y)),
        alpha=spec.alpha,
        activation=_SKLEARN_ACTIVATION[spec.activation],
        random_state=seed,
    )
    xs, ys = (x64 - x_mean) / x_scale, (y - y_mean) / y_scale
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(spec.epochs):
            # An epoch over the shuffled samples, a slice at a time, so a stop need not wait
            # for a whole epoch.
            order = rng.permutation(len(ys))
            for start in range(0, len(ys), MLP_SLICE):
                interrupt()
                rows = order[start : start + MLP_SLICE]
                net.partial_fit(xs[rows], ys[rows])
    return MLPNet(
        weights=[np.asarray(w, dtype=np.float64) for w in net.coefs_],
        biases=[np.asarray(b, dtype=np.float64) for b in net.intercepts_],
        x_mean=x_mean,
        x_scale=x_scale,
        y_mean=y_mean,
        y_scale=y_scale,
        activation=spec.activation,
    )


# -- cost ----------------------------------------------------------------------------------------

# (tree, input) pairs per prediction call: bounds the memory of a descent and the work
# between two stop checks.
PREDICT_PAIRS = 1 << 16

# Operations per unit of work, measured on one CPU core (`ml.core.cost`: a second is
# OPS_PER_SECOND = 2e10) with scikit-learn 1.9 on 10,000-60,000 samples:
FIT_RANDOM_SPLIT = 600.0  # Extra-Trees: per sample, tree level and input tried (500-730)
FIT_BEST_SPLIT = 3_000.0  # bagged and boosted trees, which sort for the best split (1300-3100)
DESCENT = 1_000.0  # a prediction: per input, tree and level (150-1200)
MLP_TRAIN = 240.0  # scikit-learn's MLP: per sample and weight, forward and backward
MLP_FORWARD = 10.0  # ours, in NumPy: per input and weight


@dataclass(frozen=True)
class RegressorCost:
    fit: float  # one regression on N samples
    fit_piece: float  # its largest piece between two stop checks (a tree, an MLP slice)
    per_input: float  # predicting one input
    slice_rows: int  # inputs per prediction call


def regressor_cost(
    spec: ExtraTrees | RandomForest | GradientBoosting | MLP, n: int, spaces: EnvSpaces
) -> RegressorCost:
    """What fitting `spec` on n transitions and predicting with it cost (see the constants
    above): a tree costs about n x depth x inputs tried to grow and depth to descend, with
    depth log2 of its leaves for grown trees."""
    n_actions = spaces.n_actions
    if isinstance(spec, MLP):
        sizes = [spaces.observation_dim + n_actions, *spec.hidden, 1]
        weights = sum(a * b + b for a, b in itertools.pairwise(sizes))
        return RegressorCost(
            fit=spec.epochs * n * weights * MLP_TRAIN,
            fit_piece=min(n, MLP_SLICE) * weights * MLP_TRAIN,
            per_input=weights * MLP_FORWARD,
            slice_rows=max(1, PREDICT_PAIRS // n_actions),
        )
    inputs = spaces.observation_dim + 1
    if isinstance(spec, GradientBoosting):
        depth, tried, rate = float(spec.max_depth), inputs, FIT_BEST_SPLIT
        samples = n * spec.subsample
    else:
        depth = math.log2(max(2.0, 2.0 * n / spec.min_samples_split))
        tried = max(1, math.ceil(spec.max_features * inputs))
        rate = FIT_RANDOM_SPLIT if isinstance(spec, ExtraTrees) else FIT_BEST_SPLIT
        samples = n
    tree = rate * samples * depth * tried
    return RegressorCost(
        fit=spec.n_estimators * tree,
        fit_piece=tree,
        per_input=spec.n_estimators * depth * DESCENT,
        slice_rows=max(1, PREDICT_PAIRS // (n_actions * spec.n_estimators)),
    )


__all__ = [
    "MLP",
    "ExtraTrees",
    "GradientBoosting",
    "MLPNet",
    "Predictor",
    "RandomForest",
    "RegressorCost",
    "RegressorSpec",
    "TreeEnsemble",
    "Zero",
    "fit",
    "predictor_from_state",
    "regressor_cost",
]

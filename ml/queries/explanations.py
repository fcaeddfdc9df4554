"""Queries that show what a model's network does: `saliency`, `grad_cam`, `activations`,
`embedding` (and `gradient_flow`, `ml.queries.gradient_flow`).

They answer for any model that exposes `explained()` (`ml.explain.targets`): a DQN's
Q-network, a TD3 or DDPG critic at its actor's action, a GAN's discriminator, an inverse-RL
reward of state features. Inputs come in the field the model is asked by (`observations`,
`samples`, `features`, or for a reward of a tabular world its `states`); without any, each
query explains a few inputs of the model's own (states its policy visits, samples it draws,
the states it rewards most), so a plain GET shows something. Each answers JSON for programs
and PNG for people.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from ml.core.errors import QueryError
from ml.core.validation import grid_states, observation_batch
from ml.explain import activations as recorded
from ml.explain import figures
from ml.explain.attribution import Method, attribute, grad_cam, randomisation_test
from ml.explain.confusion import held_out_real
from ml.explain.embedding import Method as EmbeddingMethod
from ml.explain.embedding import embed
from ml.explain.targets import Explained
from ml.queries.base import PNG, REQUEST, Query, Vector, exposes

MAX_INPUTS = 64  # inputs explained per request
DEFAULT_INPUTS = 4
State = int | list[int]
INPUT_FIELDS = ("observations", "samples", "features", "states")


class ExplainedInputs(BaseModel):
    """What to explain: one of the input fields, as the model is asked (its `explained`
    input field), or none for a few inputs of the model's own."""

    model_config = REQUEST

    observations: list[Vector] | None = Field(
        None,
        min_length=1,
        max_length=MAX_INPUTS,
        description="RL models: observations (an image flattened channel by channel, row by row).",
    )
    samples: list[Vector] | None = Field(
        None, min_length=1, max_length=MAX_INPUTS, description="GANs: points or flat images."
    )
    features: list[Vector] | None = Field(
        None, min_length=1, max_length=MAX_INPUTS, description="Rewards: state feature vectors."
    )
    states: list[State] | None = Field(
        None,
        min_length=1,
        max_length=MAX_INPUTS,
        description="Rewards of a tabular world: states (indices or [row, col]), explained "
        "through their features.",
    )
    labels: list[int] | None = Field(
        None,
        min_length=1,
        max_length=MAX_INPUTS,
        description="Conditional GANs: the class of each sample (default: every class in turn).",
    )
    seed: int = Field(
        0, ge=0, le=2**31 - 1, description="For inputs of the model's own: which ones."
    )

    @model_validator(mode="after")
    def _one_input(self) -> ExplainedInputs:
        given = [name for name in INPUT_FIELDS if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of {', '.join(given)}, not several")
        return self


def inputs_of(
    model: Any, explained: Explained, request: ExplainedInputs, *, own: int = DEFAULT_INPUTS
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """x[B, *input_shape] and labels[B] (conditional models) for a request; `own` inputs of
    the model's own when the request gives none."""
    given = next((name for name in INPUT_FIELDS if getattr(request, name) is not None), None)
    if given is None:
        rows = own_inputs(model, explained, own, request.seed)
        x = explained.inputs(rows, explained.input_field)
    elif given == "states":
        if explained.input_field != "features" or not exposes(type(model), "grid_shape"):
            raise QueryError(
                f"this model is asked by {explained.input_field}, not states", field="states"
            )
        indices = grid_states(request.states, tuple(model.grid_shape))
        x = explained.inputs(world_features(model)[indices], "states")
    else:
        if given != explained.input_field:
            raise QueryError(
                f"this model is asked by {explained.input_field}, not {given}", field=given
            )
        x = explained.inputs(getattr(request, given), given)
    return x, explained.labels(request.labels, len(x))


def own_inputs(model: Any, explained: Explained, n: int, seed: int) -> np.ndarray:
    """n inputs of the model's own: for an agent, observations spread evenly over whole
    episodes of its policy; for a GAN, samples it draws; for a reward, its n most rewarded
    states."""
    if explained.input_field == "samples":
        return np.asarray(model.generate(n, seed), dtype=np.float32)
    if explained.input_field == "features":
        best = np.argsort(-state_rewards(model), kind="stable")[:n]
        return world_features(model)[best]
    visited = visited_observations(model, n, seed)
    chosen = np.linspace(0, len(visited) - 1, num=min(n, len(visited))).round().astype(int)
    return visited[chosen]


def state_rewards(model: Any) -> np.ndarray:
    """r[s] of a reward model: its state reward, or the best action's for r(s, a)."""
    reward = np.asarray(model.reward, dtype=np.float64)
    return reward if reward.ndim == 1 else reward.max(axis=1)


def visited_observations(model: Any, n: int, seed: int, max_episodes: int = 100) -> np.ndarray:
    """Observations [m, observation_dim] of whole episodes of the model's policy, episode i
    from reset(seed + i), until there are at least n (or `max_episodes` were played)."""
    from ml.queries.rollouts import RolloutsRequest, rollouts_of

    batches: list[np.ndarray] = []
    total = 0
    for episode in range(max_episodes):
        if total >= n:
            break
        played = rollouts_of(model, RolloutsRequest(episodes=1, seed=seed + episode))
        observations = np.asarray(played.arrays["observations"], dtype=np.float32)
        batches.append(observations.reshape(len(observations), -1))
        total += len(observations)
    return np.concatenate(batches)


def world_features(model: Any) -> np.ndarray:
    """F[s, k] of the world a reward model was learned on, rebuilt from its config."""
    from ml.irl.features import state_features
    from ml.queries.rollouts import world_of

    mdp = world_of(model, "name its states' features; send `features`")
    return state_features(mdp, model.metadata["config"].get("features", "onehot")).dense()


def explained_of(model: Any) -> Explained:
    explained: Explained = model.explained()
    return explained


def _titles(
    names: list[str], outputs: list[int], values: list[float], labels: list[int] | None = None
) -> list[str]:
    """Per input, "input i: name = value" of its explained output ("input i, label y: ..."
    for a conditional model)."""
    return [
        f"input {i}{'' if labels is None else f', label {labels[i]}'}: {names[o]} = {v:.3g}"
        for i, (o, v) in enumerate(zip(outputs, values, strict=True))
    ]


# -- saliency --------------------------------------------------------------------------------
class SaliencyRequest(ExplainedInputs):
    method: Method = Field(
        "integrated_gradients",
        description="gradients: dy/dx (Simonyan et al. 2014); integrated_gradients: from a "
        "zero baseline, attributions that add up to y(x) - y(0) (Sundararajan et al. 2017).",
    )
    output: int | None = Field(
        None,
        ge=0,
        description="Which output to explain (an action's Q-value); default: each input's "
        "largest (the greedy action).",
    )
    steps: int = Field(32, ge=4, le=256, description="Integrated gradients: path steps.")
    sanity_check: bool = Field(
        False,
        description="Also run the model randomisation test (Adebayo et al. 2018): re-draw "
        "the layers from the top and report how much each map still resembles the trained "
        "one (rank correlation near 0: the map depends on what the model learned). "
        "Integrated gradients from a zero baseline are zero wherever the input is, so on "
        "sparse inputs (one-hot features, the pixel room) their maps stay alike whatever "
        "the weights: check with gradients there.",
    )


class RandomisedLayerPublic(BaseModel):
    layer: str = Field(description="This layer and every layer above it were re-drawn.")
    rank_correlation: float = Field(
        description="Spearman correlation of |map| with the trained network's, averaged over "
        "the inputs."
    )


class SaliencyResponse(BaseModel):
    method: Method
    output_label: str = Field(description="What the outputs are (Q-value, critic, reward...).")
    output_names: list[str]
    outputs: list[int] = Field(description="The output explained for each input.")
    values: list[float] = Field(description="That output's value for each input.")
    input_shape: list[int]
    input_names: list[str] | None = Field(description="What each input number is, when known.")
    inputs: list[list[float]] = Field(description="The inputs explained (flat).")
    attributions: list[list[float]] = Field(
        description="Per input, the attribution of each of its numbers (flat, signed: positive "
        "pushes the output up)."
    )
    completeness_error: list[float] | None = Field(
        description="Integrated gradients: |sum of attributions - (y(x) - y(0))| per input."
    )
    labels: list[int] | None = Field(
        None, description="Conditional models: the class each input was judged as."
    )
    randomisation: list[RandomisedLayerPublic] | None = None


def saliency(model: Any, request: SaliencyRequest) -> SaliencyResponse:
    explained = explained_of(model)
    x, labels = inputs_of(model, explained, request)
    found = attribute(
        explained, x, method=request.method, output=request.output, labels=labels,
        steps=request.steps,
    )  # fmt: skip
    randomised = None
    if request.sanity_check:
        layers = randomisation_test(
            explained, x, found, method=request.method, labels=labels, steps=request.steps,
            seed=request.seed,
        )  # fmt: skip
        randomised = [RandomisedLayerPublic(**vars(layer)) for layer in layers]
    return SaliencyResponse(
        method=request.method,
        output_label=explained.output_label,
        output_names=list(explained.outputs),
        outputs=found.outputs.tolist(),
        values=found.values.tolist(),
        input_shape=list(explained.input_shape),
        input_names=None if explained.input_names is None else list(explained.input_names),
        inputs=x.reshape(len(x), -1).double().tolist(),
        attributions=found.maps.reshape(len(x), -1).tolist(),
        completeness_error=None if found.delta is None else np.abs(found.delta).tolist(),
        labels=None if labels is None else labels.tolist(),
        randomisation=randomised,
    )


def saliency_png(response: SaliencyResponse) -> bytes:
    shape = response.input_shape
    inputs = np.asarray(response.inputs).reshape(-1, *shape)
    maps = np.asarray(response.attributions).reshape(-1, *shape)
    titles = _titles(response.output_names, response.outputs, response.values, response.labels)
    method = "integrated gradients" if response.method == "integrated_gradients" else "gradients"
    randomised = (
        None
        if response.randomisation is None
        else [(r.layer, r.rank_correlation) for r in response.randomisation]
    )
    return figures.attribution_png(
        inputs if len(shape) == 3 else inputs.reshape(len(inputs), -1),
        maps if len(shape) == 3 else maps.reshape(len(maps), -1),
        titles=titles,
        heading=f"saliency of the {response.output_label} ({method})",
        input_names=response.input_names,
        randomisation=randomised,
    )


SALIENCY = Query(
    name="saliency",
    summary="Which input numbers or pixels drive the model's output",
    description="Attributions of a Q-value, a critic's value, a discriminator's score or a "
    "learned reward to each number of the input: gradients or integrated gradients (captum), "
    "with the model randomisation sanity check on request. Inputs in the field the model is "
    f"asked by (at most {MAX_INPUTS}); none: a few of the model's own. PNG: each image beside "
    "its map, or a bar per feature.",
    request=SaliencyRequest,
    response=SaliencyResponse,
    needs=("explained",),
    run=saliency,
    renderers={PNG: saliency_png},
    examples=(
        {"observations": [[0.0, 0.1, 0.05, -0.2]], "method": "integrated_gradients"},
        {"method": "gradients", "sanity_check": True},
    ),
)


# -- Grad-CAM --------------------------------------------------------------------------------
class GradCamRequest(ExplainedInputs):
    output: int | None = Field(
        None, ge=0, description="Which output to explain; default: each input's largest."
    )
    layer: str | None = Field(
        None, max_length=200, description="The convolution layer (default: the last one)."
    )


class GradCamResponse(BaseModel):
    layer: str
    layer_resolution: list[int] = Field(description="[h, w] of the layer's maps.")
    output_label: str
    output_names: list[str]
    outputs: list[int]
    values: list[float]
    input_shape: list[int]
    inputs: list[list[float]]
    maps: list[list[list[float]]] = Field(
        description="Per input, [H, W] at the input's resolution, scaled to [0, 1]."
    )


def grad_cam_query(model: Any, request: GradCamRequest) -> GradCamResponse:
    explained = explained_of(model)
    if not explained.is_image:
        raise QueryError(
            "Grad-CAM explains convolutional networks of images; this model's inputs are "
            f"vectors of {explained.input_size}: ask for saliency",
            field="query",
        )
    name, layer = explained.layer(request.layer, kinds=(torch.nn.Conv2d,))
    x, labels = inputs_of(model, explained, request)
    chosen, values, maps, coarse = grad_cam(
        explained, x, layer, output=request.output, labels=labels
    )
    return GradCamResponse(
        layer=name,
        layer_resolution=list(coarse),
        output_label=explained.output_label,
        output_names=list(explained.outputs),
        outputs=chosen.tolist(),
        values=values.tolist(),
        input_shape=list(explained.input_shape),
        inputs=x.reshape(len(x), -1).double().tolist(),
        maps=maps.tolist(),
    )


def grad_cam_png(response: GradCamResponse) -> bytes:
    inputs = np.asarray(response.inputs).reshape(-1, *response.input_shape)
    titles = _titles(response.output_names, response.outputs, response.values)
    return figures.grad_cam_png(
        inputs,
        np.asarray(response.maps),
        titles=titles,
        heading=f"Grad-CAM of the {response.output_label} at {response.layer}",
    )


GRAD_CAM = Query(
    name="grad_cam",
    summary="Where in an image the output's evidence is (Grad-CAM)",
    description="Grad-CAM (Selvaraju et al. 2017, by captum) of a convolutional network: a "
    "DCGAN's discriminator, the convolutional Q-network of image observations. Maps at the "
    "input's resolution, scaled to [0, 1]; PNG: over each image. A model of vectors answers "
    "422.",
    request=GradCamRequest,
    response=GradCamResponse,
    needs=("explained",),
    run=grad_cam_query,
    renderers={PNG: grad_cam_png},
    examples=({}, {"layer": "body.0", "seed": 1}),
)


# -- activations -----------------------------------------------------------------------------
MAX_ACTIVATION_NUMBERS = 1_000_000  # numbers in one answer


class ActivationsRequest(ExplainedInputs):
    layer: str | None = Field(
        None, max_length=200, description="One layer by name (default: every layer)."
    )


class LayerActivations(BaseModel):
    name: str
    kind: str = Field(description="The layer's class (Linear, Conv2d, ReLU...).")
    shape: list[int] = Field(description="Of one input's activations.")
    values: list[list[float]] = Field(description="Per input, the activations (flat).")
    mean: float
    fraction_zero: float = Field(description="Share of exact zeros (dead or off ReLUs).")


class ActivationsResponse(BaseModel):
    input_shape: list[int]
    layers: list[LayerActivations]


def activations_query(model: Any, request: ActivationsRequest) -> ActivationsResponse:
    explained = explained_of(model)
    layers = explained.layers()
    names = [explained.layer(request.layer)[0]] if request.layer else [n for n, _ in layers]
    x, labels = inputs_of(model, explained, request)
    seen = recorded.record(explained, x, names, labels)
    total = sum(int(v.numel()) for v in seen.values())
    if total > MAX_ACTIVATION_NUMBERS:
        raise QueryError(
            f"these inputs' activations are {total:,} numbers, more than "
            f"{MAX_ACTIVATION_NUMBERS:,}: send fewer inputs or name a layer",
            field="layer",
        )
    kinds = dict(layers)
    return ActivationsResponse(
        input_shape=list(explained.input_shape),
        layers=[
            LayerActivations(
                name=name,
                kind=type(kinds[name]).__name__,
                shape=list(seen[name].shape[1:]),
                values=seen[name].reshape(len(x), -1).double().tolist(),
                mean=float(seen[name].mean()),
                fraction_zero=float((seen[name] == 0).double().mean()),
            )
            for name in names
            if name in seen
        ],
    )


def activations_png(response: ActivationsResponse) -> bytes:
    """The first input's activations, layer by layer."""
    layers = [
        (f"{layer.name} ({layer.kind})", np.asarray(layer.values[0]).reshape(layer.shape))
        for layer in response.layers
    ]
    return figures.activations_png(layers, heading="activations of input 0, layer by layer")


ACTIVATIONS = Query(
    name="activations",
    summary="Each layer's activations for given inputs",
    description="Records every layer's output (or one `layer`'s) for the inputs: per input "
    "the flat activations, each layer's shape, mean and share of zeros. PNG: the first "
    "input's activations, a row per layer (a convolution's feature maps as small images).",
    request=ActivationsRequest,
    response=ActivationsResponse,
    needs=("explained",),
    run=activations_query,
    renderers={PNG: activations_png},
    examples=({}, {"observations": [[0.0, 0.1, 0.05, -0.2]], "layer": "body.1"}),
)


# -- embeddings ------------------------------------------------------------------------------
MAX_EMBEDDED = 4_096  # points given or drawn (`ml.core.validation.MAX_BATCH`)
QUICK_EMBEDDED = 2_000  # PCA of at most this many points answers at once; t-SNE never does


class EmbeddingRequest(BaseModel):
    model_config = REQUEST

    method: EmbeddingMethod = Field(
        "pca", description="pca (linear, exact) or tsne (neighbourhoods; runs on a worker)."
    )
    n: int = Field(
        500,
        ge=3,
        le=MAX_EMBEDDED,
        description="Points of the model's own: GANs draw n and take n real; agents play "
        "episodes until n observations; rewards use every state (at most n).",
    )
    observations: list[Vector] | None = Field(
        None, min_length=3, max_length=MAX_EMBEDDED, description="Agents: these instead."
    )
    samples: list[Vector] | None = Field(
        None,
        min_length=3,
        max_length=MAX_EMBEDDED,
        description="GANs: real samples to set beside n generated ones (default: held-out "
        "data of a built-in set; needed for uploaded data, which the model does not keep).",
    )
    colour: Literal["auto", "action", "value"] = Field(
        "auto",
        description="Agents: colour by greedy action (auto) or by value; GANs are coloured "
        "real versus generated, rewards by the learned reward.",
    )
    perplexity: float = Field(30.0, ge=2.0, le=100.0, description="t-SNE's perplexity.")
    seed: int = Field(0, ge=0, le=2**31 - 1)

    @field_validator("perplexity")
    @classmethod
    def _enough_points(cls, perplexity: float, info: ValidationInfo) -> float:
        """t-SNE needs more than three times its perplexity in points: said at once, with
        the numbers, rather than after the request waited for a worker."""
        given = info.data.get("observations") or info.data.get("samples")
        points = len(given) if given is not None else info.data.get("n", 0)
        needed = int(3 * perplexity) + 1
        if info.data.get("method") == "tsne" and points < needed:
            raise ValueError(
                f"t-SNE with perplexity {perplexity:g} needs at least {needed} points "
                f"(3 x perplexity + 1), and {points} were asked for: ask for more, lower the "
                "perplexity, or use pca"
            )
        return perplexity

    @model_validator(mode="after")
    def _one_input(self) -> EmbeddingRequest:
        if self.observations is not None and self.samples is not None:
            raise ValueError("give observations or samples, not both")
        return self


class EmbeddingResponse(BaseModel):
    method: EmbeddingMethod
    space: str = Field(description="What was embedded (samples, a hidden layer, features).")
    coordinates: list[list[float]] = Field(description="[n, 2].")
    colour_label: str
    colours: list[float] = Field(description="Per point: its category index or its value.")
    categories: list[str] | None = Field(description="Names of the categories, if any.")
    explained_variance_ratio: list[float] | None = Field(
        description="PCA: the share of variance each axis keeps."
    )
    axis_labels: list[str]


def embedding_points(model: Any, request: EmbeddingRequest) -> dict[str, Any]:
    """The points to embed, their colours, and what they are."""
    explained = explained_of(model)
    if explained.input_field == "samples":
        return _gan_points(model, request)
    if explained.input_field == "features":
        F = world_features(model)
        per_state = state_rewards(model)
        keep = np.flatnonzero(~np.asarray(model.wall_mask, bool))[: request.n]
        return {
            "x": F[keep], "colours": per_state[keep], "categories": None,
            "colour_label": "learned reward", "space": "state features",
        }  # fmt: skip
    observations = (
        np.asarray(request.observations, dtype=np.float32)
        if request.observations is not None
        else visited_observations(model, request.n, request.seed)[: request.n]
    )
    x = explained.inputs(observations, "observations")
    hidden = recorded.last_hidden(explained)
    with torch.no_grad():
        q = explained(x)
    represented = recorded.record(explained, x, [hidden])[hidden] if hidden else x
    by_value = request.colour == "value" or len(explained.outputs) == 1
    return {
        "x": represented.reshape(len(x), -1).double().numpy(),
        "colours": q.max(dim=1).values.double().numpy() if by_value else q.argmax(1).numpy(),
        "categories": None if by_value else list(explained.outputs),
        "colour_label": explained.output_label if by_value else "greedy action",
        "space": f"last hidden layer ({hidden})" if hidden else "observations",
    }


def _gan_points(model: Any, request: EmbeddingRequest) -> dict[str, Any]:
    generated = np.asarray(model.generate(request.n, request.seed), dtype=np.float64)
    if request.samples is not None:
        real = observation_batch(request.samples, generated.shape[1], field="samples")
    else:
        real, _ = held_out_real(model, request.n, request.seed)
    return {
        "x": np.concatenate([real, generated]),
        "colours": np.r_[np.zeros(len(real)), np.ones(len(generated))],
        "categories": ["real", "generated"],
        "colour_label": "source",
        "space": "samples",
    }


def embedding(model: Any, request: EmbeddingRequest) -> EmbeddingResponse:
    points = embedding_points(model, request)
    found = embed(points["x"], request.method, perplexity=request.perplexity, seed=request.seed)
    return EmbeddingResponse(
        method=request.method,
        space=points["space"],
        coordinates=found.coordinates.tolist(),
        colour_label=points["colour_label"],
        colours=np.asarray(points["colours"], dtype=np.float64).tolist(),
        categories=points["categories"],
        explained_variance_ratio=found.explained_variance_ratio,
        axis_labels=list(found.axis_labels),
    )


def embedding_png(response: EmbeddingResponse) -> bytes:
    method = "PCA" if response.method == "pca" else "t-SNE"
    return figures.embedding_png(
        np.asarray(response.coordinates),
        np.asarray(response.colours),
        categories=response.categories,
        colour_label=response.colour_label,
        axis_labels=(response.axis_labels[0], response.axis_labels[1]),
        heading=f"{method} of {response.space}, {len(response.coordinates)} points",
    )


def _points_asked(request: EmbeddingRequest) -> int:
    given = request.observations or request.samples
    return len(given) if given is not None else request.n


EMBEDDING = Query(
    name="embedding",
    summary="PCA or t-SNE of what the model sees, coloured by what it does",
    description="Two-dimensional PCA or t-SNE (scikit-learn): a GAN's real versus generated "
    "samples; an agent's last hidden layer over the states its policy visits, coloured by "
    "greedy action or value; a reward's state features coloured by the learned reward. "
    f"t-SNE, and PCA of more than {QUICK_EMBEDDED} points, run on a worker (202, then the "
    "result; the same request is answered from the first's result). t-SNE needs more than "
    "three times its perplexity in points (422 otherwise).",
    request=EmbeddingRequest,
    response=EmbeddingResponse,
    needs=("explained",),
    run=embedding,
    renderers={PNG: embedding_png},
    heavy=lambda r: r.method == "tsne" or _points_asked(r) > QUICK_EMBEDDED,
    examples=({"method": "pca", "n": 500}, {"method": "tsne", "n": 1000, "perplexity": 30}),
)

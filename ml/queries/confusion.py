"""The `confusion_matrix` query: what a model answered against what was right, as counts.

The comparisons and how each is made are `ml.explain.confusion`'s: requested against
classified labels (conditional GANs of the digits), real or generated against the
discriminator's verdict (GANs), optimal against chosen actions (tabular models, DQN of
PixelGridWorld-v0). One query answers all three; `matrix` chooses, and defaults to the
model's natural one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from ml.core.errors import QueryError
from ml.core.validation import MAX_BATCH
from ml.explain.confusion import (
    Confusion,
    Matrix,
    Which,
    actions_confusion,
    chosen_matrix,
    confusion_png,
    discriminator_confusion,
    given_real,
    held_out_real,
    label_confusion,
)
from ml.queries.base import PNG, REQUEST, Query, Vector

MAX_PER_CLASS = 1_000  # labels: 10 classes of it, the 10,000 `samples` draws at most


class ConfusionRequest(BaseModel):
    model_config = REQUEST

    matrix: Matrix | None = Field(
        None,
        description="labels (conditional GANs of the built-in digits: requested label against "
        "the digits classifier's), discriminator (GANs: real or generated against the "
        "discriminator's verdict), actions (tabular models, DQN of PixelGridWorld-v0: the "
        "optimal action against the model's); null for the model's natural one, the first of "
        "these it answers.",
    )
    n: int = Field(
        500,
        ge=1,
        le=MAX_PER_CLASS,
        description="GAN matrices: samples per requested label (labels), or real points and "
        "as many generated ones (discriminator; the digits' held-out split has 360). The "
        "actions matrix counts every state.",
    )
    seed: int = Field(
        0, ge=0, le=2**63 - 1, description="GAN matrices: the same seed, the same samples."
    )
    generator: Which | None = Field(
        None,
        description="GAN matrices: best or last generator; null for the best with labels, "
        "and for the discriminator the last, the one it was trained against.",
    )
    samples: list[Vector] | None = Field(
        None,
        min_length=1,
        max_length=MAX_BATCH,
        description="discriminator: real points (data_dim numbers each) to judge instead of "
        "the held-out ones; needed for models of uploaded data and of all the digits.",
    )
    labels: list[int] | None = Field(
        None,
        min_length=1,
        max_length=MAX_BATCH,
        description="discriminator, conditional models: the class of each of `samples`.",
    )


class ConfusionResponse(BaseModel):
    matrix: Matrix = Field(description="Which comparison this is.")
    rows_label: str = Field(description="What the rows are: the truth.")
    columns_label: str = Field(description="What the columns are: the model's answer.")
    labels: list[str] = Field(description="The classes, rows and columns alike, in order.")
    counts: list[list[int]] = Field(description="counts[i][j]: cases of row i answered j.")
    normalized: list[list[float]] = Field(
        description="Each row as fractions of its cases (0 for a row without cases)."
    )
    accuracy: float = Field(description="The share of cases on the diagonal.")
    n: int = Field(description="Cases counted.")
    threshold: float | None = Field(
        None,
        description="discriminator: a score above it is judged real (1/2 for a probability; "
        "for a WGAN critic, whose scores have no fixed scale, the mean score of the points "
        "judged, as `gan/d_accuracy` in training).",
    )


def confusion(model: Any, request: ConfusionRequest) -> ConfusionResponse:
    matrix = chosen_matrix(model, request.matrix)
    check_fields(matrix, request)
    if matrix == "labels":
        found = label_confusion(model, request.n, request.seed, request.generator or "best")
    elif matrix == "discriminator":
        if request.samples is not None:
            real, real_labels = given_real(model, request.samples, request.labels)
        else:
            real, real_labels = held_out_real(model, request.n, request.seed)
        which = request.generator or "last"
        found = discriminator_confusion(model, real, real_labels, request.seed, which)
    else:
        found = actions_confusion(model)
    return response_of(found)


def check_fields(matrix: Matrix, request: ConfusionRequest) -> None:
    """Fields the chosen matrix does not use are refused, not ignored."""
    unused = {"samples", "labels"} if matrix != "discriminator" else set()
    if matrix == "actions":
        unused |= {"n", "seed", "generator"}
    if request.samples is None and request.labels is not None:
        unused.add("labels")  # the labels of given samples
    extra = sorted(unused & request.model_fields_set)
    if extra:
        raise QueryError(
            f"the {matrix} matrix takes no '{extra[0]}'"
            + ("" if extra[0] != "labels" else ": labels go with real `samples`"),
            field=extra[0],
        )


def response_of(found: Confusion) -> ConfusionResponse:
    return ConfusionResponse(
        matrix=found.matrix,
        rows_label=found.rows_label,
        columns_label=found.columns_label,
        labels=list(found.labels),
        counts=found.counts.tolist(),
        normalized=found.normalized.tolist(),
        accuracy=found.accuracy,
        n=found.n,
        threshold=found.threshold,
    )


def confusion_of(response: ConfusionResponse) -> Confusion:
    return Confusion(
        response.matrix,
        response.rows_label,
        response.columns_label,
        tuple(response.labels),
        np.asarray(response.counts, dtype=np.int64),
        response.threshold,
    )


TITLES = {
    "labels": "Requested vs classified digits",
    "discriminator": "Discriminator on real and generated points",
    "actions": "Optimal vs chosen actions",
}


CASES = {"labels": "samples", "discriminator": "points", "actions": "states"}


def confusion_matrix_png(response: ConfusionResponse) -> bytes:
    cases = CASES[response.matrix]
    title = f"{TITLES[response.matrix]}\naccuracy {response.accuracy:.1%} of {response.n} {cases}"
    if response.threshold is not None:
        title += f" (real above {response.threshold:.3g})"
    return confusion_png(confusion_of(response), title)


CONFUSION_MATRIX = Query(
    name="confusion_matrix",
    summary="Confusion matrix of a model's answers against the truth",
    description="Counts of each truth (rows) against the model's answer (columns), with each "
    "row as fractions and the accuracy. labels: a conditional GAN of the digits, n samples "
    "per requested label against the digits classifier's label. discriminator: a GAN's "
    "discriminator on n real points it never trained on (fresh draws of a built-in 2-D set, "
    "the digits' held-out split, or real `samples` sent) and n generated ones, at D(x) = 1/2 "
    "(a WGAN critic: at the mean score). actions: the optimal action for the world's true "
    "reward (value iteration on the world rebuilt from the model's config; in "
    "PixelGridWorld-v0 the moves towards the goal) against the model's greedy action, in "
    "every state that is neither a wall nor terminal (every placement of agent and goal); "
    "the model's action counts as optimal if it is among tied optimal actions (within 1e-9), "
    "and a wrong one is counted under the optimal action nearest it in direction. As PNG: "
    "a heatmap with the counts written in.",
    request=ConfusionRequest,
    response=ConfusionResponse,
    needs=(("discriminate",), ("policy", "grid_shape"), ("q_network", "q_function", "env_id")),
    run=confusion,
    renderers={PNG: confusion_matrix_png},
    examples=({}, {"matrix": "discriminator", "n": 200, "seed": 1}),
)

"""Confusion matrices: what a model answered against what was right, case by case.

A confusion matrix C[i, j] counts the cases whose truth is i that the model answered j (rows
the truth, columns the answer, as scikit-learn's `confusion_matrix` lays them out; Kohavi &
Provost 1998, "Glossary of terms"). Three comparisons, each for the models it makes sense for:

- `labels`, conditional GANs of the built-in digits (Mirza & Osindero 2014): the label each
  sample was requested for against the class the digits classifier (`ml.gan.digits`, the
  one the image metrics use) puts it in: which digits the generator mixes up. Judging
  class-conditional samples by a fixed classifier is the check of Odena et al. 2017
  ("Conditional Image Synthesis with Auxiliary Classifier GANs") and Shmelkov et al. 2018
  ("How good is my GAN?"); the diagonal share is `eval/label_accuracy`.
- `discriminator`, every GAN that kept its discriminator: real or generated against the
  discriminator's verdict, on real points it never trained on and as many generated ones.
  A discriminator's D(x) is a probability (Goodfellow et al. 2014): real above 1/2. A WGAN
  critic's score has no fixed scale (adding a constant changes neither its loss nor its
  gradients; Arjovsky et al. 2017), so no threshold is given in advance: the verdict is
  "real" above the mean score of all the points judged, the rule `gan/d_accuracy` uses
  during training. It looks at the scores only, never at which points are real, and is
  reported with the answer (`threshold`).
- `actions`, tabular models (dynamic programming, inverse RL) and DQN on PixelGridWorld-v0:
  the optimal action against the model's (greedy) action in every state. Optimal means
  optimal for the world's true reward: by value iteration on the world rebuilt from the
  model's config (Sutton & Barto 2018, Eq. 4.10), as the inverse-RL expert is computed; in
  the pixel room (`ml.rl.pixels`, open, with a goal, every step costing the same), any move
  that brings the agent closer to the goal in Manhattan distance. See `optimal_row` for how
  a state with several optimal actions is counted.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import TypeAdapter

from ml.core.errors import QueryError
from ml.core.validation import observation_batch
from ml.gan.datasets import DigitsDataset, GridDataset, RingDataset, SwissRollDataset
from ml.gan.digits import HELDOUT_SIZE, NUM_CLASSES, digits_classifier, load_digits_dataset
from ml.rl.pixels import MOVES, PIXEL_ENV_IDS, GridImage, GridWorldEnv
from ml.tabular import dp
from ml.tabular.worlds import EnvSpec, MDPEnv, build_mdp, size_of

Matrix = Literal["labels", "discriminator", "actions"]
Which = Literal["best", "last"]

# The world's optimum to a guaranteed max |V - V*| <= 1e-10, so computed Q-values are within
# gamma * 1e-10 of Q*: actions within TIE_TOLERANCE of the best are the tied optimal ones.
VI_TOLERANCE = 1e-10
TIE_TOLERANCE = 1e-9
# The most states an `actions` matrix solves the world of in a request (that of `values`'s
# whole table): value iteration on a larger world is a training job's work.
MAX_WORLD_STATES = 65_536
# A word of the held-out points' seed: no training run draws from this sequence.
HELD_OUT_STREAM = 0x636F6E66
PIXEL_ACTION_NAMES = ("up", "right", "down", "left")  # `ml.rl.pixels.MOVES`, in order
# Each action name's (d_row, d_col), for choosing the optimal action nearest a wrong one.
DIRECTIONS = {
    "up": (-1, 0),
    "north": (-1, 0),
    "down": (1, 0),
    "south": (1, 0),
    "left": (0, -1),
    "west": (0, -1),
    "right": (0, 1),
    "east": (0, 1),
}


@dataclass(frozen=True)
class Confusion:
    """counts[i, j]: cases of truth `labels[i]` answered `labels[j]`."""

    matrix: Matrix
    rows_label: str
    columns_label: str
    labels: tuple[str, ...]
    counts: np.ndarray  # C[i, j] int64
    threshold: float | None = None  # the discriminator's verdict "real" is a score above it

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def accuracy(self) -> float:
        """The share of the cases on the diagonal."""
        return float(np.trace(self.counts) / max(self.n, 1))

    @property
    def normalized(self) -> np.ndarray:
        """Each row as fractions of its cases (a row without cases stays 0)."""
        totals = self.counts.sum(axis=1, keepdims=True)  # [K, 1]
        return np.divide(self.counts, totals, out=np.zeros(self.counts.shape), where=totals > 0)


def tally(truth: np.ndarray, answered: np.ndarray, k: int) -> np.ndarray:
    """C[k, k] int64 of classes 0..k-1, every class a row even when no case has it."""
    from sklearn.metrics import confusion_matrix  # here: its import takes a while

    return confusion_matrix(truth, answered, labels=np.arange(k)).astype(np.int64)


# -- which matrices a model answers --------------------------------------------------------------
def matrices_of(model: Any) -> tuple[Matrix, ...]:
    """The comparisons this model can be judged by, the natural one first."""
    if hasattr(model, "discriminate"):
        found: list[Matrix] = []
        if model.n_classes is not None and isinstance(gan_dataset(model), DigitsDataset):
            found.append("labels")
        if getattr(model, "discriminator", None) is not None:
            found.append("discriminator")
        return tuple(found)
    if hasattr(model, "policy") and hasattr(model, "grid_shape"):
        return ("actions",)
    if getattr(model, "env_id", None) in PIXEL_ENV_IDS:
        return ("actions",)
    return ()


def chosen_matrix(model: Any, asked: Matrix | None) -> Matrix:
    """The matrix asked for, or the model's natural one; QueryError naming the ones that
    apply when it cannot answer."""
    choices = matrices_of(model)
    if asked is None and choices:
        return choices[0]
    if asked is not None and asked in choices:
        return asked
    why = {
        "labels": "labels need a conditional GAN of the built-in digits (the classifier "
        "judging its samples knows only digits)",
        "discriminator": "discriminator needs a GAN saved with its discriminator",
        "actions": "actions need a tabular model or a DQN of PixelGridWorld-v0 (where the "
        "optimal actions are known)",
    }
    if not choices:
        reasons = why[asked] if asked is not None else "; ".join(why.values())
        raise QueryError(
            f"no confusion matrix applies to this {model.kind} model: {reasons}", field="matrix"
        )
    raise QueryError(
        f"this {model.kind} model answers {', '.join(choices)}, not {asked}: {why[str(asked)]}",
        field="matrix",
    )


# -- GANs ---------------------------------------------------------------------------------------
def gan_dataset(model: Any) -> Any:
    """The dataset spec the GAN was trained on, from its config."""
    return model.config_class.model_validate(model.metadata["config"]).dataset


def label_confusion(model: Any, n: int, seed: int, which: Which) -> Confusion:
    """n samples of each class, requested label against the digits classifier's class."""
    k = int(model.n_classes)
    requested = np.repeat(np.arange(k), n)  # y[k * n]
    x = model.generate(len(requested), seed, labels=requested, which=which)  # x[k * n, 64]
    predicted = digits_classifier().predict(x)
    names = tuple(str(c) for c in range(NUM_CLASSES))
    return Confusion(
        "labels", "requested label", "classifier's label", names, tally(requested, predicted, k)
    )


def held_out_real(model: Any, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Up to n real points x[m, d] the model never trained on, and their labels y[m] for a
    conditional model: fresh draws of a built-in 2-D set (from a seed sequence of their own),
    or the digits' held-out split (at most its 360 images, drawn without replacement)."""
    spec = gan_dataset(model)
    rng = np.random.default_rng([seed, HELD_OUT_STREAM])
    if isinstance(spec, RingDataset | GridDataset | SwissRollDataset):
        return spec.sample(n, rng), None
    if isinstance(spec, DigitsDataset) and spec.split == "train":
        digits = load_digits_dataset("heldout")
        index = rng.permutation(HELDOUT_SIZE)[: min(n, HELDOUT_SIZE)]
        x = digits.images[index].reshape(len(index), -1)
        return x, (digits.labels[index] if model.n_classes is not None else None)
    why = (
        "was trained on all 1,797 digits: none is held out"
        if isinstance(spec, DigitsDataset)
        else "was trained on an uploaded dataset, which the model does not keep"
    )
    raise QueryError(
        f"this model {why}; send real `samples` it never trained on to judge with",
        field="samples",
    )


def given_real(
    model: Any, samples: Sequence[Sequence[float]], labels: Sequence[int] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The client's real points x[m, d] (and their labels, which a conditional model's
    D(x | y) needs, one per point)."""
    x = observation_batch(list(samples), model.data_dim, field="samples")
    if model.n_classes is not None and labels is None:
        raise QueryError(
            "a conditional discriminator judges D(x | y): send the class of each sample in "
            "`labels`",
            field="labels",
        )
    return x, (None if labels is None else model.checked_labels(labels, len(x)))


def discriminator_confusion(
    model: Any, real: np.ndarray, real_labels: np.ndarray | None, seed: int, which: Which
) -> Confusion:
    """Real points x[m, d] and m generated ones (a conditional model's of the real points'
    labels, as in training), real or generated against the discriminator's verdict."""
    m = len(real)
    fake = model.generate(m, seed, labels=real_labels, which=which)  # x[m, d]
    scores = np.concatenate(
        [model.discriminate(real, real_labels), model.discriminate(fake, real_labels)]
    )  # s[2m]: the real ones first
    if not np.all(np.isfinite(scores)):
        raise QueryError("the discriminator's scores of these points overflow", field="samples")
    threshold = 0.5 if model.scores == "probability" else float(scores.mean())
    truth = np.repeat([0, 1], m)  # 0 real, 1 generated
    verdict = np.where(scores > threshold, 0, 1)
    counts = tally(truth, verdict, 2)
    return Confusion(
        "discriminator", "truth", "discriminator's verdict", ("real", "generated"), counts,
        threshold=threshold,
    )  # fmt: skip


# -- decision models -----------------------------------------------------------------------------
def optimal_row(chosen: np.ndarray, optimal: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """The optimal action each state is counted under (its row).

    chosen[N] the model's actions, optimal[N, A] the optimal ones (several when tied),
    directions[A, 2] each action's move (0 for actions that are not moves). A chosen action
    that is optimal is its own row: the diagonal counts exactly the states where the model
    acts optimally. A wrong one is counted under the optimal action nearest to it in
    direction (for "up" when "down" and "right" are optimal: "right", the smaller turn), the
    first by index among equally near ones (all of them, where actions are not moves).
    """
    unit = directions / np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    similarity = unit[chosen] @ unit.T  # cos[N, A] between the chosen and each action
    nearest = np.where(optimal, similarity, -np.inf).argmax(axis=1)  # [N]
    hit = optimal[np.arange(len(chosen)), chosen]
    return np.where(hit, chosen, nearest)


def action_confusion(
    chosen: np.ndarray, optimal: np.ndarray, names: Sequence[str], directions: np.ndarray
) -> Confusion:
    rows = optimal_row(chosen, optimal, directions)
    counts = tally(rows, chosen, len(names))
    return Confusion("actions", "optimal action", "model's action", tuple(names), counts)


def tabular_actions(model: Any) -> Confusion:
    """The model's policy against the optimal policy of its world's true reward, over the
    states that are neither walls nor terminal."""
    config = model.metadata["config"]
    env = TypeAdapter(EnvSpec).validate_python(config["env"])
    if isinstance(env, MDPEnv):
        raise QueryError(
            "this model's world is an uploaded MDP, which the model does not keep: its optimal "
            "actions cannot be computed here",
            field="model",
        )
    states = size_of(env)[0]
    if states > MAX_WORLD_STATES:
        raise QueryError(
            f"this world has {states} states; an actions matrix solves worlds of at most "
            f"{MAX_WORLD_STATES}",
            field="matrix",
        )
    mdp = build_mdp(env)
    solved = dp.value_iteration(
        mdp.transitions,
        mdp.R,
        float(config["discount"]),
        terminal=mdp.fixed,
        tolerance=VI_TOLERANCE,
        max_iterations=1_000_000,
    )
    keep = ~mdp.fixed  # keep[s]: states where an action matters
    q = solved.Q[keep]  # Q*[s, a] of those states
    optimal = q >= q.max(axis=1, keepdims=True) - TIE_TOLERANCE  # [N, A]
    names = list(model.action_names)
    directions = np.array([DIRECTIONS.get(name, (0, 0)) for name in names], dtype=np.float64)
    return action_confusion(np.asarray(model.policy)[keep], optimal, names, directions)


def pixel_placements(size: int) -> np.ndarray:
    """Every state of the room: (agent_row, agent_col, goal_row, goal_col) [N, 4], the two
    on different cells (N = size^2 (size^2 - 1))."""
    cells = np.array(list(np.ndindex(size, size)), dtype=np.int64)  # [size^2, 2]
    agent, goal = (g.ravel() for g in np.meshgrid(np.arange(len(cells)), np.arange(len(cells))))
    apart = agent != goal
    return np.concatenate([cells[agent[apart]], cells[goal[apart]]], axis=1)


def pixel_actions(model: Any) -> Confusion:
    """A DQN's greedy action against the moves that reduce the Manhattan distance to the goal
    (the shortest paths of an open room), in every placement of the agent and the goal."""
    size = int(model.metadata["shapes"]["observation_shape"][-1])
    render = GridImage(GridWorldEnv(size), size)
    states = pixel_placements(size)  # [N, 4]
    images = np.stack([render.observation(s) for s in states])  # x[N, 2, size, size]
    q = np.asarray(model.q_function(images.reshape(len(states), -1)), dtype=np.float64)
    if not np.all(np.isfinite(q)):
        raise QueryError("the Q-network's values overflow", field="model")
    agent, goal = states[:, :2], states[:, 2:]
    after = np.clip(agent[:, None, :] + MOVES[None], 0, size - 1)  # [N, A, 2]
    closer = np.abs(after - goal[:, None, :]).sum(axis=2)  # distance after each move [N, A]
    optimal = closer < np.abs(agent - goal).sum(axis=1, keepdims=True)
    return action_confusion(q.argmax(axis=1), optimal, PIXEL_ACTION_NAMES, MOVES.astype(float))


def actions_confusion(model: Any) -> Confusion:
    if hasattr(model, "policy") and hasattr(model, "grid_shape"):
        return tabular_actions(model)
    return pixel_actions(model)


# -- the figure ----------------------------------------------------------------------------------
def confusion_png(confusion: Confusion, title: str) -> bytes:
    """A PNG heatmap: each cell's count written in it, coloured by its share of the row (so a
    rare truth's row reads as clearly as a common one's), on small matrices that share too;
    the truth down the side, the answers along the bottom."""
    counts = np.asarray(confusion.counts)
    share = confusion.normalized
    k = len(confusion.labels)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Here, not at the top: `ml.queries` imports this module once it registers the query.
    from ml.queries.figures import DPI, drawing_lock

    side = min(9.0, max(4.2, 0.6 * k + 2.4))
    with drawing_lock:
        figure = Figure(figsize=(side + 1.0, side), dpi=DPI)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        image = axes.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the row")
        size = "medium" if k <= 6 else "small" if k <= 12 else "xx-small"
        for (i, j), count in np.ndenumerate(counts):
            ink = "white" if share[i, j] > 0.55 else "black" if count else "#9a9a9a"
            text = f"{count}\n{share[i, j]:.0%}" if k <= 6 and count else f"{count}"
            axes.text(j, i, text, ha="center", va="center", fontsize=size, color=ink)
        long = k * max(len(label) for label in confusion.labels) > 36  # they would collide
        axes.set_xticks(range(k), confusion.labels, rotation=45 if long else 0,
                        ha="right" if long else "center")  # fmt: skip
        axes.set_yticks(range(k), confusion.labels)
        axes.set_xlabel(confusion.columns_label)
        axes.set_ylabel(confusion.rows_label)
        axes.set_title(title, fontsize="medium")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()

"""The `confusion_matrix` query: exact matrices of constructed models (optimal and wrong
policies, a conditional generator with a known mix-up), small trained GANs of both kinds of
discriminator, the figure, and the requests it refuses."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import ml
from ml.core.errors import QueryError
from ml.core.hooks import NullHooks
from ml.explain.confusion import optimal_row, pixel_placements
from ml.gan.cgan import CGANConfig, CGANModel
from ml.gan.digits import load_digits_dataset
from ml.gan.networks import make_discriminator
from ml.queries.base import PNG
from ml.queries.confusion import CONFUSION_MATRIX
from ml.rl.dqn import DQNModel
from ml.tabular.models import TabularValueModel
from tests.tiny_configs import TINY_CONFIGS

SIZE = 5  # PixelGridWorld-v0's room
UP, RIGHT, DOWN, LEFT = range(4)  # its actions (`ml.rl.pixels.MOVES`)


def trained(name: str, **overrides: Any) -> Any:
    algorithm = ml.ALGORITHMS[name]
    config = algorithm.config.model_validate({**TINY_CONFIGS[name], **overrides})
    return algorithm.run(config, seed=0, hooks=NullHooks())


@pytest.fixture(scope="module")
def value_model() -> TabularValueModel:
    """Value iteration on S.. / .#. / ..G, deterministic moves: optimal everywhere."""
    model = trained("value_iteration")
    assert isinstance(model, TabularValueModel)
    return model


@pytest.fixture(scope="module")
def gan() -> Any:
    return trained("gan")


class RoomQ(nn.Module):
    """Q of a pixel room: minus the Manhattan distance to the goal after each move (optimal),
    or the same value for every action but `always` (a policy that always takes it)."""

    def __init__(self, always: int | None = None) -> None:
        super().__init__()
        self.always = always
        self.moves = torch.tensor([[-1, 0], [0, 1], [1, 0], [0, -1]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        planes = x.reshape(-1, 2, SIZE * SIZE).argmax(dim=2)  # [B, 2]: agent, goal cells
        agent = torch.stack([planes[:, 0] // SIZE, planes[:, 0] % SIZE], dim=1)
        goal = torch.stack([planes[:, 1] // SIZE, planes[:, 1] % SIZE], dim=1)
        after = (agent[:, None] + self.moves[None]).clamp(0, SIZE - 1)  # [B, 4, 2]
        q = -(after - goal[:, None]).abs().sum(dim=2).float()
        if self.always is not None:
            q = torch.zeros_like(q)
            q[:, self.always] = 1.0
        return q


def room_model(always: int | None = None) -> DQNModel:
    shapes = {
        "env_id": "PixelGridWorld-v0",
        "observation_dim": 2 * SIZE * SIZE,
        "observation_shape": [2, SIZE, SIZE],
        "n_actions": 4,
    }
    return DQNModel({"kind": "dqn", "shapes": shapes, "config": {}}, RoomQ(always))


def decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


# -- actions -------------------------------------------------------------------------------------
def test_an_optimal_tabular_policy_is_all_on_the_diagonal(value_model: Any) -> None:
    answer = CONFUSION_MATRIX.answer(value_model, {})
    assert answer.matrix == "actions" and answer.labels == ["left", "down", "right", "up"]
    assert answer.accuracy == 1.0 and answer.n == 7  # 9 cells, less the wall and the goal
    # down in (0, 2), (1, 0), (1, 2) and, tied with right, in the start; right in 3 cells
    assert answer.counts == [[0, 0, 0, 0], [0, 4, 0, 0], [0, 0, 3, 0], [0, 0, 0, 0]]
    assert answer.normalized[1] == [0.0, 1.0, 0.0, 0.0] and answer.normalized[0] == [0.0] * 4


def test_a_wrong_policy_is_counted_under_the_nearest_optimal_action(value_model: Any) -> None:
    always_left = type(value_model)(
        value_model.metadata,
        V=value_model.V,
        Q=value_model.Q,
        terminal=value_model.terminal_mask,
        wall=value_model.wall_mask,
        policy=np.zeros(9, dtype=np.int64),
    )
    answer = CONFUSION_MATRIX.answer(always_left, {"matrix": "actions"})
    # left is never optimal; the start (down or right) counts under down, the nearer turn
    assert answer.counts == [[0, 0, 0, 0], [4, 0, 0, 0], [3, 0, 0, 0], [0, 0, 0, 0]]
    assert answer.accuracy == 0.0


def test_a_learned_reward_s_policy_against_the_true_optimum() -> None:
    irl = trained("maxent_irl")  # the default 5x5 grid with walls, a goal and slip 0.1
    answer = CONFUSION_MATRIX.answer(irl, {})
    assert answer.n == int((~(irl.terminal_mask | irl.wall_mask)).sum()) == 20
    assert answer.labels == irl.action_names and 0.5 <= answer.accuracy <= 1.0


def test_ties_count_as_optimal_and_misses_go_to_the_smaller_turn() -> None:
    directions = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=float)  # up right down left
    optimal = np.array([[False, True, True, False]] * 3)  # right and down
    chosen = np.array([DOWN, UP, LEFT])
    np.testing.assert_array_equal(optimal_row(chosen, optimal, directions), [DOWN, RIGHT, DOWN])
    not_moves = np.zeros((4, 2))  # no directions: the first optimal action
    np.testing.assert_array_equal(optimal_row(chosen, optimal, not_moves), [DOWN, RIGHT, RIGHT])


def test_an_optimal_dqn_of_the_pixel_room_is_all_on_the_diagonal() -> None:
    answer = CONFUSION_MATRIX.answer(room_model(), {})
    assert len(pixel_placements(SIZE)) == 600 and answer.n == 600
    assert answer.accuracy == 1.0 and answer.labels == ["up", "right", "down", "left"]
    counts = np.array(answer.counts)
    # argmax takes the first of tied moves: up whenever the goal is above, then right, ...
    np.testing.assert_array_equal(counts, np.diag([250, 150, 150, 50]))


def test_a_dqn_that_always_goes_up() -> None:
    answer = CONFUSION_MATRIX.answer(room_model(always=UP), {})
    counts = np.array(answer.counts)
    # Up is optimal with the goal in a row above: 10 row pairs x 25 column pairs. Otherwise
    # a sideways move (goal in the same row, or below in another column: 100 + 200, half
    # each side), else down (goal straight below: 10 x 5).
    np.testing.assert_array_equal(counts[:, UP], [250, 150, 50, 150])
    assert counts.sum() == counts[:, UP].sum() == 600
    assert answer.accuracy == pytest.approx(250 / 600)


# -- GANs ----------------------------------------------------------------------------------------
def test_discriminator_on_held_out_points(gan: Any) -> None:
    answer = CONFUSION_MATRIX.answer(gan, {"n": 300, "seed": 3})
    assert answer.matrix == "discriminator" and answer.labels == ["real", "generated"]
    assert answer.threshold == 0.5 and answer.n == 600
    counts = np.array(answer.counts)
    np.testing.assert_array_equal(counts.sum(axis=1), [300, 300])
    # the same seed, the same answer
    assert CONFUSION_MATRIX.answer(gan, {"n": 300, "seed": 3}) == answer
    # Sent real points (the ring's 8 modes) are judged instead, beside as many generated.
    ring = np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)
    sent = CONFUSION_MATRIX.answer(gan, {"matrix": "discriminator", "samples": ring.tolist()})
    assert sent.n == 16 and np.array(sent.counts).sum(axis=1).tolist() == [8, 8]


def test_a_critic_is_judged_at_the_mean_score() -> None:
    wgan = trained("wgan")
    answer = CONFUSION_MATRIX.answer(wgan, {"n": 200, "seed": 1})
    assert answer.threshold is not None and answer.threshold != 0.5
    counts = np.array(answer.counts)
    np.testing.assert_array_equal(counts.sum(axis=1), [200, 200])


class DigitPrototypes(nn.Module):
    """A conditional "generator" that draws, for label c, the mean training image of digit
    drawn[c] whatever z: a generator whose mix-ups are known."""

    def __init__(self, drawn: list[int]) -> None:
        super().__init__()
        digits = load_digits_dataset("train")
        means = [digits.images[digits.labels == c].mean(axis=0).ravel() for c in drawn]
        self.images = nn.Parameter(torch.from_numpy(np.stack(means)), requires_grad=False)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.images[labels] + 0.0 * z[:, :1]  # x[B, 64]


def prototype_cgan(drawn: list[int]) -> CGANModel:
    config = CGANConfig.model_validate(TINY_CONFIGS["cgan"])
    shapes = {"latent_dim": 4, "data_dim": 64, "sample_shape": [1, 8, 8], "n_classes": 10}
    metadata = {"kind": "cgan", "config": config.model_dump(mode="json"), "shapes": shapes}
    discriminator = make_discriminator(config, (1, 8, 8), 10).eval()
    return CGANModel(metadata, DigitPrototypes(drawn), discriminator)


def test_conditional_gan_labels_against_the_digits_classifier() -> None:
    drawn = list(range(10))
    drawn[1] = 7  # asked for a 1, it draws a 7
    cgan = prototype_cgan(drawn)
    answer = CONFUSION_MATRIX.answer(cgan, {"n": 20, "seed": 0})
    assert answer.matrix == "labels" and answer.labels == [str(d) for d in range(10)]
    assert answer.rows_label == "requested label" and answer.n == 200
    expected = 20 * np.eye(10, dtype=int)
    expected[1] = 0
    expected[1, 7] = 20  # the classifier knows each mean digit for what it is
    np.testing.assert_array_equal(answer.counts, expected)
    assert answer.accuracy == pytest.approx(0.9)
    held_out = CONFUSION_MATRIX.answer(cgan, {"matrix": "discriminator", "n": 500})
    assert held_out.n == 720  # the digits' 360 held-out images, and as many generated
    assert decoded(CONFUSION_MATRIX.render(answer, PNG)).size == (940, 840)


# -- the figure and refusals ---------------------------------------------------------------------
def test_the_png_is_a_figure_of_the_expected_size(value_model: Any) -> None:
    answer = CONFUSION_MATRIX.answer(value_model, {})
    image = decoded(CONFUSION_MATRIX.render(answer, PNG))
    assert image.format == "PNG" and image.size == (580, 480)
    assert CONFUSION_MATRIX.render(answer, PNG) == CONFUSION_MATRIX.render(answer, PNG)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"matrix": "labels"}, "matrix"),  # an unconditional GAN of points
        ({"matrix": "actions"}, "matrix"),
        ({"matrix": "discriminator", "samples": [[0.0, 1.0, 2.0]]}, "samples.0"),
        ({"matrix": "discriminator", "samples": [[0.0, 1.0]], "labels": [1]}, "labels"),
        ({"labels": [1]}, "labels"),
        ({"n": 0}, "n"),
        ({"matrix": "confusion"}, "matrix"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_gan_requests_name_their_field(gan: Any, body: dict[str, Any], field: str) -> None:
    with pytest.raises(QueryError) as caught:
        CONFUSION_MATRIX.answer(gan, body)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("body", "field"),
    [({"matrix": "discriminator"}, "matrix"), ({"n": 10}, "n"), ({"samples": [[1.0]]}, "samples")],
)
def test_bad_decision_requests_name_their_field(
    value_model: Any, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(QueryError) as caught:
        CONFUSION_MATRIX.answer(value_model, body)
    assert caught.value.field == field


def test_what_cannot_be_answered_says_why(gan: Any, value_model: Any) -> None:
    uploaded = type(gan)(
        {**gan.metadata, "config": {**gan.metadata["config"], "dataset": {"kind": "uploaded",
                                                                           "id": "d1"}}},
        gan.generator,
        gan.discriminator,
    )  # fmt: skip
    with pytest.raises(QueryError, match="uploaded") as caught:
        CONFUSION_MATRIX.answer(uploaded, {})
    assert caught.value.field == "samples"
    cartpole = DQNModel({"kind": "dqn", "shapes": {"env_id": "CartPole-v1"}}, RoomQ())
    with pytest.raises(QueryError, match="no confusion matrix") as caught:
        CONFUSION_MATRIX.answer(cartpole, {})
    assert caught.value.field == "matrix"
    mdp = {"kind": "mdp", "dataset": {"kind": "uploaded", "id": "m1"}}
    config = {**value_model.metadata["config"], "env": mdp}
    uploaded_world = type(value_model)(
        {**value_model.metadata, "config": config}, V=value_model.V, Q=value_model.Q
    )
    with pytest.raises(QueryError, match="uploaded MDP") as caught:
        CONFUSION_MATRIX.answer(uploaded_world, {})
    assert caught.value.field == "model"


def test_exactly_gans_tabular_models_and_dqn_answer() -> None:
    answering = {
        name for name, algorithm in ml.ALGORITHMS.items()
        if CONFUSION_MATRIX.supports(algorithm.model)
    }  # fmt: skip
    assert answering == {
        "gan", "wgan", "wgan_gp", "dcgan", "cgan", "value_iteration", "policy_iteration",
        "policy_evaluation", "maxent_irl", "deep_maxent_irl", "dqn",
    }  # fmt: skip

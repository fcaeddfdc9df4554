"""The max-ent model (`ml.irl.maxent`) and its optimisers (`ml.irl.ascent`): exact
occupancies, an exact objective with the gradient it claims, and imitation's MCE IRL test
problem solved to its tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse

from ml.irl import maxent
from ml.irl.ascent import LBFGS, Adam, Fit
from ml.tabular.mdp import from_triplets

# imitation's ReasonablePOMDP (tests/algorithms/test_mce_irl.py): 5 states, 3 actions, the
# reward of being in each state, starts in 0 or 4, horizon 20.
REASONABLE_P = np.array(
    [
        [[0, 0.9, 0.1, 0, 0], [0, 0, 0, 1, 0], [0, 0.1, 0.9, 0, 0]],
        [[0, 0, 0, 0.05, 0.95], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]],
        [[0, 0, 0, 0.05, 0.95], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]],
        [[0, 0, 0, 0, 1]] * 3,
        [[1, 0, 0, 0, 0]] * 3,
    ]
)
REASONABLE_R = np.array([1.0, 2.0, 2.0, -20.0, 3.0])
REASONABLE_START = np.array([0.5, 0.0, 0.0, 0.0, 0.5])
HORIZON = 20


def dynamics(P: np.ndarray) -> maxent.Dynamics:
    S, A, _ = P.shape
    return maxent.Dynamics(sparse.csr_array(P.reshape(S * A, S)))


def random_mdp(seed: int, S: int = 12, A: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(S * A), 3)
    P = from_triplets(rows, rng.integers(S, size=len(rows)), rng.random(len(rows)), S, A)
    P = sparse.csr_array(P / P.sum(axis=1)[:, None])
    return P.toarray().reshape(S, A, S)


def brute_force(P: np.ndarray, r: np.ndarray, start: np.ndarray, L: int, gamma: float):
    """Dense, loop-by-loop: pi_k and the discounted occupancy of L decisions from `start`."""
    S, A, _ = P.shape
    V = np.zeros(S)
    policies = {}
    for k in range(1, L + 1):
        Q = r + gamma * np.einsum("sat,t->sa", P, V)
        V_new = np.log(np.exp(Q).sum(axis=1))
        policies[k] = np.exp(Q - V_new[:, None])
        V = V_new
    D, rho = start.copy(), np.zeros((S, A))
    for t in range(L):
        flow = D[:, None] * policies[L - t]
        rho += gamma**t * flow
        D = np.einsum("sa,sat->t", flow, P)
    return rho, V


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_occupancy_and_objective_match_a_brute_force_pass(gamma: float) -> None:
    P = random_mdp(0)
    S, A, _ = P.shape
    rng = np.random.default_rng(1)
    r = rng.normal(size=(S, A))
    start = rng.dirichlet(np.ones(S))
    inject = np.zeros((7, S))
    inject[6] = start
    mu = rng.random((S, A))
    solution = maxent.finite_horizon(dynamics(P), r, inject, gamma, mu)
    rho, V = brute_force(P, r, start, 6, gamma)
    np.testing.assert_allclose(solution.occupancy, rho, atol=1e-12)
    assert solution.objective == pytest.approx((mu * r).sum() - start @ V, abs=1e-12)
    # Each of 6 steps puts discounted mass sum_t gamma^t in total.
    assert solution.occupancy.sum() == pytest.approx(sum(gamma**t for t in range(6)))


def test_ragged_episodes_count_as_the_sum_of_each() -> None:
    """Episodes of 3 and 5 steps: one pass equals the mean of their separate occupancies."""
    P = random_mdp(2)
    S, A, _ = P.shape
    r = np.random.default_rng(3).normal(size=(S, 1))
    demos = maxent.Demonstrations(
        states=np.array([0, 1, 2, 4, 5, 6, 7, 8]),
        actions=np.zeros(8, np.int64),
        lengths=np.array([3, 5]),
    )
    solution = maxent.finite_horizon(
        dynamics(P), r, demos.injections(S), 0.95, np.zeros((S, A)), demos
    )
    short, _ = brute_force(P, r, np.eye(S)[0], 3, 0.95)
    long, _ = brute_force(P, r, np.eye(S)[4], 5, 0.95)
    np.testing.assert_allclose(solution.occupancy, (short + long) / 2, atol=1e-12)
    assert demos.decisions_left.tolist() == [3, 2, 1, 5, 4, 3, 2, 1]
    assert solution.log_likelihoods.shape == (8,) and (solution.log_likelihoods < 0).all()


@pytest.mark.parametrize("horizon", ["finite", "infinite"])
def test_the_gradient_is_the_objectives(horizon: str) -> None:
    """Central differences of J along random directions agree with mu_E - rho."""
    P = random_mdp(4)
    S, A, _ = P.shape
    rng = np.random.default_rng(5)
    inject = np.zeros((9, S))
    inject[8] = rng.dirichlet(np.ones(S))
    mu = rng.random((S, A))
    dyn = dynamics(P)

    def J(r: np.ndarray) -> tuple[float, np.ndarray]:
        if horizon == "finite":
            s = maxent.finite_horizon(dyn, r, inject, 0.9, mu)
        else:
            s, _ = maxent.infinite_horizon(dyn, r, inject[8], 0.9, mu)
        return s.objective, mu - s.occupancy

    r = rng.normal(size=(S, A))
    _, grad = J(r)
    for _ in range(3):
        d = rng.normal(size=(S, A))
        h = 1e-5
        numeric = (J(r + h * d)[0] - J(r - h * d)[0]) / (2 * h)
        assert numeric == pytest.approx(float((grad * d).sum()), rel=1e-5, abs=1e-7)


def test_infinite_horizon_occupancy_solves_the_flow_equation() -> None:
    P = random_mdp(6)
    S, A, _ = P.shape
    r = np.random.default_rng(7).normal(size=(S, 1))
    start = np.full(S, 1 / S)
    solution, V = maxent.infinite_horizon(dynamics(P), r, start, 0.9, np.zeros((S, A)))
    pi = solution.policy
    P_pi = np.einsum("sa,sat->st", pi, P)
    d = np.linalg.solve(np.eye(S) - 0.9 * P_pi.T, start)  # d = p0 + gamma P_pi^T d
    np.testing.assert_allclose(solution.occupancy, d[:, None] * pi, atol=1e-8)
    Q = r + 0.9 * np.einsum("sat,t->sa", P, V)
    np.testing.assert_allclose(V, np.log(np.exp(Q).sum(axis=1)), atol=1e-9)  # a fixed point


def reasonable_fit(optimiser: LBFGS | Adam, gamma: float) -> tuple[int, float, np.ndarray]:
    dyn = dynamics(REASONABLE_P)
    inject = np.zeros((HORIZON + 1, 5))
    inject[HORIZON] = REASONABLE_START
    zero = np.zeros((5, 3))
    expert = maxent.finite_horizon(dyn, REASONABLE_R[:, None], inject, gamma, zero)
    mu = expert.occupancy  # the expert's exact occupancy, as imitation's test uses

    def evaluate(theta: np.ndarray) -> Fit:
        s = maxent.finite_horizon(dyn, theta[:, None], inject, gamma, mu)
        return Fit(s.objective, (mu - s.occupancy).sum(axis=1), s)

    theta = np.zeros(5)
    fit, steps = evaluate(theta), 0
    while np.abs(fit.gradient).max() > 1e-3 and steps < 5000:
        fit = optimiser.step(theta, fit, evaluate)
        steps += 1
    gap = float(np.abs(fit.detail.occupancy.sum(axis=1) - mu.sum(axis=1)).max())
    return steps, gap, theta


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_imitation_reasonable_pomdp_occupancy_is_matched(gamma: float) -> None:
    """imitation's `test_mce_irl_reasonable_mdp`: one-hot state features, the expert's
    occupancy matched within 1e-3 (linf, as its `linf_eps`); L-BFGS takes tens of steps where
    Adam takes a thousand or more."""
    steps, gap, theta = reasonable_fit(LBFGS(5, learning_rate=0.1), gamma)
    assert gap <= 1e-3 and steps <= 50
    assert np.linalg.norm(theta) < 1000  # imitation's "non-insane" weights
    adam_steps, adam_gap, _ = reasonable_fit(Adam(5, learning_rate=0.1), gamma)
    assert adam_gap <= 1e-3 and adam_steps > 10 * steps


def test_lbfgs_and_adam_state_round_trips() -> None:
    lbfgs = LBFGS(3, learning_rate=0.1)
    lbfgs.remember(np.array([1.0, 0, 0]), np.array([2.0, 0, 0]))
    copy = LBFGS(3, learning_rate=0.1)
    copy.load_state_dict(lbfgs.state_dict())
    g = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(copy.direction(g), lbfgs.direction(g))
    theta = np.zeros(2)
    adam = Adam(2, learning_rate=0.1)
    adam.step(theta, Fit(0.0, np.array([1.0, -2.0])), lambda t: Fit(0.0, np.zeros(2)))
    # The first Adam step moves every coordinate by the step size, in the gradient's sign.
    np.testing.assert_allclose(theta, [0.1, -0.1], rtol=1e-6)
    plain = np.zeros(2)
    Adam(2, learning_rate=0.5, plain=True).step(
        plain, Fit(0.0, np.array([1.0, -2.0])), lambda t: Fit(0.0, np.zeros(2))
    )
    assert plain.tolist() == [0.5, -1.0]


def test_a_stop_inside_a_step_leaves_theta_at_the_step_boundary() -> None:
    class Stop(Exception):
        pass

    def stopping(_: np.ndarray) -> Fit:
        raise Stop

    for optimiser in (LBFGS(2, learning_rate=0.1), Adam(2, learning_rate=0.1)):
        theta = np.array([1.0, 2.0])
        before = {k: _plain(v) for k, v in optimiser.state_dict().items()}
        with pytest.raises(Stop):
            optimiser.step(theta, Fit(0.0, np.array([1.0, 1.0])), stopping)
        assert theta.tolist() == [1.0, 2.0]
        after = optimiser.state_dict()
        assert all(np.array_equal(before[k], _plain(after[k])) for k in before)


def _plain(value: object) -> np.ndarray:
    return value.numpy().copy() if isinstance(value, torch.Tensor) else np.asarray(value)


def test_lbfgs_stalls_at_the_maximum_without_moving() -> None:
    """On -|theta - 1|^2 from its maximum no step increases the objective: theta stays and
    the method says it has stalled, instead of taking a step that makes things worse."""

    def evaluate(theta: np.ndarray) -> Fit:
        return Fit(-float(((theta - 1) ** 2).sum()), -2 * (theta - 1))

    lbfgs = LBFGS(2, learning_rate=0.1)
    theta = np.zeros(2)
    fit = evaluate(theta)
    for _ in range(50):
        fit = lbfgs.step(theta, fit, evaluate)
        if lbfgs.stalled:
            break
    assert lbfgs.stalled
    np.testing.assert_allclose(theta, [1.0, 1.0], atol=1e-6)
    stuck = theta.copy()
    assert lbfgs.step(theta, fit, evaluate) is fit and np.array_equal(theta, stuck)

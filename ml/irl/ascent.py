"""Gradient ascent on a linear reward's weights: L-BFGS, Adam or plain steps, each a
checkpointable object (`state_dict` / `load_state_dict`) so a stopped run resumes exactly.

MaxEnt IRL's objective is concave in the weights of a linear reward and its value is exact
(`ml.irl.maxent`), so a quasi-Newton method with a line search applies: L-BFGS (Nocedal &
Wright, "Numerical Optimization", 2nd ed., 2006, Algorithm 7.4 for the two-loop recursion,
Algorithm 3.1 for backtracking under the Armijo condition) reaches a given occupancy
tolerance in tens of iterations where Adam, imitation's choice, needs hundreds. Adam and
plain steps remain for comparison, and Adam is what the deep variant uses.

`step(theta, fit, evaluate)` moves theta in place and returns the evaluation at the new
theta, so every method costs at least one evaluation per iteration and the caller's loop is
the same for all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch

Method = Literal["lbfgs", "adam", "sgd"]
MEMORY = 10  # L-BFGS curvature pairs
ARMIJO = 1e-4  # sufficient-increase constant c1
MAX_HALVINGS = 30


@dataclass(frozen=True)
class Fit:
    """The objective at some theta (with its prior) and its gradient there, with whatever
    else the evaluation produced (`detail`, for reports)."""

    value: float
    gradient: np.ndarray  # g[k]
    detail: Any = None


Evaluate = Callable[[np.ndarray], Fit]


class Ascent(Protocol):
    # True once a step found no increase at all: the objective is at its maximum to the
    # precision of doubles, and more steps would change nothing.
    stalled: bool

    def step(self, theta: np.ndarray, fit: Fit, evaluate: Evaluate) -> Fit: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Adam:
    """Adam (Kingma & Ba 2015, Algorithm 1, default betas), or plain gradient steps."""

    stalled = False  # plain and Adam steps are taken whatever they do to the objective

    def __init__(self, n: int, *, learning_rate: float, plain: bool = False) -> None:
        self.learning_rate, self.plain = learning_rate, plain
        self.m, self.v = np.zeros(n), np.zeros(n)  # moments m[k], v[k]
        self.t = 0

    def step(self, theta: np.ndarray, fit: Fit, evaluate: Evaluate) -> Fit:
        """One step; theta and the moments change only once the new theta is evaluated, so a
        stop inside the evaluation leaves the state of the step boundary."""
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        grad, t = fit.gradient, self.t + 1
        if self.plain:
            new_theta = theta + self.learning_rate * grad
            m, v = self.m, self.v
        else:
            m = beta1 * self.m + (1 - beta1) * grad
            v = beta2 * self.v + (1 - beta2) * grad**2
            m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
            new_theta = theta + self.learning_rate * m_hat / (np.sqrt(v_hat) + eps)
        new = evaluate(new_theta)
        self.m[...], self.v[...], self.t = m, v, t
        theta[...] = new_theta
        return new

    def state_dict(self) -> dict[str, Any]:
        m, v = torch.from_numpy(self.m.copy()), torch.from_numpy(self.v.copy())
        return {"m": m, "v": v, "t": self.t}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.m[...] = state["m"].numpy()
        self.v[...] = state["v"].numpy()
        self.t = int(state["t"])


class LBFGS:
    """Limited-memory BFGS for maximisation, with a backtracking Armijo line search.

    Curvature pairs (s, y) = (theta_new - theta, -(g_new - g)) are those of minimising -J;
    a pair with s . y <= 0 (no positive curvature along s, which concavity rules out up to
    rounding) is skipped. The first step, with no curvature yet, is scaled to move theta by
    `learning_rate` (the gradient's scale is unknown). A step is taken only when it
    increases the objective enough (and to a finite value); when no step size does, the
    curvature is forgotten and the gradient tried alone, and when even that fails the method
    has `stalled`: theta is at the maximum as far as doubles can tell."""

    def __init__(self, n: int, *, learning_rate: float, memory: int = MEMORY) -> None:
        self.learning_rate = learning_rate
        self.s = np.zeros((memory, n))  # s[j, k], oldest first
        self.y = np.zeros((memory, n))  # y[j, k]
        self.count = 0  # pairs held
        self.stalled = False

    def direction(self, grad: np.ndarray) -> np.ndarray:
        """The ascent direction H g (Nocedal & Wright Algorithm 7.4, for -J)."""
        q = -grad.copy()
        s, y = self.s[: self.count], self.y[: self.count]
        rho = 1.0 / np.einsum("jk,jk->j", s, y)
        alpha = np.zeros(self.count)
        for j in reversed(range(self.count)):
            alpha[j] = rho[j] * (s[j] @ q)
            q -= alpha[j] * y[j]
        if self.count:
            q *= (s[-1] @ y[-1]) / (y[-1] @ y[-1])  # H_0 = gamma I
        else:
            q *= self.learning_rate / max(float(np.linalg.norm(grad)), 1e-12)
        for j in range(self.count):
            beta = rho[j] * (y[j] @ q)
            q += (alpha[j] - beta) * s[j]
        return -q

    def step(self, theta: np.ndarray, fit: Fit, evaluate: Evaluate) -> Fit:
        for attempt in range(2):  # with the curvature held, then with the gradient alone
            if attempt:
                self.count = 0
            direction = self.direction(fit.gradient)
            slope = float(fit.gradient @ direction)
            if slope <= 0:  # not an ascent direction (stale curvature)
                continue
            size = 1.0
            for _ in range(MAX_HALVINGS):
                new = evaluate(theta + size * direction)
                if np.isfinite(new.value) and new.value >= fit.value + ARMIJO * size * slope:
                    self.remember(size * direction, fit.gradient - new.gradient)
                    theta += size * direction
                    return new
                size *= 0.5
        self.stalled = True
        return fit

    def remember(self, s: np.ndarray, y: np.ndarray) -> None:
        if s @ y <= 1e-12 * float(np.linalg.norm(s) * np.linalg.norm(y)):
            return
        if self.count == len(self.s):
            self.s[:-1], self.y[:-1] = self.s[1:].copy(), self.y[1:].copy()
            self.count -= 1
        self.s[self.count], self.y[self.count] = s, y
        self.count += 1

    def state_dict(self) -> dict[str, Any]:
        return {
            "s": torch.from_numpy(self.s.copy()),
            "y": torch.from_numpy(self.y.copy()),
            "count": self.count,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.s[...] = state["s"].numpy()
        self.y[...] = state["y"].numpy()
        self.count = int(state["count"])


def ascent(method: Method, n: int, learning_rate: float) -> Adam | LBFGS:
    if method == "lbfgs":
        return LBFGS(n, learning_rate=learning_rate)
    return Adam(n, learning_rate=learning_rate, plain=method == "sgd")

"""Image quality metrics on synthetic features: closed forms, exact answers, orderings."""

from __future__ import annotations

import numpy as np
import pytest

from ml.gan.image_metrics import (
    class_distribution,
    classifier_score,
    density_coverage,
    feature_statistics,
    frechet_distance,
    frechet_distance_from_statistics,
    kernel_inception_distance,
    polynomial_mmd2_unbiased,
    requested_label_fraction,
)


def gaussian(n: int, d: int = 8, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


# --- Fréchet distance ---------------------------------------------------------------------


def test_frechet_distance_of_a_set_with_itself_is_zero() -> None:
    x = gaussian(500)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_closed_form_for_scaled_identities() -> None:
    # N(mu1, I) and N(mu2, 4 I): |mu1 - mu2|^2 + d + 4d - 2 * 2d = |mu1 - mu2|^2 + d
    d = 5
    mu1, mu2 = np.zeros(d), np.arange(d, dtype=float)
    fd = frechet_distance_from_statistics(mu1, np.eye(d), mu2, 4.0 * np.eye(d))
    assert fd == pytest.approx(float(mu2 @ mu2) + d, rel=1e-12)


def test_frechet_distance_agrees_with_scipy_sqrtm_on_non_commuting_covariances() -> None:
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = (
        (mu1 - mu2) @ (mu1 - mu2)
        + np.trace(s1)
        + np.trace(s2)
        - 2.0 * np.trace(linalg.sqrtm(s1 @ s2).real)
    )
    assert frechet_distance_from_statistics(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_grows_with_the_shift_and_survives_singular_covariances() -> None:
    x = gaussian(400)
    distances = [frechet_distance(x, gaussian(400, shift=s, seed=1)) for s in (0.0, 0.5, 2.0)]
    assert distances[0] < distances[1] < distances[2]
    assert distances[0] < 0.5  # sampling noise only
    few = gaussian(4, d=16)  # 4 samples in 16 dimensions: rank-3 covariance
    assert np.isfinite(frechet_distance(few, gaussian(4, d=16, seed=1)))
    assert frechet_distance(few, few) == pytest.approx(0.0, abs=1e-8)


def test_feature_statistics_and_shape_errors() -> None:
    mu, sigma = feature_statistics(gaussian(50, d=3))
    assert mu.shape == (3,) and sigma.shape == (3, 3)
    with pytest.raises(ValueError, match="feature sizes"):
        frechet_distance(gaussian(10, d=3), gaussian(10, d=4))
    with pytest.raises(ValueError, match="non-finite"):
        frechet_distance(np.full((3, 2), np.nan), gaussian(3, d=2))
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(np.zeros((1, 2)))


# --- KID ----------------------------------------------------------------------------------


def test_kid_is_about_zero_within_its_interval_for_one_distribution() -> None:
    kid = kernel_inception_distance(
        gaussian(600),
        gaussian(600, seed=1),
        rng=np.random.default_rng(0),
        subsets=50,
        subset_size=300,
    )
    assert kid.low <= 0.0 <= kid.high
    assert abs(kid.value) < kid.high - kid.low
    assert (kid.subsets, kid.subset_size, kid.n_real, kid.n_fake) == (50, 300, 600, 600)
    assert kid.confidence == 0.95


def test_kid_is_large_for_another_distribution_and_its_interval_excludes_zero() -> None:
    same = kernel_inception_distance(
        gaussian(600), gaussian(600, seed=1), rng=np.random.default_rng(0), subsets=50
    )
    other = kernel_inception_distance(
        gaussian(600), gaussian(400, shift=1.0, seed=1), rng=np.random.default_rng(0), subsets=50
    )
    assert other.low > 0.0
    assert other.value > 10 * (same.high - same.low)
    assert other.subset_size == 200  # capped at half the smaller set


def test_kid_estimate_is_the_unbiased_mmd_and_subsets_hold_half_of_each_set() -> None:
    x, y = gaussian(30, d=4), gaussian(30, d=4, shift=0.3, seed=1)

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float((a @ b / 4 + 1.0) ** 3)

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert polynomial_mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    # asked for more than there are: half of each set, so the subsets differ
    kid = kernel_inception_distance(x, y, rng=np.random.default_rng(0), subsets=20)
    assert kid.subset_size == 15 and kid.std > 0.0 and kid.low < kid.high
    one = kernel_inception_distance(x, y, rng=np.random.default_rng(0), subsets=1)
    assert one.std == 0.0 and one.low == one.value == one.high
    with pytest.raises(ValueError, match="at least 4"):
        kernel_inception_distance(x[:3], y, rng=np.random.default_rng(0))


def test_kid_is_deterministic_given_its_generator() -> None:
    x, y = gaussian(200), gaussian(200, seed=1)
    first = kernel_inception_distance(x, y, rng=np.random.default_rng(5), subset_size=50)
    second = kernel_inception_distance(x, y, rng=np.random.default_rng(5), subset_size=50)
    assert first == second


# --- Density and coverage -----------------------------------------------------------------


def test_density_and_coverage_exact_on_a_line() -> None:
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k = 1: every radius is 1
    result = density_coverage(real, np.array([[0.5]]), k=1)  # strictly inside the balls of 0, 1
    assert (result.density, result.coverage) == (2.0, 0.5)
    on_edge = density_coverage(real, np.array([[4.0]]), k=1)  # at distance 1 of 3: outside
    assert (on_edge.density, on_edge.coverage) == (0.0, 0.0)


def test_density_and_coverage_near_one_for_one_distribution_and_zero_far_away() -> None:
    real = gaussian(800, d=4)
    same = density_coverage(real, gaussian(800, d=4, seed=1))
    assert 0.8 < same.density < 1.2
    assert same.coverage > 0.9  # expected 1 - 1/2^5 for equal counts
    assert (same.k, same.n_real, same.n_fake) == (5, 800, 800)
    far = density_coverage(real, gaussian(300, d=4, shift=20.0, seed=1))
    assert (far.density, far.coverage) == (0.0, 0.0)
    with pytest.raises(ValueError, match="k must be"):
        density_coverage(real[:5], real, k=5)


# --- Classifier outputs -------------------------------------------------------------------


def test_classifier_score_bounds() -> None:
    confident_and_balanced = np.eye(10)[np.arange(100) % 10]
    assert classifier_score(confident_and_balanced) == pytest.approx(10.0, rel=1e-9)
    collapsed = np.tile(np.eye(10)[3], (50, 1))
    assert classifier_score(collapsed) == pytest.approx(1.0, rel=1e-9)
    unsure = np.full((20, 10), 0.1)
    assert classifier_score(unsure) == pytest.approx(1.0, rel=1e-9)
    two_classes = np.eye(10)[np.arange(100) % 2]
    assert classifier_score(two_classes) == pytest.approx(2.0, rel=1e-9)


def test_class_distribution_exact() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 9])
    result = class_distribution(labels)
    assert result.counts == [2, 2, 2, 2, 1, 0, 0, 0, 0, 1]
    assert result.fractions[0] == 0.2 and result.fractions[5] == 0.0
    assert (result.classes_covered, result.min_fraction, result.n) == (6, 0.0, 10)
    expected_kl = 4 * 0.2 * np.log(2.0) + 2 * 0.1 * np.log(1.0)
    assert result.reverse_kl == pytest.approx(expected_kl, rel=1e-12)
    assert class_distribution(labels, min_count=2).classes_covered == 4

    collapsed = class_distribution(np.zeros(7, dtype=np.int64))
    assert collapsed.classes_covered == 1
    assert collapsed.reverse_kl == pytest.approx(np.log(10.0), rel=1e-12)
    balanced = class_distribution(np.arange(1000) % 10)
    assert (balanced.classes_covered, balanced.min_fraction, balanced.reverse_kl) == (10, 0.1, 0.0)

    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        class_distribution(np.array([10]))
    with pytest.raises(ValueError, match="integer"):
        class_distribution(np.array([0.5]))


def test_requested_label_fraction_exact() -> None:
    requested = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    predicted = np.array([0, 1, 2, 3, 4, 5, 0, 0])
    assert requested_label_fraction(predicted, requested) == 0.75
    assert requested_label_fraction(requested, requested) == 1.0
    with pytest.raises(ValueError, match="equal 1-d"):
        requested_label_fraction(predicted[:3], requested)

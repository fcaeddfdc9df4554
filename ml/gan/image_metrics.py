"""Quality metrics for generated images: pure functions over arrays.

Most of them compare *features* (one row per image, from a fixed network: here the digits
classifier of `ml.gan.digits`) of generated images with those of real ones; the others read
the classifier's outputs. None depends on global random state: the only randomised one (KID)
takes an `np.random.Generator`.

- `frechet_distance` (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule
  Converge to a Local Nash Equilibrium"): the Fréchet (2-Wasserstein) distance between
  Gaussians fitted to the two feature sets. On the digits classifier's features it is
  `eval/fd_digits`: the same formula as FID, but on another network, so its values are
  comparable only with each other, within Crucible, never with published FIDs. It is biased
  upward on small samples, so compare values computed with the same sample counts.
- `kernel_inception_distance` (Binkowski et al. 2018, "Demystifying MMD GANs"): the squared
  MMD under the cubic polynomial kernel, unbiased estimator, averaged over random subsets;
  the spread of the subsets gives its confidence interval.
- `density_coverage` (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
  Generative Models"): k-nearest-neighbour balls around the real features; density (fidelity)
  counts how many balls the generated features fall in, coverage (diversity) how many real
  balls hold at least one generated feature.
- `classifier_score`: the Inception score (Salimans et al. 2016, "Improved Techniques for
  Training GANs") computed on another classifier's class probabilities.
- `class_distribution` and `requested_label_fraction`: how the generated images spread over
  the classes (mode coverage), and for a conditional model how often it draws the class it
  was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _as_features(x: np.ndarray, name: str) -> np.ndarray:
    """x as a float64 (n, d) array, or ValueError."""
    array = np.asarray(x, dtype=np.float64)
    if array.ndim != 2 or len(array) == 0:
        raise ValueError(f"{name} must be a non-empty (n, d) array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds non-finite values")
    return array


def _check_same_dim(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} and {b.shape[1]}")


# --- Fréchet distance ---------------------------------------------------------------------


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean mu[d] and covariance sigma[d, d] (unbiased, n - 1) of features[n, d]; a
    reference set's statistics can be computed once and passed to
    `frechet_distance_from_statistics`."""
    x = _as_features(features, "features")
    if len(x) < 2:
        raise ValueError("a covariance needs at least 2 samples")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix, by an eigen-
    decomposition; round-off negative eigenvalues are taken as 0."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    root = np.sqrt(np.clip(eigenvalues, 0.0, None))
    return (eigenvectors * root) @ eigenvectors.T


def frechet_distance_from_statistics(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)) (Heusel et al. 2017, eq. 6;
    Dowson & Landau 1982 for the Gaussian case).

    tr((S1 S2)^(1/2)) is computed as the sum of the square roots of the eigenvalues of the
    symmetric PSD matrix S1^(1/2) S2 S1^(1/2), which has the same eigenvalues as S1 S2: no
    general (complex) matrix square root, no imaginary round-off to drop, no epsilon needed on
    singular covariances (fewer samples than features, dead units). Never negative.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            f"statistics disagree in shape: {mu1.shape}, {sigma1.shape}, {mu2.shape}, "
            f"{sigma2.shape}"
        )
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1  # symmetric PSD, eigenvalues those of sigma1 @ sigma2
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2.0), 0.0, None)).sum()
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root
    return float(max(distance, 0.0))


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to features_a[n, d] and features_b[m, d]
    (see `frechet_distance_from_statistics`); 0 for identical sets."""
    a = _as_features(features_a, "features_a")
    b = _as_features(features_b, "features_b")
    _check_same_dim(a, b)
    return frechet_distance_from_statistics(*feature_statistics(a), *feature_statistics(b))


# --- Kernel inception distance ------------------------------------------------------------


@dataclass(frozen=True)
class KID:
    """A KID estimate: `value` the mean of the subset estimates, `std` their spread, and
    [`low`, `high`] the central `confidence` interval of the subset estimates.

    Each subset holds at most half of each set. By the delete-d jackknife with d = n/2 (Shao &
    Wu 1989, "A general theory for jackknife variance estimation"), the spread of half-sample
    estimates approximates the sampling spread of the estimate from all the samples, so the
    interval says how far the value could move on a fresh draw of as many samples; smaller
    subsets (`subset_size` below half) make it wider, hence conservative. Subsets as large as
    the sets would all be the same samples and their spread would say nothing, which is why
    they are capped at half. The unbiased estimator is negative about half the time when the
    distributions match; the values scale with the features' magnitude (cube of it).
    """

    value: float
    std: float
    low: float
    high: float
    confidence: float
    subsets: int
    subset_size: int
    n_real: int
    n_fake: int


def _polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3, the kernel of Binkowski et al. 2018 (section 5)."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """One KID estimate: the unbiased estimate of MMD^2 (Gretton et al. 2012, Lemma 6) between
    x[m, d] and y[m, d] under the cubic polynomial kernel: within-set kernel means without the
    diagonal, minus twice the cross mean."""
    if x.shape != y.shape or x.ndim != 2 or len(x) < 2:
        raise ValueError(f"x and y must be equal (m >= 2, d) arrays, got {x.shape}, {y.shape}")
    m = len(x)
    k_xx = _polynomial_kernel(x, x)
    k_yy = _polynomial_kernel(y, y)
    k_xy = _polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kernel_inception_distance(
    real_features: np.ndarray,
    fake_features: np.ndarray,
    *,
    rng: np.random.Generator,
    subsets: int = 100,
    subset_size: int = 1000,
    confidence: float = 0.95,
) -> KID:
    """KID (Binkowski et al. 2018) between real_features[n, d] and fake_features[m, d]:
    `subsets` times, draw min(subset_size, n // 2, m // 2) rows from each side without
    replacement and take the unbiased squared MMD under the cubic polynomial kernel; report
    their mean and spread (see `KID`). About 0 when the two sets come from one distribution."""
    real = _as_features(real_features, "real_features")
    fake = _as_features(fake_features, "fake_features")
    _check_same_dim(real, fake)
    if subsets < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    size = min(subset_size, len(real) // 2, len(fake) // 2)
    if size < 2:
        raise ValueError("KID needs at least 4 samples on each side")
    estimates = np.empty(subsets)
    for i in range(subsets):
        x = real[rng.choice(len(real), size, replace=False)]
        y = fake[rng.choice(len(fake), size, replace=False)]
        estimates[i] = polynomial_mmd2_unbiased(x, y)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(estimates, [tail, 1.0 - tail])
    return KID(
        value=float(estimates.mean()),
        std=float(estimates.std(ddof=1)) if subsets > 1 else 0.0,
        low=float(low),
        high=float(high),
        confidence=confidence,
        subsets=subsets,
        subset_size=size,
        n_real=len(real),
        n_fake=len(fake),
    )


# --- Density and coverage -----------------------------------------------------------------


@dataclass(frozen=True)
class DensityCoverage:
    """Density (fidelity; about 1 when the generated samples follow the real distribution,
    above 1 when they crowd its dense regions, about 0 far from it) and coverage (diversity;
    the fraction of real samples whose neighbourhood holds a generated one, in [0, 1]),
    with the `k` and the sample counts they were computed from."""

    density: float
    coverage: float
    k: int
    n_real: int
    n_fake: int


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """d2[i, j] = |a_i - b_j|^2, clipped at 0 against round-off."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d2, 0.0)


def density_coverage(
    real_features: np.ndarray, fake_features: np.ndarray, *, k: int = 5
) -> DensityCoverage:
    """Density and coverage of Naeem et al. 2020 (eqs. 3 and 4), k = 5 as in the paper.

    Each real sample X_i gets the ball B(X_i, r_i), r_i the distance to its k-th nearest
    other real sample. For N real and M generated samples Y_j:
    density = 1/(k M) sum_j #{i : Y_j in B(X_i, r_i)},
    coverage = 1/N #{i : some Y_j in B(X_i, r_i)}.
    A point is inside a ball when strictly closer than its radius, as in the authors' code.
    """
    real = _as_features(real_features, "real_features")
    fake = _as_features(fake_features, "fake_features")
    _check_same_dim(real, fake)
    if not 1 <= k < len(real):
        raise ValueError(f"k must be in [1, {len(real) - 1}] for {len(real)} real samples")
    real_d2 = _sq_distances(real, real)  # real_d2[i, j] = |X_i - X_j|^2
    np.fill_diagonal(real_d2, np.inf)  # a sample is not its own neighbour
    radius2 = np.partition(real_d2, k - 1, axis=1)[:, k - 1]  # r_i^2
    inside = _sq_distances(real, fake) < radius2[:, None]  # inside[i, j]: Y_j in B(X_i, r_i)
    return DensityCoverage(
        density=float(inside.sum() / (k * len(fake))),
        coverage=float(inside.any(axis=1).mean()),
        k=k,
        n_real=len(real),
        n_fake=len(fake),
    )


# --- Classifier outputs -------------------------------------------------------------------


def classifier_score(probabilities: np.ndarray, eps: float = 1e-12) -> float:
    """The Inception score of Salimans et al. 2016 on another classifier:
    exp(E_x KL(p(y|x) || p(y))) with p(y) the mean of p(y|x) over the samples. From 1 (every
    sample gets the same class distribution) to the number of classes (each sample is
    classified with certainty and the classes are equally frequent). probabilities[n, c]."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"probabilities must be a non-empty (n, classes) array, got {p.shape}")
    marginal = p.mean(axis=0)  # p(y)
    kl = (p * (np.log(p + eps) - np.log(marginal + eps)[None, :])).sum(axis=1)
    return float(np.exp(kl.mean()))


@dataclass(frozen=True)
class ClassDistribution:
    """How n samples spread over the classes: `counts` and `fractions` per class,
    `classes_covered` (classes with at least `min_count` samples), the smallest fraction, and
    the reverse KL divergence KL(generated || reference), the reference being uniform unless
    given (the 2-D mixtures' "reverse KL" of PacGAN, over classes instead of modes)."""

    counts: list[int]
    fractions: list[float]
    classes_covered: int
    min_fraction: float
    reverse_kl: float
    n: int


def class_distribution(
    labels: np.ndarray,
    num_classes: int = 10,
    *,
    min_count: int = 1,
    reference: np.ndarray | None = None,
) -> ClassDistribution:
    """The class distribution of predicted labels[n] (ints in [0, num_classes)); `reference`
    (num_classes probabilities) defaults to uniform. Classes never predicted add nothing to
    the reverse KL (0 log 0 = 0)."""
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) == 0 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be a non-empty 1-d integer array, got {y.shape} {y.dtype}")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes})")
    counts = np.bincount(y, minlength=num_classes)
    fractions = counts / len(y)
    ref = (
        np.full(num_classes, 1.0 / num_classes)
        if reference is None
        else np.asarray(reference, np.float64)
    )
    if ref.shape != (num_classes,) or (ref <= 0).any():
        raise ValueError(f"reference must be {num_classes} positive probabilities")
    ref = ref / ref.sum()
    seen = fractions > 0
    reverse_kl = float((fractions[seen] * np.log(fractions[seen] / ref[seen])).sum())
    return ClassDistribution(
        counts=[int(c) for c in counts],
        fractions=[float(f) for f in fractions],
        classes_covered=int((counts >= min_count).sum()),
        min_fraction=float(fractions.min()),
        reverse_kl=reverse_kl,
        n=len(y),
    )


def requested_label_fraction(predicted: np.ndarray, requested: np.ndarray) -> float:
    """For a conditional model: the fraction of samples the classifier assigns to the label
    they were generated for. predicted[n] and requested[n] are integer labels."""
    p = np.asarray(predicted)
    r = np.asarray(requested)
    if p.ndim != 1 or p.shape != r.shape or len(p) == 0:
        raise ValueError(f"predicted and requested must be equal 1-d arrays: {p.shape}, {r.shape}")
    return float((p == r).mean())

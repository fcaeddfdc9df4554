"""The built-in `digits` images and the small classifier that judges generated digits.

`load_digits_dataset` gives scikit-learn's 8x8 handwritten digits (1,797 images shipped with
scikit-learn, no download; Alpaydin & Kaynak 1995, UCI "Optical Recognition of Handwritten
Digits") as float32 images[n, 1, 8, 8] scaled from 0..16 to [-1, 1] (a tanh generator's
range) with int64 labels[n], and a fixed held-out split: the same permutation, from a fixed
seed, in every process, so "held-out" always names the same 360 images.

`digits_classifier` trains a small conv net on the training split, deterministically (its
weights come from its seed, through `ml.core.seeding`, on the CPU, whatever the global random
state, which it leaves untouched), to about 98% held-out accuracy in a few seconds of one CPU
core, and caches it in the process (and, when given a folder, on disk). Its `features` (the
penultimate layer), `probabilities` and `predict` feed the image metrics of
`ml.gan.image_metrics`; `digits_quality` computes all of them for a batch of generated
images, under their metric names (`eval/fd_digits`, ...). Like FID's Inception network, the
classifier is fixed: the values are comparable with each other, within Crucible, only.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from ml.core.seeding import derived_seed, numpy_rng, seeded_torch, torch_rng
from ml.gan import image_metrics

NUM_CLASSES = 10
IMAGE_SHAPE = (1, 8, 8)
HELDOUT_SIZE = 360  # about a fifth of the 1,797 images
SPLIT_SEED = 8  # the held-out split's permutation; changing it changes every eval/ value
FEATURES = 64  # width of the penultimate layer, the features the metrics compare
CLASSIFIER_VERSION = 1  # part of the on-disk cache's file name: bump when training changes

Split = Literal["train", "heldout", "all"]


# --- Data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigitsData:
    """images[n, 1, 8, 8] float32 in [-1, 1] and labels[n] int64 in [0, 10)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@functools.cache
def _all_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, labels, permutation), read once per process and kept read-only."""
    bunch = load_digits()
    images = (np.asarray(bunch.images, np.float32) / 8.0 - 1.0).reshape(-1, *IMAGE_SHAPE)
    labels = np.asarray(bunch.target, np.int64)
    permutation = numpy_rng(SPLIT_SEED).permutation(len(labels))
    for array in (images, labels, permutation):
        array.flags.writeable = False
    return images, labels, permutation


def load_digits_dataset(split: Split = "all") -> DigitsData:
    """The digits of `split`: "train" (1,437 images), "heldout" (360, never seen by the
    classifier) or "all" (1,797, in scikit-learn's order). Fresh writable copies."""
    images, labels, permutation = _all_digits()
    if split == "all":
        index = np.arange(len(labels))
    elif split == "heldout":
        index = permutation[:HELDOUT_SIZE]
    elif split == "train":
        index = permutation[HELDOUT_SIZE:]
    else:
        raise ValueError(f"split must be 'train', 'heldout' or 'all', got {split!r}")
    return DigitsData(images=images[index].copy(), labels=labels[index].copy())


# --- Classifier ---------------------------------------------------------------------------


class DigitsNet(nn.Module):
    """Two 3x3 convolutions, a 2x2 max-pool, a 64-unit layer and the logits. The features
    are that layer before its ReLU: after it, a third of the units are 0 on every digit."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 32 x 4 x 4
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, FEATURES),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(FEATURES, NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x[n, 1, 8, 8] -> logits[n, 10]
        return self.head(self.body(x))


ImagesLike = np.ndarray | torch.Tensor


class DigitsClassifier:
    """A trained `DigitsNet` in evaluation mode on `device`. Every method takes images as
    (n, 1, 8, 8), (n, 8, 8) or (n, 64) arrays or tensors in the data's [-1, 1] scale, works
    in batches without gradients, and answers NumPy arrays."""

    def __init__(self, net: DigitsNet, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        for parameter in self.net.parameters():
            parameter.requires_grad_(False)

    def _batches(self, images: ImagesLike, batch_size: int = 2048) -> list[torch.Tensor]:
        x = torch.as_tensor(images, dtype=torch.float32)
        if x.ndim < 2 or math.prod(x.shape[1:]) != 64:
            raise ValueError(f"images must be (n, 1, 8, 8) or (n, 64), got {tuple(x.shape)}")
        x = x.reshape(-1, *IMAGE_SHAPE)
        return [x[i : i + batch_size].to(self.device) for i in range(0, len(x), batch_size)]

    @torch.inference_mode()
    def features(self, images: ImagesLike) -> np.ndarray:
        """The penultimate layer (before its ReLU), float64 features[n, 64]."""
        out = [self.net.body(x).cpu() for x in self._batches(images)]
        return torch.cat(out).double().numpy() if out else np.zeros((0, FEATURES))

    @torch.inference_mode()
    def probabilities(self, images: ImagesLike) -> np.ndarray:
        """Class probabilities, float64 p[n, 10] (rows sum to 1)."""
        out = [torch.softmax(self.net(x).double(), dim=1).cpu() for x in self._batches(images)]
        return torch.cat(out).numpy() if out else np.zeros((0, NUM_CLASSES))

    def predict(self, images: ImagesLike) -> np.ndarray:
        """The most probable class, int64 labels[n]."""
        return self.probabilities(images).argmax(axis=1).astype(np.int64)

    def accuracy(self, data: DigitsData) -> float:
        """The fraction of `data` classified as labelled."""
        return float((self.predict(data.images) == data.labels).mean())


def train_digits_classifier(
    seed: int = 0, *, epochs: int = 15, batch_size: int = 64, learning_rate: float = 3e-3
) -> DigitsNet:
    """A `DigitsNet` trained on the training split with Adam on the CPU (for weights that do
    not depend on the device). Initial weights from `seed` (`seeded_torch`, which restores the
    global generator), minibatch order from a generator of its own: deterministic, and the
    caller's random state is untouched. Not cached: `digits_classifier` is.

    It trains on one intra-op thread, set for the second or two it takes and then put back:
    the weights then do not depend on the caller's thread count (summation order), and on a
    busy machine several threads on a net this small only wait for each other (measured 60 s
    instead of 1.5 s with two threads while another process held one of two cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(seed, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    finally:
        torch.set_num_threads(threads)


def _train(seed: int, *, epochs: int, batch_size: int, learning_rate: float) -> DigitsNet:
    data = load_digits_dataset("train")
    x = torch.from_numpy(data.images)
    y = torch.from_numpy(data.labels)
    with seeded_torch(derived_seed(seed, 0)):
        net = DigitsNet()
    order_rng = torch_rng(derived_seed(seed, 1))
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=order_rng)
        for start in range(0, len(y), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(x[batch]), y[batch]).backward()
            optimizer.step()
        schedule.step()
    return net.eval()


_cache_lock = threading.Lock()


def digits_classifier(
    seed: int = 0, device: torch.device | str = "cpu", cache_dir: str | Path | None = None
) -> DigitsClassifier:
    """The digits classifier of `seed` on `device`, trained once per process (a few seconds)
    and then shared; with `cache_dir`, its weights are also kept in that folder (loaded with
    `weights_only=True`) so other processes skip the training. Treat it as read-only."""
    key_dir = None if cache_dir is None else str(Path(cache_dir).resolve())
    with _cache_lock:
        return _cached_classifier(seed, str(torch.device(device)), key_dir)


@functools.lru_cache(maxsize=8)
def _cached_classifier(seed: int, device: str, cache_dir: str | None) -> DigitsClassifier:
    net = None
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"digits-classifier-v{CLASSIFIER_VERSION}-seed{seed}.pt"
        if path.exists():
            net = DigitsNet()
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    if net is None:
        net = train_digits_classifier(seed)
        if path is not None:
            _save_atomically(net, path)
    return DigitsClassifier(net, device)


def _save_atomically(net: nn.Module, path: Path) -> None:
    """Write to a temporary file beside `path`, then rename: a concurrent reader sees the
    whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        torch.save(net.state_dict(), temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- All the image metrics at once --------------------------------------------------------


def digits_quality(
    classifier: DigitsClassifier,
    samples: ImagesLike,
    *,
    rng: np.random.Generator,
    requested_labels: np.ndarray | None = None,
    reference: DigitsData | None = None,
    kid_subsets: int = 50,
    kid_subset_size: int = 1000,
) -> dict[str, float]:
    """Every image metric of generated digits samples[n, 1, 8, 8] against `reference` (the
    held-out digits unless given), by metric name: `eval/fd_digits`, `eval/kid_digits` with
    its interval (`_low`, `_high`), `eval/density`, `eval/coverage` (k = 5),
    `eval/classifier_score`, `eval/classes_covered`, `eval/min_class_fraction`,
    `eval/class_reverse_kl`, `eval/label_accuracy` when `requested_labels` are given, and the
    sample counts `eval/samples` and `eval/reference_samples`. `rng` draws KID's subsets."""
    ref = load_digits_dataset("heldout") if reference is None else reference
    real = classifier.features(ref.images)
    fake = classifier.features(samples)
    probabilities = classifier.probabilities(samples)
    predicted = probabilities.argmax(axis=1)
    kid = image_metrics.kernel_inception_distance(
        real, fake, rng=rng, subsets=kid_subsets, subset_size=kid_subset_size
    )
    dc = image_metrics.density_coverage(real, fake, k=5)
    classes = image_metrics.class_distribution(predicted, NUM_CLASSES)
    metrics = {
        "eval/fd_digits": image_metrics.frechet_distance(real, fake),
        "eval/kid_digits": kid.value,
        "eval/kid_digits_low": kid.low,
        "eval/kid_digits_high": kid.high,
        "eval/density": dc.density,
        "eval/coverage": dc.coverage,
        "eval/classifier_score": image_metrics.classifier_score(probabilities),
        "eval/classes_covered": float(classes.classes_covered),
        "eval/min_class_fraction": classes.min_fraction,
        "eval/class_reverse_kl": classes.reverse_kl,
        "eval/samples": float(len(fake)),
        "eval/reference_samples": float(len(real)),
    }
    if requested_labels is not None:
        metrics["eval/label_accuracy"] = image_metrics.requested_label_fraction(
            predicted, requested_labels
        )
    return metrics

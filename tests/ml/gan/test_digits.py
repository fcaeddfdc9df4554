"""The built-in digits, their classifier, and the image metrics on real digits and on noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.core.metrics import check_name
from ml.gan.digits import (
    CLASSIFIER_VERSION,
    HELDOUT_SIZE,
    DigitsClassifier,
    DigitsData,
    DigitsNet,
    digits_classifier,
    digits_quality,
    load_digits_dataset,
    train_digits_classifier,
)
from ml.gan.image_metrics import density_coverage, frechet_distance, kernel_inception_distance


@pytest.fixture(scope="module")
def classifier() -> DigitsClassifier:
    return digits_classifier(seed=0)


@pytest.fixture(scope="module")
def heldout() -> DigitsData:
    return load_digits_dataset("heldout")


@pytest.fixture(scope="module")
def train_split() -> DigitsData:
    return load_digits_dataset("train")


def uniform_noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 1, 8, 8)).astype(np.float32)


# --- Data ---------------------------------------------------------------------------------


def test_digits_are_scaled_images_with_labels_and_a_fixed_split(
    heldout: DigitsData, train_split: DigitsData
) -> None:
    everything = load_digits_dataset()
    assert everything.images.shape == (1797, 1, 8, 8) and everything.images.dtype == np.float32
    assert everything.labels.dtype == np.int64
    assert everything.images.min() == -1.0 and everything.images.max() == 1.0
    assert set(everything.labels.tolist()) == set(range(10))
    assert len(heldout) == HELDOUT_SIZE and len(train_split) == 1797 - HELDOUT_SIZE
    # the split is a partition of the images, and the same every time
    joined = np.concatenate([heldout.images, train_split.images]).reshape(1797, 64)
    order = np.lexsort(joined.T)
    reference = everything.images.reshape(1797, 64)
    assert np.array_equal(joined[order], reference[np.lexsort(reference.T)])
    again = load_digits_dataset("heldout")
    assert np.array_equal(again.images, heldout.images)
    assert np.array_equal(again.labels, heldout.labels)
    assert np.bincount(heldout.labels, minlength=10).min() >= 20  # every class is held out
    again.images[0] = 5.0  # copies: the cached arrays stay as they were
    assert load_digits_dataset("heldout").images.max() == 1.0
    with pytest.raises(ValueError, match="split"):
        load_digits_dataset("test")  # type: ignore[arg-type]


# --- Classifier ---------------------------------------------------------------------------


def test_classifier_reaches_95_percent_on_held_out_digits(
    classifier: DigitsClassifier, heldout: DigitsData
) -> None:
    assert classifier.accuracy(heldout) >= 0.95


def test_classifier_is_deterministic_and_leaves_global_random_state_alone(
    classifier: DigitsClassifier, heldout: DigitsData
) -> None:
    torch_state = torch.get_rng_state()
    numpy_state = np.random.get_state(legacy=False)
    threads = torch.get_num_threads()
    again = DigitsClassifier(train_digits_classifier(seed=0))
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state(legacy=False)
    assert np.array_equal(after["state"]["key"], numpy_state["state"]["key"])
    assert after["state"]["pos"] == numpy_state["state"]["pos"]
    for name, value in classifier.net.state_dict().items():
        assert torch.equal(value, again.net.state_dict()[name]), name
    assert np.array_equal(again.predict(heldout.images), classifier.predict(heldout.images))
    assert digits_classifier(seed=0) is classifier  # trained once per process


def test_classifier_outputs_and_accepted_shapes(
    classifier: DigitsClassifier, heldout: DigitsData
) -> None:
    images = heldout.images[:50]
    p = classifier.probabilities(images)
    assert p.shape == (50, 10) and np.allclose(p.sum(axis=1), 1.0)
    features = classifier.features(images)
    assert features.shape == (50, 64) and features.dtype == np.float64
    labels = classifier.predict(images)
    assert labels.dtype == np.int64 and np.array_equal(labels, p.argmax(axis=1))
    for same in (images.reshape(50, 64), images.reshape(50, 8, 8), torch.from_numpy(images)):
        assert np.array_equal(classifier.predict(same), labels)
        assert np.allclose(classifier.features(same), features)
    with pytest.raises(ValueError, match="images must be"):
        classifier.predict(np.zeros((3, 1, 4, 4)))
    assert classifier.features(np.zeros((0, 64))).shape == (0, 64)


def test_classifier_weights_load_from_the_cache_folder(tmp_path: Path, heldout: DigitsData) -> None:
    # A file already in the folder is used as is: here one that always answers 3.
    net = DigitsNet()
    state = net.state_dict()
    state["head.1.bias"][3] = 1e4
    torch.save(state, tmp_path / f"digits-classifier-v{CLASSIFIER_VERSION}-seed7.pt")
    loaded = digits_classifier(seed=7, cache_dir=tmp_path)
    assert (loaded.predict(heldout.images) == 3).all()
    assert digits_classifier(seed=7, cache_dir=str(tmp_path)) is loaded


# --- Metrics on real digits and on noise --------------------------------------------------


def test_fd_ranks_real_digits_far_above_noise(
    classifier: DigitsClassifier, heldout: DigitsData, train_split: DigitsData
) -> None:
    real = classifier.features(heldout.images)
    train_features = classifier.features(train_split.images)
    noise = classifier.features(uniform_noise(1000))
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)
    fd_real = frechet_distance(real, train_features)
    fd_noise = frechet_distance(real, noise)
    assert fd_real * 10 < fd_noise


def test_kid_is_zero_within_its_interval_for_real_halves_and_large_for_noise(
    classifier: DigitsClassifier, train_split: DigitsData, heldout: DigitsData
) -> None:
    features = classifier.features(train_split.images)
    half = len(features) // 2
    same = kernel_inception_distance(
        features[:half], features[half:], rng=np.random.default_rng(0), subsets=50
    )
    assert same.low <= 0.0 <= same.high
    noise = kernel_inception_distance(
        classifier.features(heldout.images),
        classifier.features(uniform_noise(1000)),
        rng=np.random.default_rng(0),
        subsets=20,
    )
    assert noise.low > same.high
    assert (noise.n_real, noise.n_fake, noise.subset_size) == (
        HELDOUT_SIZE,
        1000,
        HELDOUT_SIZE // 2,
    )


def test_density_and_coverage_of_real_digits_and_of_noise(
    classifier: DigitsClassifier, train_split: DigitsData, heldout: DigitsData
) -> None:
    real = classifier.features(heldout.images)
    same = density_coverage(real, classifier.features(train_split.images))
    assert 0.7 < same.density < 1.3 and same.coverage > 0.9
    noise = density_coverage(real, classifier.features(uniform_noise(1000)))
    assert noise.density < 0.5 * same.density and noise.coverage < 0.5 * same.coverage


def test_digits_quality_names_and_values(
    classifier: DigitsClassifier, train_split: DigitsData
) -> None:
    real = digits_quality(
        classifier,
        train_split.images,
        rng=np.random.default_rng(0),
        requested_labels=train_split.labels,
        kid_subsets=20,
    )
    noise = digits_quality(
        classifier, uniform_noise(1000), rng=np.random.default_rng(0), kid_subsets=20
    )
    for name in real:
        check_name(name)
    assert set(real) - set(noise) == {"eval/label_accuracy"}
    assert real["eval/label_accuracy"] >= 0.99  # the classifier's own training images
    assert real["eval/classes_covered"] == 10 and real["eval/min_class_fraction"] > 0.08
    assert real["eval/classifier_score"] > 9.0 > noise["eval/classifier_score"]
    assert real["eval/fd_digits"] * 10 < noise["eval/fd_digits"]
    assert real["eval/kid_digits_low"] <= 0.0 < noise["eval/kid_digits_low"]
    assert real["eval/coverage"] > noise["eval/coverage"]
    assert (real["eval/samples"], real["eval/reference_samples"]) == (
        len(train_split),
        HELDOUT_SIZE,
    )
    # the requested-label fraction counts the samples classified as asked
    wrong = digits_quality(
        classifier,
        train_split.images[:100],
        rng=np.random.default_rng(0),
        requested_labels=(train_split.labels[:100] + 1) % 10,
        kid_subsets=2,
    )
    assert wrong["eval/label_accuracy"] <= 0.01

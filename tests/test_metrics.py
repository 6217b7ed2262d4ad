"""Tests of interp.metrics on hand-built configurations and against a brute-force Python route."""

import math

import pytest
import torch

from interp import metrics
from interp.metrics import (
    MemorizationEstimate,
    memorization_ratio,
    memorized_fraction,
    nearest_distance,
    nearest_neighbors,
)

DTYPE = torch.float64

# Training points at the origin, (3, 0) and (0, 4).
TRAIN = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]], dtype=DTYPE)


def brute_force_neighbors(samples, train, k):
    """Sorted (distance, index) pairs from math.dist, one sample and one training point at a time."""
    result = []
    for sample in samples.tolist():
        pairs = sorted((math.dist(sample, point), index) for index, point in enumerate(train.tolist()))
        result.append(pairs[:k])
    return result


def test_nearest_neighbors_hand_built_distances():
    samples = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [3.0, 4.0]], dtype=DTYPE)
    distances, indices = nearest_neighbors(samples, TRAIN, k=2)

    expected_distances = [[0.0, 3.0], [1.0, 2.0], [1.0, 3.0], [3.0, 4.0]]
    expected_indices = [[0, 1], [0, 1], [0, 2], [2, 1]]
    assert distances.tolist() == expected_distances, f"distances {distances.tolist()}"
    assert indices.tolist() == expected_indices, f"indices {indices.tolist()}"
    assert indices.dtype == torch.int64, f"indices dtype {indices.dtype}"


def test_nearest_neighbors_chunked_matches_brute_force(monkeypatch):
    """Tiny chunks force many merges of the running top k, and the result must not change."""
    generator = torch.Generator().manual_seed(3)
    train = torch.randn((37, 5), generator=generator, dtype=DTYPE)
    samples = torch.randn((23, 5), generator=generator, dtype=DTYPE)
    expected = brute_force_neighbors(samples, train, k=4)

    for chunk_elements in (5, 40, 2**22):
        monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", chunk_elements)
        distances, indices = nearest_neighbors(samples, train, k=4)
        for row, pairs in enumerate(expected):
            for column, (distance, index) in enumerate(pairs):
                assert indices[row, column].item() == index, (
                    f"chunk {chunk_elements}: sample {row}, neighbour {column}: index {indices[row, column].item()}, "
                    f"expected {index}"
                )
                assert distances[row, column].item() == pytest.approx(distance, rel=1e-14, abs=1e-14), (
                    f"chunk {chunk_elements}: sample {row}, neighbour {column}: distance {distances[row, column]}"
                )


def test_nearest_distance_exact_on_large_coordinates():
    """A sample on a training point far from the origin has distance exactly 0.

    The matrix-product form cancels ||x||^2, about 8e8 here, against itself: on this input
    torch.cdist returns about 3e-4 for two of the three samples (torch 2.13, float64, CPU).
    """
    generator = torch.Generator().manual_seed(0)
    train = 1e4 + torch.randn((50, 8), generator=generator, dtype=DTYPE)
    samples = train[[3, 17, 42]].clone()
    distances = nearest_distance(samples, train)
    assert distances.shape == (3,), f"shape {tuple(distances.shape)}"
    for row, value in enumerate(distances.tolist()):
        assert value == 0.0, f"sample {row} sits on a training point but has distance {value}"


def test_memorization_ratio_hand_built():
    samples = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.5, 0.0]], dtype=DTYPE)
    ratio = memorization_ratio(samples, TRAIN)
    expected = [0.0, 0.5, 1 / 3, 1.0]
    for row, (value, target) in enumerate(zip(ratio.tolist(), expected)):
        assert value == pytest.approx(target, rel=1e-15), f"sample {row}: ratio {value}, expected {target}"


def test_memorization_ratio_duplicate_training_point_is_zero():
    train = torch.tensor([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0]], dtype=DTYPE)
    samples = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=DTYPE)
    ratio = memorization_ratio(samples, train)
    assert not bool(torch.isnan(ratio).any()), f"ratio {ratio.tolist()} contains NaN"
    assert ratio[0].item() == 0.0, f"sample on a duplicated point: ratio {ratio[0].item()}, expected 0"
    # The duplicates count as one point, so the second nearest distinct point is (5, 5).
    expected = 1.0 / math.hypot(4.0, 5.0)
    assert math.isclose(ratio[1].item(), expected, rel_tol=1e-12), f"sample near the duplicates: ratio {ratio[1].item()}, expected {expected}"


def test_memorization_ratio_ignores_duplicates_and_scale():
    for scale in (1e-200, 1.0, 1e200):
        train = scale * torch.tensor([[0.0, 0.0], [0.0, 0.0], [4.0, 0.0]], dtype=DTYPE)
        samples = scale * torch.tensor([[1e-9, 0.0], [1.0, 0.0]], dtype=DTYPE)
        ratio = memorization_ratio(samples, train)
        assert math.isclose(ratio[0].item(), 1e-9 / 4.0, rel_tol=1e-6), f"scale {scale}: ratio {ratio[0].item()}"
        assert math.isclose(ratio[1].item(), 1.0 / 3.0, rel_tol=1e-12), f"scale {scale}: ratio {ratio[1].item()}"


def test_memorization_ratio_single_training_point_raises():
    with pytest.raises(ValueError, match="train must contain at least 2 distinct points .* got 1 distinct among n = 1"):
        memorization_ratio(TRAIN[:1], TRAIN[:1])
    with pytest.raises(ValueError, match="got 1 distinct among n = 3"):
        memorization_ratio(TRAIN[:1], TRAIN[:1].expand(3, -1).clone())


def test_memorized_fraction_hand_built_fraction():
    """Three of the four samples have a ratio below 1/3. The one at exactly 1/3 does not count."""
    samples = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 1.0], [2.9, 0.1]], dtype=DTYPE)
    estimate = memorized_fraction(samples, TRAIN)
    assert isinstance(estimate, MemorizationEstimate), f"type {type(estimate).__name__}"
    assert estimate.fraction == 0.75, f"fraction {estimate.fraction}, expected 0.75"
    assert estimate.threshold == 1 / 3, f"threshold {estimate.threshold}"
    assert estimate.n_samples == 4, f"n_samples {estimate.n_samples}"


def half_memorized_samples(count, seed):
    """Samples of which every other one sits on a training point and the rest sit midway between two."""
    generator = torch.Generator().manual_seed(seed)
    train = 10 * torch.arange(count, dtype=DTYPE)[:, None] * torch.ones((1, 2), dtype=DTYPE)
    jitter = 0.01 * torch.randn((count, 2), generator=generator, dtype=DTYPE)
    samples = train.clone()
    samples[1::2] = (train[1::2] + train[:-1:2][: samples[1::2].shape[0]]) / 2
    return samples + jitter, train


def test_memorized_fraction_interval_contains_estimate():
    samples, train = half_memorized_samples(200, seed=0)
    estimate = memorized_fraction(samples, train)
    assert estimate.fraction == 0.5, f"fraction {estimate.fraction}, expected 0.5"
    assert estimate.low <= estimate.fraction, f"low {estimate.low} above fraction {estimate.fraction}"
    assert estimate.fraction <= estimate.high, f"high {estimate.high} below fraction {estimate.fraction}"


def test_memorized_fraction_interval_narrows_with_samples():
    """The width shrinks like 1/sqrt(m): about 0.196 at m = 100 and 0.031 at m = 4000 for p = 1/2."""
    small = memorized_fraction(*half_memorized_samples(100, seed=1))
    large = memorized_fraction(*half_memorized_samples(4000, seed=1))
    small_width = small.high - small.low
    large_width = large.high - large.low
    assert large_width < small_width / 4, f"width {large_width} at m = 4000, {small_width} at m = 100"
    assert small_width == pytest.approx(2 * 1.96 * math.sqrt(0.25 / 100), rel=0.2), f"width {small_width} at m = 100"


def test_memorized_fraction_reproducible_for_seed():
    samples, train = half_memorized_samples(150, seed=2)
    first = memorized_fraction(samples, train, seed=5)
    second = memorized_fraction(samples, train, seed=5)
    other = memorized_fraction(samples, train, seed=6)
    assert first == second, f"seed 5 gave {first} and then {second}"
    assert (first.low, first.high) != (other.low, other.high), f"seeds 5 and 6 gave the same interval {first}"


def test_memorized_fraction_is_frozen():
    estimate = memorized_fraction(*half_memorized_samples(10, seed=0), n_bootstrap=10)
    with pytest.raises(AttributeError):
        estimate.fraction = 1.0


def test_memorized_fraction_all_memorized():
    estimate = memorized_fraction(TRAIN.clone(), TRAIN)
    assert estimate.fraction == 1.0, f"fraction {estimate.fraction}"
    assert estimate.low == 1.0, f"low {estimate.low}"
    assert estimate.high == 1.0, f"high {estimate.high}"


@pytest.mark.parametrize(
    "samples, train, error, pattern",
    [
        ([[0.0, 0.0]], TRAIN, TypeError, "samples must be a torch.Tensor"),
        (TRAIN, [[0.0, 0.0]], TypeError, "train must be a torch.Tensor"),
        (torch.zeros((2, 2), dtype=torch.int64), TRAIN, TypeError, "samples must have a floating dtype"),
        (torch.zeros(2, dtype=DTYPE), TRAIN, ValueError, r"samples must have shape \(rows, d\), got shape \(2,\)"),
        (torch.zeros((2, 3), dtype=DTYPE), TRAIN, ValueError, "samples and train must have the same dimension d"),
        (TRAIN.to(torch.float32), TRAIN, TypeError, "samples and train must have the same dtype"),
        (torch.tensor([[math.inf, 0.0]], dtype=DTYPE), TRAIN, ValueError, "samples must be finite"),
        (TRAIN, torch.tensor([[math.nan, 0.0]], dtype=DTYPE), ValueError, "train must be finite"),
        (TRAIN, torch.zeros((0, 2), dtype=DTYPE), ValueError, "train must contain at least one point"),
    ],
)
def test_nearest_neighbors_invalid_input_raises(samples, train, error, pattern):
    with pytest.raises(error, match=pattern):
        nearest_neighbors(samples, train)


@pytest.mark.parametrize(
    "k, error, pattern",
    [
        (0, ValueError, "k must be at least 1, got 0"),
        (4, ValueError, "k must be at most the number of training points n = 3, got k = 4"),
        (1.0, TypeError, "k must be an int, got float"),
        (True, TypeError, "k must be an int, got bool"),
    ],
)
def test_nearest_neighbors_invalid_k_raises(k, error, pattern):
    with pytest.raises(error, match=pattern):
        nearest_neighbors(TRAIN, TRAIN, k=k)


@pytest.mark.parametrize(
    "argument, value, error, pattern",
    [
        ("threshold", 0.0, ValueError, r"threshold must lie in \(0, 1\], got 0.0"),
        ("threshold", 1.5, ValueError, r"threshold must lie in \(0, 1\], got 1.5"),
        ("threshold", math.nan, ValueError, "threshold must lie in"),
        ("threshold", "1/3", TypeError, "threshold must be a real number"),
        ("confidence", 1.0, ValueError, r"confidence must lie in \(0, 1\), got 1.0"),
        ("confidence", 0.0, ValueError, r"confidence must lie in \(0, 1\), got 0.0"),
        ("n_bootstrap", 0, ValueError, "n_bootstrap must be at least 1, got 0"),
        ("n_bootstrap", 10.0, TypeError, "n_bootstrap must be an int, got float"),
        ("seed", -1, ValueError, "seed must be at least 0, got -1"),
        ("seed", None, TypeError, "seed must be an int, got NoneType"),
    ],
)
def test_memorized_fraction_invalid_option_raises(argument, value, error, pattern):
    with pytest.raises(error, match=pattern):
        memorized_fraction(TRAIN, TRAIN, **{argument: value})


def test_memorized_fraction_without_samples_raises():
    with pytest.raises(ValueError, match="samples must contain at least one point"):
        memorized_fraction(torch.zeros((0, 2), dtype=DTYPE), TRAIN)


def test_nearest_neighbors_empty_samples():
    distances, indices = nearest_neighbors(torch.zeros((0, 2), dtype=DTYPE), TRAIN, k=2)
    assert distances.shape == (0, 2), f"distances shape {tuple(distances.shape)}"
    assert indices.shape == (0, 2), f"indices shape {tuple(indices.shape)}"

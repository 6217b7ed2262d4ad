"""Nearest-neighbour distances to a training set, and the memorization criterion built on them.

Shapes: ``samples`` is ``(m, d)`` (generated points), ``train`` is ``(n, d)`` (the training set).
Both must be finite floating tensors with the same dtype and device.

Distances are Euclidean and computed from the direct difference ``||x - x^(i)||``, in chunks so
that memory stays bounded. The expanded form ``||x||^2 - 2 x.x^(i) + ||x^(i)||^2`` used by
``torch.cdist`` for large inputs cancels catastrophically when a sample sits on a training point,
and that is exactly the case a memorization metric must get right.

A sample counts as memorized when the ratio of its nearest to its second-nearest training
distance is below 1/3, the criterion of Yoon et al. 2023 and of Bonnaire, Urfin, Biroli and
Mezard 2025 ("Why Diffusion Models Don't Memorize: The Role of Implicit Dynamical
Regularization in Training", arXiv 2505.17638).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import torch

__all__ = [
    "MemorizationEstimate",
    "nearest_neighbors",
    "nearest_distance",
    "memorization_ratio",
    "memorized_fraction",
]

# Maximum number of elements of one (samples chunk, train chunk, d) difference tensor: 32 MiB in float64.
_CHUNK_ELEMENTS = 2**22


def _check_points(points, argument: str) -> None:
    if not isinstance(points, torch.Tensor):
        raise TypeError(f"{argument} must be a torch.Tensor of shape (rows, d), got {type(points).__name__}")
    if not points.is_floating_point():
        raise TypeError(f"{argument} must have a floating dtype, got {points.dtype}")
    if points.ndim != 2:
        raise ValueError(f"{argument} must have shape (rows, d), got shape {tuple(points.shape)}")


def _check_finite(points: torch.Tensor, argument: str) -> None:
    if points.is_meta:
        raise ValueError(f"{argument} must hold values, got a tensor on the meta device. Create it on cpu or cuda")
    if not bool(torch.isfinite(points).all()):
        raise ValueError(f"{argument} must be finite, got a tensor containing NaN or infinity")


def _check_pair(samples, train) -> None:
    _check_points(samples, "samples")
    _check_points(train, "train")
    if samples.shape[1] != train.shape[1]:
        raise ValueError(
            f"samples and train must have the same dimension d, got samples of shape {tuple(samples.shape)} "
            f"and train of shape {tuple(train.shape)}"
        )
    if samples.dtype != train.dtype:
        raise TypeError(f"samples and train must have the same dtype, got {samples.dtype} and {train.dtype}")
    # The device check comes before the finiteness check, which would fail inside torch on a meta tensor.
    if samples.device != train.device:
        raise ValueError(
            f"samples and train must be on the same device, got {samples.device} and {train.device}. "
            "Move one of them with .to(device)"
        )
    _check_finite(samples, "samples")
    _check_finite(train, "train")
    if train.shape[0] == 0:
        raise ValueError("train must contain at least one point, got shape (0, d)")


def _check_count(value, argument: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an int, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{argument} must be at least {minimum}, got {value}")


def nearest_neighbors(samples: torch.Tensor, train: torch.Tensor, k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Find the k nearest training points of each sample by exact Euclidean distance.

    Returns ``(distances, indices)``, both of shape ``(m, k)`` and sorted by increasing distance.
    ``indices`` (int64) index the rows of ``train``. Among training points at exactly the same
    distance, which index comes first is not specified.
    Requires ``1 <= k <= n``.
    """
    _check_pair(samples, train)
    _check_count(k, "k", 1)
    count, dimension = train.shape
    if k > count:
        raise ValueError(f"k must be at most the number of training points n = {count}, got k = {k}")

    # Distances are computed on data divided by its largest magnitude and scaled back, so that the
    # squares inside the norm neither underflow (coordinates near 1e-200) nor overflow (near 1e200).
    scale = torch.maximum(samples.abs().max() if samples.numel() else samples.new_zeros(()), train.abs().max())
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))

    # Chunk sizes keep each (sample rows, train rows, d) difference tensor under _CHUNK_ELEMENTS.
    train_rows = max(1, min(count, _CHUNK_ELEMENTS // max(1, dimension)))
    sample_rows = max(1, _CHUNK_ELEMENTS // (train_rows * max(1, dimension)))

    distance_chunks = []
    index_chunks = []
    for sample_start in range(0, samples.shape[0], sample_rows):
        block = samples[sample_start : sample_start + sample_rows]
        best_distances = block.new_empty((block.shape[0], 0))
        best_indices = torch.empty((block.shape[0], 0), dtype=torch.int64, device=block.device)

        for train_start in range(0, count, train_rows):
            train_block = train[train_start : train_start + train_rows]
            distances = torch.linalg.vector_norm((block[:, None, :] - train_block[None, :, :]) / scale, dim=-1) * scale
            indices = torch.arange(train_start, train_start + train_block.shape[0], device=block.device)

            # Merge this chunk's distances with the best k so far and keep the k smallest.
            candidates = torch.cat([best_distances, distances], dim=1)
            candidate_indices = torch.cat([best_indices, indices.expand(block.shape[0], -1)], dim=1)
            keep = min(k, candidates.shape[1])
            best_distances, order = torch.topk(candidates, keep, dim=1, largest=False, sorted=True)
            best_indices = torch.gather(candidate_indices, 1, order)

        distance_chunks.append(best_distances)
        index_chunks.append(best_indices)

    if not distance_chunks:
        empty_indices = torch.empty((0, k), dtype=torch.int64, device=samples.device)
        return samples.new_empty((0, k)), empty_indices
    return torch.cat(distance_chunks), torch.cat(index_chunks)


def nearest_distance(samples: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """Return each sample's Euclidean distance to its nearest training point, shape ``(m,)``."""
    distances, _ = nearest_neighbors(samples, train, k=1)
    return distances[:, 0]


def memorization_ratio(samples: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """Return the ratio of nearest to second-nearest training distance for each sample, shape ``(m,)``.

    The ratio lies in ``[0, 1]`` and is 0 when the sample coincides with a training point.
    Distances are taken to the distinct training points: a point that appears twice in ``train``
    counts once, so a sample next to it is not mistaken for one equidistant from two points.
    Requires at least 2 distinct training points.
    """
    _check_pair(samples, train)
    distinct = torch.unique(train, dim=0)
    if distinct.shape[0] < 2:
        raise ValueError(
            "train must contain at least 2 distinct points for a nearest/second-nearest ratio, "
            f"got {distinct.shape[0]} distinct among n = {train.shape[0]}"
        )
    distances, _ = nearest_neighbors(samples, distinct, k=2)
    nearest, second = distances[:, 0], distances[:, 1]
    ratio = torch.zeros_like(nearest)
    positive = second > 0
    ratio[positive] = nearest[positive] / second[positive]
    return ratio


@dataclass(frozen=True)
class MemorizationEstimate:
    """Fraction of memorized samples, with a percentile bootstrap confidence interval ``[low, high]``."""

    fraction: float
    low: float
    high: float
    threshold: float
    n_samples: int


def _check_open_unit(value, argument: str, include_one: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{argument} must be a real number, got {type(value).__name__}: {value!r}")
    number = float(value)
    upper_ok = number <= 1 if include_one else number < 1
    if not math.isfinite(number) or number <= 0 or not upper_ok:
        interval = "(0, 1]" if include_one else "(0, 1)"
        raise ValueError(f"{argument} must lie in {interval}, got {value}")
    return number


def memorized_fraction(
    samples: torch.Tensor,
    train: torch.Tensor,
    threshold: float = 1 / 3,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> MemorizationEstimate:
    """Estimate the fraction of samples whose :func:`memorization_ratio` is strictly below ``threshold``.

    The default threshold 1/3 is the criterion of Yoon et al. 2023 and Bonnaire et al. 2025
    (arXiv 2505.17638). The interval is a percentile bootstrap over samples: ``n_bootstrap``
    resamples of the m samples with replacement, drawn from a CPU ``torch.Generator`` seeded with
    ``seed``, so the same inputs and seed give the same interval. Its ends are the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled fractions,
    with linear interpolation between order statistics.
    """
    _check_pair(samples, train)
    threshold = _check_open_unit(threshold, "threshold", include_one=True)
    confidence = _check_open_unit(confidence, "confidence", include_one=False)
    _check_count(n_bootstrap, "n_bootstrap", 1)
    _check_count(seed, "seed", 0)
    sample_count = samples.shape[0]
    if sample_count == 0:
        raise ValueError("samples must contain at least one point to estimate a fraction, got shape (0, d)")

    memorized = (memorization_ratio(samples, train) < threshold).to(device="cpu", dtype=torch.float64)
    fraction = float(memorized.mean())

    generator = torch.Generator().manual_seed(seed)
    replicate_rows = max(1, _CHUNK_ELEMENTS // sample_count)
    replicates = []
    for start in range(0, n_bootstrap, replicate_rows):
        rows = min(replicate_rows, n_bootstrap - start)
        resample = torch.randint(sample_count, (rows, sample_count), generator=generator)
        replicates.append(memorized[resample].mean(dim=1))
    replicates = torch.cat(replicates)

    tail = (1 - confidence) / 2
    levels = torch.tensor([tail, 1 - tail], dtype=torch.float64)
    low, high = torch.quantile(replicates, levels).tolist()
    return MemorizationEstimate(fraction=fraction, low=low, high=high, threshold=threshold, n_samples=sample_count)

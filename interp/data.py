"""Seeded data sets for the experiments: Gaussian mixtures, 2-D shapes and scikit-learn's 8x8 digits.

Every function takes a ``seed`` (an int >= 0) and draws from its own CPU ``torch.Generator``,
so the same arguments give the same tensors and the global random state is left untouched.
Every function returns ``(points, labels)``: ``points`` of shape ``(n, d)`` in the requested
floating ``dtype`` (default ``torch.float64``) and ``labels`` of shape ``(n,)`` in int64,
giving the mixture component, the shape's part or the digit class of each point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import torch

__all__ = [
    "gaussian_mixture",
    "separated_means",
    "two_moons",
    "circles",
    "spiral",
    "digits",
    "DIGITS_COUNT",
]

#: Number of images in scikit-learn's bundled digits data set.
DIGITS_COUNT = 1797


def _check_count(value, argument: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an int, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{argument} must be at least {minimum}, got {value}")
    return value


def _check_seed(seed) -> torch.Generator:
    _check_count(seed, "seed", minimum=0)
    return torch.Generator().manual_seed(seed)


def _check_real(value, argument: str, minimum: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{argument} must be a real number, got {type(value).__name__}: {value!r}")
    number = float(value)
    too_small = number <= minimum if strict else number < minimum
    if not math.isfinite(number) or too_small:
        relation = ">" if strict else ">="
        raise ValueError(f"{argument} must be finite and {relation} {minimum}, got {value}")
    return number


def _check_dtype(dtype) -> None:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype such as torch.float64, got {dtype!r}")


def _add_noise(points: torch.Tensor, noise: float, generator: torch.Generator) -> torch.Tensor:
    if noise == 0:
        return points
    return points + noise * torch.randn(points.shape, generator=generator, dtype=torch.float64)


def _split_labels(n: int, parts: int, generator: torch.Generator) -> torch.Tensor:
    """Return n labels in ``0, ..., parts - 1`` with counts differing by at most one, in random order."""
    labels = torch.arange(n) % parts
    return labels[torch.randperm(n, generator=generator)]


def separated_means(k: int, d: int, separation: float, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Draw k points in d dimensions, every pair at least ``separation`` apart, shape ``(k, d)``.

    Candidates are drawn uniformly from the cube ``[-L/2, L/2]^d`` with
    ``L = 2 separation ceil(k^(1/d))`` and kept when they are at least ``separation`` from every point
    kept before (sequential rejection). The cube's side is twice that of a grid with spacing
    ``separation`` that contains k points, so rejections stay rare. The pairwise check is done in
    float64, before the cast to ``dtype``.
    Raises RuntimeError if ``1000 k`` candidates do not yield k points.
    """
    _check_count(k, "k")
    _check_count(d, "d")
    separation = _check_real(separation, "separation", strict=True)
    _check_dtype(dtype)
    generator = _check_seed(seed)

    per_axis = math.ceil(k ** (1 / d) - 1e-9)
    side = 2 * separation * per_axis
    means = torch.empty((0, d), dtype=torch.float64)
    max_candidates = 1000 * k
    drawn = 0
    while means.shape[0] < k and drawn < max_candidates:
        candidates = (torch.rand((64, d), generator=generator, dtype=torch.float64) - 0.5) * side
        drawn += candidates.shape[0]
        for candidate in candidates:
            if means.shape[0] == k:
                break
            distances = torch.linalg.vector_norm(means - candidate, dim=1)
            if means.shape[0] == 0 or bool((distances >= separation).all()):
                means = torch.cat([means, candidate[None, :]])

    if means.shape[0] < k:
        raise RuntimeError(
            f"separated_means placed only {means.shape[0]} of k = {k} points at separation {separation} "
            f"in d = {d} after {drawn} candidates, so lower k or the separation"
        )
    return means.to(dtype)


def _as_means(means) -> torch.Tensor:
    if isinstance(means, torch.Tensor):
        table = means.detach().to(device="cpu", dtype=torch.float64)
    elif isinstance(means, Sequence) and not isinstance(means, str):
        try:
            table = torch.tensor(means, dtype=torch.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(f"means must be a (k, d) tensor or nested sequence of numbers, got {means!r}") from error
    else:
        raise TypeError(f"means must be a (k, d) tensor or nested sequence of numbers, got {type(means).__name__}")
    if table.ndim != 2 or table.shape[0] < 1 or table.shape[1] < 1:
        raise ValueError(f"means must have shape (k, d) with k, d >= 1, got shape {tuple(table.shape)}")
    if not bool(torch.isfinite(table).all()):
        raise ValueError("means must be finite, got a table containing NaN or infinity")
    return table


def gaussian_mixture(
    n: int, means, std: float, seed: int = 0, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw n points from the equally weighted mixture ``(1/k) sum_j N(means[j], std^2 I)``.

    ``means`` is a ``(k, d)`` tensor or nested sequence. Each point's component is drawn
    independently and uniformly, so component counts are random. Returns ``(points (n, d), labels (n,))``
    where ``labels[i]`` is the component of point i. ``std = 0`` returns copies of the means.
    """
    _check_count(n, "n")
    table = _as_means(means)
    std = _check_real(std, "std")
    _check_dtype(dtype)
    generator = _check_seed(seed)

    labels = torch.randint(table.shape[0], (n,), generator=generator)
    points = table[labels] + std * torch.randn((n, table.shape[1]), generator=generator, dtype=torch.float64)
    return points.to(dtype), labels


def two_moons(
    n: int, noise: float = 0.0, seed: int = 0, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw n points on two interleaved half circles of radius 1, plus Gaussian noise of standard deviation ``noise``.

    Label 0 lies at ``(cos a, sin a)`` and label 1 at ``(1 - cos a, 1/2 - sin a)``, with ``a`` uniform
    on ``[0, pi]``.
    The two labels have counts that differ by at most one. Returns ``(points (n, 2), labels (n,))``.
    """
    _check_count(n, "n")
    noise = _check_real(noise, "noise")
    _check_dtype(dtype)
    generator = _check_seed(seed)

    labels = _split_labels(n, 2, generator)
    angle = math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    upper = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    lower = torch.stack([1 - torch.cos(angle), 0.5 - torch.sin(angle)], dim=1)
    points = torch.where((labels == 0)[:, None], upper, lower)
    return _add_noise(points, noise, generator).to(dtype), labels


def circles(
    n: int, noise: float = 0.0, factor: float = 0.5, seed: int = 0, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw n points on two concentric circles, plus Gaussian noise of standard deviation ``noise``.

    Label 0 is the outer circle of radius 1, label 1 the inner circle of radius ``factor`` in
    ``(0, 1)``. Angles are uniform, and the two counts differ by at most one.
    Returns ``(points (n, 2), labels (n,))``.
    """
    _check_count(n, "n")
    noise = _check_real(noise, "noise")
    factor = _check_real(factor, "factor", strict=True)
    if factor >= 1:
        raise ValueError(f"factor must lie in (0, 1), got {factor}")
    _check_dtype(dtype)
    generator = _check_seed(seed)

    labels = _split_labels(n, 2, generator)
    angle = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    radius = torch.full((n,), factor, dtype=torch.float64)
    radius[labels == 0] = 1.0
    points = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return _add_noise(points, noise, generator).to(dtype), labels


def spiral(
    n: int, noise: float = 0.0, turns: float = 1.5, seed: int = 0, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw n points on a two-armed Archimedean spiral, plus Gaussian noise of standard deviation ``noise``.

    A point at parameter ``s`` uniform on ``[0, 1]`` sits at radius ``s`` and angle
    ``2 pi turns s`` (label 0), or at the same point rotated by pi (label 1). The two counts differ
    by at most one. Returns ``(points (n, 2), labels (n,))``.
    """
    _check_count(n, "n")
    noise = _check_real(noise, "noise")
    turns = _check_real(turns, "turns", strict=True)
    _check_dtype(dtype)
    generator = _check_seed(seed)

    labels = _split_labels(n, 2, generator)
    position = torch.rand(n, generator=generator, dtype=torch.float64)
    angle = 2 * math.pi * turns * position + math.pi * labels.to(torch.float64)
    points = position[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return _add_noise(points, noise, generator).to(dtype), labels


def digits(n: int | None = None, seed: int = 0, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Load scikit-learn's 8x8 handwritten digits: ``(images (n, 64), labels (n,))``.

    The 1,797 images ship inside scikit-learn (``sklearn.datasets.load_digits``), so nothing is
    downloaded. Raw pixels are integers from 0 to 16, and dividing by 16 maps them
    to ``[0, 1]``. Each row is an image flattened row by row. With ``n`` None, all 1,797 images are
    returned in scikit-learn's order and ``seed`` is unused. Otherwise a subset of ``n`` distinct
    images, drawn without replacement with ``seed``, is returned in random order.
    Requires scikit-learn (the ``data`` extra of this package).
    """
    if n is not None:
        _check_count(n, "n")
        if n > DIGITS_COUNT:
            raise ValueError(f"n must be at most {DIGITS_COUNT}, the number of digit images, got {n}")
    _check_dtype(dtype)
    generator = _check_seed(seed)

    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError("digits requires scikit-learn. Install it with `pip install interp[data]`") from error

    bunch = load_digits()
    images = torch.as_tensor(bunch.data, dtype=torch.float64) / 16
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)

    if n is not None:
        chosen = torch.randperm(images.shape[0], generator=generator)[:n]
        images, labels = images[chosen], labels[chosen]
    return images.to(dtype), labels

"""Basins of attraction of the oracle flow: where each starting point ends, and how often.

The oracle ODE ``dX = b dt`` and SDE ``dX = [b + eps s] dt + sqrt(2 eps) dW`` of a finite training set
end on training samples, but their fields are singular at ``t = 1``. The samplers here integrate to a
stop time ``1 - delta < 1`` and finish with the denoiser ``m(X, 1 - delta)``, which is defined up to
``t = 1`` and is a convex combination of training samples. Each endpoint is then labelled with its
nearest training sample, and the labels are counted with confidence intervals and chi-square tests.

The conventions are those of :mod:`interp.fields` and :mod:`interp.samplers`. Time runs from noise
at ``t = 0`` to data at ``t = 1``. States and endpoints have shape ``(m, d)`` and the training set
``(n, d)``. A field is an object with methods ``velocity(x, t)``, ``denoiser(x, t)`` and, for the
SDE, ``score(x, t)``, such as :class:`interp.fields.EmpiricalField`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from statistics import NormalDist
from typing import Callable, Sequence

import torch

from . import metrics
from .samplers import _time_grid, sample_ode, sample_sde

__all__ = [
    "SPACINGS",
    "stopping_grid",
    "DataEndSample",
    "flow_to_data_end",
    "diffuse_to_data_end",
    "nearest_training_index",
    "BasinMasses",
    "basin_masses",
    "ChiSquareTest",
    "chi_square_goodness_of_fit",
    "chi_square_homogeneity",
]

#: The grid spacings :func:`stopping_grid` accepts.
SPACINGS = ("uniform", "log")


def stopping_grid(steps: int, delta: float, spacing: str = "log", start: float = 0.0) -> torch.Tensor:
    """Build a float64 time grid of ``steps + 1`` points from ``t_0 = start`` to ``t_K = 1 - delta``.

    ``"uniform"``: ``t_k = start + k (1 - delta - start) / K``.
    ``"log"``: ``1 - t_k = (1 - start) (delta / (1 - start))**(k / K)``, uniform in ``log(1 - t)``.
    Every step then has the same ratio ``h_k / (1 - t_k)``. The oracle velocity contracts at the rate
    ``sigma'/sigma``, which grows like ``1 / (1 - t)`` near the data end, so this grid keeps
    ``h sigma'/sigma`` the same size at every step, where a uniform grid makes it largest at the last step.
    """
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise TypeError(f"steps must be an int, got {type(steps).__name__}: {steps!r}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    delta = _check_delta(delta)
    if not isinstance(spacing, str) or spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {', '.join(SPACINGS)}, got {spacing!r}")
    if isinstance(start, bool) or not isinstance(start, Real) or not 0 <= float(start) < 1 - delta:
        raise ValueError(f"start must be a real number in [0, 1 - delta) = [0, {1 - delta}), got {start!r}")
    start = float(start)

    fractions = torch.arange(steps + 1, dtype=torch.float64) / steps
    if spacing == "uniform":
        grid = start + fractions * (1 - delta - start)
    else:
        grid = 1 - (1 - start) * (delta / (1 - start)) ** fractions
    # Pin both ends, so that float rounding cannot move the start or the stop time.
    grid[0] = start
    grid[-1] = 1 - delta
    return grid


def _check_delta(delta) -> float:
    if isinstance(delta, bool) or not isinstance(delta, Real):
        raise TypeError(f"delta must be a real number in (0, 1), got {type(delta).__name__}: {delta!r}")
    value = float(delta)
    if not math.isfinite(value) or not 0 < value < 1:
        raise ValueError(f"delta must lie in (0, 1), the distance of the stop time from t = 1, got {delta}")
    # In float64, 1 - delta rounds to 1 below about 1.1e-16, and the stop time would be the singular t = 1.
    if 1 - value == 1:
        raise ValueError(f"delta = {delta} is too small: 1 - delta rounds to 1 in float64. Use delta >= 1e-15")
    return value


@dataclass(frozen=True)
class DataEndSample:
    """States of a sampler stopped at ``stop_time < 1``, and their denoised endpoints.

    ``states`` is ``X`` at the stop time and ``endpoints`` is ``m(X, stop_time)``, both ``(m, d)``.
    ``path`` has shape ``(K + 1, m, d)`` when the path was requested, else it is None.
    """

    endpoints: torch.Tensor
    states: torch.Tensor
    stop_time: float
    path: torch.Tensor | None


def _check_field(field, methods: tuple[str, ...]) -> None:
    for method in methods:
        if not callable(getattr(field, method, None)):
            raise TypeError(
                f"field must have a callable {method}(x, t) method, such as interp.EmpiricalField, "
                f"got {type(field).__name__}"
            )


def _stop_time(time_grid) -> float:
    grid = _time_grid(None, time_grid)
    if grid[-1] >= 1:
        raise ValueError(
            f"time_grid must end before t = 1, where the velocity and score are singular, got a last time of "
            f"{grid[-1]}. Build a grid with interp.basins.stopping_grid(steps, delta)"
        )
    return grid[-1]


def _finish(field, states_or_path: torch.Tensor, stop_time: float, return_path: bool) -> DataEndSample:
    states = states_or_path[-1] if return_path else states_or_path
    endpoints = field.denoiser(states, stop_time)
    path = states_or_path if return_path else None
    return DataEndSample(endpoints=endpoints, states=states, stop_time=stop_time, path=path)


def flow_to_data_end(
    field,
    x0: torch.Tensor,
    time_grid: torch.Tensor | Sequence[float],
    method: str = "rk4",
    return_path: bool = False,
) -> DataEndSample:
    """Integrate the ODE ``dX = b(X, t) dt`` over ``time_grid`` and finish with the denoiser at its last time.

    ``time_grid`` is strictly increasing and must end at some ``1 - delta < 1``. Build one with
    :func:`stopping_grid`. ``method`` is ``"euler"``, ``"heun"`` or ``"rk4"`` as in
    :func:`interp.samplers.sample_ode`. The endpoint is ``m(X_{1 - delta}, 1 - delta)``. Where the
    trajectory is captured by a training sample ``x^(j)``, it differs from ``x^(j)`` by at most
    ``(1 - w_j) max_i ||x^(i) - x^(j)||``, the softmax leakage at the stop time.
    """
    _check_field(field, ("velocity", "denoiser"))
    stop_time = _stop_time(time_grid)
    result = sample_ode(field.velocity, x0, None, method=method, time_grid=time_grid, return_path=return_path)
    return _finish(field, result, stop_time, return_path)


def diffuse_to_data_end(
    field,
    x0: torch.Tensor,
    time_grid: torch.Tensor | Sequence[float],
    diffusion: float | Callable[[float], float],
    generator: torch.Generator | None = None,
    return_path: bool = False,
) -> DataEndSample:
    """Integrate the SDE ``dX = [b + eps s] dt + sqrt(2 eps) dW`` by Euler-Maruyama and finish with the denoiser.

    ``time_grid`` must end at some ``1 - delta < 1``, and ``diffusion`` and ``generator`` are as in
    :func:`interp.samplers.sample_sde`. The states at the stop time keep the noise of the process:
    near a training sample ``x^(j)`` their spread ``||X - beta x^(j)||`` is about ``sigma sqrt(d)``.
    The denoiser then removes that spread.
    """
    _check_field(field, ("velocity", "score", "denoiser"))
    stop_time = _stop_time(time_grid)
    result = sample_sde(
        field.velocity,
        field.score,
        x0,
        None,
        diffusion,
        generator=generator,
        time_grid=time_grid,
        return_path=return_path,
    )
    return _finish(field, result, stop_time, return_path)


def nearest_training_index(points: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """Return the index of each point's nearest training sample, int64 of shape ``(m,)``.

    Distances are exact Euclidean distances from :func:`interp.metrics.nearest_neighbors`. Which of
    several training samples at exactly the same distance is returned is not specified.
    """
    _, indices = metrics.nearest_neighbors(points, train, k=1)
    return indices[:, 0]


@dataclass(frozen=True)
class BasinMasses:
    """Counts of labels ``0, ..., n - 1``, their fractions and Wilson score intervals ``[low, high]``, each of shape ``(n,)``."""

    counts: torch.Tensor
    fractions: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor
    confidence: float
    total: int


def basin_masses(indices: torch.Tensor, n: int, confidence: float = 0.95) -> BasinMasses:
    """Count how many labels fall on each of ``n`` training samples, with a Wilson interval for each fraction.

    For ``k`` of ``N`` labels and ``z`` the ``(1 + confidence) / 2`` normal quantile, the Wilson score interval is
    ``(p + z**2 / (2N) -+ z sqrt(p (1 - p) / N + z**2 / (4 N**2))) / (1 + z**2 / N)`` with ``p = k / N``.
    Unlike the normal interval ``p -+ z sqrt(p (1 - p) / N)`` it stays inside [0, 1] and does not shrink
    to a point when ``k`` is 0 or ``N``. Each interval holds for one sample on its own, not for all n at once.
    """
    if not isinstance(indices, torch.Tensor) or indices.dtype != torch.int64 or indices.ndim != 1:
        raise TypeError(f"indices must be a 1-D int64 tensor of labels, got {_describe(indices)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, the number of training samples, got {n!r}")
    total = indices.numel()
    if total == 0:
        raise ValueError("indices must contain at least one label, got an empty tensor")
    if bool(((indices < 0) | (indices >= n)).any()):
        raise ValueError(
            f"indices must lie in 0, ..., n - 1 = {n - 1}, got values from {int(indices.min())} to {int(indices.max())}"
        )
    if isinstance(confidence, bool) or not isinstance(confidence, Real) or not 0 < float(confidence) < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")

    counts = torch.bincount(indices.cpu(), minlength=n)
    fractions = counts.to(torch.float64) / total
    z = NormalDist().inv_cdf((1 + float(confidence)) / 2)
    centre = (fractions + z**2 / (2 * total)) / (1 + z**2 / total)
    half_width = z * torch.sqrt(fractions * (1 - fractions) / total + z**2 / (4 * total**2)) / (1 + z**2 / total)
    # At k = 0 the lower end is 0 and at k = N the upper end is 1 exactly, which rounding can miss.
    low = torch.where(counts == 0, 0.0, (centre - half_width).clamp(min=0.0))
    high = torch.where(counts == total, 1.0, (centre + half_width).clamp(max=1.0))
    return BasinMasses(counts=counts, fractions=fractions, low=low, high=high, confidence=float(confidence), total=total)


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of dtype {value.dtype} and shape {tuple(value.shape)}"
    return type(value).__name__


@dataclass(frozen=True)
class ChiSquareTest:
    """Pearson's chi-square statistic, its degrees of freedom, and the p-value ``P(chi2(dof) >= statistic)``."""

    statistic: float
    dof: int
    p_value: float


def _check_counts(counts, argument: str) -> torch.Tensor:
    if not isinstance(counts, torch.Tensor) or counts.ndim != 1 or counts.is_floating_point() or counts.is_complex():
        raise TypeError(f"{argument} must be a 1-D integer tensor of counts, got {_describe(counts)}")
    if counts.dtype == torch.bool:
        raise TypeError(f"{argument} must be a 1-D integer tensor of counts, got dtype torch.bool")
    if bool((counts < 0).any()):
        raise ValueError(f"{argument} must be non-negative, got {counts.tolist()}")
    return counts.detach().to(device="cpu", dtype=torch.float64)


def _p_value(statistic: float, dof: int) -> float:
    # The chi-square survival function is the regularized upper incomplete gamma function Q(dof / 2, x / 2).
    value = torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64), torch.tensor(statistic / 2, dtype=torch.float64))
    return float(value)


def chi_square_goodness_of_fit(counts: torch.Tensor, probabilities) -> ChiSquareTest:
    """Test observed ``counts`` (shape ``(n,)``) against category ``probabilities`` that sum to 1.

    The statistic is ``sum_i (k_i - N p_i)**2 / (N p_i)`` with ``n - 1`` degrees of freedom. The
    chi-square law is an approximation that needs every expected count ``N p_i`` to be about 5 or more.
    """
    observed = _check_counts(counts, "counts")
    if isinstance(probabilities, torch.Tensor):
        expected_share = probabilities.detach().to(device="cpu", dtype=torch.float64)
    else:
        expected_share = torch.tensor(probabilities, dtype=torch.float64)
    if expected_share.shape != observed.shape:
        raise ValueError(
            f"probabilities must have the shape of counts {tuple(observed.shape)}, got {tuple(expected_share.shape)}"
        )
    if bool((expected_share <= 0).any()) or abs(float(expected_share.sum()) - 1) > 1e-9:
        raise ValueError(f"probabilities must be positive and sum to 1, got {expected_share.tolist()}")
    if observed.numel() < 2:
        raise ValueError(f"counts must have at least 2 categories, got {observed.numel()}")
    total = float(observed.sum())
    if total == 0:
        raise ValueError("counts must not all be 0")

    expected = total * expected_share
    statistic = float(((observed - expected) ** 2 / expected).sum())
    dof = observed.numel() - 1
    return ChiSquareTest(statistic=statistic, dof=dof, p_value=_p_value(statistic, dof))


def chi_square_homogeneity(counts_a: torch.Tensor, counts_b: torch.Tensor) -> ChiSquareTest:
    """Test whether two samples of labels, given as ``counts_a`` and ``counts_b`` of shape ``(n,)``, share one law.

    This is Pearson's test on the ``2 x n`` contingency table. Categories empty in both samples
    carry no information and are dropped, so ``dof`` is the number of remaining categories minus one.
    """
    first = _check_counts(counts_a, "counts_a")
    second = _check_counts(counts_b, "counts_b")
    if first.shape != second.shape:
        raise ValueError(f"counts_a and counts_b must have the same shape, got {tuple(first.shape)} and {tuple(second.shape)}")
    table = torch.stack([first, second])
    table = table[:, table.sum(dim=0) > 0]
    if table.shape[1] < 2:
        raise ValueError("counts_a and counts_b must together fill at least 2 categories")
    row_totals = table.sum(dim=1, keepdim=True)
    if bool((row_totals == 0).any()):
        raise ValueError("counts_a and counts_b must each contain at least one label")

    expected = row_totals * table.sum(dim=0, keepdim=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    return ChiSquareTest(statistic=statistic, dof=dof, p_value=_p_value(statistic, dof))

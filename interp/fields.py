"""Closed-form fields of a finite training set under a stochastic-interpolant schedule.

This module contains :class:`EmpiricalField`, the exact posterior weights, denoiser, score, velocity and
log density of the empirical distribution ``(1/n) sum_i delta(x^(i))`` of a training set.
These are the fields a perfectly trained model would learn, so they are the reference the book
compares samplers and learned models against.

Conventions:

* time runs from noise at ``t = 0`` to data at ``t = 1``, and ``x_t ~ beta(t) x1 + sigma(t) zeta``
  with ``zeta ~ N(0, I)``, so ``beta(0) = 0`` and ``sigma(1) = 0``;
* ``train`` has shape ``(n, d)``, queries ``x`` have shape ``(m, d)``, and ``t`` is either one time
  for all queries or a tensor of shape ``(m,)`` with one time per query;
* every output has the dtype and device of ``train``.

With ``beta``, ``sigma``, ``dbeta``, ``dsigma`` the schedule and its time derivatives at ``t``:

* marginal density: ``rho_t(x) = (1/n) sum_i N(x; beta x^(i), sigma**2 I)``;
* weights: ``w_i(x, t) = softmax_i(-||x - beta x^(i)||**2 / (2 sigma**2))``, the posterior
  probability that ``x_t = x`` came from ``x^(i)``;
* denoiser: ``m(x, t) = sum_i w_i x^(i) = E[x1 | x_t = x]``;
* score: ``s(x, t) = grad_x log rho_t(x) = -(x - beta m) / sigma**2``;
* velocity: ``b(x, t) = (dsigma / sigma) (x - beta m) + dbeta m``, which equals
  ``-sigma dsigma s + dbeta m``.

At ``t = 1`` the weights are one-hot on the nearest training sample, with exact ties split equally,
and the denoiser is that sample. The score, velocity and log density are singular there, so they
raise ``ValueError``; a sampler stops at some ``t < 1`` and finishes with the denoiser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Callable

import torch

from .attention import (
    MAX_EXPANDED_LOGIT_ERROR_ULPS,
    TrainingKeys,
    attention_mean,
    attention_queries,
    expanded_logit_error,
    expanded_logits,
)
from .schedules import Schedule

__all__ = ["EmpiricalField"]

# Number of tensor elements in the (chunk, n, d) difference tensor of one chunk of queries: 2**22
# elements take 16 MiB in float32 and 32 MiB in float64.
_DEFAULT_MAX_CHUNK_ELEMENTS = 2**22

# Ways of computing the weights and the denoiser; see EmpiricalField.
_METHODS = ("auto", "attention", "direct")


@dataclass
class _Times:
    """The schedule evaluated at the query times, one entry per query, in the working dtype."""

    time: torch.Tensor
    beta: torch.Tensor
    sigma: torch.Tensor
    singular: torch.Tensor
    per_query: bool


class EmpiricalField:
    """Exact fields of the empirical distribution of ``train`` under ``schedule``.

    Parameters
    ----------
    train:
        Training samples ``x^(i)``, a finite float32 or float64 tensor of shape ``(n, d)`` with
        ``n >= 1`` and ``d >= 1``. The field keeps a reference to it, not a copy, and computes on
        its device and in its dtype.
    schedule:
        The :class:`~interp.schedules.Schedule` that gives ``beta`` and ``sigma``.
    max_chunk_elements:
        Upper bound on the elements of the ``(chunk, n, d)`` difference tensor built for one chunk
        of queries. A single query always forms one chunk, so the bound is ``max(max_chunk_elements,
        n * d)``.
    method:
        How the weights and the denoiser are computed. ``"direct"`` forms every difference
        ``x - beta x^(i)``: exact at any sigma, but ``O(m n d)`` work in chunks. ``"attention"``
        uses the expanded logits of :mod:`interp.attention` (matrix products and the fused attention
        kernel, ``O((m + n) d)`` memory for the denoiser) wherever sigma > 0. ``"auto"``, the default,
        takes the attention form for the queries whose estimated logit rounding error is below
        :data:`interp.attention.MAX_EXPANDED_LOGIT_ERROR_ULPS` units of roundoff, and the direct
        form for the rest: late times, large data norms and float32 push queries to the direct form.
        ``log_density``, ``posterior_covariance`` and ``velocity_jacobian`` always use the direct form.
    """

    def __init__(
        self,
        train: torch.Tensor,
        schedule: Schedule,
        *,
        max_chunk_elements: int = _DEFAULT_MAX_CHUNK_ELEMENTS,
        method: str = "auto",
    ):
        _check_train(train)
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be an interp.schedules.Schedule, got {type(schedule).__name__}")
        if isinstance(max_chunk_elements, bool) or not isinstance(max_chunk_elements, int) or max_chunk_elements < 1:
            raise ValueError(f"max_chunk_elements must be a positive integer, got {max_chunk_elements!r}")
        if method not in _METHODS:
            raise ValueError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")

        self.train = train.detach()
        self.schedule = schedule
        self.max_chunk_elements = max_chunk_elements
        self.method = method
        self._keys = TrainingKeys.from_train(self.train)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the training set and of every output."""
        return self.train.dtype

    @property
    def device(self) -> torch.device:
        """The device of the training set and of every output."""
        return self.train.device

    def __repr__(self) -> str:
        n, d = self.train.shape
        return (
            f"EmpiricalField(n={n}, d={d}, schedule={self.schedule.name!r}, method={self.method!r}, "
            f"dtype={self.dtype}, device={self.device})"
        )

    # Public fields.

    def log_weights(self, x: torch.Tensor, t) -> torch.Tensor:
        """Compute ``log w_i(x, t)``, shape ``(m, n)``, with ``-inf`` where a weight is exactly 0."""
        times = self._prepare(x, t)
        return self._by_method(
            x,
            times,
            lambda queries: torch.log_softmax(expanded_logits(queries, self._keys), dim=1),
            lambda x_rows, times_rows: self._map_chunks(
                x_rows, times_rows, lambda logits, nearest, rows: torch.log_softmax(logits, dim=1)
            ),
            width=self.train.shape[0],
        )

    def weights(self, x: torch.Tensor, t) -> torch.Tensor:
        """Compute the posterior weights ``w_i(x, t)``, shape ``(m, n)``, whose rows sum to 1."""
        return self.log_weights(x, t).exp()

    def denoiser(self, x: torch.Tensor, t) -> torch.Tensor:
        """Compute ``m(x, t) = sum_i w_i x^(i)``, shape ``(m, d)``, defined for every t in [0, 1]."""
        times = self._prepare(x, t)
        return self._denoise(x, times)

    def score(self, x: torch.Tensor, t) -> torch.Tensor:
        """Compute ``s(x, t) = -(x - beta m) / sigma**2``, shape ``(m, d)``, or raise ``ValueError`` where sigma = 0."""
        times = self._prepare(x, t)
        self._reject_singular(times, "score")

        beta = times.beta[:, None]
        variance = times.sigma[:, None] ** 2
        mean = self._denoise(x, times)
        return self._check_finite(-(x - beta * mean) / variance, times, "score")

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        """Compute ``b(x, t) = (dsigma / sigma)(x - beta m) + dbeta m``, shape ``(m, d)``, or raise ``ValueError`` where sigma = 0."""
        times = self._prepare(x, t)
        self._reject_singular(times, "velocity")

        beta = times.beta[:, None]
        sigma = times.sigma[:, None]
        dbeta = self._evaluate(self.schedule.dbeta, times.time)[:, None]
        dsigma = self._evaluate(self.schedule.dsigma, times.time)[:, None]
        mean = self._denoise(x, times)
        return self._check_finite((dsigma / sigma) * (x - beta * mean) + dbeta * mean, times, "velocity")

    def log_density(self, x: torch.Tensor, t) -> torch.Tensor:
        """Compute ``log rho_t(x)``, shape ``(m,)``, or raise ``ValueError`` where sigma = 0, because rho_1 has atoms."""
        times = self._prepare(x, t)
        self._reject_singular(times, "log_density")

        n, d = self.train.shape
        variance = times.sigma**2

        # The logits are shifted by the nearest squared distance. Adding it back after the logsumexp
        # keeps log rho finite when every Gaussian term underflows on its own.
        def reduce(logits: torch.Tensor, nearest: torch.Tensor, rows: slice) -> torch.Tensor:
            return torch.logsumexp(logits, dim=1) - nearest / (2 * variance[rows])

        log_sum = self._map_chunks(x, times, reduce)
        return log_sum - math.log(n) - 0.5 * d * torch.log(2 * math.pi * variance)

    def posterior_covariance(self, x: torch.Tensor, t) -> torch.Tensor:
        """Compute ``Cov_w(x, t) = sum_i w_i (x^(i) - m)(x^(i) - m)^T``, shape ``(m, d, d)``, defined for every t in [0, 1].

        This is the covariance of the training samples under the posterior weights. It is symmetric
        positive semi-definite, and it vanishes where the weights are one-hot, as at ``t = 1`` away
        from exact ties.
        """
        times = self._prepare(x, t)
        return self._covariance(x, times)

    def velocity_jacobian(self, x: torch.Tensor, t) -> torch.Tensor:
        """Compute ``db/dx = (dsigma / sigma) I + beta (dbeta - beta dsigma / sigma) Cov_w / sigma**2``, shape ``(m, d, d)``.

        The Jacobian is symmetric because ``Cov_w`` is. It follows from ``dm/dx = beta Cov_w / sigma**2``,
        the derivative of the softmax weights. Raises ``ValueError`` where sigma = 0, like :meth:`velocity`.
        """
        times = self._prepare(x, t)
        self._reject_singular(times, "velocity_jacobian")

        beta = times.beta[:, None, None]
        sigma = times.sigma[:, None, None]
        dbeta = self._evaluate(self.schedule.dbeta, times.time)[:, None, None]
        dsigma = self._evaluate(self.schedule.dsigma, times.time)[:, None, None]
        contraction = dsigma / sigma
        expansion = beta * (dbeta - beta * contraction) / sigma**2

        identity = torch.eye(x.shape[1], dtype=self.dtype, device=self.device)
        return contraction * identity + expansion * self._covariance(x, times)

    # Schedule and input handling.

    def _prepare(self, x: torch.Tensor, t) -> _Times:
        """Validate ``x`` and ``t`` and evaluate beta and sigma at one time per query."""
        _check_queries(x, self.train)
        # The schedule is evaluated in float64 and then cast: in float32, cos(pi t / 2) near t = 1 loses
        # most of its digits, which made a float32 velocity 20% wrong at t = 1 - 2**-22.
        time = _check_time(t, x.shape[0]).to(dtype=torch.float64, device=self.device)
        per_query = time.dim() == 1
        time = time if per_query else time.expand(x.shape[0])

        beta = self._evaluate(self.schedule.beta, time)
        sigma = self._evaluate(self.schedule.sigma, time)

        # sigma(1) = 0 exactly, but the float value can miss it. For example cos(pi t / 2) at t = 1 is
        # 6e-17 in float64 and -4e-8 in float32. So t = 1, a non-positive sigma and a sigma whose
        # square underflows are all treated as sigma = 0, the data end.
        singular = (time == 1) | (sigma <= 0) | (sigma * sigma == 0)
        sigma = torch.where(singular, torch.zeros_like(sigma), sigma)
        return _Times(time=time, beta=beta, sigma=sigma, singular=singular, per_query=per_query)

    def _evaluate(self, function: Callable[[torch.Tensor], torch.Tensor], time: torch.Tensor) -> torch.Tensor:
        return function(time.to(torch.float64)).to(dtype=self.dtype, device=self.device).expand(time.shape)

    def _check_finite(self, value: torch.Tensor, times: _Times, field: str) -> torch.Tensor:
        """Return ``value``, or raise ``ValueError`` where it overflowed, which happens when sigma**2 is subnormal."""
        bad_rows = ~torch.isfinite(value).all(dim=1)
        if not bool(bad_rows.any()):
            return value
        index = int(bad_rows.nonzero()[0, 0])
        raise ValueError(
            f"{field} overflows {self.dtype} at t = {times.time[index].item()!r} (query {index}), where "
            f"sigma = {times.sigma[index].item():.3g}: the exact value is beyond the dtype's range. "
            "Use float64, or evaluate the field at an earlier t"
        )

    def _reject_singular(self, times: _Times, field: str) -> None:
        if not bool(times.singular.any()):
            return
        index = int(times.singular.nonzero()[0, 0])
        value = times.time[index].item()
        where = f" (query {index})" if times.per_query else ""
        raise ValueError(
            f"{field} is singular at t = {value!r}{where} because sigma(t) evaluates to 0 in {self.dtype}. "
            "sigma(1) = 0 at the data end, so the field divides by zero there. "
            f"Use the denoiser at t = 1, or evaluate {field} at some t < 1 such as 1 - 1e-4."
        )

    # Logits, one chunk of queries at a time.

    def _denoise(self, x: torch.Tensor, times: _Times) -> torch.Tensor:
        centre = self._keys.centre
        return self._by_method(
            x,
            times,
            lambda queries: attention_mean(queries, self._keys)[:, :-1] + centre,
            lambda x_rows, times_rows: self._map_chunks(
                x_rows, times_rows, lambda logits, nearest, rows: torch.log_softmax(logits, dim=1).exp() @ self.train
            ),
            width=self.train.shape[1],
        )

    def _by_method(
        self,
        x: torch.Tensor,
        times: _Times,
        expanded: Callable[[torch.Tensor], torch.Tensor],
        direct: Callable[[torch.Tensor, _Times], torch.Tensor],
        width: int,
    ) -> torch.Tensor:
        """Compute rows with the expanded (attention) form where allowed and the direct form elsewhere."""
        fast = self._expanded_rows(x, times)
        if bool(fast.all()):
            return expanded(attention_queries(x, times.beta, times.sigma, self._keys.centre))
        if not bool(fast.any()):
            return direct(x, times)

        result = x.new_empty(x.shape[0], width)
        fast_rows = fast.nonzero().squeeze(1)
        slow_rows = (~fast).nonzero().squeeze(1)
        queries = attention_queries(x[fast_rows], times.beta[fast_rows], times.sigma[fast_rows], self._keys.centre)
        result[fast_rows] = expanded(queries)
        result[slow_rows] = direct(x[slow_rows], _select(times, slow_rows))
        return result

    def _expanded_rows(self, x: torch.Tensor, times: _Times) -> torch.Tensor:
        """Mark the queries that may use the expanded logits, shape ``(m,)``."""
        if self.method == "direct" or x.shape[0] == 0:
            return torch.zeros(x.shape[0], dtype=torch.bool, device=self.device)
        allowed = ~times.singular
        if self.method == "attention":
            return allowed

        safe_sigma = torch.where(allowed, times.sigma, torch.ones_like(times.sigma))
        error = expanded_logit_error(x, times.beta, safe_sigma, self._keys)
        return allowed & (error <= MAX_EXPANDED_LOGIT_ERROR_ULPS * torch.finfo(self.dtype).eps)

    def _covariance(self, x: torch.Tensor, times: _Times) -> torch.Tensor:
        # Centring on the denoiser before the outer product keeps Cov_w accurate when it is tiny next to
        # the second moment, which is the case late in time.
        def reduce(logits: torch.Tensor, nearest: torch.Tensor, rows: slice) -> torch.Tensor:
            weights = torch.log_softmax(logits, dim=1).exp()
            centred = self.train[None, :, :] - (weights @ self.train)[:, None, :]
            covariance = torch.einsum("cn,cnd,cne->cde", weights, centred, centred)
            # The einsum sums in an order that can differ between entries (j, k) and (k, j), so the
            # average makes the result exactly symmetric, which eigvalsh and the Jacobian rely on.
            return (covariance + covariance.transpose(1, 2)) / 2

        return self._map_chunks(x, times, reduce)

    def _map_chunks(
        self,
        x: torch.Tensor,
        times: _Times,
        reduce: Callable[[torch.Tensor, torch.Tensor, slice], torch.Tensor],
    ) -> torch.Tensor:
        """Apply ``reduce(logits, nearest, rows)`` to each chunk of queries and concatenate the results.

        ``logits`` has shape ``(c, n)``, and ``nearest`` contains each query's smallest squared distance
        ``min_i ||x - beta x^(i)||**2``, which is the shift applied to the logits.
        """
        n, d = self.train.shape
        chunk_size = max(1, self.max_chunk_elements // (n * d))

        results = []
        for start in range(0, max(x.shape[0], 1), chunk_size):
            rows = slice(start, start + chunk_size)
            logits, nearest = self._shifted_logits(x[rows], times.beta[rows], times.sigma[rows] ** 2)
            results.append(reduce(logits, nearest, rows))
        return torch.cat(results, dim=0)

    def _shifted_logits(self, x: torch.Tensor, beta: torch.Tensor, variance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the logits shifted so that their maximum is 0, shape ``(c, n)``, and the shift ``(c,)``."""
        distances = self._squared_distances(x, beta)
        nearest = distances.min(dim=1).values if distances.shape[0] > 0 else distances.new_zeros(0)
        if bool(torch.isinf(nearest).any()):
            raise ValueError(
                f"x and train are too large for squared distances in {self.dtype}, because "
                "||x - beta x^(i)||**2 overflows for every i. Rescale the data, or use float64 if it is float32."
            )

        # Subtracting the nearest distance leaves the softmax unchanged, but it makes the largest logit
        # exactly 0, so the log-softmax stays finite even when sigma is tiny or 0.
        excess = distances - nearest[:, None]
        return self._logits(excess, variance), nearest

    @staticmethod
    def _logits(excess: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
        """Turn shifted squared distances into logits ``-excess / (2 sigma**2)``, keeping only the nearest samples at sigma = 0."""
        singular = (variance == 0)[:, None]
        safe_variance = torch.where(singular, torch.ones_like(variance[:, None]), variance[:, None])
        logits = -excess / (2 * safe_variance)

        # The sigma -> 0 limit of the softmax: equal weight on the samples at the nearest distance.
        nearest_only = torch.where(excess == 0, torch.zeros_like(excess), torch.full_like(excess, -math.inf))
        return torch.where(singular, nearest_only, logits)

    def _squared_distances(self, x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """Compute ``||x - beta x^(i)||**2`` for one chunk of queries, shape ``(c, n)``.

        This is the direct-difference form. The expanded form ``||x||**2 - 2 beta x . x^(i) +
        beta**2 ||x^(i)||**2`` needs only matrix products and less memory, but it cancels
        catastrophically at small sigma when two training samples are nearly tied.
        """
        difference = x[:, None, :] - beta[:, None, None] * self.train[None, :, :]
        return difference.square().sum(dim=-1)


def _select(times: _Times, rows: torch.Tensor) -> _Times:
    """Return the schedule values of a subset of the queries."""
    return _Times(
        time=times.time[rows],
        beta=times.beta[rows],
        sigma=times.sigma[rows],
        singular=times.singular[rows],
        per_query=times.per_query,
    )


# Input validation at the public surface.


def _describe_non_finite(tensor: torch.Tensor) -> str:
    bad = ~torch.isfinite(tensor.detach())
    first = tuple(int(i) for i in bad.nonzero()[0].tolist())
    value = tensor.detach()[first].item()
    return f"{int(bad.sum())} non-finite entries (first at index {first}: {value})"


def _check_train(train) -> None:
    if not isinstance(train, torch.Tensor):
        raise TypeError(f"train must be a torch.Tensor of shape (n, d), got {type(train).__name__}")
    if train.dim() != 2:
        raise ValueError(f"train must be 2-D with shape (n, d), got shape {tuple(train.shape)}")
    if train.shape[0] == 0 or train.shape[1] == 0:
        raise ValueError(f"train must have at least one sample (n >= 1) of dimension d >= 1, got shape {tuple(train.shape)}")
    if train.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"train must have dtype torch.float32 or torch.float64, got {train.dtype}")
    if train.is_meta:
        raise ValueError("train must hold values, got a tensor on the meta device. Create train on cpu or cuda")
    if not bool(torch.isfinite(train).all()):
        raise ValueError(f"train must contain only finite values, got {_describe_non_finite(train)}")


def _check_queries(x, train: torch.Tensor) -> None:
    d = train.shape[1]
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (m, d), got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D with shape (m, d) = (m, {d}), got shape {tuple(x.shape)}")
    if x.shape[1] != d:
        raise ValueError(f"x must have d = {d} columns like train, got shape {tuple(x.shape)}")
    if x.dtype != train.dtype:
        raise TypeError(f"x must have the dtype of train ({train.dtype}), got {x.dtype}")
    if x.device != train.device:
        raise ValueError(f"x must be on the device of train ({train.device}), got {x.device}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"x must contain only finite values, got {_describe_non_finite(x)}")


def _check_time(t, num_queries: int) -> torch.Tensor:
    """Validate ``t`` and return it as a tensor of shape () or (num_queries,), with a number turned into float64."""
    if isinstance(t, bool) or not isinstance(t, (Real, torch.Tensor)):
        raise TypeError(f"t must be a real number or a torch.Tensor, got {type(t).__name__}")

    if isinstance(t, torch.Tensor):
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"t must have a real floating or integer dtype, got {t.dtype}")
        if t.is_meta:
            raise ValueError("t must hold values, got a tensor on the meta device. Create t on cpu or on train's device")
        if t.dim() != 0 and tuple(t.shape) != (num_queries,):
            raise ValueError(
                f"t must be 0-dim or have shape (m,) = ({num_queries},) with one time per query, "
                f"got shape {tuple(t.shape)}"
            )
        time = t.detach().to(torch.float64)
    else:
        time = torch.tensor(float(t), dtype=torch.float64)

    for message, bad in (
        ("t must not be NaN", torch.isnan(time)),
        ("t must lie in [0, 1]", (time < 0) | (time > 1)),
    ):
        if bool(bad.any()):
            flat = bad.reshape(-1)
            index = int(flat.nonzero()[0, 0])
            value = time.reshape(-1)[index].item()
            where = "" if time.dim() == 0 else f" at index {index}"
            raise ValueError(f"{message}, got {value}{where}")

    return t if isinstance(t, torch.Tensor) else time

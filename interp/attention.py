"""The posterior mean of a finite training set, computed as attention over the training set.

The posterior weights ``w_i = softmax_i(-||x - beta x^(i)||**2 / (2 sigma**2))`` do not change when
the same number is added to every logit, so the ``||x||**2`` term of the squared distance can be
dropped. What remains is a dot product between a query built from ``x`` and a key built from
``x^(i)``:

    -||x - beta x^(i)||**2 / (2 sigma**2) + ||x||**2 / (2 sigma**2)
        = [beta x / sigma**2, -beta**2 / (2 sigma**2)] . [x^(i), ||x^(i)||**2].

Each query carries its own ``beta`` and ``sigma``, so one call covers a different t per query.
With the keys also used as values, ``softmax(Q K^T) K`` is ``[m(x, t), sum_i w_i ||x^(i)||**2]``:
the denoiser is attention with queries ``Q``, keys and values ``K`` and scale 1. The module computes
it with ``torch.nn.functional.scaled_dot_product_attention``, which never forms the ``(m, n)``
weight matrix, so its memory is ``O((m + n) d)``.

This expanded form loses precision that the direct difference keeps. Each logit is a difference of
terms of size about ``beta ||x|| R / sigma**2``, where ``R`` bounds ``||x^(i) - c||``. Its rounding
error therefore grows like ``eps * beta ||x|| R / sigma**2``, which ruins the weights when sigma is
small and two training samples are nearly tied. :func:`expanded_logit_error` estimates that error per query, and
:class:`interp.fields.EmpiricalField` uses the expanded form only where the estimate is below
:data:`MAX_EXPANDED_LOGIT_ERROR_ULPS` units of roundoff of the working dtype. Centring the training
set at its mean before building the keys (see :class:`TrainingKeys`) makes ``R`` the radius of the
data rather than its distance from the origin, which widens the range where the fast form is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "MAX_EXPANDED_LOGIT_ERROR_ULPS",
    "TrainingKeys",
    "attention_queries",
    "expanded_logits",
    "attention_mean",
    "expanded_logit_error",
]

#: The expanded form is used where its estimated logit error is below this many units of roundoff
#: (machine epsilon of the dtype): about 2.3e-13 in float64 and 1.2e-4 in float32.
MAX_EXPANDED_LOGIT_ERROR_ULPS = 1024
# NOTE: the estimate is conservative. On the digits it exceeds the measured logit error by a median
# factor of about 26, so "auto" leaves the fast form while it is still accurate, near sigma = 0.5.


@dataclass(frozen=True)
class TrainingKeys:
    """Keys ``[x^(i) - c, ||x^(i) - c||**2]`` of a training set centred at its mean ``c``.

    Attributes
    ----------
    keys:
        Shape ``(n, d + 1)``.
    centre:
        The mean ``c`` of the training set, shape ``(d,)``.
    radius:
        ``max_i ||x^(i) - c||``, the ``R`` of the precision estimate.
    """

    keys: torch.Tensor
    centre: torch.Tensor
    radius: float

    @classmethod
    def from_train(cls, train: torch.Tensor) -> "TrainingKeys":
        centre = train.mean(dim=0)
        centred = train - centre
        squared_norms = centred.square().sum(dim=1, keepdim=True)
        radius = math.sqrt(float(squared_norms.max())) if train.shape[0] > 0 else 0.0
        return cls(keys=torch.cat([centred, squared_norms], dim=1), centre=centre, radius=radius)


def attention_queries(x: torch.Tensor, beta: torch.Tensor, sigma: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Build the queries ``[beta (x - beta c) / sigma**2, -beta**2 / (2 sigma**2)]``, shape ``(m, d + 1)``.

    ``beta`` and ``sigma`` have shape ``(m,)`` and sigma must be positive. Shifting ``x`` by
    ``beta c`` matches the centred keys: ``x - beta x^(i) = (x - beta c) - beta (x^(i) - c)``.
    """
    beta = beta[:, None]
    variance = sigma[:, None] ** 2
    shifted = x - beta * centre
    return torch.cat([beta * shifted / variance, -(beta**2) / (2 * variance)], dim=1)


def expanded_logits(queries: torch.Tensor, keys: TrainingKeys) -> torch.Tensor:
    """Return the logits ``Q K^T``, shape ``(m, n)``: the posterior log-weights up to a constant per query."""
    return queries @ keys.keys.T


def attention_mean(queries: torch.Tensor, keys: TrainingKeys) -> torch.Tensor:
    """Compute ``softmax(Q K^T) K`` with the fused attention kernel, shape ``(m, d + 1)``.

    The first ``d`` columns are ``m(x, t) - c`` and the last is ``sum_i w_i ||x^(i) - c||**2``.
    The inputs are passed as 4-D tensors with equal query and value sizes: measured with torch
    2.13 on a 2-core x86-64 CPU, other shapes fell back to a path about half as fast.
    """
    query = queries[None, None]
    key = keys.keys[None, None].to(queries.dtype)
    return F.scaled_dot_product_attention(query, key, key, scale=1.0)[0, 0]


def expanded_logit_error(x: torch.Tensor, beta: torch.Tensor, sigma: torch.Tensor, keys: TrainingKeys) -> torch.Tensor:
    """Estimate the rounding error of the expanded logits, per query, in units of the logits, shape ``(m,)``.

    Each logit sums ``d + 1`` products bounded in total by ``(beta ||x - beta c|| R + beta**2 R**2 / 2)
    / sigma**2``. Rounding errors of such a sum grow like ``sqrt(d + 1) eps`` times that bound in the
    usual probabilistic model of floating-point error, so the estimate is that product.
    """
    eps = torch.finfo(x.dtype).eps
    d = x.shape[1]
    radius = keys.radius
    shifted_norm = (x - beta[:, None] * keys.centre).norm(dim=1)
    magnitude = (beta.abs() * shifted_norm * radius + beta**2 * radius**2 / 2) / sigma**2
    return math.sqrt(d + 1) * eps * magnitude

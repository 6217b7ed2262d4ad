"""Predictions of what the Euler and Euler-Maruyama samplers do near the data end ``t = 1``.

Conventions, shared with :mod:`interp.samplers`:

* time runs from noise at ``t = 0`` to data at ``t = 1`` on the uniform grid ``t_k = k / K`` with
  step ``h = 1 / K``;
* the sample is in the one-hot regime of one training sample ``x^(j)``: its posterior weight on
  ``x^(j)`` is 1, which is exact for a training set of one sample. Then the velocity is
  ``b = (sigma'/sigma)(x - beta x^(j)) + beta' x^(j)`` and the score is ``-(x - beta x^(j)) / sigma**2``;
* ``y_k = X_k - beta(t_k) x^(j)`` is the offset of the state from the moving centre, and
  ``zeta = y_0 / sigma(0)`` is the standardized position, which the exact flow keeps constant.

One Euler-Maruyama step with diffusion ``eps(t)`` maps the offset to

    y_{k+1} = A_k y_k + r_k x^(j) + sqrt(2 eps(t_k) h) xi_k,

    A_k = 1 + h sigma'(t_k)/sigma(t_k) - h eps(t_k)/sigma(t_k)**2,
    r_k = beta(t_k) + h beta'(t_k) - beta(t_{k+1}),

with ``xi_k ~ N(0, I)``, and ``eps = 0`` gives Euler. Near ``t = 1`` a schedule behaves like
``sigma(t) ~ c (1 - t)**p``. At ``t = 1 - j h`` the Euler factor tends to ``1 - p/j`` as
``h -> 0``, and the product of the last J factors is ``Gamma(J + 1 - p) / (Gamma(1 - p) Gamma(J + 1))``.

Every prediction here is computed from the schedule's own SymPy expressions
(``beta_expr``, ``sigma_expr``, ``dbeta_expr``, ``dsigma_expr`` in :data:`interp.schedules.t`),
never from a table of presets.

A diffusion ``eps`` is given as a number >= 0 or a SymPy expression in ``t``, so that its limit
at ``t = 1`` can be taken symbolically. :func:`diffusion_function` turns it into the callable
that :func:`interp.samplers.sample_sde` takes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from numbers import Real
from typing import Callable

import mpmath
import sympy as sp
import torch

from .schedules import Schedule, t

__all__ = [
    "h",
    "p",
    "J",
    "EndpointExpansion",
    "endpoint_expansion",
    "euler_factor",
    "euler_maruyama_factor",
    "euler_maruyama_factors",
    "limiting_last_step_factor",
    "euler_product_expr",
    "euler_product",
    "euler_product_asymptote",
    "LeadingDeviation",
    "leading_euler_deviation",
    "predicted_euler_deviation",
    "EndpointLaw",
    "endpoint_law",
    "exact_euler_deviation",
    "diffusion_function",
    "diffusion_ratio_limit",
    "is_euler_maruyama_stable",
    "fit_power_law",
]

#: The step size, a positive symbol.
h = sp.Symbol("h", positive=True)

#: The endpoint exponent in sigma(t) ~ c (1 - t)**p, a real symbol.
p = sp.Symbol("p", real=True)

#: The number of last steps in a product, a positive integer symbol.
J = sp.Symbol("J", integer=True, positive=True)

# Positive stand-in for 1 - t in limits at t = 1 from below.
_u = sp.Symbol("u", positive=True)


# Input validation.


def _check_schedule(schedule) -> None:
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be an interp.schedules.Schedule, got {type(schedule).__name__}")


def _check_integer(value, argument: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an int, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{argument} must be at least {minimum}, got {value}")
    return value


def _check_real(value, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (Real, sp.Basic)):
        raise TypeError(f"{argument} must be a real number, got {type(value).__name__}: {value!r}")
    if isinstance(value, sp.Basic) and not (value.is_number and value.is_real):
        raise TypeError(f"{argument} must be a real number, got the expression {value}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{argument} must be finite, got {value}")
    return number


def _check_norm(value, argument: str) -> torch.Tensor:
    """Validate a norm (a number or a tensor of numbers >= 0) and return it as a float64 tensor."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise TypeError(f"{argument} must be a floating tensor or a number, got dtype {value.dtype}")
        tensor = value.detach().to(torch.float64)
    else:
        tensor = torch.tensor(_check_real(value, argument), dtype=torch.float64)
    if not bool(torch.isfinite(tensor).all()) or bool((tensor < 0).any()):
        raise ValueError(f"{argument} must contain only finite values >= 0, got {value}")
    return tensor


def _check_step(step) -> float:
    value = _check_real(step, "step")
    if value <= 0:
        raise ValueError(f"step must be a step size h > 0, got {step}")
    return value


def _check_time(value, argument: str = "time") -> torch.Tensor:
    """Validate times in [0, 1) (a number or tensor) and return them as a float64 tensor."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().to(torch.float64)
    else:
        tensor = torch.tensor(_check_real(value, argument), dtype=torch.float64)
    if bool(torch.isnan(tensor).any()) or bool(((tensor < 0) | (tensor >= 1)).any()):
        raise ValueError(
            f"{argument} must lie in [0, 1), because sigma(1) = 0 makes the factor singular at t = 1, got {value}"
        )
    return tensor


def _diffusion_expression(diffusion) -> sp.Expr:
    """Convert a diffusion (a number >= 0 or a SymPy expression in t) to an expression in t."""
    if isinstance(diffusion, bool) or not isinstance(diffusion, (Real, sp.Basic)):
        raise TypeError(
            "diffusion must be a number >= 0 or a SymPy expression in interp.schedules.t, "
            f"got {type(diffusion).__name__}: {diffusion!r}"
        )
    expression = sp.sympify(diffusion)
    if not isinstance(expression, sp.Expr):
        raise TypeError(f"diffusion must be a SymPy expression, got {expression!r}")
    free = expression.free_symbols
    if free - {t}:
        names = ", ".join(sorted(str(symbol) for symbol in free - {t}))
        raise ValueError(f"diffusion must depend on the time symbol interp.schedules.t only, got symbols {names}")
    if expression.is_number:
        value = _check_real(expression, "diffusion")
        if value < 0:
            raise ValueError(f"diffusion must be >= 0, got the constant {value}")
    return expression


# The behaviour of the schedule at t = 1.


@dataclass(frozen=True)
class EndpointExpansion:
    """The schedule near ``t = 1``: ``sigma(t) ~ constant (1 - t)**exponent`` and ``beta''(1)``, as exact SymPy numbers."""

    exponent: sp.Expr
    constant: sp.Expr
    beta_curvature: sp.Expr


@functools.lru_cache(maxsize=128)
def _expansion(beta_expr: sp.Expr, sigma_expr: sp.Expr, dsigma_expr: sp.Expr, name: str) -> EndpointExpansion:
    # Writing t = 1 - u with u > 0 lets SymPy simplify powers such as (1 - t)**p / (1 - t)**q.
    log_derivative = sp.simplify(((1 - t) * dsigma_expr / sigma_expr).subs(t, 1 - _u))
    exponent = sp.nsimplify(sp.simplify(-sp.limit(log_derivative, _u, 0, "+")))
    if not (exponent.is_number and exponent.is_real and exponent.is_finite and exponent > 0):
        raise ValueError(
            f"sigma = {sp.sstr(sigma_expr)} of schedule {name!r} must behave like c (1 - t)**p with a finite p > 0 "
            f"near t = 1, but -lim (1 - t) sigma'/sigma = {exponent}"
        )

    constant = sp.simplify(sp.limit(sp.simplify((sigma_expr / (1 - t) ** exponent).subs(t, 1 - _u)), _u, 0, "+"))
    if not (constant.is_number and constant.is_finite and constant != 0):
        raise ValueError(
            f"sigma = {sp.sstr(sigma_expr)} of schedule {name!r} must behave like c (1 - t)**p with a finite c != 0 "
            f"near t = 1, but lim sigma / (1 - t)**{exponent} = {constant}"
        )

    curvature_expr = sp.diff(beta_expr, t, 2)
    curvature = sp.simplify(curvature_expr.subs(t, 1))
    if curvature.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        curvature = sp.limit(curvature_expr, t, 1, "-")
    if not (curvature.is_number and curvature.is_finite):
        raise ValueError(f"beta''(1) of schedule {name!r} must be finite, got {curvature}")
    return EndpointExpansion(exponent=exponent, constant=constant, beta_curvature=curvature)


def endpoint_expansion(schedule: Schedule) -> EndpointExpansion:
    """Compute p, c and beta''(1), where ``sigma(t) ~ c (1 - t)**p`` as ``t -> 1``.

    ``p = -lim_{t -> 1-} (1 - t) sigma'(t) / sigma(t)``, ``c = lim_{t -> 1-} sigma(t) / (1 - t)**p``,
    and ``beta''(1)`` is the second derivative of beta at 1 (a one-sided limit where substitution
    fails). All three are SymPy limits of the schedule's expressions, cached per schedule expression.

    Raises ValueError when sigma does not behave like a power of ``1 - t`` (p infinite, zero or not
    a real number, or c zero or infinite), or when beta''(1) is not finite.
    """
    _check_schedule(schedule)
    return _expansion(schedule.beta_expr, schedule.sigma_expr, schedule.dsigma_expr, schedule.name)


# One-step factors.


def euler_factor(schedule: Schedule, time, step) -> torch.Tensor:
    """Compute the Euler factor ``a(t, h) = 1 + h sigma'(t) / sigma(t)`` in float64.

    ``time`` is a number or a tensor of times in ``[0, 1)``, ``step`` is h > 0. In the one-hot
    regime, one Euler step multiplies the offset ``y = X - beta(t) x^(j)`` by this factor.
    """
    _check_schedule(schedule)
    times = _check_time(time)
    step = _check_step(step)
    return 1 + step * schedule.dsigma(times).to(torch.float64) / schedule.sigma(times).to(torch.float64)


def euler_maruyama_factor(schedule: Schedule, time, step, diffusion) -> torch.Tensor:
    """Compute the Euler-Maruyama factor ``A(t, h) = 1 + h sigma'/sigma - h eps / sigma**2`` in float64.

    ``diffusion`` is eps, a number >= 0 or a SymPy expression in ``t``. With eps = 0 this is
    :func:`euler_factor`.
    """
    _check_schedule(schedule)
    times = _check_time(time)
    step = _check_step(step)
    epsilon = diffusion_function(diffusion)
    eps_values = torch.tensor([epsilon(float(value)) for value in times.reshape(-1)], dtype=torch.float64)
    eps_values = eps_values.reshape(times.shape)
    sigma = schedule.sigma(times).to(torch.float64)
    return 1 + step * schedule.dsigma(times).to(torch.float64) / sigma - step * eps_values / sigma**2


def euler_maruyama_factors(schedule: Schedule, steps: int, diffusion=0) -> torch.Tensor:
    """Compute the factors ``A_k`` of all K steps of the uniform grid, shape ``(K,)``, float64.

    ``A_k`` is :func:`euler_maruyama_factor` at ``t_k = k / K`` with ``h = 1 / K``. The last entry
    belongs to the step that ends at ``t = 1``.
    """
    _check_schedule(schedule)
    steps = _check_integer(steps, "steps", 1)
    grid = torch.arange(steps, dtype=torch.float64) / steps
    return euler_maruyama_factor(schedule, grid, 1 / steps, diffusion)


def limiting_last_step_factor(schedule: Schedule, j: int, diffusion=0) -> sp.Expr:
    """Compute ``lim_{h -> 0+} A(1 - j h, h)``, the factor j steps before the end, as a SymPy number.

    For ``sigma ~ c (1 - t)**p`` and eps with ``L = lim (1 - t) eps / sigma**2`` this is
    ``1 - (p + L) / j``, so Euler (L = 0) gives ``1 - p/j``. The limit is taken from the schedule's
    expressions directly, so it is an independent check of that formula. It is ``-oo`` when eps
    decays slower than ``sigma**2 / (1 - t)``.
    """
    _check_schedule(schedule)
    j = _check_integer(j, "j", 1)
    epsilon = _diffusion_expression(diffusion)
    factor = 1 + h * schedule.dsigma_expr / schedule.sigma_expr - h * epsilon / schedule.sigma_expr**2
    return sp.simplify(sp.limit(sp.simplify(factor.subs(t, 1 - j * h)), h, 0, "+"))


# The product of the last factors.


@functools.lru_cache(maxsize=1)
def euler_product_expr() -> sp.Expr:
    """Derive ``prod_{j=1}^{J} (1 - p/j)`` in closed form: ``Gamma(J + 1 - p) / (Gamma(1 - p) Gamma(J + 1))``.

    SymPy's ``product`` returns ``RisingFactorial(1 - p, J) / factorial(J)``. The rising factorial
    is ``Gamma(1 - p + J) / Gamma(1 - p)``, which SymPy itself rewrites only inside a Piecewise on
    the sign of ``1 - p``. The identity holds for every real p once ``1 / Gamma(1 - p)`` is read
    as 0 at the poles (p = 1, 2, ...), so it is applied here directly.
    The result is in the module's symbols :data:`p` and :data:`J`.
    """
    index = sp.Symbol("j", integer=True, positive=True)
    product = sp.product(1 - p / index, (index, 1, J))
    closed = product.replace(
        lambda expression: isinstance(expression, sp.RisingFactorial),
        lambda expression: sp.gamma(expression.args[0] + expression.args[1]) / sp.gamma(expression.args[0]),
    )
    return sp.gammasimp(closed.rewrite(sp.gamma))


def euler_product(p_value, count: int) -> float:
    """Evaluate ``prod_{j=1}^{count} (1 - p/j) = Gamma(count + 1 - p) / (Gamma(1 - p) Gamma(count + 1))``.

    The Gamma ratio is evaluated with ``mpmath.gammaprod``, which cancels matching poles. So the
    value is exactly 0 for an integer ``1 <= p <= count``, because the factor ``j = p`` is 0, and
    it is finite for an integer ``p > count``. ``count = 0`` is the empty product 1.
    """
    exponent = _check_real(p_value, "p")
    count = _check_integer(count, "count", 0)
    return float(mpmath.gammaprod([count + 1 - exponent], [1 - exponent, count + 1]))


def euler_product_asymptote(p_value, count: int) -> float:
    """Evaluate the large-count form ``count**(-p) / Gamma(1 - p)`` of :func:`euler_product`.

    ``1 / Gamma(1 - p)`` is 0 for p = 1, 2, ..., so the asymptote is 0 there. The relative error
    of the asymptote is ``p (p - 1) / (2 count) + O(count**-2)``.
    """
    exponent = _check_real(p_value, "p")
    count = _check_integer(count, "count", 1)
    return float(mpmath.rgamma(1 - exponent)) * count ** (-exponent)


# The predicted deviation of Euler at t = 1.


@dataclass(frozen=True)
class LeadingDeviation:
    """The leading term ``constant * h**rate * scale`` of the Euler endpoint deviation.

    ``scale`` is ``"zeta"`` (the term multiplies ``||zeta||``), ``"sample"`` (it multiplies
    ``||x^(j)||``) or ``"exact"`` (no term survives: Euler returns the training sample, and
    ``rate`` is None and ``constant`` is 0).
    """

    rate: float | None
    constant: float
    scale: str


def _noise_coefficient(expansion: EndpointExpansion) -> float:
    """Return ``|c| / |Gamma(1 - p)|``, which is 0 for p = 1, 2, ..."""
    exponent = expansion.exponent
    if exponent.is_integer:
        return 0.0
    return abs(float(expansion.constant)) * abs(float(mpmath.rgamma(1 - float(exponent))))


def _check_curvature_covered(expansion: EndpointExpansion, name: str) -> None:
    """Reject a curved beta where the h**2 term of the prediction is not the leading correction."""
    exponent = expansion.exponent
    sigma_term_leads = exponent < 2 and not exponent.is_integer
    if expansion.beta_curvature == 0 or exponent == 1 or sigma_term_leads:
        return
    raise ValueError(
        f"schedule {name!r} has beta''(1) = {expansion.beta_curvature} != 0 and p = {expansion.exponent}: "
        "the prediction covers a curved beta only for p = 1, or for a non-integer p < 2 where the "
        "sigma term leads, because for other p the earlier steps' curvature errors partly cancel"
    )


def leading_euler_deviation(schedule: Schedule) -> LeadingDeviation:
    """Return the leading term of :func:`predicted_euler_deviation` as ``h -> 0``.

    It is the sigma term ``|c| / |Gamma(1 - p)| h**p ||zeta||`` when that term is non-zero (non-integer p)
    and ``p < 2`` or beta is straight at 1. Otherwise it is the beta-curvature term
    ``|beta''(1)| / 2 h**2 ||x^(j)||`` when ``beta''(1) != 0``, and an exact copy when both vanish.
    Raises ValueError for the curved-beta cases that :func:`predicted_euler_deviation` does not cover.
    """
    expansion = endpoint_expansion(schedule)
    _check_curvature_covered(expansion, schedule.name)
    noise = _noise_coefficient(expansion)
    curvature = abs(float(expansion.beta_curvature)) / 2

    if noise > 0 and (expansion.exponent < 2 or curvature == 0):
        return LeadingDeviation(rate=float(expansion.exponent), constant=noise, scale="zeta")
    if curvature > 0:
        return LeadingDeviation(rate=2.0, constant=curvature, scale="sample")
    return LeadingDeviation(rate=None, constant=0.0, scale="exact")


def predicted_euler_deviation(schedule: Schedule, steps: int, zeta_norm, sample_norm) -> torch.Tensor:
    """Predict ``||X_K - x^(j)||`` for Euler with K uniform steps, to leading order in ``h = 1 / K``.

    The prediction is::

        |c| h**p ||zeta|| / |Gamma(1 - p)|  +  |beta''(1)| h**2 / 2 ||x^(j)||,

    with ``sigma ~ c (1 - t)**p`` from :func:`endpoint_expansion`, ``zeta_norm = ||zeta||`` the
    norm of the standardized position ``(X_0 - beta(0) x^(j)) / sigma(0)`` and ``sample_norm = ||x^(j)||``.
    The first term is 0 for an integer p, because ``1 / Gamma(1 - p) = 0``. The second term is the
    error of the last step alone. It is the leading curvature term for p = 1, where the last factor
    tends to 0 and removes the errors of earlier steps. For non-integer p < 2 it is smaller than the
    first term. A curved beta with another p raises ValueError.
    Both norms may be numbers or tensors that broadcast, and the result is a float64 tensor.
    """
    expansion = endpoint_expansion(schedule)
    steps = _check_integer(steps, "steps", 1)
    zeta = _check_norm(zeta_norm, "zeta_norm")
    sample = _check_norm(sample_norm, "sample_norm")
    _check_curvature_covered(expansion, schedule.name)

    step = 1 / steps
    noise_term = _noise_coefficient(expansion) * step ** float(expansion.exponent) * zeta
    curvature_term = abs(float(expansion.beta_curvature)) / 2 * step**2 * sample
    return noise_term + curvature_term


# The exact law of the endpoint in the one-hot regime.


@dataclass(frozen=True)
class EndpointLaw:
    """The exact endpoint of the sampler in the one-hot regime of ``x^(j)``:

    ``X_K - x^(j) = noise_gain * zeta + sample_gain * x^(j) + N(0, variance I)``,

    where ``zeta`` is the standardized position at ``t_0 = 0``.
    """

    noise_gain: float
    sample_gain: float
    variance: float


def endpoint_law(schedule: Schedule, steps: int, diffusion=0) -> EndpointLaw:
    """Compute the exact endpoint law of Euler (eps = 0) or Euler-Maruyama by multiplying the actual factors.

    With ``A_k`` from :func:`euler_maruyama_factors`, ``r_k = beta(t_k) + h beta'(t_k) - beta(t_{k+1})``
    and the suffix products ``S_k = A_{k+1} ... A_{K-1}``, the recursion for the offset gives

        noise_gain = sigma(0) * A_0 ... A_{K-1},   sample_gain = sum_k S_k r_k,
        variance = sum_k S_k**2 * 2 eps(t_k) h.

    This is exact, up to float64 rounding, for a training set of one sample, and for any training
    set while the posterior weight stays one-hot on ``x^(j)``.
    """
    _check_schedule(schedule)
    steps = _check_integer(steps, "steps", 1)
    epsilon = diffusion_function(diffusion)
    step = 1 / steps

    grid = torch.arange(steps + 1, dtype=torch.float64) / steps
    factors = euler_maruyama_factors(schedule, steps, diffusion)
    beta = schedule.beta(grid).to(torch.float64)
    dbeta = schedule.dbeta(grid[:-1]).to(torch.float64)
    residuals = beta[:-1] + step * dbeta - beta[1:]
    eps_values = torch.tensor([epsilon(float(time)) for time in grid[:-1]], dtype=torch.float64)

    # S_k = prod_{l > k} A_l: a reversed cumulative product, shifted by one so that S_{K-1} = 1.
    suffix = torch.flip(torch.cumprod(torch.flip(factors, [0]), 0), [0])
    suffix = torch.cat([suffix[1:], torch.ones(1, dtype=torch.float64)])

    sigma_start = float(schedule.sigma(0.0))
    return EndpointLaw(
        noise_gain=sigma_start * float(torch.prod(factors)),
        sample_gain=float((suffix * residuals).sum()),
        variance=float((suffix**2 * 2 * eps_values * step).sum()),
    )


def exact_euler_deviation(schedule: Schedule, steps: int, zeta: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
    """Compute ``||X_K - x^(j)||`` of Euler exactly: ``||noise_gain zeta + sample_gain x^(j)||`` per row.

    ``zeta`` has shape ``(m, d)`` (standardized positions at t = 0) and ``sample`` shape ``(d,)``
    or ``(m, d)``. The gains come from :func:`endpoint_law` with eps = 0. Returns shape ``(m,)``.
    """
    for argument, value in (("zeta", zeta), ("sample", sample)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{argument} must be a floating torch.Tensor, got {type(value).__name__}")
    if zeta.dim() != 2:
        raise ValueError(f"zeta must have shape (m, d), got shape {tuple(zeta.shape)}")
    if sample.shape not in ((zeta.shape[1],), tuple(zeta.shape)):
        raise ValueError(
            f"sample must have shape (d,) = ({zeta.shape[1]},) or (m, d) = {tuple(zeta.shape)}, got shape {tuple(sample.shape)}"
        )
    law = endpoint_law(schedule, steps)
    offset = law.noise_gain * zeta.to(torch.float64) + law.sample_gain * sample.to(torch.float64)
    return torch.linalg.vector_norm(offset, dim=-1)


# Diffusion coefficients and the stability of Euler-Maruyama.


def diffusion_function(diffusion) -> Callable[[float], float]:
    """Turn eps (a number >= 0 or a SymPy expression in t) into ``t -> eps(t)`` for :func:`interp.samplers.sample_sde`.

    The function returns a float and raises ValueError where eps is negative or not finite.
    """
    expression = _diffusion_expression(diffusion)
    compiled = sp.lambdify(t, expression, modules="math")

    def evaluate(time: float) -> float:
        value = float(compiled(time))
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"diffusion eps = {sp.sstr(expression)} must be finite and >= 0, got {value} at t = {time}")
        return value

    evaluate.__doc__ = f"Evaluate eps(t) = {sp.sstr(expression)}."
    return evaluate


def diffusion_ratio_limit(schedule: Schedule, diffusion) -> sp.Expr:
    """Compute ``L = lim_{t -> 1-} (1 - t) eps(t) / sigma(t)**2``, the order condition of Euler-Maruyama.

    The factor j steps before the end tends to ``1 - (p + L) / j``. A finite L means eps is at most
    of order ``sigma**2 / (1 - t)``, and ``|1 - p - L| <= 1`` keeps the last factor in [-1, 1].
    ``L = oo`` means the last factors grow like ``-eps h / sigma(1 - h)**2`` and the scheme blows up.
    """
    _check_schedule(schedule)
    expression = _diffusion_expression(diffusion)
    ratio = sp.simplify(((1 - t) * expression / schedule.sigma_expr**2).subs(t, 1 - _u))
    return sp.simplify(sp.limit(ratio, _u, 0, "+"))


def is_euler_maruyama_stable(schedule: Schedule, steps: int, diffusion, window: float = 0.5) -> bool:
    """Check that every Euler-Maruyama factor with ``t_k >= 1 - window`` lies in [-1, 1].

    A factor with ``|A_k| > 1`` amplifies the offset from the training sample at that step, and
    near t = 1 nothing is left to damp it again. The default window is the second half of the
    grid. The check is numeric, on the grid of ``steps`` uniform steps.
    """
    window = _check_real(window, "window")
    if not 0 < window <= 1:
        raise ValueError(f"window must lie in (0, 1], got {window}")
    factors = euler_maruyama_factors(schedule, steps, diffusion)
    grid = torch.arange(steps, dtype=torch.float64) / steps
    near_end = grid >= 1 - window
    return bool((factors[near_end].abs() <= 1).all())


# Measured rates.


def fit_power_law(step_sizes, values) -> tuple[float, float]:
    """Fit ``values ~ constant * step_sizes**rate`` by least squares on ``log values`` against ``log step_sizes``.

    Both arguments are sequences or 1-D tensors of the same length >= 2, with positive finite entries
    and at least two distinct step sizes. Returns ``(rate, constant)``.
    """
    columns = []
    for argument, sequence in (("step_sizes", step_sizes), ("values", values)):
        if isinstance(sequence, torch.Tensor):
            column = sequence.detach().to(device="cpu", dtype=torch.float64).reshape(-1)
        else:
            try:
                column = torch.tensor([float(value) for value in sequence], dtype=torch.float64)
            except (TypeError, ValueError) as error:
                raise TypeError(f"{argument} must be a sequence of real numbers, got {sequence!r}") from error
        if not bool(torch.isfinite(column).all()) or not bool((column > 0).all()):
            raise ValueError(f"{argument} must contain only finite positive numbers, got {column.tolist()}")
        columns.append(column)

    log_step, log_value = (torch.log(column) for column in columns)
    if log_step.numel() != log_value.numel():
        raise ValueError(
            f"step_sizes and values must have the same length, got {log_step.numel()} and {log_value.numel()}"
        )
    if log_step.numel() < 2 or bool((log_step == log_step[0]).all()):
        raise ValueError(f"step_sizes must contain at least two distinct values, got {columns[0].tolist()}")

    centred_step = log_step - log_step.mean()
    rate = float((centred_step * (log_value - log_value.mean())).sum() / (centred_step**2).sum())
    constant = math.exp(float(log_value.mean()) - rate * float(log_step.mean()))
    return rate, constant

"""Schedules of a stochastic interpolant, defined once in SymPy and evaluated in torch.

Conventions used across the package:

* time runs from noise at ``t = 0`` to data at ``t = 1``;
* the interpolant ``x_t = alpha(t) x0 + beta(t) x1 + gamma(t) z`` with ``x0, z ~ N(0, I)``
  has the law of ``beta(t) x1 + sigma(t) zeta`` with ``sigma**2 = alpha**2 + gamma**2``,
  so every field in :mod:`interp.fields` depends on the schedule only through ``beta`` and ``sigma``.

A :class:`Schedule` contains the SymPy expressions of ``beta`` and ``sigma`` in the symbol :data:`t`.
Their derivatives are taken symbolically, and the torch functions ``beta``, ``sigma``, ``dbeta``
and ``dsigma`` are generated from those expressions, so the formula a chapter prints is the
formula the code runs.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Callable

import mpmath
import sympy as sp
import torch

__all__ = [
    "t",
    "Schedule",
    "linear",
    "trigonometric",
    "latent_noise",
    "power",
]

#: The time symbol of every schedule. Noise is at t = 0 and data at t = 1.
t = sp.Symbol("t", real=True)

# Positive stand-in for 1 - t, used to simplify square roots such as sqrt((1 - t)**2) on [0, 1).
_u = sp.Symbol("u", positive=True)



def _tensor_or_math(torch_function: Callable, math_function: Callable) -> Callable:
    """Apply the torch function to tensors and the math function to constants such as sqrt(2)."""

    def apply(value):
        if isinstance(value, torch.Tensor):
            return torch_function(value)
        return math_function(value)

    return apply


# Functions a schedule expression may use, mapped to versions that accept tensors and constants.
_TORCH_FUNCTIONS: dict[str, object] = {
    name: _tensor_or_math(getattr(torch, torch_name), getattr(math, math_name))
    for name, torch_name, math_name in (
        ("sin", "sin", "sin"),
        ("cos", "cos", "cos"),
        ("tan", "tan", "tan"),
        ("asin", "asin", "asin"),
        ("acos", "acos", "acos"),
        ("atan", "atan", "atan"),
        ("sinh", "sinh", "sinh"),
        ("cosh", "cosh", "cosh"),
        ("tanh", "tanh", "tanh"),
        ("exp", "exp", "exp"),
        ("log", "log", "log"),
        ("sqrt", "sqrt", "sqrt"),
        ("Abs", "abs", "fabs"),
    )
}
_TORCH_FUNCTIONS["sign"] = _tensor_or_math(torch.sign, lambda value: math.copysign(1.0, value) if value != 0 else 0.0)
_TORCH_FUNCTIONS.update({"pi": math.pi, "E": math.e})


def _check_functions(expression: sp.Expr, argument: str) -> None:
    """Reject functions that have no torch counterpart here, before they fail on a tensor of times."""
    # Max and Min are not SymPy Function subclasses, so they are collected separately.
    calls = expression.atoms(sp.Function, sp.Max, sp.Min)
    unsupported = sorted({type(call).__name__ for call in calls} - set(_TORCH_FUNCTIONS))
    if unsupported:
        supported = ", ".join(sorted(name for name in _TORCH_FUNCTIONS if name not in ("pi", "E")))
        raise ValueError(
            f"{argument} = {sp.sstr(expression)} uses {', '.join(unsupported)}, which schedules cannot evaluate "
            f"in torch. Use only {supported}"
        )

# Number of grid points on which sigma > 0 is checked, besides points approaching t = 1.
_POSITIVITY_GRID = 2001


def _to_expression(value, argument: str) -> sp.Expr:
    """Convert a number or SymPy expression to an expression in the canonical symbol :data:`t`."""
    if isinstance(value, str):
        raise TypeError(
            f"{argument} must be a SymPy expression or a number, got the string {value!r}. "
            f"Parse it with interp.parsing.parse_expression({value!r}), or build it from SymPy objects "
            "such as interp.schedules.t and sympy.sin"
        )
    if isinstance(value, bool) or not isinstance(value, (sp.Basic, Real)):
        raise TypeError(f"{argument} must be a SymPy expression or a number, got {type(value).__name__}")
    expression = sp.sympify(value)
    if not isinstance(expression, sp.Expr):
        raise TypeError(f"{argument} must be a SymPy expression, got {expression!r}")

    free = expression.free_symbols
    if len(free) > 1:
        names = ", ".join(sorted(str(symbol) for symbol in free))
        raise ValueError(f"{argument} must depend on the time symbol t only, got symbols {names}")
    if free:
        (symbol,) = free
        if symbol.name != "t":
            raise ValueError(f"{argument} must be written in the symbol t, got {symbol.name}")
        expression = expression.subs(symbol, t)
    return expression


def _value_at(expression: sp.Expr, point) -> sp.Expr:
    """Evaluate an expression at a point of [0, 1], taking a one-sided limit where plain substitution fails."""
    value = sp.simplify(expression.subs(t, point))
    if value.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        direction = "+" if point == 0 else "-"
        value = sp.limit(expression, t, point, direction)
    return value


def _simplify_on_unit_interval(expression: sp.Expr) -> sp.Expr:
    """Simplify using 1 - t > 0, which turns sqrt((1 - t)**2) into 1 - t."""
    on_u = sp.simplify(expression.subs(t, 1 - _u))
    return sp.simplify(on_u.subs(_u, 1 - t))


def _torch_function(expression: sp.Expr) -> Callable[[torch.Tensor | float], torch.Tensor]:
    """Compile a SymPy expression in t into a function of a float or tensor that returns a tensor."""
    compiled = sp.lambdify(t, expression, modules=[_TORCH_FUNCTIONS])

    def evaluate(time: torch.Tensor | float) -> torch.Tensor:
        if not isinstance(time, torch.Tensor):
            time = torch.tensor(float(time), dtype=torch.float64)
        value = compiled(time)
        # A constant expression (e.g. dbeta = 1) compiles to a Python number: broadcast it to t's shape.
        if not isinstance(value, torch.Tensor):
            value = torch.full_like(time, float(value))
        return value

    evaluate.__doc__ = f"Evaluate {sp.sstr(expression)} at t (float or tensor)."
    return evaluate


class Schedule:
    """A noise schedule: ``x_t ~ beta(t) x1 + sigma(t) zeta`` with ``zeta ~ N(0, I)``.

    Parameters
    ----------
    beta, sigma:
        SymPy expressions (or numbers) in a symbol named ``t``. They must satisfy
        ``beta(0) = 0``, ``beta(1) = 1``, ``sigma(1) = 0`` and ``sigma(t) > 0`` on ``[0, 1)``.
    name:
        A label for tables and plots.

    Attributes
    ----------
    beta_expr, sigma_expr, dbeta_expr, dsigma_expr:
        The expressions and their symbolic derivatives in :data:`interp.schedules.t`.
    alpha_expr, gamma_expr:
        The interpolant coefficients when the schedule came from :meth:`from_interpolant`, else ``None``.

    The checks of ``beta(0)``, ``beta(1)`` and ``sigma(1)`` are exact (SymPy, with a one-sided
    limit where substitution is undefined). ``sigma > 0`` on ``[0, 1)`` is checked in float64 on a
    grid of 2001 points plus the points ``1 - 10**-k`` for ``k = 1, ..., 12``.
    """

    def __init__(self, beta, sigma, name: str | None = None):
        self.beta_expr = _to_expression(beta, "beta")
        self.sigma_expr = _to_expression(sigma, "sigma")
        # With a real t, SymPy turns sqrt((1 - t)**2) into Abs(t - 1); on [0, 1) that is 1 - t.
        if self.sigma_expr.has(sp.Abs):
            self.sigma_expr = _simplify_on_unit_interval(self.sigma_expr)
        self.dbeta_expr = sp.diff(self.beta_expr, t)
        self.dsigma_expr = sp.diff(self.sigma_expr, t)
        for argument, expression in (
            ("beta", self.beta_expr),
            ("sigma", self.sigma_expr),
            ("dbeta", self.dbeta_expr),
            ("dsigma", self.dsigma_expr),
        ):
            _check_functions(expression, argument)
        self.alpha_expr: sp.Expr | None = None
        self.gamma_expr: sp.Expr | None = None
        self.name = name if name is not None else f"beta={sp.sstr(self.beta_expr)}, sigma={sp.sstr(self.sigma_expr)}"

        self._check_boundary_conditions()

        self.beta = _torch_function(self.beta_expr)
        self.sigma = _torch_function(self.sigma_expr)
        self.dbeta = _torch_function(self.dbeta_expr)
        self.dsigma = _torch_function(self.dsigma_expr)

    @classmethod
    def from_interpolant(cls, alpha, beta, gamma, name: str | None = None) -> "Schedule":
        """Build the schedule of ``x_t = alpha x0 + beta x1 + gamma z``, with ``sigma = sqrt(alpha**2 + gamma**2)``.

        Besides the conditions of :class:`Schedule`, this checks ``alpha(0) = 1``, ``alpha(1) = 0``
        and ``gamma(0) = gamma(1) = 0``.
        """
        alpha_expr = _to_expression(alpha, "alpha")
        gamma_expr = _to_expression(gamma, "gamma")
        for argument, expression, point, expected in (
            ("alpha", alpha_expr, 0, 1),
            ("alpha", alpha_expr, 1, 0),
            ("gamma", gamma_expr, 0, 0),
            ("gamma", gamma_expr, 1, 0),
        ):
            value = _value_at(expression, point)
            if sp.simplify(value - expected) != 0:
                raise ValueError(
                    f"{argument}({point}) must be {expected} for a stochastic interpolant, "
                    f"got {argument} = {sp.sstr(expression)} with value {sp.sstr(value)}"
                )

        sigma_expr = _simplify_on_unit_interval(sp.sqrt(alpha_expr**2 + gamma_expr**2))
        schedule = cls(beta, sigma_expr, name=name)
        schedule.alpha_expr = alpha_expr
        schedule.gamma_expr = gamma_expr
        return schedule

    def _check_boundary_conditions(self) -> None:
        for argument, expression, point, expected in (
            ("beta", self.beta_expr, 0, 0),
            ("beta", self.beta_expr, 1, 1),
            ("sigma", self.sigma_expr, 1, 0),
        ):
            value = _value_at(expression, point)
            if sp.simplify(value - expected) != 0:
                raise ValueError(
                    f"{argument}({point}) must be {expected}, got {argument} = "
                    f"{sp.sstr(expression)} with value {sp.sstr(value)}"
                )

        # Checked numerically in mpmath, whose exponent range cannot underflow: a symbolic proof of
        # positivity is out of reach for general expressions.
        grid = [mpmath.mpf(k) / (_POSITIVITY_GRID - 1) for k in range(_POSITIVITY_GRID - 1)]
        grid += [1 - mpmath.mpf(10) ** -k for k in range(1, 13)]
        for argument, expression in (
            ("sigma", self.sigma_expr),
            ("beta", self.beta_expr),
            ("dbeta", self.dbeta_expr),
            ("dsigma", self.dsigma_expr),
        ):
            numeric = sp.lambdify(t, expression, modules="mpmath")
            for time in grid:
                try:
                    value = mpmath.mpmathify(numeric(time))
                except (ZeroDivisionError, ValueError, OverflowError, TypeError) as error:
                    raise ValueError(
                        f"{argument} = {sp.sstr(expression)} cannot be evaluated at t = {float(time)}: {error!r}"
                    ) from error
                invalid = mpmath.im(value) != 0 or not mpmath.isfinite(value)
                if argument == "sigma" and (invalid or mpmath.re(value) <= 0):
                    raise ValueError(
                        f"sigma must be real and positive on [0, 1), got sigma = {sp.sstr(expression)} "
                        f"with value {complex(value)} at t = {float(time)}"
                    )
                if invalid:
                    raise ValueError(
                        f"{argument} must be real and finite on [0, 1), got {argument} = {sp.sstr(expression)} "
                        f"with value {complex(value)} at t = {float(time)}"
                    )

    def __repr__(self) -> str:
        return f"Schedule(beta={sp.sstr(self.beta_expr)}, sigma={sp.sstr(self.sigma_expr)}, name={self.name!r})"


def _positive_parameter(value, argument: str) -> sp.Expr:
    """Check that a schedule parameter is a finite positive number and return it as an exact SymPy number."""
    if isinstance(value, bool) or not isinstance(value, (Real, sp.Basic)):
        raise TypeError(f"{argument} must be a positive number, got {type(value).__name__}")
    if isinstance(value, sp.Basic) and not value.is_number:
        raise TypeError(f"{argument} must be a positive number, got the expression {value}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{argument} must be a finite positive number, got {value}")
    if isinstance(value, sp.Basic):
        return value
    return sp.nsimplify(value, rational=True)


def linear() -> Schedule:
    """Rectified flow: ``beta = t``, ``sigma = 1 - t``."""
    return Schedule.from_interpolant(1 - t, t, 0, name="linear")


def trigonometric() -> Schedule:
    """``beta = sin(pi t / 2)``, ``sigma = cos(pi t / 2)``."""
    return Schedule(sp.sin(sp.pi * t / 2), sp.cos(sp.pi * t / 2), name="trigonometric")


def latent_noise(a) -> Schedule:
    """``alpha = 1 - t``, ``beta = t``, ``gamma = sqrt(a t (1 - t))``, so ``sigma**2 = (1 - t)**2 + a t (1 - t)``."""
    a_value = _positive_parameter(a, "a")
    return Schedule.from_interpolant(1 - t, t, sp.sqrt(a_value * t * (1 - t)), name=f"latent_noise(a={a})")


def power(p) -> Schedule:
    """``beta = t``, ``sigma = (1 - t)**p`` for ``p > 0``."""
    p_value = _positive_parameter(p, "p")
    return Schedule(t, (1 - t) ** p_value, name=f"power(p={p})")

"""Fixed-step samplers for the probability-flow ODE and the SDE of a stochastic interpolant.

Conventions, shared with :mod:`interp.schedules` and :mod:`interp.fields`:

* Time runs from noise at ``t = 0`` to data at ``t = 1``, and sampling integrates forward in t.
* A state is a floating tensor ``x`` of shape ``(m, d)``, with one row per sample.
* A field is a callable ``field(x, t)`` that takes such a state and ``t`` as a Python float
  and returns a tensor of the same shape.
* The time grid is ``0 = t_0 < t_1 < ... < t_K = 1`` with ``t_k = k / K`` unless a grid is given,
  and ``h_k = t_{k+1} - t_k``.

ODE ``dX = b(X, t) dt`` (:func:`sample_ode`), one step from ``(x, t)`` to ``t + h``:

* ``euler``: ``x + h b(x, t)``.
* ``heun`` (explicit trapezoid): ``x~ = x + h b(x, t)``, then ``x + h/2 [b(x, t) + b(x~, t + h)]``.
* ``rk4`` (classical Runge-Kutta): ``k1 = b(x, t)``, ``k2 = b(x + h/2 k1, t + h/2)``,
  ``k3 = b(x + h/2 k2, t + h/2)``, ``k4 = b(x + h k3, t + h)``, then ``x + h/6 (k1 + 2 k2 + 2 k3 + k4)``.

SDE ``dX = [b + eps s](X, t) dt + sqrt(2 eps(t)) dW`` (:func:`sample_sde`), Euler-Maruyama:
``x + h [b(x, t) + eps(t) s(x, t)] + sqrt(2 eps(t) h) xi`` with ``xi ~ N(0, I)``.

The fields of a finite training set are singular at ``t = 1`` because ``sigma(1) = 0``.
No sampler here evaluates a field at ``t = 1``. Euler and Euler-Maruyama evaluate only at the
left end of each step. Heun and RK4 take a step whose last stage would fall at ``t = 1`` as
an Euler step. That lowers the formal order of that one step to 1, and for rectified flow
(``b = (m - x) / (1 - t)``) it makes the last step land exactly on the denoiser ``m(x, 1 - h)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Callable

import torch

__all__ = ["METHODS", "sample_ode", "sample_sde"]

#: The ODE methods :func:`sample_ode` accepts.
METHODS = ("euler", "heun", "rk4")

Field = Callable[[torch.Tensor, float], torch.Tensor]


def _check_field_callable(field, argument: str) -> None:
    if not callable(field):
        raise TypeError(f"{argument} must be a callable field(x, t), got {type(field).__name__}: {field!r}")


def _check_state(x0) -> None:
    if not isinstance(x0, torch.Tensor):
        raise TypeError(f"x0 must be a torch.Tensor of shape (m, d), got {type(x0).__name__}")
    if not x0.is_floating_point():
        raise TypeError(f"x0 must have a floating dtype, got {x0.dtype}")
    if x0.ndim != 2:
        raise ValueError(f"x0 must have shape (m, d), got shape {tuple(x0.shape)}")
    if x0.is_meta:
        raise ValueError("x0 must hold values, got a tensor on the meta device. Create x0 on cpu or cuda")
    if not bool(torch.isfinite(x0).all()):
        raise ValueError("x0 must be finite, got a tensor containing NaN or infinity")


def _time_grid(steps, time_grid) -> list[float]:
    """Validate ``steps`` and ``time_grid`` and return the grid as Python floats."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)):
        raise TypeError(f"steps must be an int, got {type(steps).__name__}: {steps!r}")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")

    if time_grid is None:
        if steps is None:
            raise ValueError("steps must be given when time_grid is None, got steps=None")
        # k / steps is exact at both ends: t_0 = 0.0 and t_K = 1.0.
        return [k / steps for k in range(steps + 1)]

    if isinstance(time_grid, torch.Tensor):
        if time_grid.is_meta:
            raise ValueError("time_grid must hold values, got a tensor on the meta device. Create it on cpu")
        if time_grid.dtype == torch.bool or time_grid.is_complex():
            raise TypeError(f"time_grid must have a real dtype such as torch.float64, got {time_grid.dtype}")
        grid = time_grid.detach().to(device="cpu", dtype=torch.float64)
    elif isinstance(time_grid, Sequence) and not isinstance(time_grid, str):
        if any(isinstance(value, bool) for value in time_grid):
            raise TypeError(f"time_grid must contain real numbers, not booleans, got {time_grid!r}")
        try:
            grid = torch.tensor([float(value) for value in time_grid], dtype=torch.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(f"time_grid must contain real numbers, got {time_grid!r}") from error
    else:
        raise TypeError(f"time_grid must be a 1-D tensor or a sequence of floats, got {type(time_grid).__name__}")

    if grid.ndim != 1:
        raise ValueError(f"time_grid must be 1-D, got shape {tuple(grid.shape)}")
    if grid.numel() < 2:
        raise ValueError(f"time_grid must have at least 2 points, got {grid.tolist()}")
    if not bool(torch.isfinite(grid).all()):
        raise ValueError(f"time_grid must be finite, got {grid.tolist()}")
    if bool((grid[0] < 0).item()) or bool((grid[-1] > 1).item()):
        raise ValueError(f"time_grid must lie in [0, 1], got values from {grid[0].item()} to {grid[-1].item()}")
    increments = grid[1:] - grid[:-1]
    if not bool((increments > 0).all()):
        first = int(torch.nonzero(increments <= 0)[0].item())
        raise ValueError(
            f"time_grid must be strictly increasing, got {grid[first].item()} followed by {grid[first + 1].item()} "
            f"at index {first}"
        )
    if steps is not None and steps != grid.numel() - 1:
        raise ValueError(
            f"steps must be None or len(time_grid) - 1 = {grid.numel() - 1} when time_grid is given, got {steps}"
        )
    return grid.tolist()


def _evaluate(field: Field, name: str, x: torch.Tensor, t: float, step: int) -> torch.Tensor:
    """Call a field and raise instead of returning a tensor of the wrong shape or a non-finite value."""
    value = field(x, t)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(value).__name__} at step {step}, t = {t}")
    if value.shape != x.shape:
        raise ValueError(
            f"{name} returned shape {tuple(value.shape)} at step {step}, t = {t}, but expected the state's shape "
            f"{tuple(x.shape)}"
        )
    # Without these checks, x + h * value would silently promote the state to another dtype, or fail
    # inside torch with a message that names neither the field nor the step.
    if value.dtype != x.dtype:
        raise TypeError(
            f"{name} returned dtype {value.dtype} at step {step}, t = {t}, but the state has dtype {x.dtype}. "
            f"Return a tensor of x's dtype, or pass x0 in the field's dtype"
        )
    if value.device != x.device:
        raise ValueError(
            f"{name} returned a tensor on device {value.device} at step {step}, t = {t}, but the state is on "
            f"{x.device}. Return a tensor on x's device, or pass x0 on the field's device"
        )
    if not bool(torch.isfinite(value).all()):
        count = int((~torch.isfinite(value)).sum().item())
        raise FloatingPointError(f"{name} returned {count} non-finite values at step {step}, t = {t}")
    return value


def _euler_step(velocity: Field, x: torch.Tensor, t: float, h: float, step: int) -> torch.Tensor:
    return x + h * _evaluate(velocity, "velocity", x, t, step)


def _heun_step(velocity: Field, x: torch.Tensor, t: float, h: float, step: int) -> torch.Tensor:
    slope_start = _evaluate(velocity, "velocity", x, t, step)
    predictor = x + h * slope_start
    slope_end = _evaluate(velocity, "velocity", predictor, t + h, step)
    return x + (h / 2) * (slope_start + slope_end)


def _rk4_step(velocity: Field, x: torch.Tensor, t: float, h: float, step: int) -> torch.Tensor:
    k1 = _evaluate(velocity, "velocity", x, t, step)
    k2 = _evaluate(velocity, "velocity", x + (h / 2) * k1, t + h / 2, step)
    k3 = _evaluate(velocity, "velocity", x + (h / 2) * k2, t + h / 2, step)
    k4 = _evaluate(velocity, "velocity", x + h * k3, t + h, step)
    return x + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


_STEPS = {"euler": _euler_step, "heun": _heun_step, "rk4": _rk4_step}


def sample_ode(
    velocity: Field,
    x0: torch.Tensor,
    steps: int | None,
    method: str = "euler",
    time_grid: torch.Tensor | Sequence[float] | None = None,
    return_path: bool = False,
) -> torch.Tensor:
    """Integrate ``dX = velocity(X, t) dt`` from the grid's first time to its last with a fixed-step method.

    Parameters
    ----------
    velocity:
        ``velocity(x, t)`` takes ``x`` of shape ``(m, d)`` and ``t`` as a Python float, and returns shape ``(m, d)``.
    x0:
        Initial state at the first grid time, a finite floating tensor of shape ``(m, d)``.
        The result has its dtype and device.
    steps:
        Number of steps K of the uniform grid ``t_k = k / K`` on ``[0, 1]``. When ``time_grid`` is
        given, ``steps`` must be None or ``len(time_grid) - 1``.
    method:
        ``"euler"``, ``"heun"`` or ``"rk4"``. The module docstring gives the update formulas.
    time_grid:
        Optional strictly increasing 1-D tensor or sequence of at least 2 times in ``[0, 1]``.
        It need not start at 0 or end at 1.
    return_path:
        Return every state, shape ``(K + 1, m, d)``, in place of the final state ``(m, d)``.

    At the data end: Euler evaluates ``velocity`` at ``t_k`` only, so its last evaluation is at
    ``t_{K-1} < 1``. Heun and RK4 take any step that ends at ``t = 1`` as an Euler step, because
    their last stage would evaluate the singular field at ``t = 1``. That step has formal order 1,
    so on a grid ending at 1 the global error of Heun and RK4 is limited by that one step.
    Steps ending before 1 use the full method.

    Raises
    ------
    TypeError, ValueError:
        An argument is invalid. The message names the argument and its value.
    ValueError, FloatingPointError:
        ``velocity`` returned the wrong shape or a non-finite value. The message gives the step and t.
    """
    _check_field_callable(velocity, "velocity")
    _check_state(x0)
    if not isinstance(method, str) or method not in _STEPS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    grid = _time_grid(steps, time_grid)
    method_step = _STEPS[method]

    x = x0
    path = [x0] if return_path else None
    for step, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        h = t_next - t
        # The last stage of Heun and RK4 sits at t_next, where the field is singular when t_next = 1.
        if t_next >= 1.0:
            x = _euler_step(velocity, x, t, h, step)
        else:
            x = method_step(velocity, x, t, h, step)
        if path is not None:
            path.append(x)

    if path is not None:
        return torch.stack(path)
    return x


def _diffusion_function(diffusion) -> Callable[[float], float]:
    """Validate ``diffusion`` and return ``t -> eps(t)`` that raises on a negative or non-finite value."""
    if callable(diffusion):

        def evaluate(t: float) -> float:
            value = diffusion(t)
            if isinstance(value, torch.Tensor):
                if value.is_meta:
                    raise ValueError(f"diffusion must return a number, got a tensor on the meta device at t = {t}")
                if value.numel() != 1:
                    raise ValueError(
                        f"diffusion must return a scalar, got a tensor of shape {tuple(value.shape)} at t = {t}"
                    )
                value = value.item()
            if isinstance(value, bool) or not isinstance(value, Real):
                raise TypeError(f"diffusion must return a real number, got {type(value).__name__} at t = {t}")
            value = float(value)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"diffusion must be finite and >= 0, got {value} at t = {t}")
            return value

        return evaluate

    if isinstance(diffusion, bool) or not isinstance(diffusion, Real):
        raise TypeError(
            f"diffusion must be a float >= 0 or a callable t -> eps(t), got {type(diffusion).__name__}: {diffusion!r}"
        )
    constant = float(diffusion)
    if not math.isfinite(constant) or constant < 0:
        raise ValueError(f"diffusion must be finite and >= 0, got the constant {constant} (the same at every t)")
    return lambda t: constant


def sample_sde(
    velocity: Field,
    score: Field,
    x0: torch.Tensor,
    steps: int | None,
    diffusion: float | Callable[[float], float],
    generator: torch.Generator | None = None,
    time_grid: torch.Tensor | Sequence[float] | None = None,
    return_path: bool = False,
) -> torch.Tensor:
    """Integrate ``dX = [b + eps s](X, t) dt + sqrt(2 eps(t)) dW`` with the Euler-Maruyama scheme.

    One step from ``t_k`` to ``t_{k+1} = t_k + h``:
    ``X_{k+1} = X_k + h [b(X_k, t_k) + eps(t_k) s(X_k, t_k)] + sqrt(2 eps(t_k) h) xi_k``, ``xi_k ~ N(0, I)``.
    Every evaluation is at the left end ``t_k < 1``, so the singular point ``t = 1`` is never evaluated.

    Parameters
    ----------
    velocity, score:
        The fields ``b(x, t)`` and ``s(x, t)``, with the shape contract of :func:`sample_ode`.
    x0, steps, time_grid, return_path:
        As in :func:`sample_ode`.
    diffusion:
        ``eps``: a float >= 0, or a callable ``t -> eps(t)`` returning a float or a one-element tensor.
        It is evaluated once per step at ``t_k``. A negative or non-finite value raises ValueError.
        Where ``eps(t_k) = 0`` the step is a plain Euler step: ``score`` is not evaluated and no
        noise is drawn, so with ``eps = 0`` the result equals ``sample_ode(..., method="euler")``.
    generator:
        Source of the Gaussian increments ``xi_k``, drawn in x0's dtype on x0's device, so it must be a
        generator for that device. None draws from torch's global random number generator.
    """
    _check_field_callable(velocity, "velocity")
    _check_field_callable(score, "score")
    _check_state(x0)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    epsilon = _diffusion_function(diffusion)
    grid = _time_grid(steps, time_grid)

    x = x0
    path = [x0] if return_path else None
    for step, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        h = t_next - t
        epsilon_t = epsilon(t)

        drift = _evaluate(velocity, "velocity", x, t, step)
        if epsilon_t > 0:
            drift = drift + epsilon_t * _evaluate(score, "score", x, t, step)
        x = x + h * drift

        if epsilon_t > 0:
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = x + math.sqrt(2 * epsilon_t * h) * noise

        if path is not None:
            path.append(x)

    if path is not None:
        return torch.stack(path)
    return x

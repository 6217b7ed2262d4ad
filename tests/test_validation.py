"""Input validation at the public surface that the per-module tests do not cover.

tests/test_fields.py, test_samplers.py, test_metrics.py and test_data.py already check bad
shapes, dtypes, times, grids, steps and diffusions one module at a time. This file adds schedules
that break the boundary conditions, and device mismatches. The ``meta`` device represents any
other device, because it exists on every machine. It also adds fields that return the wrong dtype
or device to a sampler, and the grid and step checks for :func:`sample_sde`. Each case asserts on
the message: the argument, the value and, where there is one, the fix.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch

from interp import EmpiricalField, sample_ode, sample_sde, schedules
from interp.metrics import memorization_ratio, memorized_fraction, nearest_neighbors
from interp.schedules import Schedule, t

DTYPE = torch.float64
TRAIN = torch.tensor([[0.0, 1.0], [2.0, -1.0], [-1.0, 0.5]], dtype=DTYPE)
X0 = torch.tensor([[0.5, -0.5], [1.0, 2.0]], dtype=DTYPE)


def _identity(x, time):
    return x


# Schedules that break the boundary conditions beta(0) = 0, beta(1) = 1, sigma(1) = 0, sigma > 0 on [0, 1).


@pytest.mark.parametrize(
    ("beta", "sigma", "error", "pattern"),
    [
        (t + 1, 1 - t, ValueError, r"beta\(0\) must be 0, got beta = t \+ 1 with value 1"),
        (t / 2, 1 - t, ValueError, r"beta\(1\) must be 1, got beta = t/2 with value 1/2"),
        (sp.sin(sp.pi * t), 1 - t, ValueError, r"beta\(1\) must be 1, got beta = sin\(pi\*t\) with value 0"),
        (t, 2 - t, ValueError, r"sigma\(1\) must be 0, got sigma = 2 - t with value 1"),
        (t, sp.cos(sp.pi * t), ValueError, r"sigma\(1\) must be 0, got sigma = cos\(pi\*t\) with value -1"),
        (t, t - 1, ValueError, r"sigma must be real and positive on \[0, 1\), got sigma = t - 1 with value \(-1\+0j\) at t = 0\.0"),
        (t, (1 - t) * (t - sp.Rational(1, 2)) ** 2, ValueError, r"sigma must be real and positive .* at t = 0\.5"),
        (t, sp.I * (1 - t), ValueError, r"sigma must be real and positive .*with value 1j at t = 0\.0"),
        (t, (1 - t) * sp.log(t - sp.Rational(1, 2)), ValueError, r"sigma must be real and positive .*\(1 - t\)\*log\(t - 1/2\)"),
        (t, float("nan"), ValueError, r"sigma\(1\) must be 0, got sigma = nan"),
        (t, sp.oo, ValueError, r"sigma\(1\) must be 0, got sigma = oo"),
        (sp.Symbol("s"), 1 - t, ValueError, r"beta must be written in the symbol t, got s"),
        (t * sp.Symbol("a"), 1 - t, ValueError, r"beta must depend on the time symbol t only, got symbols a, t"),
        ([t], 1 - t, TypeError, r"beta must be a SymPy expression or a number, got list"),
        (None, 1 - t, TypeError, r"beta must be a SymPy expression or a number, got NoneType"),
        (True, 1 - t, TypeError, r"beta must be a SymPy expression or a number, got bool"),
        (sp.Eq(t, 1), 1 - t, TypeError, r"beta must be a SymPy expression, got Eq\(t, 1\)"),
        ("t", 1 - t, TypeError, r"got the string 't'\. Parse it with interp\.parsing\.parse_expression\('t'\)"),
    ],
    ids=[
        "beta-at-0",
        "beta-at-1",
        "beta-returns-to-0",
        "sigma-at-1",
        "sigma-negative-at-1",
        "sigma-negative",
        "sigma-zero-inside",
        "sigma-imaginary",
        "sigma-undefined",
        "sigma-nan",
        "sigma-infinite",
        "wrong-symbol",
        "extra-symbol",
        "list",
        "none",
        "bool",
        "equation",
        "string",
    ],
)
def test_schedule_rejects_broken_boundary_conditions(beta, sigma, error, pattern):
    with pytest.raises(error, match=pattern):
        Schedule(beta, sigma)


@pytest.mark.parametrize(
    ("alpha", "gamma", "pattern"),
    [
        (2 - t, sp.Integer(0), r"alpha\(0\) must be 1 for a stochastic interpolant, got alpha = 2 - t with value 2"),
        (1 - t / 2, sp.Integer(0), r"alpha\(1\) must be 0 for a stochastic interpolant, got alpha = 1 - t/2 with value 1/2"),
        (1 - t, 1 + t, r"gamma\(0\) must be 0 for a stochastic interpolant, got gamma = t \+ 1 with value 1"),
        (1 - t, t, r"gamma\(1\) must be 0 for a stochastic interpolant, got gamma = t with value 1"),
    ],
    ids=["alpha-at-0", "alpha-at-1", "gamma-at-0", "gamma-at-1"],
)
def test_interpolant_rejects_broken_boundary_conditions(alpha, gamma, pattern):
    with pytest.raises(ValueError, match=pattern):
        Schedule.from_interpolant(alpha, t, gamma)


@pytest.mark.parametrize(
    ("preset", "value", "error", "pattern"),
    [
        (schedules.power, 0, ValueError, r"p must be a finite positive number, got 0"),
        (schedules.power, -1.5, ValueError, r"p must be a finite positive number, got -1\.5"),
        (schedules.power, math.nan, ValueError, r"p must be a finite positive number, got nan"),
        (schedules.power, math.inf, ValueError, r"p must be a finite positive number, got inf"),
        (schedules.power, "2", TypeError, r"p must be a positive number, got str"),
        (schedules.power, True, TypeError, r"p must be a positive number, got bool"),
        (schedules.power, t, TypeError, r"p must be a positive number, got the expression t"),
        (schedules.latent_noise, 0.0, ValueError, r"a must be a finite positive number, got 0\.0"),
        (schedules.latent_noise, -1, ValueError, r"a must be a finite positive number, got -1"),
        (schedules.latent_noise, math.inf, ValueError, r"a must be a finite positive number, got inf"),
        (schedules.latent_noise, None, TypeError, r"a must be a positive number, got NoneType"),
    ],
    ids=["p-zero", "p-negative", "p-nan", "p-inf", "p-string", "p-bool", "p-symbol", "a-zero", "a-negative", "a-inf", "a-none"],
)
def test_preset_rejects_bad_parameter(preset, value, error, pattern):
    with pytest.raises(error, match=pattern):
        preset(value)


# Device mismatches and tensors without values.


def test_metrics_reject_device_mismatch():
    on_meta = TRAIN.to("meta")

    with pytest.raises(ValueError, match=r"samples and train must be on the same device, got meta and cpu\. Move one"):
        nearest_neighbors(on_meta, TRAIN)
    with pytest.raises(ValueError, match=r"samples and train must be on the same device, got cpu and meta\. Move one"):
        memorization_ratio(TRAIN, on_meta)
    with pytest.raises(ValueError, match=r"samples and train must be on the same device, got meta and cpu"):
        memorized_fraction(on_meta, TRAIN)


def test_metrics_reject_meta_tensors():
    on_meta = TRAIN.to("meta")

    with pytest.raises(ValueError, match=r"samples must hold values, got a tensor on the meta device"):
        nearest_neighbors(on_meta, on_meta)


def test_sample_ode_rejects_meta_state():
    with pytest.raises(ValueError, match=r"x0 must hold values, got a tensor on the meta device\. Create x0 on cpu"):
        sample_ode(_identity, X0.to("meta"), 3)


def test_sample_ode_rejects_meta_time_grid():
    grid = torch.tensor([0.0, 0.5, 1.0], device="meta")

    with pytest.raises(ValueError, match=r"time_grid must hold values, got a tensor on the meta device"):
        sample_ode(_identity, X0, None, time_grid=grid)


@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
def test_sample_ode_rejects_velocity_on_other_device(method):
    def velocity(x, time):
        return torch.zeros_like(x, device="meta")

    with pytest.raises(ValueError, match=r"velocity returned a tensor on device meta at step 0, t = 0\.0, but the state is on cpu"):
        sample_ode(velocity, X0, 2, method=method)


@pytest.mark.parametrize(("state_dtype", "field_dtype"), [(torch.float64, torch.float32), (torch.float32, torch.float64)])
def test_sample_ode_rejects_velocity_of_other_dtype(state_dtype, field_dtype):
    field = EmpiricalField(TRAIN.to(field_dtype), schedules.linear())

    with pytest.raises(TypeError, match=rf"velocity returned dtype {field_dtype} at step 0, t = 0\.0, but the state has dtype {state_dtype}"):
        sample_ode(lambda x, time: field.velocity(x.to(field_dtype), time), X0.to(state_dtype), 4)


def test_sample_sde_rejects_score_of_other_dtype():
    def score(x, time):
        return x.to(torch.float32)

    with pytest.raises(TypeError, match=r"score returned dtype torch\.float32 at step 0, t = 0\.0, but the state has dtype torch\.float64"):
        sample_sde(_identity, score, X0, 3, diffusion=0.5)


def test_sample_sde_rejects_meta_diffusion():
    with pytest.raises(ValueError, match=r"diffusion must return a number, got a tensor on the meta device at t = 0\.0"):
        sample_sde(_identity, _identity, X0, 3, diffusion=lambda time: torch.tensor(0.5, device="meta"))


def test_field_rejects_queries_on_other_device():
    field = EmpiricalField(TRAIN, schedules.linear())

    for method in ("weights", "denoiser", "score", "velocity"):
        with pytest.raises(ValueError, match=r"x must be on the device of train \(cpu\), got meta"):
            getattr(field, method)(X0.to("meta"), 0.5)


def test_field_rejects_meta_train():
    try:
        EmpiricalField(TRAIN.to("meta"), schedules.linear())
    except ValueError as error:
        assert "meta" in str(error), f"the message does not name the device: {error}"
    except RuntimeError as error:
        raise AssertionError(f"EmpiricalField raised RuntimeError for a meta train: {error}") from error
    else:
        raise AssertionError("EmpiricalField accepted a train tensor on the meta device")


@pytest.mark.parametrize("shape", [(), (2,)], ids=["0-dim", "per-query"])
def test_field_rejects_time_on_meta_device(shape):
    field = EmpiricalField(TRAIN, schedules.linear())
    time = torch.full(shape, 0.5, device="meta")

    try:
        field.weights(X0, time)
    except ValueError as error:
        assert "t must" in str(error), f"the message does not name t: {error}"
        assert "meta" in str(error), f"the message does not name the device: {error}"
    except RuntimeError as error:
        raise AssertionError(f"EmpiricalField.weights raised RuntimeError for t on meta: {error}") from error
    else:
        raise AssertionError("EmpiricalField.weights accepted t on the meta device")


# Time grids, steps and diffusions for sample_sde, which shares the checks of sample_ode.


@pytest.mark.parametrize(
    ("steps", "grid", "error", "pattern"),
    [
        (0, None, ValueError, r"steps must be at least 1, got 0"),
        (-2, None, ValueError, r"steps must be at least 1, got -2"),
        (None, None, ValueError, r"steps must be given when time_grid is None"),
        (None, [0.0, 0.5, 0.5, 1.0], ValueError, r"time_grid must be strictly increasing, got 0\.5 followed by 0\.5 at index 1"),
        (None, [1.0, 0.5, 0.0], ValueError, r"time_grid must be strictly increasing, got 1\.0 followed by 0\.5 at index 0"),
        (None, [-0.5, 1.0], ValueError, r"time_grid must lie in \[0, 1\], got values from -0\.5 to 1\.0"),
        (None, [0.0, 1.25], ValueError, r"time_grid must lie in \[0, 1\], got values from 0\.0 to 1\.25"),
        (None, [0.0, math.inf], ValueError, r"time_grid must be finite"),
        (None, [0.0], ValueError, r"time_grid must have at least 2 points, got \[0\.0\]"),
        (None, [False, True], TypeError, r"time_grid must contain real numbers, not booleans"),
        (None, torch.tensor([0.0, 1.0j]), TypeError, r"time_grid must have a real dtype such as torch\.float64, got torch\.complex64"),
        (None, torch.tensor([False, True]), TypeError, r"time_grid must have a real dtype .*got torch\.bool"),
        (3, [0.0, 1.0], ValueError, r"steps must be None or len\(time_grid\) - 1 = 1 when time_grid is given, got 3"),
    ],
    ids=[
        "steps-zero",
        "steps-negative",
        "steps-missing",
        "grid-repeated",
        "grid-decreasing",
        "grid-below-zero",
        "grid-above-one",
        "grid-infinite",
        "grid-one-point",
        "grid-booleans",
        "grid-complex",
        "grid-bool-tensor",
        "steps-disagree",
    ],
)
def test_sample_sde_rejects_bad_grid(steps, grid, error, pattern):
    with pytest.raises(error, match=pattern):
        sample_sde(_identity, _identity, X0, steps, diffusion=0.1, time_grid=grid)


@pytest.mark.parametrize(
    ("grid", "error", "pattern"),
    [
        ([False, True], TypeError, r"time_grid must contain real numbers, not booleans, got \[False, True\]"),
        (torch.tensor([0.0, 1.0j]), TypeError, r"time_grid must have a real dtype such as torch\.float64, got torch\.complex64"),
    ],
    ids=["booleans", "complex"],
)
def test_sample_ode_rejects_grid_of_wrong_type(grid, error, pattern):
    with pytest.raises(error, match=pattern):
        sample_ode(_identity, X0, None, time_grid=grid)


@pytest.mark.parametrize(
    ("diffusion", "error", "pattern"),
    [
        (-1e-3, ValueError, r"diffusion must be finite and >= 0, got the constant -0\.001"),
        (math.inf, ValueError, r"diffusion must be finite and >= 0, got the constant inf"),
        (math.nan, ValueError, r"diffusion must be finite and >= 0, got the constant nan"),
        (lambda time: -time, ValueError, r"diffusion must be finite and >= 0, got -0\.5 at t = 0\.5"),
        (lambda time: math.inf, ValueError, r"diffusion must be finite and >= 0, got inf at t = 0\.0"),
        (lambda time: torch.ones(2), ValueError, r"diffusion must return a scalar, got a tensor of shape \(2,\) at t = 0\.0"),
        (lambda time: "0.1", TypeError, r"diffusion must return a real number, got str at t = 0\.0"),
        ("0.1", TypeError, r"diffusion must be a float >= 0 or a callable t -> eps\(t\), got str"),
    ],
    ids=["negative", "infinite", "nan", "negative-later", "callable-infinite", "callable-vector", "callable-string", "string"],
)
def test_sample_sde_rejects_bad_diffusion(diffusion, error, pattern):
    with pytest.raises(error, match=pattern):
        sample_sde(_identity, _identity, X0, 2, diffusion=diffusion)


# Empty and non-finite data at every entry point that takes a training set.


@pytest.mark.parametrize(
    ("train", "pattern"),
    [
        (torch.zeros((0, 2), dtype=DTYPE), r"train must contain at least one point"),
        (torch.tensor([[0.0, math.nan]], dtype=DTYPE), r"train must be finite"),
        (torch.tensor([[math.inf, 0.0]], dtype=DTYPE), r"train must be finite"),
    ],
    ids=["empty", "nan", "inf"],
)
def test_memorized_fraction_rejects_bad_train(train, pattern):
    with pytest.raises(ValueError, match=pattern):
        memorized_fraction(X0, train)


def test_field_rejects_empty_dimension_queries():
    field = EmpiricalField(TRAIN, schedules.linear())

    with pytest.raises(ValueError, match=r"x must have d = 2 columns like train, got shape \(2, 0\)"):
        field.denoiser(torch.zeros((2, 0), dtype=DTYPE), 0.5)

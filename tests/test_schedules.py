"""Tests of schedule construction: what a schedule may contain and how it evaluates near the data end."""

import pytest
import sympy as sp
import torch

from interp import EmpiricalField, schedules
from interp.parsing import parse_schedule
from interp.schedules import Schedule, t


def test_schedule_absolute_value_evaluates_on_tensors():
    """SymPy turns sqrt((1 - t)**2) into Abs(t - 1), which must act as 1 - t on a tensor of times in [0, 1)."""
    schedule = parse_schedule("t", "sqrt((1-t)**2)")
    times = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    assert torch.allclose(schedule.sigma(times), 1 - times), schedule.sigma(times)
    assert torch.equal(schedule.dsigma(times), -torch.ones(3, dtype=torch.float64)), schedule.dsigma(times)

    field = EmpiricalField(torch.randn(4, 2, dtype=torch.float64), schedule)
    velocity = field.velocity(torch.randn(3, 2, dtype=torch.float64), 0.5)
    assert bool(torch.isfinite(velocity).all()), velocity


@pytest.mark.parametrize(
    ("beta", "sigma", "name"),
    [
        (t, sp.erf(1 - t), "erf"),
        (t, (1 - t) * sp.gamma(2 - t), "gamma"),
        (t, sp.Max(1 - t, (1 - t) / 2), "Max"),
    ],
)
def test_schedule_rejects_functions_without_torch_version(beta, sigma, name):
    with pytest.raises(ValueError, match=rf"sigma = .* uses {name}, which schedules cannot evaluate in torch"):
        Schedule(beta, sigma)


def test_schedule_rejects_complex_beta():
    with pytest.raises(ValueError, match=r"beta must be real and finite on \[0, 1\)"):
        Schedule(t + sp.I * t * (1 - t), 1 - t)


def test_schedule_rejects_derivative_infinite_at_noise_end():
    with pytest.raises(ValueError, match=r"dbeta = 1/\(2\*sqrt\(t\)\) cannot be evaluated at t = 0\.0"):
        Schedule(sp.sqrt(t), 1 - t)


def test_schedule_accepts_sigma_that_underflows_float64():
    """(1 - t)**27 at t = 1 - 1e-12 is 1e-324, below float64's range but positive, and mpmath evaluates it exactly."""
    schedule = schedules.power(27)
    assert schedule.sigma_expr == (1 - t) ** 27


@pytest.mark.parametrize("exponent", [14, 18, 22])
def test_float32_trigonometric_velocity_matches_float64_near_data_end(exponent):
    """cos(pi t / 2) in float32 loses its digits near t = 1; the field evaluates the schedule in float64."""
    time = 1 - 2.0**-exponent
    train = torch.tensor([[0.0, 1.0], [2.0, -1.0]], dtype=torch.float64)
    query = torch.tensor([[0.3, 0.9]], dtype=torch.float64)
    reference = EmpiricalField(train, schedules.trigonometric()).velocity(query, time)
    single = EmpiricalField(train.float(), schedules.trigonometric()).velocity(query.float(), time).double()

    relative = ((single - reference).norm() / reference.norm()).item()
    assert relative < 1e-5, f"t = 1 - 2**-{exponent}: float32 velocity off by {relative:.2e} relative"

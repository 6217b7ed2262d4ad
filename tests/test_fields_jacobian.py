"""Tests of EmpiricalField.posterior_covariance and EmpiricalField.velocity_jacobian.

The references are torch autograd of the velocity and of the denoiser, whose code paths do not use
the covariance, and exact facts at t = 1 and at a two-sample tie.
"""

from __future__ import annotations

import math

import pytest
import torch

from interp import EmpiricalField
from interp import schedules

PRESETS = {
    "linear": schedules.linear,
    "trigonometric": schedules.trigonometric,
    "latent_noise(0.5)": lambda: schedules.latent_noise(0.5),
    "latent_noise(2)": lambda: schedules.latent_noise(2),
    "power(0.5)": lambda: schedules.power(0.5),
    "power(1.5)": lambda: schedules.power(1.5),
    "power(2)": lambda: schedules.power(2),
}

TIMES = [0.0, 0.1, 0.37, 0.5, 0.83, 0.99, 1 - 1e-6]

# With these inputs the measured errors are about 1e-15 of the scale below. The bound leaves room for
# float64 rounding of the schedule near t = 1, where sigma'/sigma is of order 1e6.
RELATIVE_TOLERANCE = 1e-10


def _train() -> torch.Tensor:
    return torch.tensor([[0.5, -1.0, 0.25], [2.0, 0.25, -0.5], [-1.5, 1.0, 1.0], [0.0, 0.75, -1.25]], dtype=torch.float64)


def _queries() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return 1.5 * torch.randn(6, 3, generator=generator, dtype=torch.float64)


def _per_query_jacobian(function, x: torch.Tensor) -> torch.Tensor:
    """Autograd Jacobian of a row-wise map (m, d) -> (m, d), keeping only the (d, d) block of each row."""
    full = torch.autograd.functional.jacobian(function, x)
    return torch.stack([full[row, :, row, :] for row in range(x.shape[0])])


def _scale(schedule, time: float, train: torch.Tensor, queries: torch.Tensor) -> float:
    """Size of the terms that autograd adds up, so a Jacobian that is 0 is judged against the terms that cancel in it.

    Autograd differentiates the logits, whose gradients -(x - beta x^(i)) / sigma**2 have size
    ||x|| / sigma**2 and cancel inside the softmax. At t = 0 of the trigonometric schedule every
    term of the Jacobian is 0, and only the rounding of that cancellation is left.
    """
    beta, sigma = float(schedule.beta(time)), float(schedule.sigma(time))
    dbeta, dsigma = float(schedule.dbeta(time)), float(schedule.dsigma(time))
    train_norm = float(torch.linalg.vector_norm(train, dim=1).max())
    query_norm = float(torch.linalg.vector_norm(queries, dim=1).max())
    expansion = abs(dbeta) + abs(beta * dsigma / sigma)
    return abs(dsigma / sigma) + expansion * train_norm * (query_norm + train_norm) / sigma**2


@pytest.fixture(scope="module", params=list(PRESETS))
def preset(request):
    return request.param, PRESETS[request.param]()


@pytest.mark.parametrize("time", TIMES)
def test_velocity_jacobian_matches_autograd(preset, time):
    name, schedule = preset
    train, queries = _train(), _queries()
    field = EmpiricalField(train, schedule)

    expected = _per_query_jacobian(lambda x: field.velocity(x, time), queries)
    actual = field.velocity_jacobian(queries, time)

    error = float(torch.linalg.matrix_norm(actual - expected).max())
    bound = RELATIVE_TOLERANCE * max(float(torch.linalg.matrix_norm(expected).max()), _scale(schedule, time, train, queries))
    assert error <= bound, f"{name}, t = {time}: Jacobian error {error:.3e} exceeds {bound:.3e}"


@pytest.mark.parametrize("time", [0.1, 0.37, 0.5, 0.83, 0.99])
def test_posterior_covariance_matches_denoiser_gradient(preset, time):
    """dm/dx = beta Cov_w / sigma**2, so autograd of the denoiser gives the covariance where beta > 0."""
    name, schedule = preset
    train, queries = _train(), _queries()
    field = EmpiricalField(train, schedule)
    beta, sigma = float(schedule.beta(time)), float(schedule.sigma(time))

    expected = _per_query_jacobian(lambda x: field.denoiser(x, time), queries) * sigma**2 / beta
    actual = field.posterior_covariance(queries, time)

    error = float(torch.linalg.matrix_norm(actual - expected).max())
    bound = RELATIVE_TOLERANCE * max(1.0, float(torch.linalg.matrix_norm(expected).max()))
    assert error <= bound, f"{name}, t = {time}: covariance error {error:.3e} exceeds {bound:.3e}"


def test_posterior_covariance_is_symmetric_positive_semidefinite(preset):
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)
    covariance = field.posterior_covariance(_queries(), 0.6)

    assert torch.equal(covariance, covariance.transpose(1, 2)), name
    eigenvalues = torch.linalg.eigvalsh(covariance)
    assert float(eigenvalues.min()) >= -1e-14, f"{name}: smallest eigenvalue {float(eigenvalues.min())}"


def test_posterior_covariance_at_time_zero_is_training_covariance(preset):
    """At t = 0, beta = 0, so the weights are uniform and Cov_w is the biased covariance of the training set."""
    name, schedule = preset
    train = _train()
    field = EmpiricalField(train, schedule)
    centred = train - train.mean(dim=0)
    expected = centred.T @ centred / train.shape[0]

    covariance = field.posterior_covariance(_queries(), 0.0)
    assert torch.allclose(covariance, expected.expand_as(covariance), rtol=1e-12, atol=1e-14), name


def test_posterior_covariance_zero_at_data_end(preset):
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)
    covariance = field.posterior_covariance(_queries(), 1.0)
    assert torch.equal(covariance, torch.zeros_like(covariance)), name


def test_posterior_covariance_of_tie_at_data_end(preset):
    """Halfway between two training samples at t = 1 the weights are 1/2 each, so Cov_w = u u^T / 4 with u their difference."""
    name, schedule = preset
    train = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 5.0]], dtype=torch.float64)
    field = EmpiricalField(train, schedule)
    midpoint = torch.zeros(1, 2, dtype=torch.float64)
    difference = train[0] - train[1]

    covariance = field.posterior_covariance(midpoint, 1.0)
    assert torch.allclose(covariance[0], torch.outer(difference, difference) / 4, atol=1e-15), name


def test_velocity_jacobian_signs_near_sample_and_tie():
    """Late in time the Jacobian contracts at a scaled training sample and expands halfway between two of them."""
    schedule = schedules.linear()
    train = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    field = EmpiricalField(train, schedule)
    time = 0.9
    points = torch.stack([schedule.beta(time) * train[0], torch.zeros(2, dtype=torch.float64)])

    eigenvalues = torch.linalg.eigvalsh(field.velocity_jacobian(points, time))
    assert float(eigenvalues[0].max()) < 0, f"at beta x^(1): eigenvalues {eigenvalues[0].tolist()}"
    # At the tie: sigma'/sigma + beta (beta' - beta sigma'/sigma) ||u||^2 / (4 sigma^2) with ||u|| = 2.
    expected_largest = -1 / (1 - time) + time / (1 - time) ** 3
    assert math.isclose(float(eigenvalues[1].max()), expected_largest, rel_tol=1e-12), eigenvalues[1].tolist()
    assert math.isclose(float(eigenvalues[1].min()), -1 / (1 - time), rel_tol=1e-12), eigenvalues[1].tolist()


def test_per_query_times_match_scalar_calls(preset):
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)
    queries = _queries()
    times = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9, 0.99], dtype=torch.float64)

    batched = field.velocity_jacobian(queries, times)
    for row, time in enumerate(times.tolist()):
        single = field.velocity_jacobian(queries[row : row + 1], time)[0]
        assert torch.allclose(batched[row], single, rtol=1e-13, atol=0), f"{name}, t = {time}"


def test_chunked_covariance_matches_single_chunk(preset):
    name, schedule = preset
    train, queries = _train(), _queries()
    whole = EmpiricalField(train, schedule).posterior_covariance(queries, 0.7)
    chunked = EmpiricalField(train, schedule, max_chunk_elements=1).posterior_covariance(queries, 0.7)
    assert torch.allclose(whole, chunked, rtol=1e-14, atol=1e-16), name


def test_float32_matches_float64():
    schedule = schedules.trigonometric()
    train, queries = _train(), _queries()
    reference = EmpiricalField(train, schedule).velocity_jacobian(queries, 0.6)
    single = EmpiricalField(train.float(), schedule).velocity_jacobian(queries.float(), 0.6)

    assert single.dtype == torch.float32
    assert torch.allclose(single.double(), reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("time", [1.0, torch.tensor([0.5, 1.0, 0.5, 0.5, 0.5, 0.5], dtype=torch.float64)])
def test_velocity_jacobian_rejects_data_end(preset, time):
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)
    with pytest.raises(ValueError, match="velocity_jacobian is singular"):
        field.velocity_jacobian(_queries(), time)


BAD_QUERIES = [
    ([[0.0, 0.0, 0.0]], TypeError, "torch.Tensor"),
    (torch.zeros(3, dtype=torch.float64), ValueError, "2-D"),
    (torch.zeros(2, 2, dtype=torch.float64), ValueError, "d = 3 columns"),
    (torch.zeros(2, 3, dtype=torch.float32), TypeError, "dtype of train"),
    (torch.tensor([[0.0, math.nan, 0.0]], dtype=torch.float64), ValueError, "finite"),
]


@pytest.mark.parametrize("method", ["posterior_covariance", "velocity_jacobian"])
@pytest.mark.parametrize("x, error, pattern", BAD_QUERIES)
def test_reject_bad_x(method, x, error, pattern):
    field = EmpiricalField(_train(), schedules.linear())
    with pytest.raises(error, match=pattern):
        getattr(field, method)(x, 0.5)


@pytest.mark.parametrize("method", ["posterior_covariance", "velocity_jacobian"])
@pytest.mark.parametrize(
    "time, error, pattern",
    [
        (1.5, ValueError, r"t must lie in \[0, 1\]"),
        (-0.1, ValueError, r"t must lie in \[0, 1\]"),
        (math.nan, ValueError, "NaN"),
        ("0.5", TypeError, "real number"),
        (torch.tensor([0.5, 0.5]), ValueError, "one time per query"),
    ],
)
def test_reject_bad_t(method, time, error, pattern):
    field = EmpiricalField(_train(), schedules.linear())
    with pytest.raises(error, match=pattern):
        getattr(field, method)(_queries(), time)

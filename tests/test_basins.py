"""Tests of interp.basins against exact flows, exact basin boundaries and closed-form statistics."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
import torch

from interp import EmpiricalField, basins, schedules

DTYPE = torch.float64


# Stopping grids.


@pytest.mark.parametrize("spacing", basins.SPACINGS)
def test_stopping_grid_ends_and_increases(spacing):
    grid = basins.stopping_grid(50, 1e-3, spacing)

    assert grid.dtype == DTYPE
    assert grid.shape == (51,)
    assert grid[0].item() == 0.0
    assert grid[-1].item() == 1 - 1e-3
    assert bool((grid[1:] > grid[:-1]).all()), spacing


def test_stopping_grid_log_has_constant_step_ratio():
    grid = basins.stopping_grid(40, 1e-4, "log")
    ratios = (grid[1:] - grid[:-1]) / (1 - grid[:-1])
    expected = 1 - 1e-4 ** (1 / 40)
    assert torch.allclose(ratios, torch.full_like(ratios, expected), rtol=1e-9), ratios


def test_stopping_grid_uniform_has_constant_step():
    grid = basins.stopping_grid(8, 0.2, "uniform")
    assert torch.allclose(grid, torch.linspace(0, 0.8, 9, dtype=DTYPE), rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    "steps, delta, spacing, error, pattern",
    [
        (0, 0.1, "log", ValueError, "steps must be at least 1"),
        (2.0, 0.1, "log", TypeError, "steps must be an int"),
        (10, 0.0, "log", ValueError, r"delta must lie in \(0, 1\)"),
        (10, 1.0, "log", ValueError, r"delta must lie in \(0, 1\)"),
        (10, "0.1", "log", TypeError, "delta must be a real number"),
        (10, 0.1, "geometric", ValueError, "spacing must be one of"),
    ],
)
def test_stopping_grid_rejects_bad_arguments(steps, delta, spacing, error, pattern):
    with pytest.raises(error, match=pattern):
        basins.stopping_grid(steps, delta, spacing)


@pytest.mark.parametrize("spacing", basins.SPACINGS)
def test_stopping_grid_from_start(spacing):
    grid = basins.stopping_grid(10, 1e-2, spacing, start=0.8)
    assert grid[0].item() == 0.8
    assert grid[-1].item() == 1 - 1e-2
    assert bool((grid[1:] > grid[:-1]).all()), spacing


def test_stopping_grid_rejects_start_after_stop():
    with pytest.raises(ValueError, match="start must be a real number in"):
        basins.stopping_grid(10, 0.1, start=0.95)


# The ODE to the data end.


@pytest.mark.parametrize("name", ["linear", "trigonometric", "latent_noise(1)"])
def test_flow_matches_exact_one_point_flow(name):
    """With one training sample x1 the flow is X_t = beta(t) x1 + sigma(t)/sigma(0) (X_0 - beta(0) x1), exactly."""
    schedule = {"linear": schedules.linear(), "trigonometric": schedules.trigonometric(),
                "latent_noise(1)": schedules.latent_noise(1)}[name]
    x1 = torch.tensor([[1.5, -0.5, 2.0]], dtype=DTYPE)
    x0 = torch.tensor([[0.3, 1.0, -0.7], [-1.2, 0.4, 0.9]], dtype=DTYPE)
    field = EmpiricalField(x1, schedule)

    # RK4 converges at order 4 here: the largest error is 1.5e-9 with 200 steps and 9e-11 with 400.
    result = basins.flow_to_data_end(field, x0, basins.stopping_grid(400, 1e-3))
    stop = result.stop_time
    exact = schedule.beta(stop) * x1 + schedule.sigma(stop) / schedule.sigma(0.0) * x0

    assert stop == 1 - 1e-3
    assert torch.allclose(result.states, exact, rtol=0, atol=1e-9), (name, (result.states - exact).abs().max())
    assert torch.equal(result.endpoints, x1.expand_as(x0)), name
    assert result.path is None


def test_flow_returns_path_ending_at_states():
    train = torch.tensor([[1.0], [-1.0]], dtype=DTYPE)
    x0 = torch.tensor([[0.5], [-0.25]], dtype=DTYPE)
    result = basins.flow_to_data_end(EmpiricalField(train, schedules.linear()), x0, basins.stopping_grid(20, 1e-2), return_path=True)

    assert result.path.shape == (21, 2, 1)
    assert torch.equal(result.path[0], x0)
    assert torch.equal(result.path[-1], result.states)


def test_flow_basin_boundaries_are_normal_quantiles():
    """In 1-D the flow keeps the order of points and pushes N(0, 1) to (1/n) sum delta(x^(i)).

    So the basin of the k-th smallest of n training samples is the interval between the normal
    quantiles of (k - 1)/n and k/n, whatever the spacing of the samples.
    """
    train = torch.tensor([[-1.0], [0.0], [2.0]], dtype=DTYPE)
    field = EmpiricalField(train, schedules.linear())
    quantiles = [NormalDist().inv_cdf(k / 3) for k in (1, 2)]
    offset = 0.02
    x0 = torch.tensor([[quantiles[0] - offset], [quantiles[0] + offset], [quantiles[1] - offset], [quantiles[1] + offset]], dtype=DTYPE)

    result = basins.flow_to_data_end(field, x0, basins.stopping_grid(400, 1e-3))
    labels = basins.nearest_training_index(result.endpoints, train)
    assert labels.tolist() == [0, 1, 1, 2]


def test_flow_rejects_grid_ending_at_one():
    field = EmpiricalField(torch.tensor([[1.0]], dtype=DTYPE), schedules.linear())
    with pytest.raises(ValueError, match="time_grid must end before t = 1"):
        basins.flow_to_data_end(field, torch.zeros(1, 1, dtype=DTYPE), [0.0, 0.5, 1.0])


def test_flow_rejects_field_without_denoiser():
    class VelocityOnly:
        def velocity(self, x, t):
            return -x

    with pytest.raises(TypeError, match="callable denoiser"):
        basins.flow_to_data_end(VelocityOnly(), torch.zeros(1, 1, dtype=DTYPE), [0.0, 0.5])


# The SDE to the data end.


def test_diffuse_without_noise_equals_euler_flow():
    train = torch.tensor([[1.0, 0.0], [-1.0, 0.5]], dtype=DTYPE)
    field = EmpiricalField(train, schedules.trigonometric())
    x0 = torch.tensor([[0.2, -0.3], [1.0, 1.0]], dtype=DTYPE)
    grid = basins.stopping_grid(30, 1e-2)

    stochastic = basins.diffuse_to_data_end(field, x0, grid, 0.0)
    deterministic = basins.flow_to_data_end(field, x0, grid, method="euler")
    assert torch.equal(stochastic.states, deterministic.states)
    assert torch.equal(stochastic.endpoints, deterministic.endpoints)


def test_diffuse_one_point_spread_is_sigma_squared_d():
    """For one training sample X_t - beta x1 ~ N(0, sigma(t)**2 I) for every eps, so E||X - beta x1||**2 = sigma**2 d."""
    schedule = schedules.latent_noise(1)
    x1 = torch.tensor([[0.5, -1.0]], dtype=DTYPE)
    field = EmpiricalField(x1, schedule)
    samples = 4000
    x0 = torch.randn(samples, 2, generator=torch.Generator().manual_seed(0), dtype=DTYPE)

    result = basins.diffuse_to_data_end(
        field, x0, basins.stopping_grid(400, 1e-2), 0.5, generator=torch.Generator().manual_seed(1)
    )
    stop = result.stop_time
    normalised = (result.states - schedule.beta(stop) * x1).square().sum(dim=1) / (schedule.sigma(stop) ** 2 * 2)

    # The mean of 4000 chi-square(2) / 2 draws has standard error 1 / sqrt(4000) = 0.016. The
    # Euler-Maruyama variance recursion on this grid predicts a bias of +0.011, and the bound of 0.08
    # leaves four standard errors on top of it.
    assert abs(float(normalised.mean()) - 1) < 0.08, float(normalised.mean())
    assert torch.equal(result.endpoints, x1.expand(samples, -1))


def test_diffuse_rejects_field_without_score():
    class NoScore:
        def velocity(self, x, t):
            return -x

        def denoiser(self, x, t):
            return x

    with pytest.raises(TypeError, match="callable score"):
        basins.diffuse_to_data_end(NoScore(), torch.zeros(1, 1, dtype=DTYPE), [0.0, 0.5], 1.0)


# Labels, counts and intervals.


def test_nearest_training_index():
    train = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]], dtype=DTYPE)
    points = torch.tensor([[2.9, 0.1], [0.1, -0.1], [-0.5, 2.0]], dtype=DTYPE)
    assert basins.nearest_training_index(points, train).tolist() == [1, 0, 2]


def _wilson_by_quadratic(successes: int, trials: int, z: float) -> tuple[float, float]:
    """Solve (k/N - p)**2 = z**2 p (1 - p) / N for p, the definition of the Wilson interval's ends."""
    share = successes / trials
    a = 1 + z**2 / trials
    b = -(2 * share + z**2 / trials)
    c = share**2
    root = math.sqrt(b**2 - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


def test_basin_masses_counts_and_wilson_ends():
    labels = torch.tensor([0, 0, 1, 2, 2, 2, 2, 2, 2, 2], dtype=torch.int64)
    masses = basins.basin_masses(labels, 4, confidence=0.95)
    z = NormalDist().inv_cdf(0.975)

    assert masses.counts.tolist() == [2, 1, 7, 0]
    assert masses.total == 10
    assert torch.allclose(masses.fractions, torch.tensor([0.2, 0.1, 0.7, 0.0], dtype=DTYPE))
    for category, count in enumerate([2, 1, 7, 0]):
        low, high = _wilson_by_quadratic(count, 10, z)
        assert math.isclose(masses.low[category].item(), low, abs_tol=1e-12), (category, masses.low[category].item(), low)
        assert math.isclose(masses.high[category].item(), high, abs_tol=1e-12), (category, masses.high[category].item(), high)
    assert masses.low[3].item() == 0.0


def test_basin_masses_interval_covers_true_mass():
    """Over 400 repetitions of 200 draws with mass 0.3, a 95% interval should miss about 20 times."""
    generator = torch.Generator().manual_seed(3)
    misses = 0
    for _ in range(400):
        labels = (torch.rand(200, generator=generator) < 0.3).to(torch.int64)
        masses = basins.basin_masses(labels, 2)
        misses += not (masses.low[1].item() <= 0.3 <= masses.high[1].item())
    # Misses ~ Binomial(400, 0.05) when the coverage is right: mean 20, standard deviation 4.4.
    assert 5 <= misses <= 40, misses


@pytest.mark.parametrize(
    "labels, n, confidence, error, pattern",
    [
        (torch.tensor([0, 1]), 0, 0.95, ValueError, "n must be a positive int"),
        (torch.tensor([0, 3]), 3, 0.95, ValueError, "indices must lie in 0, ..., n - 1"),
        (torch.tensor([0.0, 1.0]), 2, 0.95, TypeError, "1-D int64 tensor"),
        (torch.tensor([], dtype=torch.int64), 2, 0.95, ValueError, "at least one label"),
        (torch.tensor([0, 1]), 2, 1.0, ValueError, r"confidence must lie in \(0, 1\)"),
    ],
)
def test_basin_masses_rejects_bad_input(labels, n, confidence, error, pattern):
    with pytest.raises(error, match=pattern):
        basins.basin_masses(labels, n, confidence)


def test_chi_square_goodness_of_fit_two_dof():
    """With 2 degrees of freedom the chi-square survival function is exp(-x / 2)."""
    result = basins.chi_square_goodness_of_fit(torch.tensor([10, 20, 30]), [1 / 3, 1 / 3, 1 / 3])
    assert math.isclose(result.statistic, 10.0, rel_tol=1e-12)
    assert result.dof == 2
    assert math.isclose(result.p_value, math.exp(-5.0), rel_tol=1e-10)


def test_chi_square_homogeneity_two_by_two():
    """For a 2 x 2 table the statistic is N (ad - bc)**2 / (row and column totals), and P(chi2(1) >= x) = erfc(sqrt(x / 2))."""
    a, b, c, d = 30, 70, 45, 55
    result = basins.chi_square_homogeneity(torch.tensor([a, b]), torch.tensor([c, d]))
    total = a + b + c + d
    expected = total * (a * d - b * c) ** 2 / ((a + b) * (c + d) * (a + c) * (b + d))

    assert math.isclose(result.statistic, expected, rel_tol=1e-12)
    assert result.dof == 1
    assert math.isclose(result.p_value, math.erfc(math.sqrt(expected / 2)), rel_tol=1e-10)


def test_chi_square_homogeneity_drops_empty_categories():
    result = basins.chi_square_homogeneity(torch.tensor([30, 0, 70]), torch.tensor([45, 0, 55]))
    assert result.dof == 1


def test_chi_square_detects_shifted_noise():
    """Basins of the flow have mass 1/n under N(0, I); starting from N(0.5, I) breaks that and the test rejects."""
    train = torch.tensor([[-1.0], [0.0], [2.0]], dtype=DTYPE)
    field = EmpiricalField(train, schedules.linear())
    x0 = torch.randn(3000, 1, generator=torch.Generator().manual_seed(4), dtype=DTYPE)
    grid = basins.stopping_grid(60, 1e-2)

    fair = basins.nearest_training_index(basins.flow_to_data_end(field, x0, grid).endpoints, train)
    shifted = basins.nearest_training_index(basins.flow_to_data_end(field, x0 + 0.5, grid).endpoints, train)

    fair_test = basins.chi_square_goodness_of_fit(torch.bincount(fair, minlength=3), [1 / 3] * 3)
    shifted_test = basins.chi_square_goodness_of_fit(torch.bincount(shifted, minlength=3), [1 / 3] * 3)
    assert fair_test.p_value > 1e-3, fair_test
    assert shifted_test.p_value < 1e-10, shifted_test


@pytest.mark.parametrize(
    "counts, probabilities, error, pattern",
    [
        (torch.tensor([1.0, 2.0]), [0.5, 0.5], TypeError, "integer tensor"),
        (torch.tensor([-1, 2]), [0.5, 0.5], ValueError, "non-negative"),
        (torch.tensor([1, 2]), [0.5, 0.25], ValueError, "sum to 1"),
        (torch.tensor([1, 2]), [1.0], ValueError, "shape of counts"),
        (torch.tensor([0, 0]), [0.5, 0.5], ValueError, "not all be 0"),
    ],
)
def test_chi_square_goodness_of_fit_rejects_bad_input(counts, probabilities, error, pattern):
    with pytest.raises(error, match=pattern):
        basins.chi_square_goodness_of_fit(counts, probabilities)


def test_chi_square_homogeneity_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        basins.chi_square_homogeneity(torch.tensor([1, 2]), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="at least 2 categories"):
        basins.chi_square_homogeneity(torch.tensor([5, 0]), torch.tensor([3, 0]))
    with pytest.raises(ValueError, match="at least one label"):
        basins.chi_square_homogeneity(torch.tensor([0, 0, 0]), torch.tensor([3, 4, 0]))

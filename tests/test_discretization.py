"""Tests of interp.discretization against routes that share none of its code.

The references are numeric limits in mpmath at 40 digits, direct products of the factors, Monte
Carlo intervals and values derived by hand. The strongest reference is the package's own Euler and
Euler-Maruyama samplers on the closed-form field of a one-sample training set, where the one-hot
regime is exact.
"""

from __future__ import annotations

import math

import mpmath
import pytest
import sympy as sp
import torch

from interp import EmpiricalField, discretization as dz, sample_ode, sample_sde, schedules
from interp.schedules import Schedule, t

DTYPE = torch.float64

PRESETS = {
    "linear": schedules.linear,
    "trigonometric": schedules.trigonometric,
    "latent_noise(0.5)": lambda: schedules.latent_noise(0.5),
    "latent_noise(2)": lambda: schedules.latent_noise(2),
    "power(0.25)": lambda: schedules.power(0.25),
    "power(0.5)": lambda: schedules.power(0.5),
    "power(0.75)": lambda: schedules.power(0.75),
    "power(1)": lambda: schedules.power(1),
    "power(1.5)": lambda: schedules.power(1.5),
    "power(2)": lambda: schedules.power(2),
}

# (p, c, beta''(1)) derived by hand from beta and sigma.
HAND_EXPANSIONS = {
    "linear": (1, 1, 0),
    "trigonometric": (1, math.pi / 2, -math.pi**2 / 4),
    "latent_noise(0.5)": (0.5, math.sqrt(0.5), 0),
    "latent_noise(2)": (0.5, math.sqrt(2), 0),
    "power(0.25)": (0.25, 1, 0),
    "power(0.5)": (0.5, 1, 0),
    "power(0.75)": (0.75, 1, 0),
    "power(1)": (1, 1, 0),
    "power(1.5)": (1.5, 1, 0),
    "power(2)": (2, 1, 0),
}

# Exactly representable in binary, so the sampler and the products see the same numbers.
SAMPLE = torch.tensor([[1.5, -2.0]], dtype=DTYPE)


@pytest.fixture(autouse=True)
def single_thread():
    """Run each test on one thread, restoring the setting afterwards.

    The samplers here step tensors of a few hundred elements thousands of times. With two threads,
    reductions such as min over a (64, 1) tensor spent about 1 ms each waiting on the thread pool
    (torch 2.13, CPU), which made these tests up to 15 times slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def standardized_positions(count: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(count, 2, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


def euler_deviations(schedule, steps: int, zeta: torch.Tensor) -> torch.Tensor:
    """Run the package's Euler sampler on a one-sample training set and return ||X_K - x|| per row."""
    field = EmpiricalField(SAMPLE, schedule)
    start = schedule.beta(0.0) * SAMPLE + schedule.sigma(0.0) * zeta
    return (sample_ode(field.velocity, start, steps=steps) - SAMPLE).norm(dim=1)


# The endpoint expansion.


@pytest.mark.parametrize("name", list(PRESETS))
def test_expansion_matches_hand_values(name):
    expansion = dz.endpoint_expansion(PRESETS[name]())
    exponent, constant, curvature = HAND_EXPANSIONS[name]
    assert float(expansion.exponent) == pytest.approx(exponent, rel=1e-15), name
    assert float(expansion.constant) == pytest.approx(constant, rel=1e-15), name
    assert float(expansion.beta_curvature) == pytest.approx(curvature, rel=1e-15, abs=1e-15), name


@pytest.mark.parametrize("name", list(PRESETS))
def test_expansion_matches_numeric_limits(name):
    """p, c and beta''(1) against 40-digit mpmath evaluations at 1 - t = 1e-12."""
    schedule = PRESETS[name]()
    expansion = dz.endpoint_expansion(schedule)
    sigma = sp.lambdify(t, schedule.sigma_expr, modules="mpmath")
    dsigma = sp.lambdify(t, schedule.dsigma_expr, modules="mpmath")
    beta = sp.lambdify(t, schedule.beta_expr, modules="mpmath")

    with mpmath.workdps(40):
        gap = mpmath.mpf("1e-12")
        near_end = 1 - gap
        numeric_exponent = -gap * dsigma(near_end) / sigma(near_end)
        numeric_constant = sigma(near_end) / gap ** float(expansion.exponent)
        numeric_curvature = mpmath.diff(beta, mpmath.mpf(1), 2)

    assert float(numeric_exponent) == pytest.approx(float(expansion.exponent), rel=1e-9, abs=1e-9), name
    assert float(numeric_constant) == pytest.approx(float(expansion.constant), rel=1e-9), name
    assert float(numeric_curvature) == pytest.approx(float(expansion.beta_curvature), rel=1e-9, abs=1e-9), name


def test_expansion_rejects_sigma_without_power_law():
    # 1 / (1 - log(1 - t)) vanishes slower than any power of 1 - t, so p = 0.
    slow = Schedule(t, 1 / (1 - sp.log(1 - t)))
    with pytest.raises(ValueError, match="with a finite p > 0"):
        dz.endpoint_expansion(slow)
    # (1 - t)(1 - log(1 - t)) has p = 1, but sigma / (1 - t) grows without bound, so c is infinite.
    logarithmic = Schedule(t, (1 - t) * (1 - sp.log(1 - t)))
    with pytest.raises(ValueError, match="with a finite c != 0"):
        dz.endpoint_expansion(logarithmic)


# The last-step factors.


@pytest.mark.parametrize("name", list(PRESETS))
def test_limiting_factor_is_one_minus_p_over_j(name):
    schedule = PRESETS[name]()
    exponent = HAND_EXPANSIONS[name][0]
    for j in (1, 2, 3, 7):
        limit = dz.limiting_last_step_factor(schedule, j)
        assert float(limit) == pytest.approx(1 - exponent / j, abs=1e-15), (name, j, limit)


@pytest.mark.parametrize("name", list(PRESETS))
def test_euler_factor_near_end_approaches_limit(name):
    """The float factor at t = 1 - j h with h = 2**-20 is within O(h) of 1 - p/j."""
    schedule = PRESETS[name]()
    exponent = HAND_EXPANSIONS[name][0]
    step = 2.0**-20
    for j in (1, 2, 5):
        factor = dz.euler_factor(schedule, 1 - j * step, step).item()
        assert factor == pytest.approx(1 - exponent / j, abs=1e-4), (name, j, factor)


def test_last_factor_for_constant_diffusion():
    """For rectified flow the factor at t = 1 - h is exactly 1 - 1 - h eps / h**2 = -eps / h."""
    schedule = schedules.linear()
    for steps in (10, 100, 1000):
        factors = dz.euler_maruyama_factors(schedule, steps, 0.1)
        assert factors[-1].item() == pytest.approx(-0.1 * steps, rel=1e-9), steps
        assert factors[-2].item() == pytest.approx(0.5 - 0.1 * steps / 4, rel=1e-9), steps
    assert dz.limiting_last_step_factor(schedule, 1, 0.1) == -sp.oo


def test_zero_diffusion_factors_equal_euler():
    schedule = schedules.trigonometric()
    grid = torch.arange(50, dtype=DTYPE) / 50
    assert torch.equal(dz.euler_maruyama_factors(schedule, 50, 0), dz.euler_factor(schedule, grid, 1 / 50))


# The product of the last factors.


@pytest.mark.parametrize("exponent", [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 7.0, -0.5])
@pytest.mark.parametrize("count", [0, 1, 2, 5, 50, 500])
def test_euler_product_matches_direct_product(exponent, count):
    direct = math.prod(1 - exponent / j for j in range(1, count + 1))
    closed = dz.euler_product(exponent, count)
    assert closed == pytest.approx(direct, rel=1e-12, abs=1e-300), (exponent, count)


@pytest.mark.parametrize("exponent", [1, 2, 3])
def test_euler_product_is_exactly_zero_for_integer_p(exponent):
    for count in (exponent, exponent + 1, 100):
        assert dz.euler_product(exponent, count) == 0.0, (exponent, count)
        assert dz.euler_product_asymptote(exponent, count) == 0.0, (exponent, count)


def test_euler_product_expr_satisfies_recurrence():
    closed = dz.euler_product_expr()
    assert sp.gammasimp(closed.subs(dz.J, dz.J + 1) / closed - (1 - dz.p / (dz.J + 1))) == 0
    assert sp.gammasimp(closed.subs(dz.J, 1) - (1 - dz.p)) == 0
    assert closed.has(sp.gamma)


def test_euler_product_expr_matches_mpmath_product():
    closed = dz.euler_product_expr()
    for exponent, count in ((sp.Rational(1, 3), 7), (sp.Rational(5, 2), 4), (sp.Rational(3, 4), 40)):
        symbolic = float(closed.subs({dz.p: exponent, dz.J: count}))
        with mpmath.workdps(30):
            direct = mpmath.fprod(1 - mpmath.mpf(exponent.p) / exponent.q / j for j in range(1, count + 1))
        assert symbolic == pytest.approx(float(direct), rel=1e-14), (exponent, count)


@pytest.mark.parametrize("exponent", [0.25, 0.5, 1.5, 2.5])
def test_asymptote_error_is_first_order(exponent):
    """closed / asymptote - 1 = p (p - 1) / (2 J) + O(J**-2), checked at J = 10**4."""
    count = 10_000
    ratio = dz.euler_product(exponent, count) / dz.euler_product_asymptote(exponent, count)
    assert ratio - 1 == pytest.approx(exponent * (exponent - 1) / (2 * count), abs=10 / count**2), exponent
    with mpmath.workdps(30):
        reference = count ** (-exponent) / mpmath.gamma(1 - exponent)
    assert dz.euler_product_asymptote(exponent, count) == pytest.approx(float(reference), rel=1e-13), exponent


# The predicted and the exact Euler deviation.


def test_leading_deviation_of_presets():
    expected = {
        "linear": (None, "exact"),
        "trigonometric": (2.0, "sample"),
        "latent_noise(2)": (0.5, "zeta"),
        "power(1)": (None, "exact"),
        "power(1.5)": (1.5, "zeta"),
        "power(2)": (None, "exact"),
    }
    for name, (rate, scale) in expected.items():
        leading = dz.leading_euler_deviation(PRESETS[name]())
        assert leading.rate == rate, name
        assert leading.scale == scale, name
    trigonometric = dz.leading_euler_deviation(schedules.trigonometric())
    assert trigonometric.constant == pytest.approx(math.pi**2 / 8, rel=1e-15)
    latent = dz.leading_euler_deviation(schedules.latent_noise(2))
    assert latent.constant == pytest.approx(math.sqrt(2 / math.pi), rel=1e-15)


def test_predicted_deviation_sums_both_terms():
    schedule = schedules.trigonometric()
    predicted = dz.predicted_euler_deviation(schedule, 100, torch.tensor([1.0, 2.0]), 3.0)
    assert torch.allclose(predicted, torch.full((2,), math.pi**2 / 8 * 1e-4 * 3.0, dtype=DTYPE), rtol=1e-14)

    latent = dz.predicted_euler_deviation(schedules.latent_noise(0.5), 400, 2.0, 5.0)
    assert latent.item() == pytest.approx(math.sqrt(0.5 / 400 / math.pi) * 2.0, rel=1e-14)


@pytest.mark.parametrize("name", list(PRESETS))
def test_exact_deviation_matches_sampler(name):
    schedule = PRESETS[name]()
    zeta = standardized_positions()
    for steps in (7, 64, 300):
        sampled = euler_deviations(schedule, steps, zeta)
        exact = dz.exact_euler_deviation(schedule, steps, zeta, SAMPLE[0])
        gap = (sampled - exact).abs().max().item()
        assert gap < 1e-12 * SAMPLE.norm().item(), (name, steps, gap)


@pytest.mark.parametrize("name", list(PRESETS))
def test_euler_rate_and_constant_match_prediction(name):
    """The comparison the chapter asserts: rates within 5%, constants within 10%, exact copies at rounding level.

    The measured constant is the mean over samples of the deviation divided by the norm that the
    leading term multiplies (||zeta|| or ||x||), fitted as C h**rate over K = 256, 512, 1024, 2048.
    """
    schedule = PRESETS[name]()
    leading = dz.leading_euler_deviation(schedule)
    zeta = standardized_positions()
    step_counts = [256, 512, 1024, 2048]
    deviations = [euler_deviations(schedule, steps, zeta) for steps in step_counts]

    if leading.scale == "exact":
        worst = max(deviation.max().item() for deviation in deviations) / SAMPLE.norm().item()
        assert worst < 1e-13, (name, worst)
        return

    scale = zeta.norm(dim=1) if leading.scale == "zeta" else SAMPLE.norm()
    normalized = [(deviation / scale).mean().item() for deviation in deviations]
    rate, constant = dz.fit_power_law([1 / steps for steps in step_counts], normalized)
    assert abs(rate / leading.rate - 1) < 0.05, (name, rate, leading.rate)
    assert abs(constant / leading.constant - 1) < 0.10, (name, constant, leading.constant)


# Euler-Maruyama.


def test_diffusion_ratio_limits():
    assert dz.diffusion_ratio_limit(schedules.linear(), 0.1) == sp.oo
    assert dz.diffusion_ratio_limit(schedules.linear(), (1 - t) / 2) == sp.Rational(1, 2)
    assert dz.diffusion_ratio_limit(schedules.latent_noise(0.5), sp.Rational(1, 4)) == sp.Rational(1, 2)
    assert dz.diffusion_ratio_limit(schedules.latent_noise(2), 3) == sp.Rational(3, 2)


@pytest.mark.parametrize("kappa, stable", [(0.5, True), (1.0, True), (1.05, False), (3.0, False)])
def test_stability_with_linear_diffusion(kappa, stable):
    """With eps = kappa (1 - t) the last factor is exactly -kappa, so the scheme is stable for kappa <= 1."""
    diffusion = sp.nsimplify(kappa) * (1 - t)
    assert dz.is_euler_maruyama_stable(schedules.linear(), 200, diffusion) is stable, kappa
    assert dz.limiting_last_step_factor(schedules.linear(), 1, diffusion) == -sp.nsimplify(kappa)


def test_stability_flags_constant_diffusion():
    assert not dz.is_euler_maruyama_stable(schedules.linear(), 100, 0.1)
    assert dz.is_euler_maruyama_stable(schedules.latent_noise(1), 100, 0.5)


@pytest.mark.parametrize("level", [0.5, 2.0, 3.0])
def test_latent_noise_endpoint_law(level):
    """With eps = a/2 the last factor vanishes and the endpoint is x + N(0, a h I)."""
    schedule = schedules.latent_noise(level)
    for steps in (10, 100, 1000):
        factors = dz.euler_maruyama_factors(schedule, steps, level / 2)
        law = dz.endpoint_law(schedule, steps, level / 2)
        assert abs(factors[-1].item()) < 1e-12, (level, steps, factors[-1].item())
        assert law.variance == pytest.approx(level / steps, rel=1e-10), (level, steps)
        assert abs(law.noise_gain) < 1e-12, (level, steps)
        assert abs(law.sample_gain) < 1e-12, (level, steps)
    assert dz.limiting_last_step_factor(schedule, 1, sp.nsimplify(level) / 2) == 0


def test_latent_noise_sampler_matches_law():
    """Monte Carlo: mean 0 and variance a h per coordinate, within 99.9% normal intervals."""
    level, steps = 0.5, 50
    schedule = schedules.latent_noise(level)
    field = EmpiricalField(SAMPLE, schedule)
    generator = torch.Generator().manual_seed(3)
    start = torch.randn(20_000, 2, generator=generator, dtype=DTYPE)
    endpoint = sample_sde(field.velocity, field.score, start, steps, dz.diffusion_function(level / 2), generator=generator)

    residual = (endpoint - SAMPLE).flatten()
    size = residual.numel()
    target = level / steps
    assert abs(residual.mean().item()) < 3.29 * math.sqrt(target / size)
    assert abs(residual.var().item() - target) < 3.29 * target * math.sqrt(2 / (size - 1))


@pytest.mark.parametrize("diffusion", [0.1, (1 - t) / 2])
def test_endpoint_law_matches_sampler_spread(diffusion):
    """The law's standard deviation sqrt(noise_gain**2 + variance) against the sampler, for zeta ~ N(0, I)."""
    schedule = schedules.linear()
    field = EmpiricalField(SAMPLE, schedule)
    for steps in (50, 400):
        law = dz.endpoint_law(schedule, steps, diffusion)
        generator = torch.Generator().manual_seed(steps)
        start = torch.randn(4000, 2, generator=generator, dtype=DTYPE)
        endpoint = sample_sde(field.velocity, field.score, start, steps, dz.diffusion_function(diffusion), generator=generator)
        predicted = math.sqrt(law.noise_gain**2 + law.variance)
        measured = (endpoint - SAMPLE).std().item()
        # 8000 Gaussian coordinates: the sample standard deviation is within 5% with overwhelming probability.
        assert measured == pytest.approx(predicted, rel=0.05), (diffusion, steps, measured, predicted)


def test_blowup_grows_with_step_count():
    spreads = [math.sqrt(dz.endpoint_law(schedules.linear(), steps, 0.1).variance) for steps in (50, 200, 1000)]
    assert spreads[0] < spreads[1] < spreads[2], spreads
    assert spreads[2] > 1e3, spreads


# fit_power_law.


def test_fit_power_law_recovers_exact_power():
    steps = [0.1, 0.01, 0.001]
    rate, constant = dz.fit_power_law(steps, [3.0 * step**1.7 for step in steps])
    assert rate == pytest.approx(1.7, rel=1e-12)
    assert constant == pytest.approx(3.0, rel=1e-12)


# Invalid input.


def test_functions_reject_non_schedule():
    with pytest.raises(TypeError, match="schedule must be an interp.schedules.Schedule"):
        dz.endpoint_expansion("linear")
    with pytest.raises(TypeError, match="schedule must be an interp.schedules.Schedule"):
        dz.endpoint_law(None, 10)


@pytest.mark.parametrize("steps, error", [(0, ValueError), (True, TypeError), (2.0, TypeError)])
def test_functions_reject_bad_steps(steps, error):
    with pytest.raises(error, match="steps"):
        dz.euler_maruyama_factors(schedules.linear(), steps)
    with pytest.raises(error, match="steps"):
        dz.predicted_euler_deviation(schedules.power(0.5), steps, 1.0, 1.0)


def test_factor_rejects_bad_time_and_step():
    with pytest.raises(ValueError, match=r"time must lie in \[0, 1\)"):
        dz.euler_factor(schedules.linear(), 1.0, 0.1)
    with pytest.raises(ValueError, match=r"time must lie in \[0, 1\)"):
        dz.euler_factor(schedules.linear(), torch.tensor([0.5, float("nan")]), 0.1)
    with pytest.raises(ValueError, match="step must be a step size h > 0"):
        dz.euler_factor(schedules.linear(), 0.5, 0.0)
    with pytest.raises(ValueError, match="j must be at least 1"):
        dz.limiting_last_step_factor(schedules.linear(), 0)


def test_product_rejects_bad_arguments():
    with pytest.raises(ValueError, match="p must be finite"):
        dz.euler_product(float("nan"), 3)
    with pytest.raises(TypeError, match="p must be a real number"):
        dz.euler_product("0.5", 3)
    with pytest.raises(ValueError, match="count must be at least 0"):
        dz.euler_product(0.5, -1)
    with pytest.raises(ValueError, match="count must be at least 1"):
        dz.euler_product_asymptote(0.5, 0)


def test_diffusion_rejects_bad_values():
    with pytest.raises(ValueError, match="diffusion must be >= 0"):
        dz.diffusion_function(-0.1)
    with pytest.raises(TypeError, match="diffusion must be a number >= 0 or a SymPy expression"):
        dz.diffusion_function("0.1")
    with pytest.raises(ValueError, match="time symbol"):
        dz.diffusion_function(sp.Symbol("s") * (1 - t))
    negative_late = dz.diffusion_function(1 - 2 * t)
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        negative_late(0.9)


def test_deviation_rejects_bad_norms_and_shapes():
    with pytest.raises(ValueError, match="zeta_norm must contain only finite values >= 0"):
        dz.predicted_euler_deviation(schedules.power(0.5), 10, -1.0, 1.0)
    with pytest.raises(ValueError, match="sample must have shape"):
        dz.exact_euler_deviation(schedules.linear(), 10, torch.zeros(4, 2, dtype=DTYPE), torch.zeros(3, dtype=DTYPE))
    with pytest.raises(ValueError, match="zeta must have shape"):
        dz.exact_euler_deviation(schedules.linear(), 10, torch.zeros(2, dtype=DTYPE), torch.zeros(2, dtype=DTYPE))


def test_prediction_rejects_uncovered_curved_beta():
    schedule = Schedule(sp.sin(sp.pi * t / 2), (1 - t) ** 2)
    with pytest.raises(ValueError, match="covers a curved beta only"):
        dz.predicted_euler_deviation(schedule, 10, 1.0, 1.0)
    with pytest.raises(ValueError, match="covers a curved beta only"):
        dz.leading_euler_deviation(schedule)


def test_stability_rejects_bad_window():
    with pytest.raises(ValueError, match=r"window must lie in \(0, 1\]"):
        dz.is_euler_maruyama_stable(schedules.linear(), 10, 0.1, window=0)


def test_fit_power_law_rejects_bad_input():
    with pytest.raises(ValueError, match="values must contain only finite positive numbers"):
        dz.fit_power_law([0.1, 0.01], [1.0, 0.0])
    with pytest.raises(ValueError, match="same length"):
        dz.fit_power_law([0.1, 0.01], [1.0, 0.5, 0.1])
    with pytest.raises(ValueError, match="two distinct"):
        dz.fit_power_law([0.1, 0.1], [1.0, 0.5])

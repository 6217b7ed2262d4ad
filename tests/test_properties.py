"""Property-based tests of the closed-form fields and the samplers, over random schedules and training sets.

Hypothesis draws the schedule: the presets with their parameters, and random SymPy schedules
``beta = t**q``, ``sin(pi t / 2)**q``, ... with ``sigma = (1 - t)**p g(t)`` and ``g > 0``. It draws
the training set: n from 1 to 1000, d from 1 to 256, float32 or float64, scales from 1e-3 to 1e3,
with exact and near duplicates. It also draws the queries and the time, including both ends of [0, 1].
The sampler properties use smaller sets (n <= 200, d <= 64) because they call the field once per stage.

The one-point checks compare :func:`interp.sample_ode` with an independent route. With a single
training point ``x1`` the weights are exactly 1 and the denoiser is ``x1``, so the Euler step
``X_{k+1} = X_k + h_k b(X_k, t_k)`` becomes, for ``y_k = X_k - beta(t_k) x1``,

    y_{k+1} = a_k y_k + c_k x1,  a_k = 1 + h_k sigma'(t_k) / sigma(t_k),
    c_k = beta(t_k) + h_k beta'(t_k) - beta(t_{k+1}).

For ``power(p)`` on the uniform grid ``c_k = 0`` and ``a_k = 1 - p / (K - k)``, so the endpoint
deviation is ``|prod_{j=1}^{K} (1 - p/j)| ||x0||``. With a perturbed field ``b + e`` the step gains
``h_k e_k``, and the triangle inequality bounds ``||y_K||`` by
``||y_{k0}|| prod_k |a_k| + sum_k (h_k ||e_k|| + |c_k| ||x1||) prod_{l>k} |a_l|``.

Every property runs derandomized, so CI gets the same examples on every run. With 150 to 300
examples per property, this file took 35 to 45 s on two cores, with and without other load. The
deadline of 30 s per example is about 100 times the slowest example seen, so it flags hangs, not
a busy machine.
"""

from __future__ import annotations

import functools
import math
from datetime import timedelta
from fractions import Fraction

import mpmath
import pytest
import sympy as sp
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from interp import EmpiricalField, sample_ode, sample_sde, schedules
from interp.schedules import Schedule, t

PROPERTY = settings(
    max_examples=150,
    deadline=timedelta(seconds=30),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DTYPES = [torch.float32, torch.float64]


@pytest.fixture(scope="module", autouse=True)
def single_torch_thread():
    """Run this module on one torch thread, and restore the previous count afterwards.

    The examples use small tensors, so a second thread gains little. On a busy machine it costs a
    lot: with two threads on two loaded cores the sampler properties took 166 s, with one 13 s.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# Schedules. Parameters come from grids over their ranges, so that each Schedule, whose construction
# runs SymPy simplifications and a 2,000-point positivity check, is built once and cached.

P_GRID = [Fraction(k, 8) for k in range(1, 25)]  # power p from 1/8 to 3
A_GRID = [Fraction(k, 4) for k in range(1, 17)]  # latent noise a from 1/4 to 4
Q_GRID = [Fraction(1), Fraction(3, 2), Fraction(2), Fraction(5, 2), Fraction(3)]  # q >= 1 keeps beta' finite at t = 0
C_GRID = [Fraction(1, 2), Fraction(1), Fraction(2)]


def _rational(value: Fraction) -> sp.Rational:
    return sp.Rational(value.numerator, value.denominator)


def _beta_family(kind: str, q: Fraction) -> sp.Expr:
    exponent = _rational(q)
    if kind == "power":
        return t**exponent
    if kind == "sine_power":
        return sp.sin(sp.pi * t / 2) ** exponent
    if kind == "cosine_ramp":
        return (1 - sp.cos(sp.pi * t)) / 2
    return (sp.exp(exponent * t) - 1) / (sp.exp(exponent) - 1)


def _positive_factor(kind: str, c: Fraction) -> sp.Expr:
    coefficient = _rational(c)
    if kind == "one":
        return sp.Integer(1)
    if kind == "linear":
        return 1 + coefficient * t
    if kind == "exponential":
        return sp.exp(coefficient * t)
    if kind == "sine_bump":
        return 1 + coefficient * sp.sin(sp.pi * t) ** 2
    return sp.cosh(coefficient * t)


@functools.lru_cache(maxsize=None)
def build_schedule(kind: str, *parameters) -> Schedule:
    if kind == "linear":
        return schedules.linear()
    if kind == "trigonometric":
        return schedules.trigonometric()
    if kind == "latent_noise":
        return schedules.latent_noise(_rational(parameters[0]))
    if kind == "power":
        return schedules.power(_rational(parameters[0]))
    beta_kind, q, p, g_kind, c = parameters
    beta = _beta_family(beta_kind, q)
    sigma = (1 - t) ** _rational(p) * _positive_factor(g_kind, c)
    return Schedule(beta, sigma, name=f"beta={sp.sstr(beta)}, sigma={sp.sstr(sigma)}")


RANDOM_SCHEDULE_KEYS = st.tuples(
    st.just("random"),
    st.sampled_from(["power", "sine_power", "cosine_ramp", "exponential"]),
    st.sampled_from(Q_GRID),
    st.sampled_from(P_GRID),
    st.sampled_from(["one", "linear", "exponential", "sine_bump", "cosh"]),
    st.sampled_from(C_GRID),
)

SCHEDULE_KEYS = st.one_of(
    st.just(("linear",)),
    st.just(("trigonometric",)),
    st.tuples(st.just("latent_noise"), st.sampled_from(A_GRID)),
    st.tuples(st.just("power"), st.sampled_from(P_GRID)),
    RANDOM_SCHEDULE_KEYS,
)

SCHEDULES = SCHEDULE_KEYS.map(lambda key: build_schedule(*key))


# Times: both ends, uniform draws, and points from 0.1 to 1e-16 below the data end, where sigma is tiny.

TIMES = st.one_of(
    st.sampled_from([0.0, 1.0]),
    st.floats(0.0, 1.0),
    st.integers(1, 60).map(lambda k: 1.0 - 2.0**-k),
    st.floats(-16.0, -1.0).map(lambda exponent: 1.0 - 10.0**exponent),
)


# Training sets and queries.

LAYOUTS = ["gaussian", "duplicates", "near_duplicates", "one_point_repeated"]


@st.composite
def training_sets(draw, max_n: int = 1000, max_d: int = 256, max_elements: int = 2**18, dtypes=DTYPES):
    """Draw ``(train, seed)``: a float tensor of shape (n, d) with n * d <= max_elements."""
    dtype = draw(st.sampled_from(dtypes))
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, min(max_d, max(1, max_elements // n))))
    scale = 10.0 ** draw(st.floats(-3.0, 3.0))
    layout = draw(st.sampled_from(LAYOUTS))
    seed = draw(st.integers(0, 2**31 - 1))

    generator = torch.Generator().manual_seed(seed)
    points = torch.randn(n, d, generator=generator, dtype=torch.float64)
    if layout == "duplicates":
        points = points[torch.randint(0, max(1, n // 2), (n,), generator=generator)]
    elif layout == "near_duplicates":
        gap = draw(st.sampled_from([1e-12, 1e-7, 1e-4]))
        points = points[torch.randint(0, max(1, n // 2), (n,), generator=generator)]
        points = points + gap * torch.randn(n, d, generator=generator, dtype=torch.float64)
    elif layout == "one_point_repeated":
        points = points[:1].expand(n, d)
    return (scale * points).to(dtype).contiguous(), seed


QUERY_KINDS = ["interpolant", "on_centre", "far", "midpoint"]


def make_queries(train: torch.Tensor, schedule: Schedule, time: float, kind: str, m: int, seed: int) -> torch.Tensor:
    """Build m queries of one kind, in float64 and then cast to the dtype of ``train``."""
    generator = torch.Generator().manual_seed(seed + 1)
    source = train.to(torch.float64)
    n, d = source.shape
    rows = torch.randint(0, n, (m,), generator=generator)
    beta = float(schedule.beta(time))
    sigma = max(float(schedule.sigma(time)), 0.0)
    noise = torch.randn(m, d, generator=generator, dtype=torch.float64)

    if kind == "interpolant":
        queries = beta * source[rows] + sigma * noise
    elif kind == "on_centre":
        queries = beta * source[rows]
    elif kind == "far":
        queries = 100 * (source.abs().max() + 1) * noise
    else:
        others = torch.randint(0, n, (m,), generator=generator)
        queries = beta * (source[rows] + source[others]) / 2
    return queries.to(train.dtype)


def record_coverage(train: torch.Tensor, time: float | None = None) -> None:
    """Label the example for ``--hypothesis-show-statistics``, which shows how the draws cover the ranges."""
    n, d = train.shape
    event(f"dtype {train.dtype}")
    event(f"n {'1' if n == 1 else '2-99' if n < 100 else '100-1000'}")
    event(f"d {'1' if d == 1 else '2-63' if d < 64 else '64-256'}")
    if time is not None:
        event(f"t {'0' if time == 0 else '1' if time == 1 else 'within 1e-6 of 1' if time > 1 - 1e-6 else 'inside'}")


def tolerance(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps


def sigma_in_dtype(schedule: Schedule, time: float, dtype: torch.dtype) -> tuple[float, float]:
    """Return ``(t, sigma(t))`` as the field computes them: t in float64, sigma evaluated in float64 and cast.

    sigma is returned as 0 where its square underflows in ``dtype``, because the field treats that as the data end.
    """
    sigma = schedule.sigma(torch.tensor(time, dtype=torch.float64)).to(dtype)
    if bool(sigma * sigma == 0):
        return float(time), 0.0
    return float(time), float(sigma)


# Fields.


@settings(PROPERTY, max_examples=300)
@given(schedule=SCHEDULES, drawn=training_sets(), kind=st.sampled_from(QUERY_KINDS), m=st.integers(1, 8), time=TIMES)
@example(schedule=schedules.linear(), drawn=(torch.zeros(3, 2), 0), kind="midpoint", m=2, time=1.0)
def test_weights_are_finite_probabilities(schedule, drawn, kind, m, time):
    train, seed = drawn
    field = EmpiricalField(train, schedule)
    queries = make_queries(train, schedule, time, kind, m, seed)
    case = f"{schedule.name}, t={time!r}, {train.dtype}, n={train.shape[0]}, d={train.shape[1]}, {kind}"

    record_coverage(train, time)

    weights = field.weights(queries, time)

    assert weights.shape == (m, train.shape[0]), f"{case}: weights shape {tuple(weights.shape)}"
    assert bool(torch.isfinite(weights).all()), f"{case}: non-finite weights"
    assert bool((weights >= 0).all()), f"{case}: negative weight {weights.min().item()}"
    row_error = (weights.sum(dim=1) - 1).abs().max().item()
    assert row_error <= 4 * train.shape[0] * tolerance(train.dtype), f"{case}: rows sum to 1 +- {row_error}"


@settings(PROPERTY, max_examples=300)
@given(
    schedule=SCHEDULES,
    drawn=training_sets(),
    kind=st.sampled_from(QUERY_KINDS),
    m=st.integers(1, 8),
    time=TIMES,
    directions_seed=st.integers(0, 2**31 - 1),
)
@example(schedule=schedules.trigonometric(), drawn=(torch.zeros(3, 2), 0), kind="on_centre", m=2, time=1.0, directions_seed=0)
def test_denoiser_is_convex_combination(schedule, drawn, kind, m, time, directions_seed):
    train, seed = drawn
    n, d = train.shape
    field = EmpiricalField(train, schedule)
    queries = make_queries(train, schedule, time, kind, m, seed)
    case = f"{schedule.name}, t={time!r}, {train.dtype}, n={n}, d={d}, {kind}"

    denoised = field.denoiser(queries, time)
    weights = field.weights(queries, time)

    assert denoised.shape == (m, d), f"{case}: denoiser shape {tuple(denoised.shape)}"
    assert bool(torch.isfinite(denoised).all()), f"{case}: non-finite denoiser"

    # Each dot product and weighted sum below has at most n + d terms, so rounding moves it by at
    # most about (n + d) eps times the largest magnitude involved.
    slack = 2 * (n + d) * tolerance(train.dtype)
    largest = train.abs().max().item()

    reproduced = weights @ train
    gap = (reproduced - denoised).abs().max().item()
    assert gap <= slack * largest, f"{case}: weights @ train differs from the denoiser by {gap}"

    directions = torch.randn(d, 16, generator=torch.Generator().manual_seed(directions_seed), dtype=torch.float64)
    directions = directions / torch.linalg.vector_norm(directions, dim=0)
    projected_train = train.to(torch.float64) @ directions
    projected = denoised.to(torch.float64) @ directions
    margin = slack * projected_train.abs().max().item() + slack * largest
    low = projected_train.min(dim=0).values - margin
    high = projected_train.max(dim=0).values + margin
    assert bool((projected >= low).all()), f"{case}: denoiser below the training range by {(low - projected).max().item()}"
    assert bool((projected <= high).all()), f"{case}: denoiser above the training range by {(projected - high).max().item()}"


@settings(PROPERTY, max_examples=300)
@given(schedule=SCHEDULES, drawn=training_sets(), kind=st.sampled_from(QUERY_KINDS), m=st.integers(1, 8), time=TIMES)
def test_velocity_and_score_finite_before_data_end(schedule, drawn, kind, m, time):
    train, seed = drawn
    field = EmpiricalField(train, schedule)
    queries = make_queries(train, schedule, time, kind, m, seed)
    case = f"{schedule.name}, t={time!r}, {train.dtype}, n={train.shape[0]}, d={train.shape[1]}, {kind}"
    time_in_dtype, sigma = sigma_in_dtype(schedule, time, train.dtype)
    record_coverage(train, time)

    if time_in_dtype == 1 or sigma <= 0 or sigma * sigma == 0:
        event("sigma(t) = 0 in the dtype: singular")
        for method in ("velocity", "score"):
            with pytest.raises(ValueError, match="singular"):
                getattr(field, method)(queries, time)
        return

    # The score -(x - beta m) / sigma**2 can exceed the largest float32 even though sigma > 0; the
    # field then raises ValueError instead of returning inf. Only fields whose exact value fits in
    # the dtype must come back, and finite.
    reference_field = EmpiricalField(train.to(torch.float64), schedule)
    reference_score = reference_field.score(queries.to(torch.float64), time_in_dtype)
    reference_velocity = reference_field.velocity(queries.to(torch.float64), time_in_dtype)
    limit = torch.finfo(train.dtype).max / 4
    for method, reference in (("velocity", reference_velocity), ("score", reference_score)):
        if reference.abs().max().item() < limit:
            value = getattr(field, method)(queries, time)
            assert bool(torch.isfinite(value).all()), f"{case}, sigma={sigma}: non-finite {method}"
        else:
            event(f"{method} exceeds the dtype's range")
            try:
                value = getattr(field, method)(queries, time)
            except ValueError as error:
                assert "overflows" in str(error), f"{case}: unexpected error {error}"
            else:
                assert not bool(torch.isnan(value).any()), f"{case}, sigma={sigma}: NaN in the {method}"


def test_score_overflow_raises():
    train = torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]], dtype=torch.float32)
    field = EmpiricalField(train, schedules.power(3))
    far = torch.full((1, 3), 1e3, dtype=torch.float32)
    time = 1 - 2.0**-20

    with pytest.raises(ValueError, match=r"score overflows torch.float32 .*Use float64"):
        field.score(far, time)


# Samplers.

SAMPLER_SETS = training_sets(max_n=200, max_d=64, max_elements=2**13)


@settings(PROPERTY, max_examples=200)
@given(
    schedule=SCHEDULES,
    drawn=SAMPLER_SETS,
    m=st.integers(1, 8),
    steps=st.integers(1, 40),
    method=st.sampled_from(["euler", "heun", "rk4"]),
)
def test_sample_ode_is_finite(schedule, drawn, m, steps, method):
    train, seed = drawn
    field = EmpiricalField(train, schedule)
    x0 = torch.randn(m, train.shape[1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(train.dtype)
    case = f"{schedule.name}, {method}, K={steps}, {train.dtype}, n={train.shape[0]}, d={train.shape[1]}"

    final = sample_ode(field.velocity, x0, steps, method=method)

    assert final.shape == x0.shape, f"{case}: shape {tuple(final.shape)}"
    assert final.dtype == train.dtype, f"{case}: dtype {final.dtype}"
    assert bool(torch.isfinite(final).all()), f"{case}: non-finite sample"


@settings(PROPERTY, max_examples=200)
@given(
    schedule=SCHEDULES,
    drawn=SAMPLER_SETS,
    m=st.integers(1, 8),
    steps=st.integers(1, 40),
    diffusion_kind=st.sampled_from(["zero", "constant", "sigma_squared"]),
    strength=st.floats(0.0, 2.0),
)
def test_sample_sde_is_finite(schedule, drawn, m, steps, diffusion_kind, strength):
    train, seed = drawn
    field = EmpiricalField(train, schedule)
    x0 = torch.randn(m, train.shape[1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(train.dtype)
    if diffusion_kind == "zero":
        diffusion = 0.0
    elif diffusion_kind == "constant":
        diffusion = strength
    else:
        # eps = c sigma**2 keeps h eps / sigma**2 = c h small, the stable regime of Euler-Maruyama.
        diffusion = lambda time: strength * float(schedule.sigma(time)) ** 2  # noqa: E731
    generator = torch.Generator().manual_seed(seed + 2)
    case = f"{schedule.name}, {diffusion_kind} eps (c={strength}), K={steps}, {train.dtype}, n={train.shape[0]}, d={train.shape[1]}"

    final = sample_sde(field.velocity, field.score, x0, steps, diffusion, generator=generator)

    assert final.shape == x0.shape, f"{case}: shape {tuple(final.shape)}"
    assert bool(torch.isfinite(final).all()), f"{case}: non-finite sample"


# One training point: Euler against its exact recursion.


@st.composite
def time_grids(draw, max_steps: int = 40):
    """Draw a grid from 0 to 1: uniform with K steps, or K - 1 sorted interior points."""
    steps = draw(st.integers(1, max_steps))
    if draw(st.booleans()):
        return [k / steps for k in range(steps + 1)]
    interior = draw(st.lists(st.floats(1e-6, 1 - 1e-6), min_size=steps - 1, max_size=steps - 1, unique=True))
    return [0.0, *sorted(interior), 1.0]


@st.composite
def one_point_problems(draw):
    """Draw ``(x0, x1)``: a start state of m rows and one training point, in float64."""
    d = draw(st.integers(1, 256))
    m = draw(st.integers(1, 4))
    scale = 10.0 ** draw(st.floats(-3.0, 3.0))
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    x1 = scale * torch.randn(1, d, generator=generator, dtype=torch.float64)
    x0 = torch.randn(m, d, generator=generator, dtype=torch.float64)
    return x0, x1


def schedule_in_mpmath(schedule: Schedule):
    """Return beta, dbeta, sigma and dsigma as mpmath functions, evaluated from the SymPy expressions."""
    expressions = (schedule.beta_expr, schedule.dbeta_expr, schedule.sigma_expr, schedule.dsigma_expr)
    return tuple(sp.lambdify(t, expression, modules="mpmath") for expression in expressions)


def recursion_coefficients(schedule: Schedule, grid: list[float]) -> tuple[list, list]:
    """Compute a_k = 1 + h_k sigma'/sigma (t_k) and c_k = beta(t_k) + h_k beta'(t_k) - beta(t_{k+1}) at 40 digits."""
    beta, dbeta, sigma, dsigma = schedule_in_mpmath(schedule)
    factors, offsets = [], []
    with mpmath.workdps(40):
        for start, end in zip(grid[:-1], grid[1:]):
            time, step = mpmath.mpf(start), mpmath.mpf(end) - mpmath.mpf(start)
            factors.append(1 + step * dsigma(time) / sigma(time))
            offsets.append(beta(time) + step * dbeta(time) - beta(mpmath.mpf(end)))
    return factors, offsets


@PROPERTY
@given(schedule=SCHEDULES, grid=time_grids(), problem=one_point_problems())
def test_euler_matches_one_point_recursion(schedule, grid, problem):
    x0, x1 = problem
    field = EmpiricalField(x1, schedule)
    factors, offsets = recursion_coefficients(schedule, grid)
    beta = schedule_in_mpmath(schedule)[0]
    case = f"{schedule.name}, K={len(grid) - 1}, d={x1.shape[1]}, |x1|={x1.norm().item():.3g}"

    final = sample_ode(field.velocity, x0, None, method="euler", time_grid=grid)

    with mpmath.workdps(40):
        y = [[mpmath.mpf(float(value)) for value in row] for row in x0 - float(beta(grid[0])) * x1]
        point = [mpmath.mpf(float(value)) for value in x1[0]]
        for factor, offset in zip(factors, offsets):
            y = [[factor * value + offset * centre for value, centre in zip(row, point)] for row in y]
        expected = torch.tensor([[float(value + beta(mpmath.mpf(grid[-1])) * centre) for value, centre in zip(row, point)] for row in y], dtype=torch.float64)
        # Rounding errors of one step are amplified by at most the largest tail product of |a_k|.
        amplification = max(float(mpmath.fprod(abs(factor) for factor in factors[k:])) for k in range(len(factors)))

    scale = x0.abs().max().item() + x1.abs().max().item()
    allowed = 1e-12 * len(factors) * max(1.0, amplification) * scale * x1.shape[1] ** 0.5
    error = (final - expected).abs().max().item()
    assert error <= allowed, f"{case}: sampler differs from the recursion by {error}, allowed {allowed}"


@PROPERTY
@given(
    p=st.sampled_from(P_GRID),
    steps=st.integers(1, 60),
    problem=one_point_problems(),
    dtype=st.sampled_from(DTYPES),
)
@example(p=Fraction(1), steps=1, problem=(torch.ones(1, 3, dtype=torch.float64), torch.full((1, 3), 2.0, dtype=torch.float64)), dtype=torch.float64)
@example(p=Fraction(1, 2), steps=60, problem=(torch.ones(1, 1, dtype=torch.float64), torch.full((1, 1), 1e3, dtype=torch.float64)), dtype=torch.float32)
def test_euler_power_deviation_matches_product(p, steps, problem, dtype):
    x0, x1 = (tensor.to(dtype) for tensor in problem)
    schedule = build_schedule("power", p)
    field = EmpiricalField(x1, schedule)
    case = f"power(p={p}), K={steps}, {dtype}, d={x1.shape[1]}, |x1|={x1.norm().item():.3g}"

    final = sample_ode(field.velocity, x0, steps, method="euler")

    product = 1.0
    for j in range(1, steps + 1):
        product *= float(1 - p / j)
    deviation = torch.linalg.vector_norm((final - x1).to(torch.float64), dim=1)
    predicted = abs(product) * torch.linalg.vector_norm(x0.to(torch.float64), dim=1)

    largest_tail = max(math.prod(abs(float(1 - p / j)) for j in range(1, i + 1)) for i in range(1, steps + 1))
    scale = x0.abs().max().item() + x1.abs().max().item()
    allowed = 8 * steps * max(1.0, largest_tail) * tolerance(dtype) * scale * x1.shape[1] ** 0.5
    error = (deviation - predicted).abs().max().item()
    assert error <= allowed, f"{case}: deviation {deviation.tolist()}, predicted {predicted.tolist()}, allowed error {allowed}"


# One training point with a perturbed field: the accumulated-error bound.


def perturbation(kind: str, size: float, d: int, seed: int):
    """Return e(x, t) with ||e(x, t)|| <= size for every row of x."""
    direction = torch.randn(1, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    direction = direction / direction.norm()
    if kind == "constant":
        return lambda x, time: size * direction.expand_as(x)
    if kind == "oscillating":
        return lambda x, time: size * math.sin(7 * time + 1) * direction.expand_as(x)
    return lambda x, time: size * torch.tanh(x) / math.sqrt(d)


@PROPERTY
@given(
    schedule=SCHEDULES,
    grid=time_grids(),
    problem=one_point_problems(),
    kind=st.sampled_from(["constant", "oscillating", "state_dependent"]),
    size=st.floats(0.0, 10.0),
    seed=st.integers(0, 2**31 - 1),
    start_fraction=st.floats(0.0, 1.0),
)
def test_euler_error_bound_one_point(schedule, grid, problem, kind, size, seed, start_fraction):
    x0, x1 = problem
    field = EmpiricalField(x1, schedule)
    error_field = perturbation(kind, size, x1.shape[1], seed)
    error_norms = []

    def perturbed(x, time):
        error = error_field(x, time)
        error_norms.append(torch.linalg.vector_norm(error, dim=1))
        return field.velocity(x, time) + error

    path = sample_ode(perturbed, x0, None, method="euler", time_grid=grid, return_path=True)
    factors, offsets = recursion_coefficients(schedule, grid)
    beta = schedule_in_mpmath(schedule)[0]
    steps = len(grid) - 1
    start = min(int(start_fraction * steps), steps - 1)
    case = f"{schedule.name}, {kind} e of size {size}, K={steps}, k0={start}, d={x1.shape[1]}"

    with mpmath.workdps(40):
        centre_norm = mpmath.mpf(x1.norm().item())
        y_start = torch.linalg.vector_norm(path[start] - float(beta(grid[start])) * x1, dim=1)
        y_end = torch.linalg.vector_norm(path[-1] - float(beta(grid[-1])) * x1, dim=1)
        for row in range(x0.shape[0]):
            bound = mpmath.mpf(y_start[row].item()) * mpmath.fprod(abs(factor) for factor in factors[start:])
            for k in range(start, steps):
                step = mpmath.mpf(grid[k + 1]) - mpmath.mpf(grid[k])
                tail = mpmath.fprod(abs(factor) for factor in factors[k + 1 :])
                bound += (step * mpmath.mpf(error_norms[k][row].item()) + abs(offsets[k]) * centre_norm) * tail
            # Float64 rounding in the sampler: a few eps per step on the state, amplified like y.
            slack = 1e-12 * steps * (float(bound) + path[:, row].abs().max().item() + x1.abs().max().item())
            assert y_end[row].item() <= float(bound) + slack, f"{case}, row {row}: |y_K| = {y_end[row].item()} > bound {float(bound)}"


@settings(PROPERTY, max_examples=200)
@given(
    p=st.sampled_from([value for value in P_GRID if value <= 1]),
    steps=st.integers(1, 60),
    problem=one_point_problems(),
    size=st.floats(1e-3, 10.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_euler_error_bound_sharp_for_aligned_error(p, steps, problem, size, seed):
    # With x0 = 0 = beta(0) x1, a constant error e and every a_k = 1 - p/j >= 0 (p <= 1), each term
    # h e prod a_l points along e, so the triangle inequality becomes an equality.
    _, x1 = problem
    x0 = torch.zeros_like(x1)
    schedule = build_schedule("power", p)
    field = EmpiricalField(x1, schedule)
    error_field = perturbation("constant", size, x1.shape[1], seed)

    final = sample_ode(lambda x, time: field.velocity(x, time) + error_field(x, time), x0, steps, method="euler")

    bound = 0.0
    for k in range(steps):
        tail = math.prod(1 - float(p) / j for j in range(1, steps - k))
        bound += size / steps * tail
    deviation = (final - x1).norm().item()
    allowed = 1e-12 * steps * (bound + x1.abs().max().item())
    assert abs(deviation - bound) <= allowed, f"power(p={p}), K={steps}, |e|={size}: |y_K| = {deviation}, bound {bound}"

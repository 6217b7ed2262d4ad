"""Tests of interp.fields.EmpiricalField against routes that do not use its code.

The reference values come from SymPy derivatives evaluated in mpmath at 40 digits, from torch
autograd, from Monte Carlo identities of the interpolant, and from exact facts at t = 0 and t = 1.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import pytest
import sympy as sp
import torch

from interp import EmpiricalField
from interp import schedules
from interp.schedules import Schedule

PRESETS = {
    "linear": schedules.linear,
    "trigonometric": schedules.trigonometric,
    "latent_noise(0.5)": lambda: schedules.latent_noise(0.5),
    "latent_noise(2)": lambda: schedules.latent_noise(2),
    "power(0.5)": lambda: schedules.power(0.5),
    "power(1.5)": lambda: schedules.power(1.5),
    "power(2)": lambda: schedules.power(2),
}

# Exactly representable in binary, so SymPy and torch see the same numbers.
TRAIN = [[0.5, -1.0], [2.0, 0.25], [-1.5, 1.0]]
# No query is equidistant from two scaled samples near t = 1, where a tie would make the weights
# depend on the last bits of beta(t).
QUERIES = [[0.375, 0.75], [1.875, 0.125], [-3.0, -2.0]]

TIMES = [0.0, 0.1, 0.37, 0.5, 0.83, 0.99, 1 - 1e-6]

# The largest error seen is 1.2e-11, for the trigonometric score at t = 1 - 1e-6: float64 rounding of
# pi t / 2 near pi / 2 changes cos(pi t / 2) = sigma by about 1e-16 / 1.6e-6 relative.

RELATIVE_TOLERANCE = 1e-10


@pytest.fixture(scope="module", params=list(PRESETS))
def preset(request) -> tuple[str, Schedule]:
    return request.param, PRESETS[request.param]()


def _train(dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(TRAIN, dtype=dtype)


def _queries(dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(QUERIES, dtype=dtype)


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Norm-wise relative error of one vector, so a component near 0 is judged against the whole vector."""
    return float(torch.linalg.vector_norm(actual - expected) / torch.linalg.vector_norm(expected))


# SymPy reference.


def _symbolic_fields(schedule: Schedule) -> dict:
    """Build the mixture log density in SymPy and derive the other fields from it, compiled to mpmath.

    The score is the x-derivative of log rho, the denoiser comes from the score relation
    m = (x + sigma**2 s) / beta, and the velocity from b = (dsigma / sigma)(x - beta m) + dbeta m.
    """
    time = schedules.t
    x = sp.symbols("x1 x2", real=True)
    beta, sigma = schedule.beta_expr, schedule.sigma_expr
    dbeta, dsigma = sp.diff(beta, time), sp.diff(sigma, time)
    samples = [[sp.Rational(Fraction(value)) for value in row] for row in TRAIN]
    n, d = len(samples), len(x)

    kernels = [sp.exp(-sum((x[k] - beta * sample[k]) ** 2 for k in range(d)) / (2 * sigma**2)) for sample in samples]
    log_density = sp.log(sum(kernels) / n) - sp.Rational(d, 2) * sp.log(2 * sp.pi * sigma**2)

    score = [sp.diff(log_density, x[k]) for k in range(d)]
    denoiser = [(x[k] + sigma**2 * score[k]) / beta for k in range(d)]
    velocity = [dsigma / sigma * (x[k] - beta * denoiser[k]) + dbeta * denoiser[k] for k in range(d)]
    weights = [kernel / sum(kernels) for kernel in kernels]

    # At t = 0, beta = 0 and the score relation divides by 0. The weights are uniform there, so
    # the denoiser is the training mean and the velocity is (dsigma / sigma) x + dbeta * mean.
    mean = [sum(sample[k] for sample in samples) / n for k in range(d)]
    velocity_at_zero = [dsigma / sigma * x[k] + dbeta * mean[k] for k in range(d)]

    arguments = (time, *x)

    def to_mpmath(expressions):
        return sp.lambdify(arguments, expressions, modules="mpmath")

    return {
        "log_density": to_mpmath(log_density),
        "score": to_mpmath(score),
        "denoiser": to_mpmath(denoiser),
        "velocity": to_mpmath(velocity),
        "weights": to_mpmath(weights),
        "velocity_at_zero": to_mpmath(velocity_at_zero),
        "mean": [float(value) for value in mean],
    }


@pytest.fixture(scope="module")
def symbolic(preset) -> dict:
    return _symbolic_fields(preset[1])


def _evaluate_symbolic(function, time: float, query: list[float]):
    with mpmath.workdps(40):
        value = function(mpmath.mpf(time), *(mpmath.mpf(coordinate) for coordinate in query))
        if isinstance(value, list):
            return torch.tensor([float(entry) for entry in value], dtype=torch.float64)
        return torch.tensor(float(value), dtype=torch.float64)


@pytest.mark.parametrize("time", TIMES)
def test_score_matches_sympy(preset, symbolic, time):
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)
    actual = field.score(_queries(), time)

    for index, query in enumerate(QUERIES):
        expected = _evaluate_symbolic(symbolic["score"], time, query)
        error = _relative_error(actual[index], expected)
        assert error <= RELATIVE_TOLERANCE, f"{name}, t={time}, x={query}: score {actual[index].tolist()} vs SymPy {expected.tolist()}, relative error {error:.2e}"


@pytest.mark.parametrize("time", TIMES)
def test_log_density_matches_sympy(preset, symbolic, time):
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)
    actual = field.log_density(_queries(), time)

    for index, query in enumerate(QUERIES):
        expected = _evaluate_symbolic(symbolic["log_density"], time, query)
        # Relative to max(|log rho|, 1), because log rho may pass through 0.
        error = abs(float(actual[index] - expected)) / max(abs(float(expected)), 1.0)
        assert error <= RELATIVE_TOLERANCE, f"{name}, t={time}, x={query}: log_density {float(actual[index])} vs SymPy {float(expected)}, relative error {error:.2e}"


@pytest.mark.parametrize("time", [value for value in TIMES if value > 0])
def test_denoiser_matches_sympy(preset, symbolic, time):
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)
    actual = field.denoiser(_queries(), time)

    for index, query in enumerate(QUERIES):
        expected = _evaluate_symbolic(symbolic["denoiser"], time, query)
        error = _relative_error(actual[index], expected)
        assert error <= RELATIVE_TOLERANCE, f"{name}, t={time}, x={query}: denoiser {actual[index].tolist()} vs SymPy {expected.tolist()}, relative error {error:.2e}"


@pytest.mark.parametrize("time", [value for value in TIMES if value > 0])
def test_velocity_matches_sympy(preset, symbolic, time):
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)
    actual = field.velocity(_queries(), time)

    for index, query in enumerate(QUERIES):
        expected = _evaluate_symbolic(symbolic["velocity"], time, query)
        error = _relative_error(actual[index], expected)
        assert error <= RELATIVE_TOLERANCE, f"{name}, t={time}, x={query}: velocity {actual[index].tolist()} vs SymPy {expected.tolist()}, relative error {error:.2e}"


@pytest.mark.parametrize("time", TIMES)
def test_weights_match_sympy(preset, symbolic, time):
    """Weights lie in [0, 1] and sum to 1, so they are compared with an absolute tolerance."""
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)
    actual = field.weights(_queries(), time)

    for index, query in enumerate(QUERIES):
        expected = _evaluate_symbolic(symbolic["weights"], time, query)
        error = float((actual[index] - expected).abs().max())
        assert error <= RELATIVE_TOLERANCE, f"{name}, t={time}, x={query}: weights {actual[index].tolist()} vs SymPy {expected.tolist()}, max error {error:.2e}"


def test_fields_at_time_zero_match_sympy(preset, symbolic):
    """At t = 0, beta = 0: uniform weights, the training mean as denoiser, and a velocity affine in x."""
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)
    queries = _queries()
    weights = field.weights(queries, 0.0)
    denoiser = field.denoiser(queries, 0.0)
    velocity = field.velocity(queries, 0.0)
    mean = torch.tensor(symbolic["mean"], dtype=torch.float64)

    uniform_error = float((weights - 1 / len(TRAIN)).abs().max())
    assert uniform_error <= 1e-15, f"{name}, t=0: weights {weights.tolist()} are not uniform"

    for index, query in enumerate(QUERIES):
        denoiser_error = _relative_error(denoiser[index], mean)
        assert denoiser_error <= RELATIVE_TOLERANCE, f"{name}, t=0, x={query}: denoiser {denoiser[index].tolist()} vs training mean {mean.tolist()}"

        expected = _evaluate_symbolic(symbolic["velocity_at_zero"], 0.0, query)
        velocity_error = _relative_error(velocity[index], expected)
        assert velocity_error <= RELATIVE_TOLERANCE, f"{name}, t=0, x={query}: velocity {velocity[index].tolist()} vs SymPy {expected.tolist()}, relative error {velocity_error:.2e}"


# Autograd and algebraic relations.


@pytest.mark.parametrize("time", [0.0, 0.3, 0.7, 0.99, 1 - 1e-6])
def test_score_matches_autograd(preset, time):
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)
    queries = _queries().requires_grad_(True)

    (gradient,) = torch.autograd.grad(field.log_density(queries, time).sum(), queries)
    score = field.score(queries.detach(), time)

    for index in range(len(QUERIES)):
        error = _relative_error(score[index], gradient[index])
        assert error <= RELATIVE_TOLERANCE, f"{name}, t={time}, query {index}: score {score[index].tolist()} vs autograd {gradient[index].tolist()}, relative error {error:.2e}"


@pytest.mark.parametrize("time", [0.2, 0.5, 0.9, 1 - 1e-6])
def test_velocity_score_relations(preset, time):
    """Check b = -sigma dsigma s + dbeta m and b = (dbeta / beta) x + (dbeta sigma**2 / beta - sigma dsigma) s."""
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)
    queries = _queries()
    velocity = field.velocity(queries, time)
    score = field.score(queries, time)
    denoiser = field.denoiser(queries, time)

    point = torch.tensor(time, dtype=torch.float64)
    beta, sigma = schedule.beta(point), schedule.sigma(point)
    dbeta, dsigma = schedule.dbeta(point), schedule.dsigma(point)
    from_score_and_denoiser = -sigma * dsigma * score + dbeta * denoiser
    from_score_only = (dbeta / beta) * queries + (dbeta * sigma**2 / beta - sigma * dsigma) * score

    for index in range(len(QUERIES)):
        first = _relative_error(velocity[index], from_score_and_denoiser[index])
        assert first <= RELATIVE_TOLERANCE, f"{name}, t={time}, query {index}: velocity {velocity[index].tolist()} vs -sigma dsigma s + dbeta m {from_score_and_denoiser[index].tolist()}"

        second = _relative_error(velocity[index], from_score_only[index])
        assert second <= RELATIVE_TOLERANCE, f"{name}, t={time}, query {index}: velocity {velocity[index].tolist()} vs (dbeta/beta) x + (...) s {from_score_only[index].tolist()}"


# Monte Carlo identities of the interpolant.

MONTE_CARLO_CASES = [("linear", 0.5), ("trigonometric", 0.3), ("latent_noise(2)", 0.6), ("power(2)", 0.4)]


@pytest.mark.parametrize(("name", "time"), MONTE_CARLO_CASES)
def test_fields_satisfy_monte_carlo_identities(name, time):
    """Check the conditional-expectation identities on samples of the interpolant.

    Draw i uniformly and zeta ~ N(0, I), and set x_t = beta x^(i) + sigma zeta. Then
    w_j(x_t) = P(i = j | x_t), so E[w_j(x_t)] = 1/n. The denoiser, velocity and score are the
    conditional expectations of x^(i), dbeta x^(i) + dsigma zeta and -zeta / sigma given x_t, so each
    residual is orthogonal to every function g of x_t, that is E[(target - field(x_t)) g(x_t)] = 0.
    No other function of x_t has this property, so a wrong field shows up as a nonzero mean. Each
    mean is checked against 4.5 of its own standard errors, with a fixed seed.
    """
    schedule = PRESETS[name]()
    train = torch.tensor([[0.0, 0.0], [1.0, 0.5], [-0.5, 1.5], [2.0, -1.0]], dtype=torch.float64)
    n = train.shape[0]
    num_samples = 200_000
    generator = torch.Generator().manual_seed(20240611)

    point = torch.tensor(time, dtype=torch.float64)
    beta, sigma = schedule.beta(point), schedule.sigma(point)
    dbeta, dsigma = schedule.dbeta(point), schedule.dsigma(point)
    index = torch.randint(n, (num_samples,), generator=generator)
    noise = torch.randn(num_samples, 2, generator=generator, dtype=torch.float64)
    samples = beta * train[index] + sigma * noise

    field = EmpiricalField(train, schedule)
    threshold = 4.5

    weights = field.weights(samples, time)
    for j in range(n):
        values = weights[:, j]
        standard_error = float(values.std() / math.sqrt(num_samples))
        deviation = float(values.mean() - 1 / n)
        assert abs(deviation) <= threshold * standard_error, f"{name}, t={time}: mean of w_{j} is {float(values.mean()):.5f}, expected {1 / n} within {threshold} x {standard_error:.1e}"

    test_functions = {
        "1": torch.ones(num_samples, dtype=torch.float64),
        "x_t[0]": samples[:, 0],
        "x_t[1]": samples[:, 1],
        "tanh(x_t[0] x_t[1])": torch.tanh(samples[:, 0] * samples[:, 1]),
    }
    targets = {
        "denoiser": (train[index], field.denoiser(samples, time)),
        "velocity": (dbeta * train[index] + dsigma * noise, field.velocity(samples, time)),
        "score": (-noise / sigma, field.score(samples, time)),
    }
    for field_name, (target, prediction) in targets.items():
        residual = target - prediction
        for function_name, values in test_functions.items():
            for component in range(2):
                products = residual[:, component] * values
                standard_error = float(products.std() / math.sqrt(num_samples))
                mean = float(products.mean())
                assert abs(mean) <= threshold * standard_error, f"{name}, t={time}: E[({field_name} residual)[{component}] * {function_name}] = {mean:.2e}, expected 0 within {threshold} x {standard_error:.1e}"


# Behaviour at the data end t = 1.


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_weights_one_hot_at_data_end(preset, dtype):
    name, schedule = preset
    generator = torch.Generator().manual_seed(7)
    train = torch.randn(20, 3, generator=generator, dtype=torch.float64)
    queries = torch.randn(15, 3, generator=generator, dtype=torch.float64)
    field = EmpiricalField(train.to(dtype), schedule)

    weights = field.weights(queries.to(dtype), 1.0)
    denoiser = field.denoiser(queries.to(dtype), 1.0)

    for row, query in enumerate(queries.to(dtype).tolist()):
        distances = [sum((a - b) ** 2 for a, b in zip(query, sample)) for sample in train.to(dtype).tolist()]
        nearest = min(range(len(distances)), key=distances.__getitem__)
        expected = torch.zeros(train.shape[0], dtype=dtype)
        expected[nearest] = 1
        assert torch.equal(weights[row], expected), f"{name}, t=1, {dtype}, query {row}: weights {weights[row].tolist()} are not one-hot on sample {nearest}"
        assert torch.equal(denoiser[row], train.to(dtype)[nearest]), f"{name}, t=1, {dtype}, query {row}: denoiser {denoiser[row].tolist()} is not sample {nearest}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_weights_split_ties_at_data_end(preset, dtype):
    name, schedule = preset
    train = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [1.0, -1.0], [5.0, 5.0]], dtype=dtype)
    field = EmpiricalField(train, schedule)
    tolerance = 4 * torch.finfo(dtype).eps

    # Each query with the samples at its smallest distance: four, two and one of them.
    cases = [
        ([1.0, 0.0], [0.25, 0.25, 0.25, 0.25, 0.0], [1.0, 0.0]),
        ([0.0, 1.0], [0.5, 0.0, 0.5, 0.0, 0.0], [0.5, 0.5]),
        ([0.5, 3.0], [0.0, 0.0, 1.0, 0.0, 0.0], [1.0, 1.0]),
    ]
    queries = torch.tensor([query for query, _, _ in cases], dtype=dtype)
    weights = field.weights(queries, 1.0)
    denoiser = field.denoiser(queries, 1.0)

    for row, (query, expected_weights, expected_denoiser) in enumerate(cases):
        weight_error = float((weights[row] - torch.tensor(expected_weights, dtype=dtype)).abs().max())
        assert weight_error <= tolerance, f"{name}, t=1, {dtype}, x={query}: weights {weights[row].tolist()}, expected {expected_weights}"

        denoiser_error = float((denoiser[row] - torch.tensor(expected_denoiser, dtype=dtype)).abs().max())
        assert denoiser_error <= tolerance, f"{name}, t=1, {dtype}, x={query}: denoiser {denoiser[row].tolist()}, expected the tie average {expected_denoiser}"


@pytest.mark.parametrize("method", ["velocity", "score", "log_density"])
def test_singular_fields_reject_data_end(preset, method):
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)

    with pytest.raises(ValueError, match=r"singular at t = 1\.0") as raised:
        getattr(field, method)(_queries(), 1.0)

    message = str(raised.value)
    assert method in message, f"{name}: message does not name {method}: {message}"
    assert "sigma(1) = 0" in message, f"{name}: message does not explain sigma(1) = 0: {message}"
    assert "denoiser" in message, f"{name}: message does not suggest the denoiser: {message}"
    assert "t < 1" in message, f"{name}: message does not suggest t < 1: {message}"


def test_float32_field_keeps_time_below_one():
    """t = 1 - 1e-9 would round to 1 in float32, but the schedule is evaluated in float64, so sigma = 1e-9 > 0."""
    schedule = schedules.linear()
    time = 1 - 1e-9
    field32 = EmpiricalField(_train(torch.float32), schedule)
    field64 = EmpiricalField(_train(torch.float64), schedule)

    # The first query is nearest to the second training sample.
    weights = field32.weights(_queries(torch.float32), time)
    assert torch.equal(weights[0], torch.tensor([0.0, 1.0, 0.0])), f"linear, t={time}, float32: weights {weights[0].tolist()} are not one-hot on sample 1"
    assert bool(torch.isfinite(field32.denoiser(_queries(torch.float32), time)).all()), f"linear, t={time}, float32: denoiser is not finite"

    velocity = field64.velocity(_queries(torch.float64), time)
    assert bool(torch.isfinite(velocity).all()), f"linear, t={time}, float64: velocity {velocity.tolist()} is not finite"
    velocity32 = field32.velocity(_queries(torch.float32), time).double()
    relative = ((velocity32 - velocity).norm() / velocity.norm()).item()
    assert relative < 1e-5, f"linear, t={time}: float32 velocity differs from float64 by {relative:.2e}"


def test_trigonometric_float32_data_end_is_finite():
    """cos(pi / 2) is -4e-8 in float32, so sigma must be treated as 0 rather than squared as is."""
    schedule = schedules.trigonometric()
    field = EmpiricalField(_train(torch.float32), schedule)
    queries = _queries(torch.float32)

    weights = field.weights(queries, 1.0)
    denoiser = field.denoiser(queries, 1.0)

    assert bool(torch.isfinite(weights).all()), f"trigonometric, t=1, float32: weights {weights.tolist()} are not finite"
    assert torch.equal(denoiser[0], torch.tensor(TRAIN[1])), f"trigonometric, t=1, float32: denoiser {denoiser[0].tolist()}, expected the nearest sample {TRAIN[1]}"


def test_per_query_times_match_scalar_calls(preset):
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)
    queries = torch.tensor(QUERIES + [[0.5, 0.5]], dtype=torch.float64)
    times = [0.0, 0.4, 0.9, 1.0]
    per_query = torch.tensor(times, dtype=torch.float64)

    for method in ("weights", "log_weights", "denoiser"):
        batched = getattr(field, method)(queries, per_query)
        for row, time in enumerate(times):
            single = getattr(field, method)(queries[row : row + 1], time)[0]
            assert torch.allclose(batched[row], single, rtol=1e-13, atol=1e-14), f"{name}, t={time}: {method} per query {batched[row].tolist()} vs scalar {single.tolist()}"

    interior = per_query.clone()
    interior[-1] = 0.999
    for method in ("velocity", "score", "log_density"):
        batched = getattr(field, method)(queries, interior)
        for row, time in enumerate(interior.tolist()):
            single = getattr(field, method)(queries[row : row + 1], time)[0]
            assert torch.allclose(batched[row], single, rtol=1e-13, atol=1e-14), f"{name}, t={time}: {method} per query {batched[row].tolist()} vs scalar {single.tolist()}"

    with pytest.raises(ValueError, match=r"query 3"):
        field.velocity(queries, per_query)


def test_zero_dim_time_tensor_matches_float(preset):
    name, schedule = preset
    field = EmpiricalField(_train(), schedule)

    from_tensor = field.velocity(_queries(), torch.tensor(0.6, dtype=torch.float64))
    from_float = field.velocity(_queries(), 0.6)

    assert torch.equal(from_tensor, from_float), f"{name}, t=0.6: velocity from a 0-dim tensor {from_tensor.tolist()} vs float {from_float.tolist()}"


# Numerical range.


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_weights_finite_at_tiny_sigma(dtype):
    """n = 10,000 samples at sigma = 1e-4, where exp(-||x - beta x^(i)||**2 / (2 sigma**2)) underflows."""
    schedule = schedules.linear()
    time = 1 - 1e-4
    generator = torch.Generator().manual_seed(3)
    train = torch.randn(10_000, 2, generator=generator, dtype=torch.float64)
    near_samples = time * train[:32] + 1e-4 * torch.randn(32, 2, generator=generator, dtype=torch.float64)
    far_queries = 3 * torch.randn(32, 2, generator=generator, dtype=torch.float64)
    queries = torch.cat([near_samples, far_queries]).to(dtype)
    field = EmpiricalField(train.to(dtype), schedule)

    naive = torch.exp(-torch.cdist(far_queries, time * train) ** 2 / (2 * 1e-8)).sum(dim=1)
    assert bool((naive == 0).any()), "linear, t=1-1e-4: a normalised exp does not underflow here, so this test checks nothing"

    weights = field.weights(queries, time)
    denoiser = field.denoiser(queries, time)
    sums = weights.sum(dim=1)
    tolerance = 16 * torch.finfo(dtype).eps

    assert bool(torch.isfinite(weights).all()), f"linear, t={time}, {dtype}: weights contain non-finite values"
    assert bool((weights >= 0).all()), f"linear, t={time}, {dtype}: weights contain negative values"
    assert float((sums - 1).abs().max()) <= tolerance, f"linear, t={time}, {dtype}: row sums range over [{float(sums.min())}, {float(sums.max())}]"
    assert bool(torch.isfinite(denoiser).all()), f"linear, t={time}, {dtype}: denoiser contains non-finite values"


@pytest.mark.parametrize("time", [0.3, 0.6, 0.9])
def test_float32_matches_float64(preset, time):
    """float32 agrees with float64 to 1e-4 relative on these O(1) inputs.

    The logits here are at most about 100 in magnitude, and each carries a rounding error of about
    |logit| * 1.2e-7 in float32, so weights and denoiser differ by about 1e-5 relative. The score and
    velocity add the cancellation in x - beta m, which the tolerance of 1e-3 covers.
    """
    name, schedule = preset
    field32 = EmpiricalField(_train(torch.float32), schedule)
    field64 = EmpiricalField(_train(torch.float64), schedule)
    tolerances = {"weights": 1e-4, "denoiser": 1e-4, "score": 1e-3, "velocity": 1e-3}

    for method, tolerance in tolerances.items():
        single = getattr(field32, method)(_queries(torch.float32), time)
        double = getattr(field64, method)(_queries(torch.float64), time)
        assert single.dtype == torch.float32, f"{name}, t={time}: {method} returned {single.dtype} for float32 input"
        for row in range(len(QUERIES)):
            error = _relative_error(single[row].double(), double[row])
            assert error <= tolerance, f"{name}, t={time}, query {row}: float32 {method} {single[row].tolist()} vs float64 {double[row].tolist()}, relative error {error:.1e}"


def test_chunked_evaluation_matches_single_chunk(preset):
    name, schedule = preset
    generator = torch.Generator().manual_seed(11)
    train = torch.randn(50, 3, generator=generator, dtype=torch.float64)
    queries = torch.randn(17, 3, generator=generator, dtype=torch.float64)
    one_per_chunk = EmpiricalField(train, schedule, max_chunk_elements=1)
    one_chunk = EmpiricalField(train, schedule)

    for method in ("weights", "denoiser", "velocity", "score", "log_density"):
        chunked = getattr(one_per_chunk, method)(queries, 0.7)
        whole = getattr(one_chunk, method)(queries, 0.7)
        # The matrix product may sum in another order for another number of rows, hence the atol.
        assert torch.allclose(chunked, whole, rtol=1e-13, atol=1e-14), f"{name}, t=0.7: {method} differs between chunk sizes 1 and 17"


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_outputs_on_train_device_and_dtype(device, dtype):
    field = EmpiricalField(_train(dtype).to(device), schedules.trigonometric())
    queries = _queries(dtype).to(device)

    for method in ("weights", "log_weights", "denoiser", "velocity", "score", "log_density"):
        for time in (0.5, torch.tensor([0.1, 0.5, 0.9], device=device)):
            output = getattr(field, method)(queries, time)
            assert output.device == queries.device, f"trigonometric, t={time}: {method} on {output.device}, train on {queries.device}"
            assert output.dtype == dtype, f"trigonometric, t={time}: {method} has dtype {output.dtype}, train has {dtype}"
            assert bool(torch.isfinite(output).all()), f"trigonometric, t={time}, {device}: {method} is not finite"


# Input validation.


@pytest.mark.parametrize(
    ("train", "error", "pattern"),
    [
        (TRAIN, TypeError, r"train must be a torch\.Tensor.*got list"),
        (torch.zeros(3), ValueError, r"train must be 2-D.*got shape \(3,\)"),
        (torch.zeros(1, 2, 2), ValueError, r"train must be 2-D.*got shape \(1, 2, 2\)"),
        (torch.zeros(0, 2), ValueError, r"train must have at least one sample.*got shape \(0, 2\)"),
        (torch.zeros(3, 0), ValueError, r"train must have .*d >= 1.*got shape \(3, 0\)"),
        (torch.zeros(3, 2, dtype=torch.int64), TypeError, r"train must have dtype .*got torch\.int64"),
        (torch.zeros(3, 2, dtype=torch.float16), TypeError, r"train must have dtype .*got torch\.float16"),
        (torch.tensor([[0.0, 1.0], [math.nan, 2.0]]), ValueError, r"train must contain only finite values.*\(1, 0\): nan"),
        (torch.tensor([[0.0, math.inf]]), ValueError, r"train must contain only finite values.*inf"),
    ],
    ids=["list", "1-D", "3-D", "no-samples", "no-dimensions", "int64", "float16", "nan", "inf"],
)
def test_constructor_rejects_bad_train(train, error, pattern):
    with pytest.raises(error, match=pattern):
        EmpiricalField(train, schedules.linear())


def test_constructor_rejects_bad_schedule():
    with pytest.raises(TypeError, match=r"schedule must be an interp\.schedules\.Schedule, got str"):
        EmpiricalField(_train(), "linear")


@pytest.mark.parametrize("value", [0, -5, 1.5, True])
def test_constructor_rejects_bad_chunk_size(value):
    with pytest.raises(ValueError, match=r"max_chunk_elements must be a positive integer"):
        EmpiricalField(_train(), schedules.linear(), max_chunk_elements=value)


BAD_QUERIES = [
    (QUERIES, TypeError, r"x must be a torch\.Tensor.*got list"),
    (torch.zeros(2, dtype=torch.float64), ValueError, r"x must be 2-D.*got shape \(2,\)"),
    (torch.zeros(1, 3, 2, dtype=torch.float64), ValueError, r"x must be 2-D.*got shape \(1, 3, 2\)"),
    (torch.zeros(4, 3, dtype=torch.float64), ValueError, r"x must have d = 2 columns.*got shape \(4, 3\)"),
    (torch.zeros(3, 2, dtype=torch.float32), TypeError, r"x must have the dtype of train \(torch\.float64\), got torch\.float32"),
    (torch.zeros(3, 2, dtype=torch.float64, device="meta"), ValueError, r"x must be on the device of train \(cpu\), got meta"),
    (torch.tensor([[0.0, math.nan]], dtype=torch.float64), ValueError, r"x must contain only finite values.*nan"),
    (torch.tensor([[-math.inf, 0.0]], dtype=torch.float64), ValueError, r"x must contain only finite values.*inf"),
]


@pytest.mark.parametrize("method", ["weights", "denoiser", "velocity", "log_density"])
@pytest.mark.parametrize(("x", "error", "pattern"), BAD_QUERIES, ids=["list", "1-D", "3-D", "wrong-d", "dtype", "device", "nan", "inf"])
def test_fields_reject_bad_x(method, x, error, pattern):
    field = EmpiricalField(_train(), schedules.linear())
    with pytest.raises(error, match=pattern):
        getattr(field, method)(x, 0.5)


BAD_TIMES = [
    ("0.5", TypeError, r"t must be a real number or a torch\.Tensor, got str"),
    (None, TypeError, r"t must be a real number or a torch\.Tensor, got NoneType"),
    (True, TypeError, r"t must be a real number or a torch\.Tensor, got bool"),
    ([0.5, 0.5, 0.5], TypeError, r"t must be a real number or a torch\.Tensor, got list"),
    (math.nan, ValueError, r"t must not be NaN, got nan"),
    (1.5, ValueError, r"t must lie in \[0, 1\], got 1\.5"),
    (-0.1, ValueError, r"t must lie in \[0, 1\], got -0\.1"),
    (torch.tensor([0.2, 1.5, 0.3]), ValueError, r"t must lie in \[0, 1\], got 1\.5 at index 1"),
    (torch.tensor([0.2, math.nan, 0.3]), ValueError, r"t must not be NaN, got nan at index 1"),
    (torch.full((3, 1), 0.5), ValueError, r"t must be 0-dim or have shape \(m,\) = \(3,\).*got shape \(3, 1\)"),
    (torch.full((4,), 0.5), ValueError, r"t must be 0-dim or have shape \(m,\) = \(3,\).*got shape \(4,\)"),
    (torch.tensor(True), TypeError, r"t must have a real floating or integer dtype, got torch\.bool"),
    (torch.tensor(0.5 + 0j), TypeError, r"t must have a real floating or integer dtype, got torch\.complex"),
]


@pytest.mark.parametrize("method", ["weights", "denoiser", "score", "log_density"])
@pytest.mark.parametrize(
    ("time", "error", "pattern"),
    BAD_TIMES,
    ids=["string", "none", "bool", "list", "nan", "above-one", "below-zero", "tensor-above-one", "tensor-nan", "shape-2-D", "shape-length", "bool-tensor", "complex-tensor"],
)
def test_fields_reject_bad_t(method, time, error, pattern):
    field = EmpiricalField(_train(), schedules.linear())
    with pytest.raises(error, match=pattern):
        getattr(field, method)(_queries(), time)


def test_weights_reject_overflowing_distances():
    field = EmpiricalField(_train(), schedules.linear())
    huge = torch.full((1, 2), 1e200, dtype=torch.float64)

    with pytest.raises(ValueError, match=r"too large for squared distances in torch\.float64"):
        field.weights(huge, 0.5)


def test_public_export():
    import interp

    assert "EmpiricalField" in interp.__all__, "interp.__all__ does not list EmpiricalField"
    assert interp.EmpiricalField is EmpiricalField, "interp.EmpiricalField is not interp.fields.EmpiricalField"

"""Tests of interp.samplers against the exact flow of a one-point training set."""

import math

import pytest
import torch

from interp import sample_ode, sample_sde, schedules
from interp.samplers import METHODS

DTYPE = torch.float64
X1 = torch.tensor([[1.5, -0.5, 2.0]], dtype=DTYPE)
X0 = torch.tensor([[0.3, 1.0, -0.7], [-1.2, 0.4, 0.9]], dtype=DTYPE)


def one_point_velocity(schedule, x1=X1):
    """Velocity of a one-point training set: b(x, t) = (sigma'/sigma)(x - beta x1) + beta' x1."""

    def velocity(x, t):
        return schedule.dsigma(t) / schedule.sigma(t) * (x - schedule.beta(t) * x1) + schedule.dbeta(t) * x1

    return velocity


def one_point_score(schedule, x1=X1):
    """Score of a one-point training set: s(x, t) = -(x - beta x1) / sigma^2."""

    def score(x, t):
        return -(x - schedule.beta(t) * x1) / schedule.sigma(t) ** 2

    return score


def exact_one_point_flow(schedule, x0, t, x1=X1):
    """Exact ODE solution x(t) = beta(t) x1 + sigma(t)/sigma(0) (x0 - beta(0) x1)."""
    return schedule.beta(t) * x1 + schedule.sigma(t) / schedule.sigma(0.0) * (x0 - schedule.beta(0.0) * x1)


def observed_order(step_counts, errors):
    """Least-squares slope of log(error) against log(h) with h proportional to 1 / K."""
    log_h = torch.tensor([-math.log(k) for k in step_counts], dtype=DTYPE)
    log_error = torch.tensor([math.log(e) for e in errors], dtype=DTYPE)
    centred_h = log_h - log_h.mean()
    return float((centred_h * (log_error - log_error.mean())).sum() / (centred_h**2).sum())


@pytest.mark.parametrize("method, order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_ode_order_on_trigonometric_schedule(method, order):
    """The observed order on [0, 0.9] matches the method's formal order.

    At K = 16 to 128 the errors are still slightly pre-asymptotic: the slopes measured in float64
    are about 1.05, 2.13 and 4.12. A tolerance of 0.25 accepts that and rejects any method that
    loses a full order, such as RK4 with a wrong coefficient.
    """
    schedule = schedules.trigonometric()
    velocity = one_point_velocity(schedule)
    end = 0.9
    exact = exact_one_point_flow(schedule, X0, end)

    step_counts = [16, 32, 64, 128]
    errors = []
    for steps in step_counts:
        grid = torch.linspace(0, end, steps + 1, dtype=DTYPE)
        result = sample_ode(velocity, X0, None, method=method, time_grid=grid)
        errors.append((result - exact).abs().max().item())

    for steps, error in zip(step_counts, errors):
        assert error > 1e-13, f"{method} with K = {steps}: error {error} is at round-off, so the order is not measurable"
    slope = observed_order(step_counts, errors)
    assert abs(slope - order) < 0.25, f"{method}: observed order {slope:.3f}, expected {order}, errors {errors}"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("steps", [1, 3, 10, 20])
def test_ode_linear_schedule_lands_on_training_point(method, steps):
    """For rectified flow the last step is Euler, which lands exactly on the denoiser x1."""
    velocity = one_point_velocity(schedules.linear())
    result = sample_ode(velocity, X0, steps, method=method)
    error = (result - X1).abs().max().item()
    assert error < 1e-14, f"{method} with K = {steps}: endpoint is {error} away from x1"


@pytest.mark.parametrize("method", METHODS)
def test_ode_trigonometric_endpoint_error_shrinks(method):
    """On the trigonometric schedule the endpoint error is O(h^2) from the last Euler step."""
    velocity = one_point_velocity(schedules.trigonometric())
    step_counts = [10, 20, 40, 80]
    errors = [(sample_ode(velocity, X0, steps, method=method) - X1).abs().max().item() for steps in step_counts]

    for (coarse, fine), (coarse_error, fine_error) in zip(
        zip(step_counts, step_counts[1:]), zip(errors, errors[1:])
    ):
        assert fine_error < coarse_error / 3, (
            f"{method}: endpoint error {fine_error} at K = {fine} is not below a third of {coarse_error} at K = {coarse}"
        )


def test_euler_endpoint_matches_curvature_term():
    """Euler's endpoint deviation tends to (pi^2 / 8) h^2 x1, the beta-curvature term of the last step.

    With beta = sin(pi t / 2), beta(1 - h) + h beta'(1 - h) - beta(1) = -beta''(1) h^2 / 2 + O(h^3)
    and beta''(1) = -pi^2 / 4. The contraction factor 1 + h sigma'/sigma at the last step is O(h^2),
    so the deviation accumulated before that step is damped away.
    """
    velocity = one_point_velocity(schedules.trigonometric())
    steps = 80
    h = 1 / steps
    deviation = sample_ode(velocity, X0, steps, method="euler") - X1
    predicted = (math.pi**2 / 8) * h**2 * X1.expand_as(deviation)

    relative = ((deviation - predicted).abs().max() / predicted.abs().max()).item()
    assert relative < 0.05, f"euler with K = {steps}: deviation {deviation.tolist()}, predicted {predicted.tolist()}"


@pytest.mark.parametrize("method", METHODS)
def test_ode_uniform_grid_stays_on_grid_times(method):
    """Stages fall at t_k, t_k + h/2 or t_k + h of the uniform grid, and never at t = 1."""
    times = []

    def recording_velocity(x, t):
        times.append(t)
        return torch.zeros_like(x)

    steps = 4
    sample_ode(recording_velocity, X0, steps, method=method)
    allowed = {k / (2 * steps) for k in range(2 * steps)}
    for t in times:
        assert t in allowed, f"{method} with K = {steps}: stage at unexpected time {t}"
    assert max(times) < 1.0, f"{method} with K = {steps}: evaluated at t = {max(times)}"


def singular_velocity(x, t):
    if t >= 1.0:
        raise AssertionError(f"velocity evaluated at t = {t}")
    return -x


def singular_score(x, t):
    if t >= 1.0:
        raise AssertionError(f"score evaluated at t = {t}")
    return -x


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("steps", [1, 2, 5, 64])
def test_ode_never_evaluates_at_data_end(method, steps):
    result = sample_ode(singular_velocity, X0, steps, method=method)
    assert result.shape == X0.shape, f"{method} with K = {steps}: shape {tuple(result.shape)}"


@pytest.mark.parametrize("steps", [1, 2, 5, 64])
def test_sde_never_evaluates_at_data_end(steps):
    generator = torch.Generator().manual_seed(0)
    result = sample_sde(singular_velocity, singular_score, X0, steps, diffusion=0.5, generator=generator)
    assert result.shape == X0.shape, f"sde with K = {steps}: shape {tuple(result.shape)}"


@pytest.mark.parametrize("method", METHODS)
def test_ode_return_path_shape_and_ends(method):
    velocity = one_point_velocity(schedules.linear())
    steps = 5
    path = sample_ode(velocity, X0, steps, method=method, return_path=True)
    final = sample_ode(velocity, X0, steps, method=method)
    assert path.shape == (steps + 1, *X0.shape), f"{method}: path shape {tuple(path.shape)}"
    assert torch.equal(path[0], X0), f"{method}: path does not start at x0"
    assert torch.equal(path[-1], final), f"{method}: path does not end at the final state"


def test_ode_keeps_dtype():
    x0 = X0.to(torch.float32)
    result = sample_ode(lambda x, t: -x, x0, 4, method="rk4")
    assert result.dtype == torch.float32, f"dtype {result.dtype}"


def test_ode_time_grid_list_or_tensor():
    velocity = one_point_velocity(schedules.trigonometric())
    grid = [0.0, 0.2, 0.5, 0.7]
    from_list = sample_ode(velocity, X0, None, method="heun", time_grid=grid)
    from_tensor = sample_ode(velocity, X0, 3, method="heun", time_grid=torch.tensor(grid, dtype=DTYPE))
    assert torch.equal(from_list, from_tensor), f"list grid gave {from_list}, tensor grid gave {from_tensor}"


def test_sde_without_diffusion_reproduces_euler():
    """With eps = 0 the score is never called and the result is the Euler ODE solution."""
    schedule = schedules.trigonometric()
    velocity = one_point_velocity(schedule)

    def forbidden_score(x, t):
        raise AssertionError(f"score evaluated at t = {t} with zero diffusion")

    for steps in (1, 7, 30):
        euler = sample_ode(velocity, X0, steps, method="euler")
        constant = sample_sde(velocity, forbidden_score, X0, steps, diffusion=0.0)
        from_callable = sample_sde(velocity, forbidden_score, X0, steps, diffusion=lambda t: 0.0)
        assert torch.equal(constant, euler), f"K = {steps}: constant eps = 0 differs from Euler by {constant - euler}"
        assert torch.equal(from_callable, euler), f"K = {steps}: callable eps = 0 differs from Euler"


def test_sde_reproducible_with_seeded_generator():
    schedule = schedules.latent_noise(1)
    velocity, score = one_point_velocity(schedule), one_point_score(schedule)
    first = sample_sde(velocity, score, X0, 10, 0.5, generator=torch.Generator().manual_seed(7))
    second = sample_sde(velocity, score, X0, 10, 0.5, generator=torch.Generator().manual_seed(7))
    other = sample_sde(velocity, score, X0, 10, 0.5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, second), "same seed gave different samples"
    assert not torch.equal(first, other), "different seeds gave the same samples"


def test_sde_return_path_shape():
    schedule = schedules.latent_noise(1)
    velocity, score = one_point_velocity(schedule), one_point_score(schedule)
    path = sample_sde(velocity, score, X0, 6, 0.5, generator=torch.Generator().manual_seed(0), return_path=True)
    assert path.shape == (7, *X0.shape), f"path shape {tuple(path.shape)}"
    assert torch.equal(path[0], X0), "path does not start at x0"


def test_sde_latent_noise_endpoint_gaussian():
    """With latent noise a and eps = a/2, Euler-Maruyama ends at x1 + N(0, a h I).

    With beta = t, y_k = X_k - t_k x1 obeys y_{k+1} = (1 + h sigma'/sigma - h eps/sigma^2)(t_k) y_k
    + sqrt(2 eps h) xi_k exactly, because beta(t_k) + h beta' = beta(t_{k+1}). At t = 1 - h,
    sigma^2 = h (h + a - a h) and sigma sigma' = -h + a (2h - 1)/2, so
    h (sigma sigma' - eps) / sigma^2 = (-h + a h - a) / (h + a - a h) = -1 and the factor is 0.
    The last step therefore multiplies y_{K-1} by 0 and leaves y_K = sqrt(a h) xi_{K-1}.
    """
    a = 1.0
    schedule = schedules.latent_noise(a)
    velocity, score = one_point_velocity(schedule), one_point_score(schedule)
    steps, count = 20, 20000
    h = 1 / steps
    x0 = torch.randn((count, X1.shape[1]), generator=torch.Generator().manual_seed(1), dtype=DTYPE)

    result = sample_sde(velocity, score, x0, steps, a / 2, generator=torch.Generator().manual_seed(2))
    deviation = result - X1

    variance = a * h
    mean_error = deviation.mean(dim=0).abs().max().item()
    mean_tolerance = 5 * math.sqrt(variance / count)
    assert mean_error < mean_tolerance, f"K = {steps}: mean deviation {mean_error} exceeds {mean_tolerance}"

    sample_variance = deviation.var(dim=0)
    variance_tolerance = 5 * variance * math.sqrt(2 / (count - 1))
    for coordinate, value in enumerate(sample_variance.tolist()):
        assert abs(value - variance) < variance_tolerance, (
            f"K = {steps}: variance {value} of coordinate {coordinate}, expected a h = {variance}"
        )


def test_sde_negative_diffusion_from_callable_raises():
    velocity = one_point_velocity(schedules.latent_noise(1))

    def planted(t):
        return -0.25 if t >= 0.5 else 0.1

    with pytest.raises(ValueError, match=r"diffusion .*-0\.25 at t = 0\.5"):
        sample_sde(velocity, one_point_score(schedules.latent_noise(1)), X0, 4, planted)


@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf])
def test_sde_invalid_constant_diffusion_raises(value):
    with pytest.raises(ValueError, match="diffusion"):
        sample_sde(lambda x, t: x, lambda x, t: x, X0, 4, value)


def test_sde_nonfinite_diffusion_from_callable_raises():
    with pytest.raises(ValueError, match=r"diffusion .*nan at t = 0\.0"):
        sample_sde(lambda x, t: x, lambda x, t: x, X0, 4, lambda t: math.nan)


def test_sde_diffusion_of_wrong_type_raises():
    with pytest.raises(TypeError, match="diffusion"):
        sample_sde(lambda x, t: x, lambda x, t: x, X0, 4, "0.1")


def test_sde_generator_of_wrong_type_raises():
    with pytest.raises(TypeError, match="generator"):
        sample_sde(lambda x, t: x, lambda x, t: x, X0, 4, 0.1, generator=0)


@pytest.mark.parametrize("method", METHODS)
def test_ode_field_wrong_shape_raises(method):
    with pytest.raises(ValueError, match=r"velocity returned shape \(2, 2\) at step 0, t = 0\.0"):
        sample_ode(lambda x, t: x[:, :2], X0, 3, method=method)


@pytest.mark.parametrize("method, step", [("euler", 2), ("heun", 1), ("rk4", 1)])
def test_ode_field_nonfinite_raises(method, step):
    """On the grid of 4 steps, t = 0.5 is first reached by Euler at step 2 and by the last stage of step 1 otherwise."""

    def velocity(x, t):
        return x * math.nan if t >= 0.5 else x

    with pytest.raises(FloatingPointError, match=rf"velocity returned .*non-finite .*step {step}, t = 0\.5"):
        sample_ode(velocity, X0, 4, method=method)


def test_ode_field_not_tensor_raises():
    with pytest.raises(TypeError, match="velocity must return a torch.Tensor"):
        sample_ode(lambda x, t: 0.0, X0, 3)


def test_sde_score_nonfinite_raises():
    def score(x, t):
        return torch.full_like(x, math.inf)

    with pytest.raises(FloatingPointError, match=r"score returned .*step 0, t = 0\.0"):
        sample_sde(lambda x, t: x, score, X0, 3, 0.1)


def test_ode_velocity_not_callable_raises():
    with pytest.raises(TypeError, match="velocity must be a callable"):
        sample_ode(1.0, X0, 3)


def test_sde_score_not_callable_raises():
    with pytest.raises(TypeError, match="score must be a callable"):
        sample_sde(lambda x, t: x, None, X0, 3, 0.1)


@pytest.mark.parametrize(
    "x0, error, pattern",
    [
        ([[0.0, 1.0]], TypeError, "x0 must be a torch.Tensor"),
        (torch.zeros((2, 3), dtype=torch.int64), TypeError, "x0 must have a floating dtype, got torch.int64"),
        (torch.zeros(3, dtype=DTYPE), ValueError, r"x0 must have shape \(m, d\), got shape \(3,\)"),
        (torch.zeros((2, 3, 1), dtype=DTYPE), ValueError, r"x0 must have shape \(m, d\)"),
        (torch.tensor([[0.0, math.nan]], dtype=DTYPE), ValueError, "x0 must be finite"),
    ],
)
def test_ode_invalid_x0_raises(x0, error, pattern):
    with pytest.raises(error, match=pattern):
        sample_ode(lambda x, t: x, x0, 3)


@pytest.mark.parametrize(
    "steps, error, pattern",
    [
        (0, ValueError, "steps must be at least 1, got 0"),
        (-3, ValueError, "steps must be at least 1, got -3"),
        (2.0, TypeError, "steps must be an int, got float"),
        (True, TypeError, "steps must be an int, got bool"),
        (None, ValueError, "steps must be given when time_grid is None"),
    ],
)
def test_ode_invalid_steps_raises(steps, error, pattern):
    with pytest.raises(error, match=pattern):
        sample_ode(lambda x, t: x, X0, steps)


def test_ode_unknown_method_raises():
    with pytest.raises(ValueError, match=r"method must be one of euler, heun, rk4, got 'midpoint'"):
        sample_ode(lambda x, t: x, X0, 3, method="midpoint")


@pytest.mark.parametrize(
    "grid, error, pattern",
    [
        (torch.zeros((2, 2)), ValueError, r"time_grid must be 1-D, got shape \(2, 2\)"),
        ([0.5], ValueError, "time_grid must have at least 2 points"),
        ([0.0, 0.5, 0.5, 1.0], ValueError, "time_grid must be strictly increasing, got 0.5 followed by 0.5"),
        ([0.0, 0.6, 0.4], ValueError, "time_grid must be strictly increasing"),
        ([-0.1, 0.5], ValueError, r"time_grid must lie in \[0, 1\]"),
        ([0.0, 1.5], ValueError, r"time_grid must lie in \[0, 1\]"),
        ([0.0, math.nan], ValueError, "time_grid must be finite"),
        ("0 1", TypeError, "time_grid must be a 1-D tensor or a sequence"),
        ([0.0, "a"], TypeError, "time_grid must contain real numbers"),
    ],
)
def test_ode_invalid_time_grid_raises(grid, error, pattern):
    with pytest.raises(error, match=pattern):
        sample_ode(lambda x, t: x, X0, None, time_grid=grid)


def test_ode_steps_disagreeing_with_time_grid_raises():
    with pytest.raises(ValueError, match=r"steps must be None or len\(time_grid\) - 1 = 2 .*got 5"):
        sample_ode(lambda x, t: x, X0, 5, time_grid=[0.0, 0.5, 0.9])

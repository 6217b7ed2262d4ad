"""Tests of interp.data: shapes, dtypes, seeding, geometry of the shapes and input checks."""

import math

import pytest
import torch

from interp import data

SHAPES = {
    "two_moons": data.two_moons,
    "circles": data.circles,
    "spiral": data.spiral,
}
MEANS = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]


def generate(name, n, seed=0, dtype=torch.float64):
    """Call one of the data set functions with the arguments common to all of them."""
    if name == "gaussian_mixture":
        return data.gaussian_mixture(n, MEANS, 0.5, seed=seed, dtype=dtype)
    return SHAPES[name](n, noise=0.05, seed=seed, dtype=dtype)


NAMES = ["gaussian_mixture", *SHAPES]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_dataset_shapes_and_dtypes(name, dtype):
    points, labels = generate(name, 101, dtype=dtype)
    assert points.shape == (101, 2), f"{name}: points shape {tuple(points.shape)}"
    assert points.dtype == dtype, f"{name}: points dtype {points.dtype}, expected {dtype}"
    assert labels.shape == (101,), f"{name}: labels shape {tuple(labels.shape)}"
    assert labels.dtype == torch.int64, f"{name}: labels dtype {labels.dtype}"
    assert bool(torch.isfinite(points).all()), f"{name}: non-finite points"


@pytest.mark.parametrize("name", NAMES)
def test_dataset_same_seed_same_data(name):
    first_points, first_labels = generate(name, 50, seed=4)
    second_points, second_labels = generate(name, 50, seed=4)
    assert torch.equal(first_points, second_points), f"{name}: seed 4 gave different points"
    assert torch.equal(first_labels, second_labels), f"{name}: seed 4 gave different labels"


@pytest.mark.parametrize("name", NAMES)
def test_dataset_different_seed_different_data(name):
    first_points, _ = generate(name, 50, seed=4)
    second_points, _ = generate(name, 50, seed=5)
    assert not torch.equal(first_points, second_points), f"{name}: seeds 4 and 5 gave the same points"


@pytest.mark.parametrize("name", NAMES)
def test_dataset_leaves_global_rng_alone(name):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    generate(name, 20)
    after = torch.rand(3)
    assert torch.equal(after, expected), f"{name}: the global random state changed"


def test_gaussian_mixture_component_statistics():
    """Per-component sample means and standard deviations match the mixture parameters."""
    count, std = 30000, 0.5
    points, labels = data.gaussian_mixture(count, MEANS, std, seed=1)
    means = torch.tensor(MEANS, dtype=torch.float64)

    for component in range(len(MEANS)):
        members = points[labels == component]
        share = members.shape[0] / count
        share_tolerance = 5 * math.sqrt((1 / 3) * (2 / 3) / count)
        assert abs(share - 1 / 3) < share_tolerance, f"component {component}: share {share}, expected 1/3"

        mean_error = (members.mean(dim=0) - means[component]).abs().max().item()
        mean_tolerance = 5 * std / math.sqrt(members.shape[0])
        assert mean_error < mean_tolerance, f"component {component}: mean error {mean_error} > {mean_tolerance}"

        for axis, value in enumerate(members.std(dim=0).tolist()):
            std_tolerance = 5 * std / math.sqrt(2 * (members.shape[0] - 1))
            assert abs(value - std) < std_tolerance, f"component {component}, axis {axis}: std {value}, expected {std}"


def test_gaussian_mixture_zero_std_returns_means():
    points, labels = data.gaussian_mixture(20, MEANS, 0.0, seed=3)
    expected = torch.tensor(MEANS, dtype=torch.float64)[labels]
    assert torch.equal(points, expected), "std = 0 should return copies of the means"


@pytest.mark.parametrize("k, d", [(1, 3), (5, 1), (20, 2), (10, 64)])
def test_separated_means_respect_separation(k, d):
    separation = 2.5
    means = data.separated_means(k, d, separation, seed=0)
    assert means.shape == (k, d), f"k = {k}, d = {d}: shape {tuple(means.shape)}"
    if k > 1:
        distances = torch.cdist(means, means) + torch.diag(torch.full((k,), math.inf, dtype=torch.float64))
        closest = distances.min().item()
        assert closest >= separation * (1 - 1e-12), f"k = {k}, d = {d}: closest pair {closest} < {separation}"


def test_separated_means_seeded():
    first = data.separated_means(6, 3, 1.0, seed=9)
    second = data.separated_means(6, 3, 1.0, seed=9)
    other = data.separated_means(6, 3, 1.0, seed=10)
    assert torch.equal(first, second), "seed 9 gave different means"
    assert not torch.equal(first, other), "seeds 9 and 10 gave the same means"


def test_two_moons_without_noise_lies_on_half_circles():
    points, labels = data.two_moons(200, noise=0.0, seed=0)
    upper, lower = points[labels == 0], points[labels == 1]
    upper_radius = torch.linalg.vector_norm(upper, dim=1)
    lower_radius = torch.linalg.vector_norm(lower - torch.tensor([1.0, 0.5], dtype=torch.float64), dim=1)
    assert torch.allclose(upper_radius, torch.ones_like(upper_radius)), "upper moon off the unit circle"
    assert bool((upper[:, 1] >= 0).all()), "upper moon below the x axis"
    assert torch.allclose(lower_radius, torch.ones_like(lower_radius)), "lower moon off its circle"
    assert bool((lower[:, 1] <= 0.5).all()), "lower moon above y = 1/2"
    assert abs(upper.shape[0] - lower.shape[0]) <= 1, f"counts {upper.shape[0]} and {lower.shape[0]}"


def test_circles_without_noise_have_requested_radii():
    factor = 0.3
    points, labels = data.circles(101, noise=0.0, factor=factor, seed=0)
    radius = torch.linalg.vector_norm(points, dim=1)
    expected = torch.where(labels == 0, torch.tensor(1.0, dtype=torch.float64), torch.tensor(factor, dtype=torch.float64))
    assert torch.allclose(radius, expected, rtol=0, atol=1e-15), f"radii {radius[:5].tolist()}"
    counts = torch.bincount(labels).tolist()
    assert abs(counts[0] - counts[1]) <= 1, f"counts {counts}"


def test_spiral_arms_are_point_reflections():
    """Without noise, a point at radius r on arm 1 has angle 2 pi turns r + pi."""
    turns = 1.5
    points, labels = data.spiral(100, noise=0.0, turns=turns, seed=0)
    radius = torch.linalg.vector_norm(points, dim=1)
    angle = 2 * math.pi * turns * radius + math.pi * labels.to(torch.float64)
    expected = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    assert torch.allclose(points, expected, atol=1e-12), "spiral points off the arms"
    assert bool((radius <= 1).all()), f"maximum radius {radius.max().item()}"


def test_digits_full_set():
    pytest.importorskip("sklearn")
    images, labels = data.digits()
    assert images.shape == (data.DIGITS_COUNT, 64), f"images shape {tuple(images.shape)}"
    assert labels.shape == (data.DIGITS_COUNT,), f"labels shape {tuple(labels.shape)}"
    assert images.dtype == torch.float64, f"dtype {images.dtype}"
    assert images.min().item() == 0.0, f"minimum pixel {images.min().item()}"
    assert images.max().item() == 1.0, f"maximum pixel {images.max().item()}"
    assert sorted(labels.unique().tolist()) == list(range(10)), f"labels {labels.unique().tolist()}"


def test_digits_pixels_are_sixteenths():
    pytest.importorskip("sklearn")
    images, _ = data.digits()
    scaled = images * 16
    assert torch.equal(scaled, scaled.round()), "pixels are not integer multiples of 1/16"


def test_digits_subset_size_and_no_repeats():
    pytest.importorskip("sklearn")
    full_images, full_labels = data.digits()
    images, labels = data.digits(300, seed=2, dtype=torch.float32)
    assert images.shape == (300, 64), f"subset shape {tuple(images.shape)}"
    assert images.dtype == torch.float32, f"subset dtype {images.dtype}"

    # Match each subset image to its first exact copy in the full set, then compare labels.
    matches = (images.to(torch.float64)[:, None, :] == full_images[None, :, :]).all(dim=2)
    assert bool(matches.any(dim=1).all()), "a subset image is not in the full set"
    first_match = matches.to(torch.int64).argmax(dim=1)
    assert torch.equal(full_labels[first_match], labels), "subset labels do not belong to their images"

    unique_rows = torch.unique(images, dim=0).shape[0]
    full_unique_rows = torch.unique(full_images, dim=0).shape[0]
    # The full set has no repeated images, so 300 distinct rows mean that no image was drawn twice.
    assert full_unique_rows == data.DIGITS_COUNT, f"full set has {full_unique_rows} distinct images"
    assert unique_rows == 300, f"subset has {unique_rows} distinct images out of 300"


def test_digits_subset_seeded():
    pytest.importorskip("sklearn")
    first, _ = data.digits(50, seed=1)
    second, _ = data.digits(50, seed=1)
    other, _ = data.digits(50, seed=2)
    assert torch.equal(first, second), "seed 1 gave different subsets"
    assert not torch.equal(first, other), "seeds 1 and 2 gave the same subset"


@pytest.mark.parametrize(
    "n, error, pattern",
    [
        (0, ValueError, "n must be at least 1, got 0"),
        (1798, ValueError, "n must be at most 1797"),
        (10.0, TypeError, "n must be an int, got float"),
    ],
)
def test_digits_invalid_n_raises(n, error, pattern):
    with pytest.raises(error, match=pattern):
        data.digits(n)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "n, error, pattern",
    [
        (0, ValueError, "n must be at least 1, got 0"),
        (-5, ValueError, "n must be at least 1, got -5"),
        (2.5, TypeError, "n must be an int, got float"),
        (True, TypeError, "n must be an int, got bool"),
    ],
)
def test_dataset_invalid_n_raises(name, n, error, pattern):
    with pytest.raises(error, match=pattern):
        generate(name, n)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "seed, error, pattern",
    [
        (-1, ValueError, "seed must be at least 0, got -1"),
        (1.0, TypeError, "seed must be an int, got float"),
        (None, TypeError, "seed must be an int, got NoneType"),
    ],
)
def test_dataset_invalid_seed_raises(name, seed, error, pattern):
    with pytest.raises(error, match=pattern):
        generate(name, 10, seed=seed)


@pytest.mark.parametrize("name", NAMES)
def test_dataset_integer_dtype_raises(name):
    with pytest.raises(TypeError, match="dtype must be a floating torch.dtype"):
        generate(name, 10, dtype=torch.int64)


@pytest.mark.parametrize("function", list(SHAPES.values()), ids=list(SHAPES))
@pytest.mark.parametrize(
    "noise, error, pattern",
    [
        (-0.1, ValueError, "noise must be finite and >= 0.0, got -0.1"),
        (math.inf, ValueError, "noise must be finite"),
        ("0.1", TypeError, "noise must be a real number"),
    ],
)
def test_shape_invalid_noise_raises(function, noise, error, pattern):
    with pytest.raises(error, match=pattern):
        function(10, noise=noise)


@pytest.mark.parametrize(
    "std, error, pattern",
    [
        (-1.0, ValueError, "std must be finite and >= 0.0, got -1.0"),
        (math.nan, ValueError, "std must be finite"),
    ],
)
def test_gaussian_mixture_invalid_std_raises(std, error, pattern):
    with pytest.raises(error, match=pattern):
        data.gaussian_mixture(10, MEANS, std)


@pytest.mark.parametrize(
    "means, error, pattern",
    [
        ([0.0, 1.0], ValueError, r"means must have shape \(k, d\)"),
        ([], ValueError, r"means must have shape \(k, d\)"),
        ([[0.0, math.nan]], ValueError, "means must be finite"),
        ([[0.0, 1.0], [2.0]], TypeError, "means must be a"),
        ("ab", TypeError, "means must be a"),
    ],
)
def test_gaussian_mixture_invalid_means_raises(means, error, pattern):
    with pytest.raises(error, match=pattern):
        data.gaussian_mixture(10, means, 1.0)


@pytest.mark.parametrize("factor", [0.0, 1.0, 1.5])
def test_circles_invalid_factor_raises(factor):
    with pytest.raises(ValueError, match="factor must"):
        data.circles(10, factor=factor)


def test_spiral_invalid_turns_raises():
    with pytest.raises(ValueError, match="turns must be finite and > 0.0, got 0"):
        data.spiral(10, turns=0)


@pytest.mark.parametrize(
    "k, d, separation, error, pattern",
    [
        (0, 2, 1.0, ValueError, "k must be at least 1, got 0"),
        (3, 0, 1.0, ValueError, "d must be at least 1, got 0"),
        (3, 2, 0.0, ValueError, "separation must be finite and > 0.0, got 0.0"),
        (3, 2, -1.0, ValueError, "separation must be finite and > 0.0, got -1.0"),
    ],
)
def test_separated_means_invalid_input_raises(k, d, separation, error, pattern):
    with pytest.raises(error, match=pattern):
        data.separated_means(k, d, separation)

"""Tests of the attention (expanded-logit) form of the weights and the denoiser, against the direct form."""

import pytest
import torch

import interp
from interp import EmpiricalField, schedules
from interp.attention import TrainingKeys, attention_mean, attention_queries, expanded_logit_error


def _digits_and_queries(dtype):
    train = interp.data.digits(n=300, seed=0, dtype=torch.float64)[0]
    generator = torch.Generator().manual_seed(1)
    queries = train[:40] + 0.3 * torch.randn(40, 64, generator=generator, dtype=torch.float64)
    return train.to(dtype), queries.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("time", [0.0, 0.3, 0.7, 0.9, 0.99, 1 - 1e-6, 1.0])
def test_auto_denoiser_matches_direct(dtype, time):
    train, queries = _digits_and_queries(dtype)
    reference = EmpiricalField(train.double(), schedules.linear(), method="direct").denoiser(queries.double(), time)
    auto = EmpiricalField(train, schedules.linear(), method="auto").denoiser(queries, time).double()

    error = ((auto - reference).norm(dim=1) / reference.norm(dim=1)).max().item()
    tolerance = 1e-4 if dtype == torch.float32 else 1e-12
    assert error < tolerance, f"dtype {dtype}, t = {time}: relative error {error:.2e}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_auto_weights_match_direct_with_per_query_times(dtype):
    train, queries = _digits_and_queries(dtype)
    times = torch.linspace(0.0, 1.0, queries.shape[0], dtype=dtype)
    reference = EmpiricalField(train.double(), schedules.trigonometric(), method="direct").weights(queries.double(), times.double())
    auto = EmpiricalField(train, schedules.trigonometric()).weights(queries, times).double()

    error = (auto - reference).abs().max().item()
    tolerance = 1e-4 if dtype == torch.float32 else 1e-12
    assert error < tolerance, f"dtype {dtype}: largest weight error {error:.2e}"


def test_attention_mean_last_column_is_weighted_squared_norm():
    train, queries = _digits_and_queries(torch.float64)
    keys = TrainingKeys.from_train(train)
    beta = torch.full((queries.shape[0],), 0.6, dtype=torch.float64)
    sigma = torch.full((queries.shape[0],), 0.4, dtype=torch.float64)

    output = attention_mean(attention_queries(queries, beta, sigma, keys.centre), keys)
    weights = EmpiricalField(train, schedules.linear(), method="direct").weights(queries, 0.6)
    expected = weights @ (train - keys.centre).square().sum(dim=1)
    assert torch.allclose(output[:, -1], expected, rtol=1e-12), (output[:, -1] - expected).abs().max()


def test_attention_form_fails_where_auto_switches_to_direct():
    """Two training points 1e-3 apart, far from the origin, and sigma = 1e-3 in float32.

    The expanded logits differ by terms of size ||x|| R / sigma**2 = 1e10 while their difference is
    O(1), so float32 (eps 1.2e-7) gets the weights wrong; "auto" detects it and takes the direct form.
    """
    train = torch.tensor([[100.0, 0.0], [100.001, 0.0], [-100.0, 0.0]], dtype=torch.float32)
    query = torch.tensor([[100.0004, 0.0]], dtype=torch.float32) * (1 - 1e-3)
    time = 1 - 1e-3
    reference = EmpiricalField(train.double(), schedules.linear(), method="direct").weights(query.double(), time)

    attention_error = (EmpiricalField(train, schedules.linear(), method="attention").weights(query, time).double() - reference).abs().max()
    auto_weights = EmpiricalField(train, schedules.linear()).weights(query, time)
    direct_weights = EmpiricalField(train, schedules.linear(), method="direct").weights(query, time)
    auto_error = (auto_weights.double() - reference).abs().max()
    assert attention_error > 1e-2, f"expected the expanded form to fail here, error {attention_error:.2e}"
    assert torch.equal(auto_weights, direct_weights), "auto should fall back to the direct form"
    # The direct form in float32 is limited only by rounding beta x^(i), about 1e-5 of a 4e-4 gap.
    assert auto_error < 1e-3, f"auto weights off by {auto_error:.2e}"

    keys = TrainingKeys.from_train(train)
    beta = torch.tensor([time], dtype=torch.float32)
    sigma = torch.tensor([1 - time], dtype=torch.float32)
    estimate = expanded_logit_error(query, beta, sigma, keys).item()
    assert estimate > 1e-2, f"the error estimate {estimate:.2e} should flag this query"


def test_method_rejects_unknown_name():
    with pytest.raises(ValueError, match="method must be one of auto, attention, direct, got 'fast'"):
        EmpiricalField(torch.zeros(2, 2), schedules.linear(), method="fast")


def test_attention_method_at_data_end_uses_nearest_sample():
    train = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    field = EmpiricalField(train, schedules.linear(), method="attention")
    denoised = field.denoiser(torch.tensor([[0.9, 0.1]], dtype=torch.float64), 1.0)
    assert torch.equal(denoised, train[1:2]), denoised

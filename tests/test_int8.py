"""Weight-only int8: the rounding (models/quantize.py) and its products (streaming/int8_dense.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tiny_model
from hush.models.quantize import quantize_rows, round_weights_to_int8
from hush.streaming.int8_dense import Int8Dense


def test_rows_round_to_within_half_a_step():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(37, 19, generator=generator)
    weight[5] = 0.0  # an all-zero row stays zero
    q, scale = quantize_rows(weight)
    assert q.dtype == torch.int8 and scale.shape == (37,)
    assert int(q.abs().max()) == 127 and torch.all(q[5] == 0)
    error = (q.to(torch.float32) * scale[:, None] - weight).abs()
    assert torch.all(error <= scale[:, None] / 2 + 1e-7)


@pytest.mark.parametrize("rows", [1, 2, 3, 5])
@pytest.mark.parametrize("n_out", [1, 6, 8, 33])
def test_int8_dense_is_the_product_with_the_rounded_weights(rows, n_out):
    """The compiled GEMV (1-2 rows) and BLAS (3+ rows) both multiply by ``q * scale``."""
    rng = np.random.default_rng(rows * 100 + n_out)
    weight_t = torch.from_numpy(rng.standard_normal((21, n_out)).astype(np.float32))
    bias = torch.from_numpy(rng.standard_normal(n_out).astype(np.float32))
    dense = Int8Dense(weight_t, bias)
    q, scale = quantize_rows(weight_t.T)
    rounded_t = (q.to(torch.float32) * scale[:, None]).T.numpy().astype(np.float64)
    x = rng.standard_normal((rows, 42)).astype(np.float32)[:, ::2]  # not contiguous
    got = dense(x)
    want = x.astype(np.float64) @ rounded_t + bias.numpy()
    assert got.dtype == np.float32 and got.shape == (rows, n_out)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_rounded_model_keeps_biases_and_is_rounded_once():
    model = tiny_model("gru-deep-filter")
    rounded = round_weights_to_int8(model)
    assert rounded is not model and rounded.weights_precision == "int8"
    assert round_weights_to_int8(rounded) is rounded
    before, after = dict(model.named_parameters()), dict(rounded.named_parameters())
    for name, param in before.items():
        if "bias" in name:
            assert torch.equal(param, after[name])
        else:
            step = param.detach().abs().amax(dim=1, keepdim=True) / 127
            assert torch.all((param - after[name]).abs() <= step / 2 + 1e-7)
            assert not torch.equal(param, after[name])

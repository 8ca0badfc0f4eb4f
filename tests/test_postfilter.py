"""The inference post-filter: its curve, where it applies, and that weight files carry it."""

import json
import math

import numpy as np
import pytest
import torch

from conftest import speech_like, tiny_model
from hush.models import WeightFileError, load_weights, save_weights
from hush.models.postfilter import post_filter_factor
from hush.streaming import Enhancer


def test_factor_curve():
    gains = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0, 1.7])
    assert torch.equal(post_filter_factor(gains, 0.0), torch.ones(6))
    factor = post_filter_factor(gains, 0.1)
    # 1 where the model kept the bin (and above, where a deep filter lifted it); ~0 where it removed it
    assert factor[4] == pytest.approx(1.0) and factor[5] == pytest.approx(1.0)
    assert factor[0] < 1e-9
    assert factor[2] == pytest.approx(1.1 / (1 + 0.1 / math.sin(math.pi / 4) ** 2))
    assert torch.all(factor[1:] >= factor[:-1]) and torch.all(factor <= 1.0)
    assert torch.all(post_filter_factor(gains, 0.2) <= factor)  # stronger beta, deeper cut
    with pytest.raises(ValueError, match="beta"):
        post_filter_factor(gains, -0.1)


def test_plain_gains_are_post_filtered_then_floored():
    model = tiny_model("gru")
    spectra = torch.randn(1, 7, model.n_bins, dtype=torch.complex64)
    gains = torch.rand(1, 7, model.n_bins)
    expected = spectra * gains * post_filter_factor(gains, 0.1)
    assert torch.allclose(model.apply_output(spectra, gains, 0.0, 0.1), expected)
    floored = model.apply_output(spectra, gains, 0.25, 0.1)
    assert torch.all(floored.abs() >= 0.25 * spectra.abs() - 1e-6)


def test_deep_filter_output_is_post_filtered_on_its_effective_gain():
    model = tiny_model("gru-deep-filter")
    frames, history = 6, model.filter_history_frames
    spectra = torch.randn(1, history + frames, model.n_bins, dtype=torch.complex64)
    output = torch.rand(1, frames, model.output_size) * 0.6
    plain = model.apply_output(spectra, output)
    filtered = model.apply_output(spectra, output, 0.0, 0.05)
    effective = plain.abs() / spectra[:, history:].abs()
    assert torch.allclose(filtered, plain * post_filter_factor(effective, 0.05), atol=1e-6)
    lifted = effective > 1  # bins the filter raised above their input keep their level
    assert lifted.any() and torch.allclose(filtered[lifted], plain[lifted])


def test_weight_files_carry_beta_and_old_files_mean_off(tmp_path):
    model = tiny_model("gru-deep-filter")
    model.post_filter_beta = 0.05
    json_path = save_weights(model, tmp_path, "pf")
    loaded, meta = load_weights(json_path)
    assert meta.post_filter_beta == loaded.post_filter_beta == 0.05
    signal = speech_like(0.5, seed=1)
    with_pf = Enhancer(loaded).enhance(signal)

    raw = json.loads(json_path.read_text())
    del raw["post_filter_beta"]  # a file written before the field existed
    json_path.write_text(json.dumps(raw))
    old, meta = load_weights(json_path)
    assert meta.post_filter_beta == old.post_filter_beta == 0.0
    without = Enhancer(old).enhance(signal)
    # the post-filter only removes energy, and it does remove some here
    assert np.sum(with_pf**2) < np.sum(without**2)

    raw["post_filter_beta"] = 2.0
    json_path.write_text(json.dumps(raw))
    with pytest.raises(WeightFileError, match="post_filter_beta"):
        load_weights(json_path)

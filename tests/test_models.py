"""The networks: the step API equals the sequence API, shapes, state and cost figures."""

import math

import pytest
import torch

from conftest import TINY_ARCHS, tiny_model
from hush.models import FeatureConfig, RecurrentConfig, build_model


def _features(batch, frames, seed=0, width=161):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, width, generator=g) * 3 - 8


@pytest.mark.parametrize("kind", list(TINY_ARCHS))
def test_step_api_equals_sequence_api_one_stream(kind):
    model = tiny_model(kind)
    feats = _features(1, 60, width=model.input_size)
    with torch.inference_mode():
        seq_gains, seq_state = model(feats, model.initial_state(1))
        state = model.initial_state(1)
        steps = []
        for t in range(60):
            gains, state = model.step(feats[:, t], state)
            steps.append(gains)
    assert torch.allclose(torch.stack(steps, dim=1), seq_gains, atol=1e-6)
    assert torch.allclose(state, seq_state, atol=1e-6)


@pytest.mark.parametrize("kind", list(TINY_ARCHS))
def test_step_api_batch_of_independent_streams(kind):
    """A batch of streams stepped together equals each stream run alone."""
    model = tiny_model(kind)
    feats = _features(4, 40, seed=1, width=model.input_size)
    with torch.inference_mode():
        alone = [model(feats[i : i + 1], model.initial_state(1))[0] for i in range(4)]
        state = model.initial_state(4)
        steps = []
        for t in range(40):
            gains, state = model.step(feats[:, t], state)
            steps.append(gains)
    batched = torch.stack(steps, dim=1)
    for i in range(4):
        assert torch.allclose(batched[i : i + 1], alone[i], atol=1e-6)


@pytest.mark.parametrize("kind", list(TINY_ARCHS))
def test_gains_are_in_unit_interval_and_shapes(kind):
    model = tiny_model(kind)
    with torch.inference_mode():
        gains, state = model(_features(2, 10, width=model.input_size) * 5, model.initial_state(2))
    assert gains.shape == (2, 10, model.output_size)
    assert state.shape == (2, model.state_size)
    assert gains[..., :161].min() >= 0 and gains[..., :161].max() <= 1
    # a deep filter's coefficients (after the gains) are bounded by tanh
    assert torch.all(gains[..., 161:].abs() < 1)


def test_latency_accounts_for_lookahead():
    assert tiny_model("gru").latency_samples == 320
    assert tiny_model("dnn").latency_samples == 320
    # 2 future frames + 1 spliced-label frame = 3 extra hops
    assert tiny_model("dnn-lookahead").latency_samples == 320 + 3 * 160


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_recurrent_cells_and_sizes_are_configurable(cell):
    model = build_model(FeatureConfig(), RecurrentConfig(cell=cell, hidden_size=8, num_layers=3, dropout=0.5))
    assert model.rnn.num_layers == 3 and model.rnn.hidden_size == 8
    assert model.rnn.dropout == 0.5
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    assert model.rnn.weight_hh_l0.shape == (gates * 8, 8)
    assert model.macs_per_frame() > 0


def test_dropout_only_in_training():
    model = build_model(FeatureConfig(), RecurrentConfig(hidden_size=16, dropout=0.5))
    feats = _features(1, 5)
    model.train()
    a = model(feats, model.initial_state(1))[0]
    b = model(feats, model.initial_state(1))[0]
    assert not torch.allclose(a, b)
    model.eval()
    with torch.inference_mode():
        assert torch.equal(model(feats, model.initial_state(1))[0], model(feats, model.initial_state(1))[0])


def test_noise_floor_tracks_noise_and_rises_no_faster_than_its_limit():
    """The noise-aware DNN's floor: settles a fixed few dB below stationary noise (minimum
    statistics are biased low), follows a drop at once, and a rise at <= 5 dB/s."""
    from hush.models.spliced import track_noise_floor

    torch.manual_seed(0)
    frames, bins = 400, 161  # 4 s of 10 ms frames
    periodogram = torch.distributions.Exponential(1.0).sample((1, frames, bins))  # unit-power noise
    log_pow = torch.log(periodogram)
    alpha, rise = math.exp(-0.01 / 0.03), 5 * 0.01 * math.log(10) / 10

    def floor_db(lp: torch.Tensor) -> torch.Tensor:
        zeros = torch.zeros(1, bins)
        _, _, _, floor = track_noise_floor(lp, torch.zeros(1, 1), zeros, zeros, alpha, rise)
        return floor * 10 / math.log(10)

    settled = floor_db(log_pow)
    assert -10 < settled.mean() < -4
    louder = torch.cat([log_pow, log_pow + math.log(10)], dim=1)  # +10 dB
    after_1s = (floor_db(louder[:, : frames + 100]) - settled).mean()
    assert 4.0 < after_1s <= 5.0 + 1e-3
    assert abs((floor_db(louder) - settled).mean() - 10) < 1
    quieter = torch.cat([log_pow, log_pow - math.log(100)], dim=1)  # -20 dB
    assert (floor_db(quieter[:, : frames + 10]) - settled).mean() < -12


def test_deep_filter_is_gains_plus_a_complex_fir_over_past_frames():
    """``apply_output`` against the filter written out longhand, bin by bin and tap by tap."""
    model = tiny_model("gru-deep-filter")
    taps, low, history = model.filter_frames, model.filter_bins, model.filter_history_frames
    g = torch.Generator().manual_seed(2)
    frames = 7
    spectra = torch.complex(
        torch.randn(2, history + frames, 161, generator=g), torch.randn(2, history + frames, 161, generator=g)
    )
    with torch.inference_mode():
        output, _ = model(model.input_features(spectra), model.initial_state(2))
        enhanced = model.apply_output(spectra, output)
    coefs = output[..., 161:].reshape(2, frames, taps, low, 2)
    for b in range(2):
        for t in range(frames):
            current = spectra[b, history + t]
            expected = current * output[b, t, :161]
            for k in range(taps):
                c = torch.complex(coefs[b, t, k, :, 0], coefs[b, t, k, :, 1])
                expected[:low] += c * spectra[b, history + t - k, :low]
            torch.testing.assert_close(enhanced[b, t], expected, atol=1e-5, rtol=1e-5)


def test_deep_filter_head_starts_inert():
    """A deep filter added to a plain model changes nothing until it is trained."""
    plain = tiny_model("gru")
    arch = plain.arch.model_copy(
        update={"deep_filter_frames": 2, "deep_filter_bins": 50, "phase_features": True}
    )
    filtered = build_model(FeatureConfig(), arch).eval()
    torch.nn.init.normal_(filtered.filter_layer.weight)  # load_plain_weights must zero it
    filtered.load_plain_weights(plain.state_dict())
    spectra = torch.randn(1, 1 + 20, 161, dtype=torch.complex64)
    with torch.inference_mode():
        inputs = filtered.input_features(spectra)
        assert inputs.shape == (1, 20, 161 + 2 * 50)
        plain_out, _ = plain(plain.input_features(spectra[:, 1:]), plain.initial_state(1))
        filtered_out, _ = filtered(inputs, filtered.initial_state(1))
    torch.testing.assert_close(filtered_out[..., :161], plain_out, atol=1e-6, rtol=0)
    assert torch.equal(filtered_out[..., 161:], torch.zeros(1, 20, 2 * 2 * 50))
    torch.testing.assert_close(
        filtered.apply_output(spectra, filtered_out), spectra[:, 1:] * plain_out, atol=1e-6, rtol=0
    )
    with pytest.raises(ValueError, match="without a deep filter"):
        filtered.load_plain_weights(tiny_model("lstm").state_dict())


def test_phase_features_are_the_unit_phase_advance_of_the_filtered_bins():
    model = tiny_model("gru-deep-filter")
    # a pure tone at bin 5's centre frequency advances by pi * 5 radians per 10 ms hop
    spectra = torch.zeros(1, 2 + 4, 161, dtype=torch.complex64)
    spectra[0, :, 5] = torch.polar(torch.ones(6), torch.arange(6) * torch.pi * 5 + 0.3)
    inputs = model.input_features(spectra)
    cos, sin = inputs[..., 161 : 161 + 40], inputs[..., 161 + 40 :]
    torch.testing.assert_close(cos[0, :, 5], torch.full((4,), -1.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(sin[0, :, 5], torch.zeros(4), atol=1e-5, rtol=0)
    # silent bins (and the zero history before a signal) give zeros, not NaN
    assert torch.equal(cos[0, :, 6], torch.zeros(4)) and torch.isfinite(inputs).all()


def test_deep_filter_attenuation_limit_floors_each_bin_magnitude():
    model = tiny_model("gru-deep-filter")
    spectra = torch.randn(1, 2 + 30, 161, dtype=torch.complex64)
    with torch.inference_mode():
        output, _ = model(model.input_features(spectra), model.initial_state(1))
        free = model.apply_output(spectra, output)
        limited = model.apply_output(spectra, output, min_gain=0.5)
    floor = 0.5 * spectra[:, 2:].abs()
    assert torch.all(limited.abs() >= floor * (1 - 1e-5))
    # bins already above the floor are left alone, phase included
    above = free.abs() >= floor
    assert torch.equal(limited[above], free[above]) and not above.all()

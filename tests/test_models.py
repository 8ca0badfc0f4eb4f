import math

import pytest
import torch

from conftest import TINY_ARCHS, tiny_model
from hush.models import FeatureConfig, RecurrentConfig, build_model


def _features(batch, frames, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 161, generator=g) * 3 - 8


@pytest.mark.parametrize("kind", list(TINY_ARCHS))
def test_step_api_equals_sequence_api_one_stream(kind):
    model = tiny_model(kind)
    feats = _features(1, 60)
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
    feats = _features(4, 40, seed=1)
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
        gains, state = model(_features(2, 10) * 5, model.initial_state(2))
    assert gains.shape == (2, 10, 161)
    assert state.shape == (2, model.state_size)
    assert gains.min() >= 0 and gains.max() <= 1


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

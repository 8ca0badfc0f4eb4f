import numpy as np
import pytest
import torch

from hush.models.features import (
    FeatureConfig,
    analysis,
    frame_signal,
    overlap_add,
    running_mean_normalize,
    sqrt_hann_window,
    synthesis,
)


def test_window_pair_reconstructs_perfectly():
    cfg = FeatureConfig()
    window = sqrt_hann_window(cfg.win_length)
    x = torch.randn(2, 16000)
    frames = frame_signal(x, cfg)
    assert frames.shape == (2, 100, 320)
    y = overlap_add(synthesis(analysis(frames, window), window), cfg.hop_length)
    # y[0] is sample -hop: the first frame starts half a window before the signal
    assert torch.allclose(
        y[:, cfg.hop_length : cfg.hop_length + 16000 - cfg.hop_length], x[:, :-160], atol=1e-5
    )


def test_frames_are_causal():
    cfg = FeatureConfig()
    x = torch.arange(1, 481, dtype=torch.float32)[None]
    frames = frame_signal(x, cfg)
    assert torch.equal(frames[0, 0, :160], torch.zeros(160))
    assert torch.equal(frames[0, 0, 160:], x[0, :160])
    assert torch.equal(frames[0, 2], x[0, 160:480])


def test_running_mean_sequence_equals_frame_by_frame():
    feats = torch.randn(3, 50, 161)
    init = torch.full((3, 161), -6.0)
    seq, mean_seq = running_mean_normalize(feats, init, 0.99)
    mean = init
    steps = []
    for t in range(50):
        out, mean = running_mean_normalize(feats[:, t : t + 1], mean, 0.99)
        steps.append(out)
    assert torch.equal(torch.cat(steps, dim=1), seq)
    assert torch.equal(mean, mean_seq)


@pytest.mark.parametrize(
    "kwargs",
    [{"win_length": 300, "hop_length": 160}, {"win_length": 480, "hop_length": 160}, {"hop_length": 0}],
)
def test_invalid_feature_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        FeatureConfig(**kwargs)


def test_feature_config_derived_values():
    cfg = FeatureConfig()
    assert cfg.n_bins == 161
    assert np.isclose(cfg.norm_alpha, np.exp(-0.01))

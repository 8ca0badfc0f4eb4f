"""STFT analysis and synthesis, windows, log power and the running-mean normalisation."""

import numpy as np
import pytest
import torch

from hush.models.features import (
    FeatureConfig,
    analysis,
    analysis_window,
    frame_signal,
    overlap_add,
    running_mean_normalize,
    sqrt_hann_window,
    synthesis,
    synthesis_window,
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


@pytest.mark.parametrize("analysis_length", [320, 400, 480, 640])
def test_asymmetric_window_pair_reconstructs_perfectly(analysis_length):
    cfg = FeatureConfig(analysis_length=analysis_length)
    analysis_win, synthesis_win = analysis_window(cfg), synthesis_window(cfg)
    assert analysis_win.shape == (analysis_length,) and synthesis_win.shape == (cfg.win_length,)
    assert cfg.n_bins == analysis_length // 2 + 1
    x = torch.randn(2, 16000)
    frames = frame_signal(x, cfg)
    assert frames.shape == (2, 100, analysis_length)
    # frame t still ends at sample (t + 1) * hop: the longer window only reaches further back
    assert torch.equal(frames[0, 5, -160:], x[0, 5 * 160 : 6 * 160])
    spectra = analysis(frames, analysis_win)
    assert spectra.shape == (2, 100, cfg.n_bins)
    y = overlap_add(synthesis(spectra, synthesis_win), cfg.hop_length)
    assert torch.allclose(y[:, 160 : 160 + 16000 - 160], x[:, :-160], atol=1e-5)
    # the newest half window is weighted exactly as by the symmetric sqrt-Hann window
    assert torch.allclose(analysis_win[-160:], sqrt_hann_window(320)[-160:])


@pytest.mark.parametrize("rate", [24000, 32000, 44100, 48000])
def test_windows_scaled_to_a_higher_rate_reconstruct_and_keep_the_bin_frequencies(rate):
    """``at_rate`` scales every window by its duration: at 44.1 kHz the FFT is odd (1323)."""
    base = FeatureConfig(analysis_length=480)
    cfg = base.at_rate(rate)
    scale = rate // 100
    assert (cfg.hop_length, cfg.win_length, cfg.frame_length) == (scale, 2 * scale, 3 * scale)
    assert cfg.sample_rate / cfg.frame_length == base.sample_rate / base.frame_length  # 33.3 Hz bins
    assert cfg.norm_alpha == base.norm_alpha
    x = torch.randn(1, rate // 2)
    spectra = analysis(frame_signal(x, cfg), analysis_window(cfg))
    y = overlap_add(synthesis(spectra, synthesis_window(cfg), cfg.frame_length), cfg.hop_length)
    n = x.shape[1] - cfg.hop_length
    assert torch.allclose(y[:, cfg.hop_length : cfg.hop_length + n], x[:, :n], atol=1e-5)
    with pytest.raises(ValueError):
        base.at_rate(22050)  # 10 ms is 220.5 samples
    with pytest.raises(ValueError):
        base.at_rate(8000)


def test_asymmetric_window_resolves_what_the_short_one_cannot():
    """Two tones 40 Hz apart: one peak in a 20 ms window's spectrum, two in a 40 ms one's."""
    t = torch.arange(16000) / 16000
    x = (torch.sin(2 * torch.pi * 1000 * t) + torch.sin(2 * torch.pi * 1040 * t))[None]

    def peaks(cfg: FeatureConfig) -> int:
        power = analysis(frame_signal(x, cfg), analysis_window(cfg))[0, 50].abs() ** 2
        band = power[int(900 / (8000 / (cfg.n_bins - 1))) : int(1150 / (8000 / (cfg.n_bins - 1)))]
        local = (band[1:-1] > band[:-2]) & (band[1:-1] > band[2:]) & (band[1:-1] > 0.1 * band.max())
        return int(local.sum())

    assert peaks(FeatureConfig()) == 1
    assert peaks(FeatureConfig(analysis_length=640)) == 2


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


def test_blocked_running_mean_equals_the_recurrence_to_rounding():
    """Training's blocked form: across block borders and over a minute of frames it stays
    within float rounding of the frame-by-frame recurrence, and gradients flow through it."""
    feats = (torch.randn(2, 6000, 161) * 3 - 10).requires_grad_()
    init = torch.full((2, 161), -6.0)
    exact, exact_mean = running_mean_normalize(feats, init, 0.99005)
    blocked, blocked_mean = running_mean_normalize(feats, init, 0.99005, blocked=True)
    assert (blocked - exact).abs().max() < 1e-4 and (blocked_mean - exact_mean).abs().max() < 1e-4
    short = running_mean_normalize(feats[:, :70], init, 0.9, blocked=True)[0]  # 64 + 6 frames
    assert torch.allclose(short, running_mean_normalize(feats[:, :70], init, 0.9)[0], atol=1e-5)
    (grad,) = torch.autograd.grad(blocked.sum(), feats)
    (exact_grad,) = torch.autograd.grad(exact.sum(), feats)
    assert torch.allclose(grad, exact_grad, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"win_length": 300, "hop_length": 160},
        {"win_length": 480, "hop_length": 160},
        {"hop_length": 0},
        {"analysis_length": 240},
    ],
)
def test_invalid_feature_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        FeatureConfig(**kwargs)


def test_feature_config_derived_values():
    cfg = FeatureConfig()
    assert cfg.n_bins == 161
    assert np.isclose(cfg.norm_alpha, np.exp(-0.01))

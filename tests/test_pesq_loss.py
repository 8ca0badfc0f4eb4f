"""The differentiable PESQ model that trainer's loss.pesq_weight adds."""

import numpy as np
import pytest
import torch
from pesq import pesq

from conftest import speech_like
from hush.trainer.config import load_config
from hush.trainer.pesq_loss import PesqDisturbanceLoss


def _pairs(snrs_db: list[float], seconds: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``[len(snrs), S]`` clean speech-like signals and the same with white noise at each SNR."""
    clean = np.stack([speech_like(seconds, seed=i, noise=0.0) for i in range(len(snrs_db))])
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(clean.shape).astype(np.float32)
    power = clean.var(axis=1, keepdims=True) / noise.var(axis=1, keepdims=True)
    scale = np.sqrt(power / 10 ** (np.array(snrs_db)[:, None] / 10))
    return torch.tensor(clean), torch.tensor(clean + scale * noise, dtype=torch.float32)


def test_disturbance_tracks_the_reference_pesq_and_is_zero_for_a_perfect_estimate():
    # white noise in this synthetic speech's pauses is harsh: these SNRs span PESQ 1.0 to 2.8
    snrs = [15.0, 25.0, 35.0, 45.0, 55.0]
    clean, noisy = _pairs(snrs)
    model = PesqDisturbanceLoss()
    disturbance = model(clean, noisy)
    assert torch.all(disturbance[:-1] > disturbance[1:]), "more noise must mean more disturbance"
    assert model(clean, clean).abs().max() < 1e-3
    modelled = model.mos(clean, noisy).numpy()
    reference = np.array([pesq(16000, c, n, "wb") for c, n in zip(clean.numpy(), noisy.numpy(), strict=True)])
    # no time alignment and filters applied by FFT: close to P.862, not equal
    assert np.corrcoef(modelled, reference)[0, 1] > 0.95
    assert np.abs(modelled - reference).max() < 0.3


def test_gradients_are_finite_with_silent_and_perfect_items_in_the_batch():
    clean, noisy = _pairs([5.0, 15.0])
    clean = torch.cat([clean, torch.zeros(1, clean.shape[1]), clean[:1]])
    estimate = torch.cat([noisy, 0.01 * torch.randn(1, clean.shape[1]), clean[:1]]).requires_grad_()
    loss = PesqDisturbanceLoss()(clean, estimate)
    assert loss[2] == 0  # nothing to score against silence
    loss.mean().backward()
    assert torch.isfinite(estimate.grad).all() and estimate.grad[:2].abs().sum() > 0
    # a gradient step on the estimate lowers the disturbance
    with torch.no_grad():
        stepped = estimate - 1e-3 * estimate.grad / estimate.grad.abs().max()
    assert PesqDisturbanceLoss()(clean, stepped)[:2].sum() < loss[:2].sum()


def test_pesq_term_needs_whole_sequence_bptt(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("tbptt_frames = 50\n[loss]\npesq_weight = 0.01\n")
    with pytest.raises(ValueError, match="need whole-sequence BPTT"):
        load_config(config)


def test_negative_si_sdr_is_scale_invariant_and_skips_silent_references():
    from hush.trainer.loss import negative_si_sdr

    clean, noisy = _pairs([10.0, 20.0])
    # white noise at a known SNR: SI-SDR is that SNR (the noise is nearly orthogonal)
    assert negative_si_sdr(clean[:1], noisy[:1]).item() == pytest.approx(-10.0, abs=0.3)
    assert negative_si_sdr(clean[1:], 3.0 * noisy[1:]).item() == pytest.approx(-20.0, abs=0.3)
    silent = torch.cat([clean[:1], torch.zeros(1, clean.shape[1])])
    estimate = torch.cat([noisy[:1], noisy[1:]]).requires_grad_()
    value = negative_si_sdr(silent, estimate)
    value.backward()
    assert value.item() == pytest.approx(-10.0, abs=0.3)
    assert torch.isfinite(estimate.grad).all() and estimate.grad[1].abs().sum() == 0

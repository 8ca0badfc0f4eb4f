"""The differentiable PESQ model that trainer's loss.pesq_weight adds."""

import numpy as np
import pytest
import torch
from pesq import pesq

from conftest import speech_like
from hush.trainer.config import load_config
from hush.trainer.loss import band_level_error
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


def _flat_spectra(items: int, frames: int = 50, bins: int = 257, seed: int = 0) -> torch.Tensor:
    """``[items, frames, bins]`` complex spectra of white noise: every band far above the floor."""
    gen = torch.Generator().manual_seed(seed)
    return torch.complex(
        torch.randn(items, frames, bins, generator=gen), torch.randn(items, frames, bins, generator=gen)
    )


def test_band_level_error_measures_a_fixed_equaliser_in_db_squared():
    clean = _flat_spectra(4)
    assert band_level_error(clean, clean, 16000) == pytest.approx(0.0, abs=1e-9)
    # +3 dB everywhere, on every item: about 3 dB in every band (the floor is 30 dB down)
    boosted = clean * 10 ** (3 / 20)
    assert band_level_error(boosted, clean, 16000) == pytest.approx(9.0, rel=0.01)
    # +3 dB below 1080 Hz only: the 9 bands under it, of the 22 up to 8 kHz, carry it
    hz = torch.arange(257) * 8000 / 256
    low_boost = clean * torch.where(hz < 1080, 10 ** (3 / 20), 1.0)
    assert band_level_error(low_boost, clean, 16000) == pytest.approx(9.06 * 9 / 22, rel=0.01)


def test_band_level_error_ignores_what_cancels_over_the_batch_and_silent_items():
    clean = _flat_spectra(2)
    # one item 3 dB up, the other 3 dB down: no colouring common to the batch
    opposite = clean * torch.tensor([10 ** (3 / 20), 10 ** (-3 / 20)])[:, None, None]
    assert band_level_error(opposite, clean, 16000) < 0.01
    silent = torch.zeros(1, 50, 257, dtype=torch.complex64)
    estimate = torch.cat([clean * 2.0, torch.ones_like(silent)]).requires_grad_()
    with_silent = band_level_error(estimate, torch.cat([clean, silent]), 16000)
    assert float(with_silent) == pytest.approx(float(band_level_error(clean * 2.0, clean, 16000)), rel=1e-5)
    with_silent.backward()
    assert torch.isfinite(torch.view_as_real(estimate.grad)).all()
    assert band_level_error(silent, silent, 16000) == 0.0

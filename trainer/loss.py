"""Training losses on compressed spectra."""

from __future__ import annotations

import torch

from .config import LossConfig

_EPS = 1e-12


def bin_frequencies(n_bins: int, sample_rate: int, device: torch.device) -> torch.Tensor:
    """``[n_bins]`` centre frequency (Hz) of each bin of a one-sided spectrum, 0 Hz to
    ``sample_rate / 2``."""
    return torch.arange(n_bins, device=device) * (sample_rate / 2) / (n_bins - 1)


def compressed_spectral_loss(
    estimate: torch.Tensor, clean: torch.Tensor, cfg: LossConfig, sample_rate: int | None = None
) -> torch.Tensor:
    """MSE between power-law compressed magnitude spectra, plus optionally the same on
    compressed complex spectra (magnitude^c with the original phase), plus optionally an
    extra penalty on the part of the magnitude error where speech was suppressed below
    its clean level, or where it stayed above it. The suppression term trades residual
    noise for less speech damage, which intelligibility (STOI) rewards; the residual term
    trades the other way, which PESQ rewards.

    Args:
        estimate, clean: ``[B, T, F]`` complex spectra, ``F`` bins from 0 Hz to ``sample_rate / 2``.
        sample_rate: Hz; needed only when ``cfg.residual_max_hz`` limits the residual term.
    Returns:
        scalar loss.
    """
    c = cfg.compression
    est_power = estimate.real.square() + estimate.imag.square() + _EPS
    clean_power = clean.real.square() + clean.imag.square() + _EPS
    est_mag = est_power.pow(c / 2)
    clean_mag = clean_power.pow(c / 2)
    error = est_mag - clean_mag
    loss = torch.mean(error.square())
    if cfg.suppression_weight > 0:
        # the negative part of the error: speech attenuated below its clean level
        loss = loss + cfg.suppression_weight * torch.mean(torch.relu(-error).square())
    if cfg.residual_weight > 0:
        # the positive part: noise (or anything) left above the clean level. PESQ weighs
        # added components more heavily than removed ones (its asymmetry factor), so this
        # term moves the trade-off the other way from the suppression term.
        residual = torch.relu(error).square()
        if cfg.residual_max_hz is not None:
            if sample_rate is None:
                raise ValueError("loss.residual_max_hz needs the spectra's sample rate")
            bin_hz = bin_frequencies(error.shape[-1], sample_rate, error.device)
            # zero above the limit, so the mean stays over all bins: the weight means the
            # same per bin as without a limit
            residual = residual * (bin_hz < cfg.residual_max_hz).to(residual.dtype)
        loss = loss + cfg.residual_weight * torch.mean(residual)
    if cfg.complex_weight > 0:
        # |X|^c * X / |X| = X * |X|^(c - 1)
        est_c = estimate * est_power.pow((c - 1) / 2)
        clean_c = clean * clean_power.pow((c - 1) / 2)
        loss = loss + cfg.complex_weight * torch.mean((est_c - clean_c).abs().square())
    return loss


def audible_items(reference: torch.Tensor) -> torch.Tensor:
    """``[B]`` bool: the items of ``[B, S]`` audio that are not silent. Waveform measures
    (SI-SDR, PESQ's level alignment) are undefined against a silent reference, as in the
    noise-only training mixtures."""
    return reference.square().mean(-1) > 1e-10


def negative_si_sdr(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Mean of ``-SI-SDR`` (dB) over the items whose reference is not silent.

    Args:
        reference, estimate: ``[B, S]`` time-aligned audio.
    Returns:
        scalar; 0 when every reference is silent (SI-SDR is undefined there).
    """
    audible = audible_items(reference)
    if not audible.any():
        return reference.new_zeros(())
    reference, estimate = reference[audible], estimate[audible]
    scale = (estimate * reference).sum(-1, keepdim=True) / reference.square().sum(-1, keepdim=True)
    target = scale * reference
    ratio = target.square().sum(-1) / ((estimate - target).square().sum(-1) + _EPS)
    return -10 * torch.log10(ratio + _EPS).mean()


# Critical-band edges in Hz (Zwicker's Bark scale): fine where speech has its energy, so a
# tilt of a few dB anywhere in 100 Hz to 4 kHz shows in several bands.
_BARK_EDGES_HZ = (
    0,
    100,
    200,
    300,
    400,
    510,
    630,
    770,
    920,
    1080,
    1270,
    1480,
    1720,
    2000,
    2320,
    2700,
    3150,
    3700,
    4400,
    5300,
    6400,
    7700,
    9500,
    12000,
    15500,
    20500,
)


def band_level_error(estimate: torch.Tensor, clean: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Squared batch-mean error (dB^2) of the long-term level per critical band, enhanced
    against clean, averaged over bands; items whose clean speech is silent are left out.

    This is the fixed equaliser that PESQ forgives (it equalises the long-term spectrum
    before comparing) and listeners and SI-SDR do not: a PESQ term alone learned a +2.3 dB
    boost from 250 Hz to 1 kHz and a -2.3 dB cut below it. Each item's level is its mean
    power over the whole segment, and the error is averaged over the batch before squaring,
    so only a colouring common to all items costs; how far one item's bands sit from its
    clean levels (over-suppression where its noise is loud) is the base loss's business.
    Bands more than 30 dB under the item's mean band level count as at that floor, so empty
    bands (no speech above 4 kHz, say) do not dominate.

    Args:
        estimate, clean: ``[B, T, F]`` complex spectra, ``F`` bins from 0 Hz to ``sample_rate / 2``.
        sample_rate: Hz.
    Returns:
        scalar, dB^2; 0 when every item is silent.
    """
    est_power = estimate.real.square() + estimate.imag.square()
    clean_power = clean.real.square() + clean.imag.square()
    audible = audible_items(clean_power.flatten(1))
    if not audible.any():
        return estimate.real.new_zeros(())
    est_power, clean_power = est_power[audible].mean(1), clean_power[audible].mean(1)  # [B', F]
    bin_hz = bin_frequencies(est_power.shape[-1], sample_rate, est_power.device)
    edges = [e for e in _BARK_EDGES_HZ if e < sample_rate / 2] + [sample_rate / 2 + 1]
    band_of_bin = torch.bucketize(bin_hz, torch.tensor(edges[1:], device=bin_hz.device), right=True)
    n_bands = len(edges) - 1
    counts = torch.bincount(band_of_bin, minlength=n_bands).clamp(min=1).to(est_power.dtype)

    def band_means(power: torch.Tensor) -> torch.Tensor:
        """``[B', F]`` -> ``[B', bands]`` mean power per band."""
        return power.new_zeros(power.shape[0], n_bands).index_add_(1, band_of_bin, power) / counts

    est_band, clean_band = band_means(est_power), band_means(clean_power)
    floor = 1e-3 * clean_band.mean(-1, keepdim=True)
    error_db = 10 * torch.log10((est_band + floor) / (clean_band + floor))
    return error_db.mean(0).square().mean()


def weight_penalty(model: torch.nn.Module, l1: float, l2: float) -> torch.Tensor | float:
    """``l1 * sum|w| + l2 * sum w^2`` over weight matrices (biases are not penalised)."""
    if l1 == 0 and l2 == 0:
        return 0.0
    total: torch.Tensor | float = 0.0
    for param in model.parameters():
        if param.ndim < 2:
            continue
        if l1:
            total = total + l1 * param.abs().sum()
        if l2:
            total = total + l2 * param.square().sum()
    return total

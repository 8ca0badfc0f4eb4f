"""Training losses on compressed spectra."""

from __future__ import annotations

import torch

from .config import LossConfig

_EPS = 1e-12


def compressed_spectral_loss(estimate: torch.Tensor, clean: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """MSE between power-law compressed magnitude spectra, plus optionally the same on
    compressed complex spectra (magnitude^c with the original phase), plus optionally an
    extra penalty on the part of the magnitude error where speech was suppressed below
    its clean level, or where it stayed above it. The suppression term trades residual
    noise for less speech damage, which intelligibility (STOI) rewards; the residual term
    trades the other way, which PESQ rewards.

    Args:
        estimate, clean: ``[B, T, F]`` complex spectra.
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
        loss = loss + cfg.residual_weight * torch.mean(torch.relu(error).square())
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

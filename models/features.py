"""Spectral analysis, synthesis and input features.

One implementation serves every caller: training and offline enhancement call these
functions on whole sequences (``T`` frames), the streaming engine calls the very same
functions on one frame at a time (``T == 1`` or a ``[B, N]`` batch of single frames).

Conventions
-----------
* Audio is mono float32 at ``FeatureConfig.sample_rate`` (16 kHz), nominal range [-1, 1].
* A *frame* is ``win_length`` consecutive samples; consecutive frames start ``hop_length``
  samples apart. Frame ``t`` of a signal ``x`` covers ``x[t*hop - (win - hop) : t*hop + hop]``:
  the first frame sees ``win - hop`` samples of zero history, so processing is causal.
* The analysis and synthesis windows are both a periodic sqrt-Hann window. Their product,
  a periodic Hann window, sums to exactly 1 at 50 % overlap, so analysis followed by
  synthesis and overlap-add reconstructs the input perfectly (see ``tests/test_features.py``).
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator


class FeatureConfig(BaseModel):
    """DSP settings. They travel inside every weight file, so a model is always run with
    the settings it was trained with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_rate: int = Field(16000, description="Hz. The engine resamples everything else to this rate.")
    win_length: int = Field(320, description="Samples per analysis frame (20 ms at 16 kHz).")
    hop_length: int = Field(160, description="Samples between frames (10 ms at 16 kHz).")
    norm_tau_s: float = Field(
        1.0,
        gt=0,
        description="Time constant in seconds of the causal running mean subtracted from the log power.",
    )
    norm_init: float = Field(
        -6.0, description="Initial running mean (natural log of power), roughly quiet room noise."
    )
    log_floor: float = Field(1e-9, gt=0, description="Added to |X|^2 before the log, about -90 dB.")

    @model_validator(mode="after")
    def _check_overlap(self) -> FeatureConfig:
        if self.sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        if self.hop_length <= 0 or self.win_length % self.hop_length != 0:
            raise ValueError("win_length must be a positive multiple of hop_length")
        if self.win_length != 2 * self.hop_length:
            # sqrt-Hann is a perfect-reconstruction pair only at exactly 50 % overlap.
            raise ValueError("win_length must be exactly 2 * hop_length (sqrt-Hann at 50 % overlap)")
        return self

    @property
    def n_bins(self) -> int:
        """Number of one-sided frequency bins, ``win_length // 2 + 1`` (161 at 320)."""
        return self.win_length // 2 + 1

    @property
    def norm_alpha(self) -> float:
        """Per-frame decay of the running mean: ``exp(-hop / (tau * sr))``."""
        return math.exp(-self.hop_length / (self.norm_tau_s * self.sample_rate))


def sqrt_hann_window(win_length: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Periodic sqrt-Hann window ``[win_length]``, used for both analysis and synthesis."""
    return torch.hann_window(win_length, periodic=True, dtype=torch.float64).sqrt().to(dtype)


def frame_signal(audio: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """Cut audio into causal frames.

    Args:
        audio: ``[B, S]`` samples, ``S`` a multiple of ``hop_length``.
    Returns:
        ``[B, T, win_length]`` with ``T = S // hop_length``; frame ``t`` is
        ``[zeros(win - hop), audio][t*hop : t*hop + win]``.
    """
    if audio.shape[-1] % cfg.hop_length != 0:
        raise ValueError(f"signal length {audio.shape[-1]} is not a multiple of hop {cfg.hop_length}")
    history = audio.new_zeros(*audio.shape[:-1], cfg.win_length - cfg.hop_length)
    padded = torch.cat([history, audio], dim=-1)
    return padded.unfold(-1, cfg.win_length, cfg.hop_length)


def analysis(frames: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Windowed real FFT.

    Args:
        frames: ``[..., win_length]`` time-domain frames.
        window: ``[win_length]`` analysis window.
    Returns:
        ``[..., n_bins]`` complex spectrum.
    """
    return torch.fft.rfft(frames * window, dim=-1)


def synthesis(spectrum: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Inverse real FFT followed by the synthesis window.

    Args:
        spectrum: ``[..., n_bins]`` complex.
    Returns:
        ``[..., win_length]`` windowed time-domain frames, ready for overlap-add.
    """
    return torch.fft.irfft(spectrum, n=window.shape[-1], dim=-1) * window


def overlap_add(frames: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Overlap-add ``[B, T, 2*hop]`` frames into ``[B, (T + 1) * hop]`` samples."""
    first, second = frames[..., :hop_length], frames[..., hop_length:]
    batch, n_frames = frames.shape[0], frames.shape[1]
    out = frames.new_zeros(batch, n_frames + 1, hop_length)
    out[:, :-1] += first
    out[:, 1:] += second
    return out.reshape(batch, -1)


def log_power(spectrum: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """Natural log of the power spectrum, ``[..., n_bins]`` real."""
    return torch.log(spectrum.real.square() + spectrum.imag.square() + cfg.log_floor)


def running_mean_normalize(
    log_pow: torch.Tensor, mean: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Subtract a causal exponential running mean from log-power features.

    The mean is state that each stream owns. The recurrence is written once and is the
    same for a sequence and for a single frame, which keeps streaming bit-exact with the
    batched path.

    Args:
        log_pow: ``[B, T, F]`` log power.
        mean: ``[B, F]`` running mean before the first frame.
        alpha: per-frame decay in (0, 1).
    Returns:
        ``([B, T, F]`` normalized features, ``[B, F]`` running mean after the last frame).
    """
    out = []
    for t in range(log_pow.shape[1]):
        mean = alpha * mean + (1.0 - alpha) * log_pow[:, t]
        out.append(log_pow[:, t] - mean)
    return torch.stack(out, dim=1), mean

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
* Optionally the analysis window is longer than the synthesis window (``analysis_length``,
  an asymmetric pair after Mauler & Martin, 2007): the FFT then spans ``analysis_length``
  samples, which gives finer frequency resolution, while the synthesis window, and with it
  the algorithmic latency, stays ``win_length``. The two windows' product over the last
  ``win_length`` samples is still the periodic Hann window, so reconstruction stays perfect.
"""

from __future__ import annotations

import functools
import math

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator


class FeatureConfig(BaseModel):
    """DSP settings. They travel inside every weight file, so a model is always run with
    the settings it was trained with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_rate: int = Field(16000, description="Hz. The engine resamples everything else to this rate.")
    win_length: int = Field(
        320, description="Samples per synthesis frame (20 ms at 16 kHz); with the hop it sets the latency."
    )
    analysis_length: int | None = Field(
        None,
        description=(
            "Samples the analysis window and the FFT span (None: win_length). Longer than "
            "win_length makes an asymmetric window pair: finer frequency resolution, same latency."
        ),
    )
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
        if self.analysis_length is not None and self.analysis_length < self.win_length:
            # odd is allowed: 30 ms at 44.1 kHz is 1323 samples (``at_rate``)
            raise ValueError("analysis_length must be at least win_length")
        return self

    def at_rate(self, sample_rate: int) -> FeatureConfig:
        """The same windows, defined by their durations, at another sample rate.

        Every length is scaled by ``sample_rate / self.sample_rate`` (at 48 kHz the default
        320/480/160 become 960/1440/480): same latency, same 10 ms hop, and FFT bins exactly as
        far apart as here, so the first ``n_bins`` of the scaled STFT lie at this config's
        bin frequencies. ``norm_tau_s`` keeps its duration, so ``norm_alpha`` is unchanged.

        Raises:
            ValueError: a length would not be a whole number of samples at ``sample_rate``
                (10 ms at 22.05 kHz), or the rate is below this one.
        """
        if sample_rate == self.sample_rate:
            return self
        if sample_rate < self.sample_rate:
            raise ValueError(f"{sample_rate} Hz is below the model's {self.sample_rate} Hz")
        lengths = {"win_length": self.win_length, "hop_length": self.hop_length}
        if self.analysis_length is not None:
            lengths["analysis_length"] = self.analysis_length
        scaled = {}
        for key, value in lengths.items():
            samples, rest = divmod(value * sample_rate, self.sample_rate)
            if rest:
                raise ValueError(
                    f"{key} {value} at {self.sample_rate} Hz is not a whole number of samples "
                    f"at {sample_rate} Hz"
                )
            scaled[key] = samples
        return FeatureConfig.model_validate({**self.model_dump(), "sample_rate": sample_rate, **scaled})

    @property
    def frame_length(self) -> int:
        """Input samples per analysis frame: ``analysis_length``, or ``win_length`` if unset."""
        return self.analysis_length or self.win_length

    @property
    def n_bins(self) -> int:
        """Number of one-sided frequency bins, ``frame_length // 2 + 1`` (161 at 320)."""
        return self.frame_length // 2 + 1

    @property
    def norm_alpha(self) -> float:
        """Per-frame decay of the running mean: ``exp(-hop / (tau * sr))``."""
        return math.exp(-self.hop_length / (self.norm_tau_s * self.sample_rate))


def _periodic_hann(length: int) -> torch.Tensor:
    return torch.hann_window(length, periodic=True, dtype=torch.float64)


def sqrt_hann_window(win_length: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Periodic sqrt-Hann window ``[win_length]``, used for both analysis and synthesis."""
    return _periodic_hann(win_length).sqrt().to(dtype)


def analysis_window(cfg: FeatureConfig, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The analysis window ``[frame_length]``.

    Symmetric (no ``analysis_length``): the sqrt-Hann window. Asymmetric: a slow sqrt-Hann
    rise over the first ``frame_length - win_length / 2`` samples, then the falling half of
    the ``win_length`` sqrt-Hann window, so the newest samples are weighted as in the
    symmetric case and the older ones add frequency resolution.
    """
    if cfg.frame_length == cfg.win_length:
        return sqrt_hann_window(cfg.win_length, dtype)
    half = cfg.win_length // 2
    rise = cfg.frame_length - half
    rising = _periodic_hann(2 * rise)[:rise].sqrt()
    falling = _periodic_hann(cfg.win_length)[half:].sqrt()
    return torch.cat([rising, falling]).to(dtype)


def synthesis_window(cfg: FeatureConfig, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The synthesis window ``[win_length]``, applied to the last ``win_length`` samples of
    each inverse FFT. Its product with the analysis window's last ``win_length`` samples is
    the periodic Hann window, which overlap-adds to exactly 1 at 50 % overlap."""
    if cfg.frame_length == cfg.win_length:
        return sqrt_hann_window(cfg.win_length, dtype)
    tail = analysis_window(cfg, torch.float64)[-cfg.win_length :]
    return (_periodic_hann(cfg.win_length) / tail).to(dtype)


def frame_signal(audio: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """Cut audio into causal frames.

    Args:
        audio: ``[B, S]`` samples, ``S`` a multiple of ``hop_length``.
    Returns:
        ``[B, T, frame_length]`` with ``T = S // hop_length``; frame ``t`` is
        ``[zeros(frame_length - hop), audio][t*hop : t*hop + frame_length]``.
    """
    if audio.shape[-1] % cfg.hop_length != 0:
        raise ValueError(f"signal length {audio.shape[-1]} is not a multiple of hop {cfg.hop_length}")
    history = audio.new_zeros(*audio.shape[:-1], cfg.frame_length - cfg.hop_length)
    padded = torch.cat([history, audio], dim=-1)
    return padded.unfold(-1, cfg.frame_length, cfg.hop_length)


def analysis(frames: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Windowed real FFT.

    Args:
        frames: ``[..., frame_length]`` time-domain frames.
        window: ``[frame_length]`` analysis window.
    Returns:
        ``[..., n_bins]`` complex spectrum.
    """
    return torch.fft.rfft(frames * window, dim=-1)


def synthesis(spectrum: torch.Tensor, window: torch.Tensor, n_fft: int | None = None) -> torch.Tensor:
    """Inverse real FFT, keeping the last ``win_length`` samples, times the synthesis window.

    Args:
        spectrum: ``[..., n_bins]`` complex.
        window: ``[win_length]`` synthesis window.
        n_fft: the FFT length (``frame_length``); default ``2 * (n_bins - 1)``, which is it
            whenever the frame is even (an odd one, 1323 at 44.1 kHz, must be given).
    Returns:
        ``[..., win_length]`` windowed time-domain frames, ready for overlap-add.
    """
    frames = torch.fft.irfft(spectrum, n=n_fft or 2 * (spectrum.shape[-1] - 1), dim=-1)
    return frames[..., frames.shape[-1] - window.shape[-1] :] * window


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


# Frames per block of the blocked recurrence in ``running_mean_normalize``: long enough that
# one matrix product replaces many small per-frame operations, short enough that the decay
# alpha^block (0.53 at the default 10 ms hop and 1 s time constant) keeps every weight well
# inside float32's range.
_NORM_BLOCK = 64


@functools.lru_cache(maxsize=32)
def _decay_weights(
    alpha: float, block: int, dtype: torch.dtype, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``([block, block]`` lower-triangular ``(1 - alpha) alpha^(i - j)``, ``[block]`` ``alpha^(i + 1)``),
    computed in float64 and then cast."""
    steps = torch.arange(block, dtype=torch.float64)
    lags = steps[:, None] - steps[None, :]
    weights = torch.where(lags >= 0, (1.0 - alpha) * alpha ** lags.clamp(min=0), torch.zeros(()))
    carry = alpha ** (steps + 1.0)
    return weights.to(dtype=dtype, device=device), carry.to(dtype=dtype, device=device)


def running_mean_normalize(
    log_pow: torch.Tensor, mean: torch.Tensor, alpha: float, blocked: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Subtract a causal exponential running mean from log-power features.

    The mean is state that each stream owns: ``mean_t = alpha mean_{t-1} + (1 - alpha) x_t``.
    By default the recurrence runs as written, frame by frame, for a sequence and for a
    single frame alike, which keeps streaming bit-exact with whole-file enhancement.

    ``blocked = True`` (the models ask for it in training mode) takes a sequence in blocks of
    ``_NORM_BLOCK`` frames instead, each one matrix product with the closed form
    ``mean_t = alpha^(t+1) mean_{-1} + sum_k (1 - alpha) alpha^(t-k) x_k``: the same values up
    to float rounding (a few 1e-6 of the feature scale, ``tests/test_features.py``), without
    hundreds of per-frame steps and their backward pass, which took 0.8 s of a 2 s training
    step of the shipped ``gru`` on one core (0.04 s blocked).

    Args:
        log_pow: ``[B, T, F]`` log power.
        mean: ``[B, F]`` running mean before the first frame.
        alpha: per-frame decay in (0, 1).
        blocked: compute the sequence blockwise (training), not frame by frame.
    Returns:
        ``([B, T, F]`` normalized features, ``[B, F]`` running mean after the last frame).
    """
    frames = log_pow.shape[1]
    if not blocked or frames == 1:
        out = []
        for t in range(frames):
            mean = alpha * mean + (1.0 - alpha) * log_pow[:, t]
            out.append(log_pow[:, t] - mean)
        return torch.stack(out, dim=1), mean
    weights, carry = _decay_weights(alpha, _NORM_BLOCK, log_pow.dtype, str(log_pow.device))
    out = []
    for start in range(0, frames, _NORM_BLOCK):
        block = log_pow[:, start : start + _NORM_BLOCK]
        n = block.shape[1]
        means = torch.matmul(weights[:n, :n], block) + carry[:n, None] * mean.unsqueeze(1)
        out.append(block - means)
        mean = means[:, -1]
    return torch.cat(out, dim=1), mean

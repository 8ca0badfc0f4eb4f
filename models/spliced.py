"""Spliced-frame feed-forward DNN baseline.

The input of frame ``t`` is the normalized features of frames ``t-K .. t+L`` concatenated
into one vector of ``(K + 1 + L) * F`` values. Because it needs ``L`` future frames, the
gain for frame ``t`` is computed when frame ``t + L`` arrives, so output index ``t`` holds
the gain of frame ``t - L`` (``lookahead_frames = L``, one hop of latency each).

With ``noise_aware`` the input also carries the newest frame's a-posteriori SNR: its log
power minus a causal noise-floor estimate (a lightly smoothed log power whose minimum is
tracked and may rise by ``noise_rise_db_per_s``). Normalised features say how a frame
compares with the last second; the floor says how it compares with the noise, which a
window of a few frames cannot tell on its own ("noise-aware training", Seltzer et al. 2013).

With spliced labels (``label_frames = M``) each step predicts the gains of frames
``t-L-M .. t-L``; the gain finally used for a frame is the mean of the M+1 predictions
made for it, which adds ``M`` more hops of latency.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import GainModel
from .config import SplicedConfig
from .features import FeatureConfig, running_mean_normalize

# Time constant of the smoothing before the minimum is tracked: it tames the periodogram's
# deep random dips, which would otherwise pull the floor far below the noise.
_FLOOR_SMOOTH_TAU_S = 0.03
# No frame count above this: it only has to outgrow 1 / (1 - alpha).
_MAX_COUNT = 1e6


def track_noise_floor(
    log_pow: torch.Tensor,
    count: torch.Tensor,
    smoothed: torch.Tensor,
    floor: torch.Tensor,
    smooth_alpha: float,
    rise: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Causal minimum tracking of the log power, one recursion for sequences and single frames.

    Args:
        log_pow: ``[B, T, F]`` natural-log power.
        count: ``[B, 1]`` frames seen so far; the smoothing is bias-corrected at the start
            (the first frame is taken as it is), so no initial value has to be guessed.
        smoothed: ``[B, F]`` smoothed log power; ``floor``: ``[B, F]`` the noise floor.
        smooth_alpha: per-frame smoothing decay; ``rise``: largest floor rise per frame (log units).
    Returns:
        ``([B, T, F]`` a-posteriori SNR in log units (>= 0), count, smoothed, floor).
    """
    snr = []
    for t in range(log_pow.shape[1]):
        alpha = torch.clamp(count / (count + 1.0), max=smooth_alpha)
        smoothed = alpha * smoothed + (1.0 - alpha) * log_pow[:, t]
        # the first frame sets the floor: min(anything, floor + rise) with alpha = 0 there
        floor = torch.where(count > 0, torch.minimum(floor + rise, smoothed), smoothed)
        count = torch.clamp(count + 1.0, max=_MAX_COUNT)
        snr.append(torch.clamp(log_pow[:, t] - floor, min=0.0))
    return torch.stack(snr, dim=1), count, smoothed, floor


class SplicedDNN(GainModel):
    """State of one stream (``[state_size]``): running mean ``[F]``, the last ``K + L``
    normalized frames ``[K+L, F]``, the last ``M`` label predictions ``[M, M+1, F]``, then
    with ``noise_aware`` the frame count ``[1]``, smoothed log power ``[F]`` and floor ``[F]``."""

    def __init__(self, features: FeatureConfig, arch: SplicedConfig) -> None:
        super().__init__(features)
        self.arch = arch
        self.context = arch.past_frames + arch.future_frames
        self.n_labels = arch.label_frames + 1
        layers: list[nn.Module] = []
        width = self._input_width()
        for size in arch.hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(arch.dropout)]
            width = size
        self.hidden = nn.Sequential(*layers)
        self.output_layer = nn.Linear(width, self.n_labels * self.n_bins)
        # Fixed by the settings, so worked out once here rather than on every step.
        self._base_state_size = self.n_bins * (1 + self.context + arch.label_frames * self.n_labels)
        hop_s = features.hop_length / features.sample_rate
        self._floor_smooth_alpha = math.exp(-hop_s / _FLOOR_SMOOTH_TAU_S)  # smoothing decay per frame
        self._floor_rise = arch.noise_rise_db_per_s * hop_s * math.log(10.0) / 10.0  # log units per frame

    def _input_width(self) -> int:
        return (self.context + 1 + int(self.arch.noise_aware)) * self.n_bins

    @property
    def lookahead_frames(self) -> int:
        return self.arch.future_frames + self.arch.label_frames

    @property
    def state_size(self) -> int:
        noise = 1 + 2 * self.n_bins if self.arch.noise_aware else 0
        return self._base_state_size + noise

    def initial_state(self, batch_size: int = 1) -> torch.Tensor:
        state = torch.zeros(batch_size, self.state_size)
        state[:, : self.n_bins] = self.features.norm_init
        return state

    def forward(self, log_pow: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``log_pow [B, T, F]``, ``state [B, S]`` -> ``gains [B, T, F]`` in [0, 1], new state."""
        batch, frames, bins = log_pow.shape
        k_l, m = self.context, self.arch.label_frames
        # Zero-size slices are avoided on purpose: the ONNX exporter cannot reshape them.
        normalized, mean = running_mean_normalize(
            log_pow, state[:, :bins], self.features.norm_alpha, blocked=self.training
        )
        sequence = normalized
        if k_l:
            past = state[:, bins : bins * (1 + k_l)].reshape(batch, k_l, bins)
            sequence = torch.cat([past, normalized], dim=1)  # [B, K+L+T, F]
        spliced = sequence.unfold(1, k_l + 1, 1)  # [B, T, F, K+L+1]
        spliced = spliced.transpose(2, 3).reshape(batch, frames, (k_l + 1) * bins)
        noise_state: list[torch.Tensor] = []
        if self.arch.noise_aware:
            base = self._base_state_size
            snr, count, smoothed, floor = track_noise_floor(
                log_pow,
                state[:, base : base + 1],
                state[:, base + 1 : base + 1 + bins],
                state[:, base + 1 + bins :],
                self._floor_smooth_alpha,
                self._floor_rise,
            )
            spliced = torch.cat([spliced, snr], dim=2)
            noise_state = [count, smoothed, floor]
        labels = torch.sigmoid(self.output_layer(self.hidden(spliced)))
        labels = labels.reshape(batch, frames, self.n_labels, bins)  # label j is for frame t-L-M+j
        new_state = [mean]
        if k_l:
            new_state.append(sequence[:, frames:].reshape(batch, -1))
        if m == 0:
            return labels[:, :, 0], torch.cat(new_state + noise_state, dim=1)

        old_labels = state[:, bins * (1 + k_l) : self._base_state_size].reshape(batch, m, self.n_labels, bins)
        # Prediction made at step s for frame s-L-M+j. The frame finished at step t is
        # t-L-M: it was predicted at steps t-M+i (i = 0..M) as label M-i.
        history = torch.cat([old_labels, labels], dim=1)  # [B, M+T, M+1, F]
        votes = [history[:, i : i + frames, m - i] for i in range(m + 1)]
        gains = torch.stack(votes, dim=0).mean(dim=0)
        new_state.append(history[:, frames:].reshape(batch, -1))
        return gains, torch.cat(new_state + noise_state, dim=1)

    def macs_per_frame(self) -> int:
        macs = 0
        width = self._input_width()
        for size in self.arch.hidden_sizes:
            macs += width * size
            width = size
        return macs + width * self.n_labels * self.n_bins

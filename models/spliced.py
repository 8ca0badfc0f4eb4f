"""Spliced-frame feed-forward DNN baseline.

The input of frame ``t`` is the normalized features of frames ``t-K .. t+L`` concatenated
into one vector of ``(K + 1 + L) * F`` values. Because it needs ``L`` future frames, the
gain for frame ``t`` is computed when frame ``t + L`` arrives, so output index ``t`` holds
the gain of frame ``t - L`` (``lookahead_frames = L``, one hop of latency each).

With spliced labels (``label_frames = M``) each step predicts the gains of frames
``t-L-M .. t-L``; the gain finally used for a frame is the mean of the M+1 predictions
made for it, which adds ``M`` more hops of latency.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import GainModel
from .config import SplicedConfig
from .features import FeatureConfig, running_mean_normalize


class SplicedDNN(GainModel):
    """State of one stream (``[state_size]``): running mean ``[F]``, the last ``K + L``
    normalized frames ``[K+L, F]``, then the last ``M`` label predictions ``[M, M+1, F]``."""

    def __init__(self, features: FeatureConfig, arch: SplicedConfig) -> None:
        super().__init__(features)
        self.arch = arch
        self.context = arch.past_frames + arch.future_frames
        self.n_labels = arch.label_frames + 1
        layers: list[nn.Module] = []
        width = (self.context + 1) * self.n_bins
        for size in arch.hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(arch.dropout)]
            width = size
        self.hidden = nn.Sequential(*layers)
        self.output_layer = nn.Linear(width, self.n_labels * self.n_bins)

    @property
    def lookahead_frames(self) -> int:
        return self.arch.future_frames + self.arch.label_frames

    @property
    def state_size(self) -> int:
        return self.n_bins * (1 + self.context + self.arch.label_frames * self.n_labels)

    def initial_state(self, batch_size: int = 1) -> torch.Tensor:
        state = torch.zeros(batch_size, self.state_size)
        state[:, : self.n_bins] = self.features.norm_init
        return state

    def forward(self, log_pow: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``log_pow [B, T, F]``, ``state [B, S]`` -> ``gains [B, T, F]`` in [0, 1], new state."""
        batch, frames, bins = log_pow.shape
        k_l, m = self.context, self.arch.label_frames
        # Zero-size slices are avoided on purpose: the ONNX exporter cannot reshape them.
        normalized, mean = running_mean_normalize(log_pow, state[:, :bins], self.features.norm_alpha)
        sequence = normalized
        if k_l:
            past = state[:, bins : bins * (1 + k_l)].reshape(batch, k_l, bins)
            sequence = torch.cat([past, normalized], dim=1)  # [B, K+L+T, F]
        spliced = sequence.unfold(1, k_l + 1, 1)  # [B, T, F, K+L+1]
        spliced = spliced.transpose(2, 3).reshape(batch, frames, (k_l + 1) * bins)
        labels = torch.sigmoid(self.output_layer(self.hidden(spliced)))
        labels = labels.reshape(batch, frames, self.n_labels, bins)  # label j is for frame t-L-M+j
        new_state = [mean]
        if k_l:
            new_state.append(sequence[:, frames:].reshape(batch, -1))
        if m == 0:
            return labels[:, :, 0], torch.cat(new_state, dim=1)

        old_labels = state[:, bins * (1 + k_l) :].reshape(batch, m, self.n_labels, bins)
        # Prediction made at step s for frame s-L-M+j. The frame finished at step t is
        # t-L-M: it was predicted at steps t-M+i (i = 0..M) as label M-i.
        history = torch.cat([old_labels, labels], dim=1)  # [B, M+T, M+1, F]
        votes = [history[:, i : i + frames, m - i] for i in range(m + 1)]
        gains = torch.stack(votes, dim=0).mean(dim=0)
        new_state.append(history[:, frames:].reshape(batch, -1))
        return gains, torch.cat(new_state, dim=1)

    def macs_per_frame(self) -> int:
        macs = 0
        width = (self.context + 1) * self.n_bins
        for size in self.arch.hidden_sizes:
            macs += width * size
            width = size
        return macs + width * self.n_labels * self.n_bins

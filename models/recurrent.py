"""Causal recurrent denoiser: log-power features -> dense -> RNN/GRU/LSTM stack -> per-bin gain."""

from __future__ import annotations

import torch
from torch import nn

from .base import GainModel
from .config import RecurrentConfig
from .features import FeatureConfig, running_mean_normalize

_RNN_CLASSES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
# Weight matrices per cell: the plain unit has one (h_t = tanh(U x_t + W h_{t-1} + b)),
# a GRU three (reset, update, candidate) and an LSTM four (input, forget, cell, output).
_GATES = {"rnn": 1, "gru": 3, "lstm": 4}


class RecurrentDenoiser(GainModel):
    """``Linear(F->H) -> ReLU -> RNN(H, layers) -> Linear(H->H) -> ReLU -> Linear(H->F) -> sigmoid``.

    State layout of one stream (``[state_size]``): the running feature mean ``[F]``, then
    the hidden state ``[layers, H]``, then for an LSTM the cell state ``[layers, H]``.
    """

    def __init__(self, features: FeatureConfig, arch: RecurrentConfig) -> None:
        super().__init__(features)
        self.arch = arch
        hidden = arch.hidden_size
        self.input_layer = nn.Linear(self.n_bins, hidden)
        self.rnn = _RNN_CLASSES[arch.cell](
            hidden,
            hidden,
            num_layers=arch.num_layers,
            batch_first=True,
            dropout=arch.dropout if arch.num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(arch.dropout)
        self.hidden_layer = nn.Linear(hidden, hidden)
        self.output_layer = nn.Linear(hidden, self.n_bins)
        self._n_hidden_tensors = 2 if arch.cell == "lstm" else 1

    @property
    def state_size(self) -> int:
        return self.n_bins + self._n_hidden_tensors * self.arch.num_layers * self.arch.hidden_size

    def initial_state(self, batch_size: int = 1) -> torch.Tensor:
        state = torch.zeros(batch_size, self.state_size)
        state[:, : self.n_bins] = self.features.norm_init
        return state

    def _split_state(
        self, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, ...]]:
        """``[B, S]`` -> running mean ``[B, F]`` and RNN state ``[layers, B, H]`` (a pair for LSTM)."""
        batch, layers, hidden = state.shape[0], self.arch.num_layers, self.arch.hidden_size
        mean = state[:, : self.n_bins]
        rnn_flat = state[:, self.n_bins :].reshape(batch, self._n_hidden_tensors, layers, hidden)
        rnn_state = rnn_flat.permute(1, 2, 0, 3).contiguous()  # [n, layers, B, H]
        if self.arch.cell == "lstm":
            return mean, (rnn_state[0], rnn_state[1])
        return mean, rnn_state[0]

    def _join_state(
        self, mean: torch.Tensor, rnn_state: torch.Tensor | tuple[torch.Tensor, ...]
    ) -> torch.Tensor:
        stacked = torch.stack(rnn_state) if isinstance(rnn_state, tuple) else rnn_state.unsqueeze(0)
        batch = mean.shape[0]
        return torch.cat([mean, stacked.permute(2, 0, 1, 3).reshape(batch, -1)], dim=1)

    def forward(self, log_pow: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``log_pow [B, T, F]``, ``state [B, S]`` -> ``gains [B, T, F]`` in [0, 1], new state."""
        mean, rnn_state = self._split_state(state)
        normalized, mean = running_mean_normalize(log_pow, mean, self.features.norm_alpha)
        x = torch.relu(self.input_layer(normalized))
        if self.training or torch.onnx.is_in_onnx_export():
            x, rnn_state = self.rnn(x, rnn_state)
            x = self.dropout(torch.relu(self.hidden_layer(self.dropout(x))))
        else:
            x, rnn_state = self._rnn_inference(x, rnn_state)
            x = torch.relu(self.hidden_layer(x))
        gains = torch.sigmoid(self.output_layer(x))
        return gains, self._join_state(mean, rnn_state)

    def _rnn_inference(
        self, x: torch.Tensor, rnn_state: torch.Tensor | tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, ...]]:
        """The fused ATen kernel that ``nn.RNNBase.forward`` ends in, minus its per-call
        Python checks (about 17 us of the 0.2 ms frame budget). Same kernel, same numbers;
        used for every inference call, sequence and step alike, so they stay identical."""
        args = (self.rnn._flat_weights, True, self.arch.num_layers, 0.0, False, False, True)
        if self.arch.cell == "lstm":
            out, h, c = torch.lstm(x, rnn_state, *args)
            return out, (h, c)
        op = torch.gru if self.arch.cell == "gru" else torch.rnn_tanh
        return op(x, rnn_state, *args)

    def macs_per_frame(self) -> int:
        hidden, layers, gates = self.arch.hidden_size, self.arch.num_layers, _GATES[self.arch.cell]
        rnn = layers * gates * (hidden * hidden + hidden * hidden)
        return self.n_bins * hidden + rnn + hidden * hidden + hidden * self.n_bins

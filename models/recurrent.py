"""Causal recurrent denoiser: log-power features -> dense -> RNN/GRU/LSTM stack -> per-bin gain,
optionally plus a complex deep filter over the current and past spectra in the low bins.

Why a deep filter: at a 20 ms window the bins are 50 Hz apart, so a real gain per bin cannot
remove noise between the harmonics of a voice, nor correct phase. A short complex FIR filter
across frames (DeepFilterNet's idea) can, and using only past frames it adds no latency.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import GainModel
from .config import RecurrentConfig
from .features import FeatureConfig, log_power, running_mean_normalize
from .postfilter import post_filter_factor

_RNN_CLASSES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
# Weight matrices per cell: the plain unit has one (h_t = tanh(U x_t + W h_{t-1} + b)),
# a GRU three (reset, update, candidate) and an LSTM four (input, forget, cell, output).
_GATES = {"rnn": 1, "gru": 3, "lstm": 4}


class RecurrentDenoiser(GainModel):
    """``Linear(F->H) -> ReLU -> RNN(H, layers) -> Linear(H->H) -> ReLU -> Linear(H->F) -> sigmoid``.

    With ``deep_filter_frames = N > 0`` a second head, ``Linear(H -> N * D * 2) -> tanh``,
    emits complex coefficients ``c[k, f]`` for the lowest ``D = deep_filter_bins`` bins and the
    enhanced spectrum there is ``g[f] X_t[f] + sum_k c[k, f] X_{t-k}[f]``. The head starts at
    zero, so a deep filter added to a trained gain model starts out reproducing it exactly.
    With ``phase_features`` the input also holds each filtered bin's phase advance since the
    previous frame (``input_features``); those input columns start at zero too
    (``load_plain_weights``).

    State layout of one stream (``[state_size]``): the running feature mean ``[F]``, then
    the hidden state ``[layers, H]``, then for an LSTM the cell state ``[layers, H]``.
    """

    def __init__(self, features: FeatureConfig, arch: RecurrentConfig) -> None:
        super().__init__(features)
        self.arch = arch
        hidden = arch.hidden_size
        self.filter_frames = arch.deep_filter_frames
        self.filter_bins = min(arch.deep_filter_bins, self.n_bins)
        self.phase_features = arch.phase_features
        self.input_layer = nn.Linear(self.input_size, hidden)
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
        self.filter_layer: nn.Linear | None = None
        if self.filter_frames:
            if arch.deep_filter_bins > self.n_bins:
                raise ValueError(f"deep_filter_bins {arch.deep_filter_bins} > {self.n_bins} bins")
            self.filter_layer = nn.Linear(hidden, self.filter_frames * self.filter_bins * 2)
            nn.init.zeros_(self.filter_layer.weight)
            nn.init.zeros_(self.filter_layer.bias)
        self._n_hidden_tensors = 2 if arch.cell == "lstm" else 1

    @property
    def state_size(self) -> int:
        return self.n_bins + self._n_hidden_tensors * self.arch.num_layers * self.arch.hidden_size

    @property
    def input_size(self) -> int:
        return self.n_bins + (2 * self.filter_bins if self.phase_features else 0)

    def input_features(self, spectra: torch.Tensor) -> torch.Tensor:
        """Log power ``[F]``, then with ``phase_features`` the unit phasor of each filtered
        bin's advance since the previous frame, ``X_t conj(X_{t-1}) / |.|``: cos ``[D]``,
        sin ``[D]`` (0 where either frame is silent)."""
        history = self.filter_history_frames
        log_pow = log_power(spectra[:, history:], self.features)
        if not self.phase_features:
            return log_pow
        low = spectra[..., : self.filter_bins]
        advance = low[:, history:] * low[:, history - 1 : -1].conj()
        advance = advance / (advance.abs() + 1e-20)
        return torch.cat([log_pow, advance.real, advance.imag], dim=-1)

    def load_plain_weights(self, plain_state: dict[str, torch.Tensor]) -> None:
        """Start from the weights of the same model without a deep filter: its extra input
        columns and its filter head stay zero, so it reproduces that model exactly."""
        own = self.state_dict()
        state = dict(plain_state)
        weight = state.get("input_layer.weight")
        if weight is not None and weight.shape[0] == own["input_layer.weight"].shape[0]:
            widened = torch.zeros_like(own["input_layer.weight"])
            widened[:, : weight.shape[1]] = weight
            state["input_layer.weight"] = widened
        missing = sorted(set(own) - set(state))
        wrong = sorted(k for k, v in state.items() if k not in own or own[k].shape != v.shape)
        if wrong or any(not key.startswith("filter_layer.") for key in missing):
            raise ValueError(f"not this model without a deep filter: mismatched {wrong}, missing {missing}")
        self.load_state_dict(state, strict=False)
        if self.filter_layer is not None:
            nn.init.zeros_(self.filter_layer.weight)
            nn.init.zeros_(self.filter_layer.bias)

    def load_resampled_bins(self, source: RecurrentDenoiser) -> None:
        """Start from a trained model with another FFT size (another ``analysis_length``).

        The recurrent and hidden layers are copied; every per-bin weight (input columns,
        gain rows, deep filter rows) is linearly interpolated over frequency, and the input
        columns are scaled by ``source bins / own bins`` so a smooth spectrum drives the first
        layer as before. The deep filter keeps its meaning across FFT sizes because its taps
        are frames (hops) apart, and the hop is the same. Not an exact copy: a warm start for
        fine-tuning.
        """
        same = {"sample_rate", "hop_length", "win_length"}
        if any(getattr(source.features, k) != getattr(self.features, k) for k in same):
            raise ValueError("resampling bins needs the same sample rate, hop and synthesis window")
        if self.phase_features or source.phase_features:
            raise ValueError("resampling bins does not support phase features")
        if source.arch.model_copy(update={"deep_filter_bins": self.arch.deep_filter_bins}) != self.arch:
            raise ValueError("resampling bins needs the same architecture apart from deep_filter_bins")
        # own bin k lies at source bin k * (source FFT size / own FFT size): same sample rate
        source_bins_per_bin = source.features.frame_length / self.features.frame_length

        def resample(rows: torch.Tensor, n_out: int) -> torch.Tensor:
            """``[n_in, ...]`` per-bin rows -> ``[n_out, ...]``, interpolated at own bin frequencies."""
            position = (torch.arange(n_out, dtype=torch.float64) * source_bins_per_bin).clamp(
                max=rows.shape[0] - 1
            )
            low = position.floor().long()
            high = (low + 1).clamp(max=rows.shape[0] - 1)
            frac = (position - low).to(rows.dtype).reshape(-1, *([1] * (rows.ndim - 1)))
            return rows[low] * (1 - frac) + rows[high] * frac

        state = {k: v.clone() for k, v in source.state_dict().items()}
        scale = source.n_bins / self.n_bins
        state["input_layer.weight"] = (
            resample(state["input_layer.weight"].T, self.n_bins).T.contiguous() * scale
        )
        state["output_layer.weight"] = resample(state["output_layer.weight"], self.n_bins)
        state["output_layer.bias"] = resample(state["output_layer.bias"], self.n_bins)
        if self.filter_layer is not None:
            taps, hidden = self.filter_frames, self.arch.hidden_size
            for key, tail in (("filter_layer.weight", (hidden,)), ("filter_layer.bias", ())):
                # rows are ordered (tap, bin, re/im): resample the bin axis of each tap
                rows = state[key].reshape(taps, source.filter_bins, 2, *tail).transpose(0, 1)
                rows = resample(rows, self.filter_bins).transpose(0, 1)
                state[key] = rows.reshape(taps * self.filter_bins * 2, *tail).contiguous()
        self.load_state_dict(state)

    @property
    def output_size(self) -> int:
        return self.n_bins + self.filter_frames * self.filter_bins * 2

    @property
    def input_layout(self) -> str:
        if not self.phase_features:
            return super().input_layout
        low = self.filter_bins
        return f"log_power[{self.n_bins}] then cos[{low}], sin[{low}] of the phase advance"

    @property
    def output_layout(self) -> str:
        if not self.filter_frames:
            return super().output_layout
        return f"gains[{self.n_bins}] then filter[taps={self.filter_frames}, bins={self.filter_bins}, re/im]"

    @property
    def filter_history_frames(self) -> int:
        return max(self.filter_frames - 1, 0)

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

    def forward(self, inputs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``inputs [B, T, input_size]`` (see ``input_features``), ``state [B, S]`` ->
        ``output [B, T, output_size]``, new state.

        ``output`` is the gains ``[F]`` in [0, 1], then with a deep filter its coefficients,
        ``[N, D, 2]`` (tap, bin, real/imaginary) flattened, each in (-1, 1)."""
        mean, rnn_state = self._split_state(state)
        # only the log powers need their running mean removed; phasors are already unit-scale
        normalized, mean = running_mean_normalize(
            inputs[..., : self.n_bins], mean, self.features.norm_alpha, blocked=self.training
        )
        if self.phase_features:
            normalized = torch.cat([normalized, inputs[..., self.n_bins :]], dim=-1)
        x = torch.relu(self.input_layer(normalized))
        if self.training or torch.onnx.is_in_onnx_export():
            x, rnn_state = self.rnn(x, rnn_state)
            x = self.dropout(torch.relu(self.hidden_layer(self.dropout(x))))
        else:
            x, rnn_state = self._rnn_inference(x, rnn_state)
            x = torch.relu(self.hidden_layer(x))
        gains = torch.sigmoid(self.output_layer(x))
        if self.filter_layer is not None:
            gains = torch.cat([gains, torch.tanh(self.filter_layer(x))], dim=-1)
        return gains, self._join_state(mean, rnn_state)

    def apply_output(
        self,
        spectra: torch.Tensor,
        output: torch.Tensor,
        min_gain: torch.Tensor | float = 0.0,
        post_filter_beta: float = 0.0,
    ) -> torch.Tensor:
        if self.filter_layer is None:
            return super().apply_output(spectra, output, min_gain, post_filter_beta)
        history, n_taps, n_low = self.filter_history_frames, self.filter_frames, self.filter_bins
        batch, frames = output.shape[0], output.shape[1]
        output = output.float()
        current = spectra[:, history:]
        enhanced = current * output[..., : self.n_bins]
        coefs = output[..., self.n_bins :].reshape(batch, frames, n_taps, n_low, 2)
        coefs = torch.complex(coefs[..., 0], coefs[..., 1])  # [B, T, N, D]
        # tap k of frame t reads frame t - k: the last N spectra of each frame, [B, T, N, D]
        taps = torch.stack(
            [spectra[:, history - k : history - k + frames, :n_low] for k in range(n_taps)], dim=2
        )
        low = enhanced[..., :n_low] + (coefs * taps).sum(dim=2)
        enhanced = torch.cat([low, enhanced[..., n_low:]], dim=-1)
        if post_filter_beta > 0:
            # the filter's effective gain per bin: output over input magnitude
            effective = enhanced.abs() / current.abs().clamp_min(1e-12)
            enhanced = enhanced * post_filter_factor(effective, post_filter_beta)
        if isinstance(min_gain, float) and min_gain <= 0:
            return enhanced
        if isinstance(min_gain, float) and min_gain >= 1:
            return current  # a 0 dB limit: the input itself, phase included
        # The attenuation limit as a floor on each bin's output magnitude, min_gain * |X|:
        # the same as clamping the gain when there is no filter, and phase-preserving.
        magnitude, floor = enhanced.abs(), current.abs() * min_gain
        lifted = torch.where(
            magnitude > 1e-12, enhanced * (floor / magnitude.clamp_min(1e-12)), current * min_gain
        )
        limited = torch.where(magnitude < floor, lifted, enhanced)
        if isinstance(min_gain, torch.Tensor):
            # streams at a 0 dB limit get their input back unchanged, as with a float limit
            limited = torch.where(min_gain >= 1, current, limited)
        return limited

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
        head = hidden * self.output_size
        # a complex multiply-add is 4 real ones, per tap and filtered bin
        filtering = 4 * self.filter_frames * self.filter_bins
        return self.input_size * hidden + rnn + hidden * hidden + head + filtering

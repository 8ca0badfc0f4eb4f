"""The lean NumPy frame step: ``Enhancer.process_frames``'s math in fewer, larger operations.

Why it exists: a 1.2 M-parameter model costs 120 MMAC per second of audio, yet the torch
frame step took about 0.5 ms per 10 ms frame on one core, most of it per-call overhead of
some fifty small tensor operations (dispatch, autograd and inference-mode bookkeeping, module
``__call__`` hooks), not arithmetic. This module does exactly the same math in float32
NumPy with the weights pre-transposed once at load time, one matrix product per layer and
gate group, the deep filter as one complex multiply over a zero-copy complex view of the
filter head, and a 1-D FFT through ``numpy.fft`` (batched frames through ``torch.fft``,
which is faster there). It is an inference kernel only: training and offline ``enhance``
keep the torch model, which stays the reference (``tests/test_fast_step.py`` holds the two
within 1e-5, with random and shipped weights, one stream and batches).

Floor: at one stream the step reads every weight once per frame. The shipped models'
weights (4.6 MB fp32) do not fit a core's L2 cache (2 MB on the development machine), so
the matrix products run at L3 bandwidth, about 28 GB/s there: some 0.17 ms per frame of
the step is that memory traffic, which no rearrangement of the same fp32 math removes.
Batching many streams (the service) reads the weights once per batch instead.

What it covers: the recurrent family (GRU, LSTM, plain RNN, any size and depth, deep filter,
phase features, asymmetric windows) and the spliced family (any context, lookahead, spliced
labels, noise-aware input); the post-filter and attenuation limits of both. ``FastStep.build``
returns None for anything else (a model class it does not know, a model in training mode),
and the engine then keeps the torch path.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import nn

from hush.models.base import GainModel
from hush.models.features import analysis_window, synthesis_window
from hush.models.postfilter import _MIN_GAIN
from hush.models.quantize import check_precision
from hush.models.recurrent import RecurrentDenoiser
from hush.models.spliced import _MAX_COUNT, SplicedDNN

from .int8_dense import Int8Dense

# Batches at least this large take their FFTs through torch.fft: numpy.fft loops over rows
# (0.63 ms for 200 frames of 480 points against torch's 0.05 ms), while for one frame
# numpy.fft's smaller call overhead wins (6.6 us against 9.0 us).
_TORCH_FFT_MIN_BATCH = 2


def _np(tensor: torch.Tensor) -> np.ndarray:
    """A float32 C-contiguous copy of a parameter, detached from autograd."""
    return np.ascontiguousarray(tensor.detach().to(torch.float32).numpy())


def _linear(layer: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """``nn.Linear`` -> (``W^T [in, out]``, ``b [out]``): ``x @ W^T + b`` is the layer."""
    return _weight(layer.weight), torch.from_numpy(_np(layer.bias))


def _weight(weight: torch.Tensor) -> torch.Tensor:
    """A ``[out, in]`` weight as the C-contiguous ``[in, out]`` matrix ``_Dense`` reads."""
    return torch.from_numpy(_np(weight.T))


class _Dense:
    """``x [B, in] @ W^T + b`` -> a new ``[B, out]`` float32 array, in float32.

    Through torch's BLAS, not NumPy's: the same product, but NumPy's OpenBLAS took 2-3x as
    long for batches of 8 to 100 rows (the service's batched step) and no less for one row.
    """

    def __init__(self, weight_t: torch.Tensor, bias: torch.Tensor) -> None:
        self.weight_t, self.bias = weight_t, bias  # [in, out], [out]
        self.n_in = weight_t.shape[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return torch.addmm(self.bias, torch.from_numpy(x), self.weight_t).numpy()


def _dense(weight_t: torch.Tensor, bias: torch.Tensor, precision: str) -> _Dense | Int8Dense:
    return Int8Dense(weight_t, bias) if precision == "int8" else _Dense(weight_t, bias)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """In place, through torch's kernel on a view: one call (0.7 us) where NumPy needs four."""
    torch.sigmoid_(torch.from_numpy(x))
    return x


def _post_filter_factor(gains: np.ndarray, beta: float) -> np.ndarray:
    """``models.postfilter.post_filter_factor`` in NumPy (``beta > 0``)."""
    sine = np.sin(np.clip(gains, _MIN_GAIN, 1.0) * np.float32(math.pi / 2))
    return (1.0 + beta) / (1.0 + beta / np.square(sine))


class _RecurrentKernel:
    """``RecurrentDenoiser.step`` for inference.

    Output layout (not the torch model's): the deep filter coefficients first,
    ``[N, D]`` complex64 (tap, bin) as ``2 N D`` float32, then the ``F`` gains (then one
    padding column where that count is odd), so that the coefficients are an aligned
    complex view with no copy.
    """

    def __init__(self, model: RecurrentDenoiser, precision: str = "float32") -> None:
        arch = model.arch
        self.cell = arch.cell
        self.layers = arch.num_layers
        self.hidden = arch.hidden_size
        self.n_bins = model.n_bins
        self.alpha = model.features.norm_alpha
        self.n_hidden_tensors = 2 if arch.cell == "lstm" else 1
        self.phase_features = model.phase_features
        self.input = _dense(*_linear(model.input_layer), precision)
        self.rnn = []
        for layer in range(arch.num_layers):
            w_ih = _weight(getattr(model.rnn, f"weight_ih_l{layer}"))  # [in, gates * H]
            w_hh = _weight(getattr(model.rnn, f"weight_hh_l{layer}"))  # [H, gates * H]
            b_ih = torch.from_numpy(_np(getattr(model.rnn, f"bias_ih_l{layer}")))
            b_hh = torch.from_numpy(_np(getattr(model.rnn, f"bias_hh_l{layer}")))
            self.rnn.append((_dense(w_ih, b_ih, precision), _dense(w_hh, b_hh, precision)))
        self.hidden_layer = _dense(*_linear(model.hidden_layer), precision)
        self.filter_size = 0
        head_w, head_b = _linear(model.output_layer)
        if model.filter_layer is not None:
            # One product for both heads, filter columns first (see the class docstring).
            filter_w, filter_b = _linear(model.filter_layer)
            self.filter_size = filter_w.shape[1]
            head_w = torch.cat([filter_w, head_w], dim=1)
            head_b = torch.cat([filter_b, head_b])
            if head_w.shape[1] % 2:
                # one zero column keeps every row of the output 8-byte aligned, so the
                # filter's complex view is aligned for any batch size (F = 241 is odd)
                head_w = torch.nn.functional.pad(head_w, (0, 1))
                head_b = torch.nn.functional.pad(head_b, (0, 1))
        self.head = _dense(head_w, head_b, precision)

    def step(self, features: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``features [B, input_size]``, ``state [B, S]`` (float32) -> output, new state.

        The caller's arrays are not modified."""
        n_bins, hidden, layers = self.n_bins, self.hidden, self.layers
        new_state = np.empty_like(state)
        # running mean: alpha * mean + (1 - alpha) * x, rounded as the torch model rounds it
        mean = new_state[:, :n_bins]
        np.multiply(state[:, :n_bins], self.alpha, out=mean)
        mean += (1.0 - self.alpha) * features[:, :n_bins]
        if self.phase_features:
            x = features.copy()
            np.subtract(features[:, :n_bins], mean, out=x[:, :n_bins])
        else:
            x = features - mean
        x = self.input(x)
        np.maximum(x, 0.0, out=x)
        h_offset = n_bins
        c_offset = n_bins + layers * hidden
        for layer, (input_gates, hidden_gates) in enumerate(self.rnn):
            h = state[:, h_offset + layer * hidden : h_offset + (layer + 1) * hidden]
            h_new = new_state[:, h_offset + layer * hidden : h_offset + (layer + 1) * hidden]
            gi = input_gates(x)
            gh = hidden_gates(h)
            if self.cell == "gru":
                # r, z = sigmoid(gi + gh); n = tanh(gi_n + r * gh_n); h' = (h - n) z + n (ATen's order)
                rz = gi[:, : 2 * hidden]
                rz += gh[:, : 2 * hidden]
                _sigmoid(rz)
                n = gi[:, 2 * hidden :]
                gh_n = gh[:, 2 * hidden :]
                gh_n *= rz[:, :hidden]
                n += gh_n
                np.tanh(n, out=n)
                np.subtract(h, n, out=h_new)
                h_new *= rz[:, hidden:]
                h_new += n
            elif self.cell == "lstm":
                # i, f, g, o gates; c' = f c + i g; h' = o tanh(c')
                gi += gh
                c = state[:, c_offset + layer * hidden : c_offset + (layer + 1) * hidden]
                c_new = new_state[:, c_offset + layer * hidden : c_offset + (layer + 1) * hidden]
                _sigmoid(gi[:, : 2 * hidden])
                _sigmoid(gi[:, 3 * hidden :])
                np.tanh(gi[:, 2 * hidden : 3 * hidden], out=gi[:, 2 * hidden : 3 * hidden])
                np.multiply(gi[:, hidden : 2 * hidden], c, out=c_new)
                c_new += gi[:, :hidden] * gi[:, 2 * hidden : 3 * hidden]
                np.tanh(c_new, out=h_new)
                h_new *= gi[:, 3 * hidden :]
            else:  # plain RNN: h' = tanh(U x + W h + b)
                gi += gh
                np.tanh(gi, out=h_new)
            x = h_new
        x = self.hidden_layer(x)
        np.maximum(x, 0.0, out=x)
        out = self.head(x)
        if self.filter_size:
            np.tanh(out[:, : self.filter_size], out=out[:, : self.filter_size])
        _sigmoid(out[:, self.filter_size : self.filter_size + n_bins])
        return out, new_state

    def torch_layout(self, output: np.ndarray) -> np.ndarray:
        """Reorder an output to the torch model's columns (gains, then filter): for tests."""
        gains = output[:, self.filter_size : self.filter_size + self.n_bins]
        return np.concatenate([gains, output[:, : self.filter_size]], axis=1)


class _SplicedKernel:
    """``SplicedDNN.step`` for inference; its output is the torch model's, ``[B, F]`` gains."""

    def __init__(self, model: SplicedDNN, precision: str = "float32") -> None:
        arch = model.arch
        self.n_bins = model.n_bins
        self.context = model.context
        self.label_frames = arch.label_frames
        self.n_labels = model.n_labels
        self.noise_aware = arch.noise_aware
        self.alpha = model.features.norm_alpha
        self.base = model._base_state_size
        self.smooth_alpha = model._floor_smooth_alpha
        self.rise = model._floor_rise
        self.filter_size = 0
        self.layers = [_dense(*_linear(m), precision) for m in model.hidden if isinstance(m, nn.Linear)]
        self.output = _dense(*_linear(model.output_layer), precision)
        self.input_width = (self.layers[0] if self.layers else self.output).n_in

    def step(self, log_pow: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``log_pow [B, F]``, ``state [B, S]`` (float32) -> gains ``[B, F]``, new state."""
        batch = log_pow.shape[0]
        bins, k_l, m = self.n_bins, self.context, self.label_frames
        new_state = np.empty_like(state)
        # The spliced input, oldest frame first: the K + L frames kept in the state, then
        # this frame's normalised features, then (noise-aware) its a-posteriori SNR.
        spliced = np.empty((batch, self.input_width), dtype=np.float32)
        mean = new_state[:, :bins]
        np.multiply(state[:, :bins], self.alpha, out=mean)
        mean += (1.0 - self.alpha) * log_pow
        spliced[:, : k_l * bins] = state[:, bins : bins * (1 + k_l)]
        np.subtract(log_pow, mean, out=spliced[:, k_l * bins : (k_l + 1) * bins])
        if self.noise_aware:
            base = self.base
            count = state[:, base : base + 1]
            alpha = np.minimum(count / (count + 1.0), self.smooth_alpha)
            smoothed = new_state[:, base + 1 : base + 1 + bins]
            np.multiply(alpha, state[:, base + 1 : base + 1 + bins], out=smoothed)
            smoothed += (1.0 - alpha) * log_pow
            floor = new_state[:, base + 1 + bins :]
            np.minimum(state[:, base + 1 + bins :] + self.rise, smoothed, out=floor)
            # the first frame sets the floor (models.spliced.track_noise_floor)
            np.copyto(floor, smoothed, where=count <= 0)
            np.minimum(count + 1.0, _MAX_COUNT, out=new_state[:, base : base + 1])
            snr = spliced[:, (k_l + 1) * bins :]
            np.subtract(log_pow, floor, out=snr)
            np.maximum(snr, 0.0, out=snr)
        x = spliced
        for layer in self.layers:
            x = layer(x)
            np.maximum(x, 0.0, out=x)
        labels = _sigmoid(self.output(x))
        if k_l:
            new_state[:, bins : bins * (1 + k_l)] = spliced[:, bins : (k_l + 1) * bins]
        if m == 0:
            return labels, new_state
        # Spliced labels: the frame finished now was predicted at the last M steps and this
        # one, as label M - i at step t - M + i; its gain is the mean of those predictions.
        labels = labels.reshape(batch, 1, self.n_labels, bins)
        old = state[:, bins * (1 + k_l) : self.base].reshape(batch, m, self.n_labels, bins)
        history = np.concatenate([old, labels], axis=1)  # [B, M + 1, M + 1, F]
        votes = [history[:, i, m - i] for i in range(m + 1)]
        gains = np.stack(votes, axis=0).mean(axis=0, dtype=np.float32)
        new_state[:, bins * (1 + k_l) : self.base] = history[:, 1:].reshape(batch, -1)
        return gains, new_state

    def torch_layout(self, output: np.ndarray) -> np.ndarray:
        return output


_PLAIN_MODULES = (nn.Linear, nn.GRU, nn.LSTM, nn.RNN, nn.ReLU, nn.Dropout, nn.Sequential)


def _plain_float(model: GainModel) -> bool:
    """Only the stock float32 layers this kernel reads: a quantised, pruned or otherwise
    swapped-in submodule (say ``torch.ao.quantization.quantize_dynamic``'s) keeps torch."""
    children = list(model.modules())[1:]
    return all(type(m) in _PLAIN_MODULES for m in children) and all(
        p.dtype == torch.float32 for p in model.parameters()
    )


class FastStep:
    """``Enhancer.process_frames`` in NumPy for one model; read-only, shareable like the model.

    Returns NumPy arrays where the torch path returns tensors (``step_streams`` handles
    both), so gathering and scattering the rows of a batch costs NumPy slicing, not torch views.
    """

    def __init__(self, model: GainModel, kernel: _RecurrentKernel | _SplicedKernel, enhancer=None) -> None:
        # an Enhancer at a full-band rate brings its own windows; the model reads its bins
        features = enhancer.features if enhancer is not None else model.features
        self.kernel = kernel
        self.n_bins = model.n_bins  # the model's bins (all of them at its own rate)
        self.frame_length = features.frame_length
        self.win = features.win_length
        self.log_floor = model.features.log_floor
        self.fullband = enhancer is not None and enhancer.fullband
        self.to_model_level = np.float32(enhancer._to_model_level if self.fullband else 1.0)
        self.high_band = enhancer.high_band if self.fullband else None
        self.lookahead = model.lookahead_frames
        self.history = model.filter_history_frames
        self.post_filter_beta = float(model.post_filter_beta)
        self.analysis_window = analysis_window(features).numpy()
        self.synthesis_window = synthesis_window(features).numpy()
        self.filter_taps = 0
        self.filter_bins = 0
        self.phase_bins = 0
        if isinstance(model, RecurrentDenoiser):
            self.filter_taps = model.filter_frames
            self.filter_bins = model.filter_bins if model.filter_frames else 0
            self.phase_bins = model.filter_bins if model.phase_features else 0

    @classmethod
    def build(cls, model_or_enhancer, precision: str = "float32") -> FastStep | None:
        """The fast step for a model at its own rate, or for an ``Enhancer`` (any of its
        rates, full band included); None where it does not apply (torch path then): a model
        this module does not know.

        ``precision="int8"``: every matrix product with per-channel int8 weights and float32
        arithmetic (``int8_dense.Int8Dense``); not the float model's numbers."""
        check_precision(precision)
        enhancer = None if isinstance(model_or_enhancer, GainModel) else model_or_enhancer
        model = model_or_enhancer if enhancer is None else enhancer.model
        if model.training or not _plain_float(model):
            return None
        if type(model) is RecurrentDenoiser and model.arch.cell in ("gru", "lstm", "rnn"):
            return cls(model, _RecurrentKernel(model, precision), enhancer)
        if type(model) is SplicedDNN:
            return cls(model, _SplicedKernel(model, precision), enhancer)
        return None

    def agrees_with(self, enhancer, frames: int = 4, tolerance: float = 1e-4) -> bool:
        """Step ``frames`` random frames of three streams (no limit, 12 dB, 0 dB) in one
        batch, then of one stream alone (small and large batches take different product
        kernels), through this step and through ``enhancer``'s own torch ``process_frames``;
        True if every output, state and queue agree within ``tolerance`` of their scale.

        The engine asks this before it swaps the torch step out, so a change to the torch
        frame step that this module does not mirror yet keeps the torch path (with a
        warning) instead of streaming different numbers. An int8 step is compared with the
        torch step of the same int8-rounded model."""
        reference = type(enhancer).process_frames
        rng = np.random.default_rng(0)
        for rows in (3, 1):
            state_t, queue_t = enhancer.initial_state(rows)
            state_f, queue_f = state_t.numpy().copy(), queue_t.numpy().copy()
            floor = np.array([[0.0], [0.25], [1.0]], dtype=np.float32)[:rows]  # none, 12 dB, 0 dB
            for _ in range(frames):
                x = (0.1 * rng.standard_normal((rows, self.frame_length))).astype(np.float32)
                out_t, state_t, queue_t = reference(
                    enhancer, torch.from_numpy(x), state_t, queue_t, torch.from_numpy(floor)
                )
                out_f, state_f, queue_f = self.process_frames(x, state_f, queue_f, floor)
                for got, want in ((out_f, out_t), (state_f, state_t), (queue_f, queue_t)):
                    want = np.asarray(want)
                    if got.shape != want.shape or not np.all(
                        np.abs(got - want) <= tolerance * (1.0 + np.abs(want).max(initial=0.0))
                    ):
                        warnings.warn(
                            "the NumPy frame step (streaming/fast_step.py) disagrees with the torch "
                            "frame step for this model; streaming uses the torch step",
                            RuntimeWarning,
                            stacklevel=3,
                        )
                        return False
        return True

    def _rfft(self, frames: np.ndarray) -> np.ndarray:
        windowed = frames * self.analysis_window
        if frames.shape[0] >= _TORCH_FFT_MIN_BATCH:
            return torch.fft.rfft(torch.from_numpy(windowed), dim=-1).numpy()
        return np.fft.rfft(windowed, axis=-1)

    def _irfft(self, spectra: np.ndarray) -> np.ndarray:
        if spectra.shape[0] >= _TORCH_FFT_MIN_BATCH:
            frames = torch.fft.irfft(torch.from_numpy(spectra), n=self.frame_length, dim=-1).numpy()
        else:
            frames = np.fft.irfft(spectra, n=self.frame_length, axis=-1)
        return frames[:, self.frame_length - self.win :] * self.synthesis_window

    def features(self, spectrum: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Model input ``[B, input_size]`` for the newest spectrum ``[B, F]`` (and, with phase
        features, the one before it). At a full-band rate the model reads its own bins,
        scaled to its own level (``Enhancer._model_input``)."""
        if self.fullband:
            spectrum = spectrum[:, : self.n_bins] * self.to_model_level
            if previous is not None:
                previous = previous[:, : self.n_bins] * self.to_model_level
        power = np.square(spectrum.real)
        power += np.square(spectrum.imag)
        power += self.log_floor
        if not self.phase_bins:
            return np.log(power, out=power)
        bins, low = self.n_bins, self.phase_bins
        out = np.empty((spectrum.shape[0], bins + 2 * low), dtype=np.float32)
        np.log(power, out=out[:, :bins])
        advance = spectrum[:, :low] * np.conj(previous[:, :low])
        advance /= np.abs(advance) + 1e-20
        out[:, bins : bins + low] = advance.real
        out[:, bins + low :] = advance.imag
        return out

    def process_frames(
        self,
        frames: np.ndarray | torch.Tensor,
        model_state: np.ndarray | torch.Tensor,
        spec_queue: np.ndarray | torch.Tensor,
        min_gain: np.ndarray | torch.Tensor | float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``Enhancer.process_frames``: the same arguments and results (within float
        rounding), as NumPy arrays; torch tensors are taken too (zero-copy views), so a
        stream's torch initial state needs no conversion."""
        spectrum = self._rfft(np.asarray(frames))  # [B, F] complex64
        queue = np.asarray(spec_queue)
        if queue.shape[1]:
            queued = np.concatenate([queue, spectrum[:, None]], axis=1)  # [B, H + L + 1, F]
            new_queue = queued[:, 1:]
            target = queued[:, self.history]  # the frame enhanced now: L older than the newest
        else:
            queued, new_queue, target = None, queue, spectrum
        previous = queued[:, -2] if self.phase_bins else None
        output, state = self.kernel.step(self.features(spectrum, previous), np.asarray(model_state))
        if isinstance(min_gain, torch.Tensor):
            min_gain = min_gain.numpy()
        if self.fullband:
            low = self._apply(target[:, : self.n_bins], queued, output, min_gain)
            enhanced = np.concatenate([low, self._high_band(target, output, min_gain)], axis=1)
        else:
            enhanced = self._apply(target, queued, output, min_gain)
        return self._irfft(enhanced), state, new_queue

    def _high_band(self, target: np.ndarray, output: np.ndarray, min_gain: np.ndarray | float) -> np.ndarray:
        """The bins above the model's band under the high-band rule (``HighBand.gains``,
        then ``Enhancer._add_high_band``)."""
        band = self.high_band
        gains = output[:, self.kernel.filter_size : self.kernel.filter_size + self.n_bins]
        ref = gains[:, band.ref].mean(axis=1, keepdims=True, dtype=np.float32)  # [B, 1]
        if band.rule.exponent != 1.0:
            ref = np.power(ref, np.float32(band.rule.exponent))
        high_gains = np.maximum(ref, np.float32(band.rule.floor))
        if self.post_filter_beta > 0:
            high_gains = high_gains * _post_filter_factor(high_gains, self.post_filter_beta)
        if not (isinstance(min_gain, float) and min_gain <= 0):
            high_gains = np.maximum(high_gains, min_gain)
        return target[:, self.n_bins :] * high_gains

    def _apply(
        self, target: np.ndarray, queued: np.ndarray | None, output: np.ndarray, min_gain: np.ndarray | float
    ) -> np.ndarray:
        """The model's ``apply_output`` for one frame: ``target [B, F]`` complex, the queue
        ``[B, H + L + 1, F]`` it came from, the kernel's output; returns ``[B, F]`` complex."""
        taps, low = self.filter_taps, self.filter_bins
        beta = self.post_filter_beta
        floored = not (isinstance(min_gain, float) and min_gain <= 0)
        if not taps:  # gains only: post-filter, floor, multiply
            gains = output[:, : self.n_bins]
            if beta > 0:
                gains = gains * _post_filter_factor(gains, beta)
            if floored:
                gains = np.maximum(gains, min_gain)
            return target * gains
        batch = output.shape[0]
        filter_size = 2 * taps * low
        coefs = output[:, :filter_size].view(np.complex64).reshape(batch, taps, low)
        enhanced = target * output[:, filter_size : filter_size + self.n_bins]
        # tap k reads the spectrum k frames before the target: queue index H - k
        past = queued[:, self.history - taps + 1 : self.history + 1, :low][:, ::-1]
        enhanced[:, :low] += np.einsum("btf,btf->bf", coefs, past)
        if beta > 0:
            effective = np.abs(enhanced) / np.maximum(np.abs(target), 1e-12)
            enhanced *= _post_filter_factor(effective, beta)
        if not floored:
            return enhanced
        # the attenuation limit as a floor on each bin's magnitude (RecurrentDenoiser.apply_output);
        # at a 0 dB limit the input itself, phase included
        magnitude = np.abs(enhanced)
        floor = np.abs(target) * min_gain
        lifted = np.where(
            magnitude > 1e-12, enhanced * (floor / np.maximum(magnitude, 1e-12)), target * min_gain
        )
        limited = np.where(magnitude < floor, lifted, enhanced)
        limited = np.where(np.asarray(min_gain) >= 1, target, limited)
        return limited.astype(np.complex64, copy=False)

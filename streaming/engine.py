"""The shared half of the streaming engine: one loaded model plus its DSP constants.

An ``Enhancer`` is read-only after construction, so any number of streams (and threads)
can use one. Everything that belongs to a single stream lives in ``streaming.stream.Stream``
(the RNNoise ``RNNModel`` / ``DenoiseState`` split), which imports this module; this module
knows nothing of streams.

Timing: frame ``t`` is formed when input sample ``(t + 1) * hop - 1`` arrives. The model's
output at step ``t`` is the gain of spectrum frame ``t - L`` (``L`` = lookahead frames), and
after overlap-adding frame ``j`` the output is complete up to sample ``j * hop``. The output
stream is therefore the enhanced signal itself, sample-aligned with the input, emitted
``hop * (L + 1)`` samples behind it; worst case a sample waits one window plus ``L`` hops
(``latency_samples``) before it can leave.

Rates: the model runs at its own rate (16 kHz) and an ``Enhancer`` there is what it always
was. ``Enhancer.at_rate(r)`` is a view of the same model at a native rate ``r`` above it
(24, 32, 44.1, 48 kHz ...): the same frame loop with every window scaled by its duration
(960/1440/480 samples at 48 kHz), whose first bins lie exactly at the model's bin
frequencies. The model reads those (scaled back to its own level) and enhances them as at
16 kHz; the bins above get gains derived from its output (``streaming.highband``);
synthesis and overlap-add at the native rate reconstruct the input exactly where every
gain is 1. Full band, no resampler, and the same 20 ms latency at every such rate.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hush.models import GainModel
from hush.models.features import (
    analysis,
    analysis_window,
    frame_signal,
    log_power,
    overlap_add,
    synthesis,
    synthesis_window,
)
from hush.models.postfilter import post_filter_factor
from hush.models.quantize import DEFAULT_PRECISION, check_precision, round_weights_to_int8

from .fast_step import FastStep
from .highband import HighBand, HighBandRule

# Offline enhancement runs the model over at most this many frames per call (60 s), carrying
# the state across calls, so memory stays bounded for hour-long files.
_OFFLINE_BLOCK_FRAMES = 6000


def min_gain_from_db(attenuation_limit_db: float | None) -> float:
    """Gain floor for an attenuation limit: 12 dB -> 0.25. ``None`` or ``inf`` -> no floor."""
    if attenuation_limit_db is None or math.isinf(attenuation_limit_db):
        return 0.0
    if not attenuation_limit_db >= 0:
        raise ValueError(f"attenuation limit must be >= 0 dB, got {attenuation_limit_db}")
    return float(10.0 ** (-attenuation_limit_db / 20.0))


class Enhancer:
    """One model, shared by every stream that uses it.

    Args:
        model: a trained ``GainModel`` (put in eval mode here).
        name: the registry name, for logs and metrics.
        sample_rate: the rate this enhancer runs at (default: the model's own); a higher
            rate at which the model's windows are whole numbers of samples runs full-band
            (see the module docstring). Prefer ``at_rate``, which shares one view per rate.
        high_band: the rule for the bins above the model's band (full-band rates only).
        fast: step frames with the lean NumPy kernel (``fast_step.py``) where it applies;
            False keeps the torch reference path (offline ``enhance`` always uses torch).
        precision: ``"int8"`` (the default), every weight matrix rounded to a per-channel
            int8 grid (``models/quantize.py``), in the streamed step (``int8_dense.py``: a
            quarter of the weight bytes, so one stream's step reads them from L2) and in
            offline ``enhance`` alike, so streaming still equals offline
            (``bench/int8_quality.py`` checks its PESQ and STOI); or ``"float32"``, the
            weight file's own numbers.
    """

    def __init__(
        self,
        model: GainModel,
        name: str = "model",
        sample_rate: int | None = None,
        high_band: HighBandRule | None = None,
        fast: bool = True,
        precision: str = DEFAULT_PRECISION,
    ) -> None:
        check_precision(precision)
        if precision == "int8":
            model = round_weights_to_int8(model)  # the same object for every view of it
        self.model = model.eval()
        self.precision = getattr(model, "weights_precision", "float32")
        self.name = name
        self.model_rate = model.features.sample_rate
        self.features = model.features.at_rate(sample_rate or self.model_rate)
        self.sample_rate = self.features.sample_rate
        self.hop = self.features.hop_length
        self.win = self.features.win_length  # output frame: the synthesis window
        self.frame_length = self.features.frame_length  # input frame: the analysis window
        self.n_bins = self.features.n_bins
        self.lookahead_frames = model.lookahead_frames
        # the weight file's inference post-filter; read once, the model is shared
        self.post_filter_beta = model.post_filter_beta
        # The spectra a stream keeps between frames: the L it has not yet got gains for and
        # the H past ones a deep filter reads. Both are zero before the signal starts.
        self.filter_history_frames = model.filter_history_frames
        self.queue_frames = self.lookahead_frames + self.filter_history_frames
        # A model that reads only log power and emits only gains (any model without a deep
        # filter) gets the lean per-frame path.
        self._gains_only = (
            model.filter_history_frames == 0 and model.input_size == model.output_size == model.n_bins
        )
        self.analysis_window = analysis_window(self.features)
        self.synthesis_window = synthesis_window(self.features)
        # Full band: the model sees the first model_bins bins, scaled to its own level (an
        # STFT at r times the rate sums r times as many samples); the rest get high_band.
        self.fullband = self.sample_rate != self.model_rate
        self.model_bins = model.n_bins
        self._to_model_level = self.model_rate / self.sample_rate
        self.high_band_rule = high_band or HighBandRule()
        self.high_band: HighBand | None = None
        if self.fullband:
            self.high_band = HighBand(
                self.high_band_rule, self.model_bins, self.n_bins, self.sample_rate / self.frame_length
            )
        # window plus lookahead, in samples at this rate (model.latency_samples at its own)
        self.latency_samples = self.win + self.lookahead_frames * self.hop
        self.latency_ms = 1000.0 * self.latency_samples / self.sample_rate
        # Output samples a stream withholds at its start: the pre-history half frame plus
        # one hop per lookahead frame (those steps only fill the spectrum delay line).
        self.output_delay = self.hop * (self.lookahead_frames + 1)
        self._views: dict[int, Enhancer] = {self.sample_rate: self}
        self._base: Enhancer = self
        # The same frame step with a fraction of the torch path's per-call overhead (NumPy
        # arrays in and out; step_streams takes either); where it does not apply (None),
        # process_frames below runs.
        self.fast = fast
        self.fast_step = FastStep.build(self, self.precision) if fast else None
        # the step is checked against the torch step of the same (int8-rounded or not) model
        if self.fast_step is not None and not self.fast_step.agrees_with(self):
            self.fast_step = None  # it does not reproduce process_frames below: keep torch
        if self.fast_step is not None:
            self.process_frames = self.fast_step.process_frames

    # ------------------------------------------------------------------ rates
    def supports_rate(self, sample_rate: int) -> bool:
        """Whether ``at_rate(sample_rate)`` exists: the model's rate, or a higher one at which
        every window is a whole number of samples (48, 44.1, 32, 24 kHz; not 22.05 kHz)."""
        try:
            self.model.features.at_rate(sample_rate)
        except ValueError:
            return False
        return True

    def processing_rate(self, sample_rate: int) -> int:
        """The rate a signal at ``sample_rate`` is enhanced at: itself where supported (full
        band); below the model's rate, the model's (the signal is resampled up and back);
        otherwise the lowest supported multiple of it (22.05 -> 44.1 kHz), else 48 kHz."""
        if sample_rate <= self.model_rate:
            return self.model_rate
        for factor in (1, 2, 3, 4):
            if sample_rate * factor <= 192000 and self.supports_rate(sample_rate * factor):
                return sample_rate * factor
        return 48000

    def at_rate(self, sample_rate: int) -> Enhancer:
        """The view of this model at ``sample_rate`` (shared: one per rate; raises
        ``ValueError`` where ``supports_rate`` is false). Streams at one rate share it, so
        ``step_streams`` batches them."""
        base = self._base
        view = base._views.get(sample_rate)
        if view is None:
            view = Enhancer(
                base.model, base.name, sample_rate, base.high_band_rule, base.fast, base.precision
            )
            view._base = base
            base._views[sample_rate] = view
        return view

    def _model_input(self, spectra: torch.Tensor) -> torch.Tensor:
        """The part of native spectra the model reads, at its own level (identity at its rate)."""
        if not self.fullband:
            return spectra
        return spectra[..., : self.model_bins] * self._to_model_level

    def _add_high_band(
        self,
        enhanced: torch.Tensor,
        current: torch.Tensor,
        gains: torch.Tensor,
        min_gain: torch.Tensor | float,
    ) -> torch.Tensor:
        """The model's enhanced bins plus the high band of ``current`` under its gains.

        ``enhanced`` ``[..., model_bins]``, ``current`` ``[..., n_bins]`` (the same frames,
        unenhanced), ``gains`` ``[..., model_bins]`` the model's; ``[B, F]`` for one step or
        ``[B, T, F]`` for a whole signal. ``min_gain`` a float or ``[B, 1]``.
        """
        assert self.high_band is not None
        high = current[..., self.model_bins :]
        high_gains = self.high_band.gains(gains)
        if self.post_filter_beta > 0:
            high_gains = high_gains * post_filter_factor(high_gains, self.post_filter_beta)
        if isinstance(min_gain, torch.Tensor):
            floor = min_gain.reshape(-1, *([1] * (high_gains.ndim - 1)))
            high_gains = torch.maximum(high_gains, floor)
        elif min_gain > 0:
            high_gains = torch.clamp(high_gains, min=min_gain)
        return torch.cat([enhanced, high * high_gains], dim=-1)

    # ------------------------------------------------------------------ batched frame step
    def initial_state(self, batch_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """State ``[B, S]`` and spectrum queue ``[B, H + L, F]`` (complex) of new streams
        (the high band of a full-band rate keeps no state)."""
        spec_queue = torch.zeros(batch_size, self.queue_frames, self.n_bins, dtype=torch.complex64)
        return self.model.initial_state(batch_size), spec_queue

    @torch.inference_mode()
    def process_frames(
        self,
        frames: torch.Tensor,
        model_state: torch.Tensor,
        spec_queue: torch.Tensor,
        min_gain: torch.Tensor | float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance ``B`` independent streams by one frame each, in one model call.

        Args:
            frames: ``[B, frame_length]`` newest input frame of each stream (float32 samples).
            model_state: ``[B, S]`` stacked model states.
            spec_queue: ``[B, H + L, F]`` complex: the ``H`` spectra before the one being
                enhanced, then the ``L`` still waiting for their gains (both may be 0).
            min_gain: gain floor, a float or ``[B, 1]`` (per-stream attenuation limits).
        Returns:
            ``[B, win]`` windowed output frames to overlap-add, new model state, new queue.
        """
        spectrum = analysis(frames, self.analysis_window)
        if self._gains_only:
            return self._process_gains_only(spectrum, model_state, spec_queue, min_gain)
        floor = min_gain
        if self.queue_frames:
            queued = torch.cat([spec_queue, spectrum.unsqueeze(1)], dim=1)  # [B, H + L + 1, F]
            spec_queue = queued[:, 1:]
        else:
            queued = spectrum.unsqueeze(1)
        # the model reads the newest frame (and the H before it), and its output enhances
        # the frame L steps older (with the H before that)
        inputs = self.model.input_features(self._model_input(queued[:, self.lookahead_frames :]))[:, 0]
        output, model_state = self.model.step(inputs, model_state)
        if isinstance(min_gain, torch.Tensor):
            min_gain = min_gain.unsqueeze(-1)  # [B, 1, 1] for [B, T, F]
        spectra = queued[:, : self.filter_history_frames + 1]
        enhanced = self.model.apply_output(
            spectra[..., : self.model_bins], output.unsqueeze(1), min_gain, self.post_filter_beta
        )[:, 0]
        if self.fullband:
            enhanced = self._add_high_band(enhanced, spectra[:, -1], output[:, : self.model_bins], floor)
        return synthesis(enhanced, self.synthesis_window, self.frame_length), model_state, spec_queue

    def _process_gains_only(
        self,
        spectrum: torch.Tensor,
        model_state: torch.Tensor,
        spec_queue: torch.Tensor,
        min_gain: torch.Tensor | float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``process_frames`` for a model that reads log power and emits only gains: the
        same numbers with fewer tensor views, since this runs every 10 ms for every stream."""
        gains, model_state = self.model.step(
            log_power(self._model_input(spectrum), self.model.features), model_state
        )
        if self.lookahead_frames:
            spec_queue = torch.cat([spec_queue, spectrum.unsqueeze(1)], dim=1)
            spectrum, spec_queue = spec_queue[:, 0], spec_queue[:, 1:]
        # post-filter, floor and multiply: the model's own output step, which is elementwise
        # for a model without a deep filter, so [B, F] spectra and gains need no time axis
        if not self.fullband:
            enhanced = self.model.apply_output(spectrum, gains, min_gain, self.post_filter_beta)
            return synthesis(enhanced, self.synthesis_window), model_state, spec_queue
        enhanced = self.model.apply_output(
            spectrum[:, : self.model_bins], gains, min_gain, self.post_filter_beta
        )
        enhanced = self._add_high_band(enhanced, spectrum, gains, min_gain)
        return synthesis(enhanced, self.synthesis_window, self.frame_length), model_state, spec_queue

    # ------------------------------------------------------------------ offline path
    def total_frames(self, n_samples: int) -> int:
        """Frames (model steps) needed so that all ``n_samples`` of output are complete."""
        return math.ceil(n_samples / self.hop) + self.lookahead_frames + 1

    @torch.inference_mode()
    def enhance(self, audio: np.ndarray, attenuation_limit_db: float | None = None) -> np.ndarray:
        """Enhance a whole signal with the batched (sequence) path.

        Args:
            audio: ``[S]`` float samples at ``sample_rate``.
            attenuation_limit_db: cap on noise attenuation; ``None`` means unlimited.
        Returns:
            ``[S]`` float32 enhanced audio, time-aligned with the input.
        """
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"expected mono audio [S], got shape {audio.shape}")
        n_samples = audio.shape[0]
        if n_samples == 0:
            return audio.copy()
        n_frames = self.total_frames(n_samples)
        padded = np.zeros(n_frames * self.hop, dtype=np.float32)
        padded[:n_samples] = audio
        frames = frame_signal(torch.from_numpy(padded).unsqueeze(0), self.features)  # [1, T, frame]
        spectrum = analysis(frames, self.analysis_window)  # [1, T, F]
        spectrum = self.model.with_filter_history(spectrum)  # [1, H + T, F]
        features = self.model.input_features(self._model_input(spectrum))
        state = self.model.initial_state(1)
        output_blocks = []
        for start in range(0, n_frames, _OFFLINE_BLOCK_FRAMES):
            output, state = self.model(features[:, start : start + _OFFLINE_BLOCK_FRAMES], state)
            output_blocks.append(output)
        output = torch.cat(output_blocks, dim=1)[:, self.lookahead_frames :]  # frame j's at index j
        spectrum = spectrum[:, : self.filter_history_frames + n_frames - self.lookahead_frames]
        min_gain = min_gain_from_db(attenuation_limit_db)
        enhanced = self.model.apply_output(
            spectrum[..., : self.model_bins], output, min_gain, self.post_filter_beta
        )
        if self.fullband:
            current = spectrum[:, self.filter_history_frames :]
            enhanced = self._add_high_band(enhanced, current, output[..., : self.model_bins], min_gain)
        out = overlap_add(synthesis(enhanced, self.synthesis_window, self.frame_length), self.hop)[0]
        # out[0] is input sample -hop (the first frame starts half a window before the signal).
        return out[self.hop : self.hop + n_samples].numpy().copy()

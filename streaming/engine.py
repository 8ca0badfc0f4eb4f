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

from .fast_step import FastStep

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
        fast: step frames with the lean NumPy kernel (``fast_step.py``) where it applies;
            False keeps the torch reference path (offline ``enhance`` always uses torch).
        precision: ``"float32"``, or ``"int8"`` (opt-in: int8 matrix products in the fast
            step, not the float numbers; ``bench/int8_quality.py`` checks its PESQ). Where
            the fast step does not apply, the torch path runs in float32 whatever this says.
    """

    def __init__(
        self, model: GainModel, name: str = "model", fast: bool = True, precision: str = "float32"
    ) -> None:
        self.model = model.eval()
        self.name = name
        self.features = model.features
        self.sample_rate = model.features.sample_rate
        self.hop = model.features.hop_length
        self.win = model.features.win_length  # output frame: the synthesis window
        self.frame_length = model.features.frame_length  # input frame: the analysis window
        self.n_bins = model.features.n_bins
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
            model.filter_history_frames == 0 and model.input_size == model.output_size == self.n_bins
        )
        self.analysis_window = analysis_window(self.features)
        self.synthesis_window = synthesis_window(self.features)
        self.latency_samples = model.latency_samples
        self.latency_ms = 1000.0 * self.latency_samples / self.sample_rate
        # Output samples a stream withholds at its start: the pre-history half frame plus
        # one hop per lookahead frame (those steps only fill the spectrum delay line).
        self.output_delay = self.hop * (self.lookahead_frames + 1)
        # The same frame step with a fraction of the torch path's per-call overhead (NumPy
        # arrays in and out; step_streams takes either); where it does not apply (None),
        # process_frames below runs.
        self.fast_step = FastStep.build(self.model, precision) if fast else None
        if self.fast_step is not None and not FastStep.build(self.model).agrees_with(self):
            self.fast_step = None  # it does not reproduce process_frames below: keep torch
        # int8 lives in the fast step only; where that does not apply, torch runs in float32
        self.precision = precision if self.fast_step is not None else "float32"
        if self.fast_step is not None:
            self.process_frames = self.fast_step.process_frames

    # ------------------------------------------------------------------ batched frame step
    def initial_state(self, batch_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Model state ``[B, S]`` and spectrum queue ``[B, H + L, F]`` (complex) of new streams."""
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
        if self.queue_frames:
            queued = torch.cat([spec_queue, spectrum.unsqueeze(1)], dim=1)  # [B, H + L + 1, F]
            spec_queue = queued[:, 1:]
        else:
            queued = spectrum.unsqueeze(1)
        # the model reads the newest frame (and the H before it), and its output enhances
        # the frame L steps older (with the H before that)
        inputs = self.model.input_features(queued[:, self.lookahead_frames :])[:, 0]
        output, model_state = self.model.step(inputs, model_state)
        if isinstance(min_gain, torch.Tensor):
            min_gain = min_gain.unsqueeze(-1)  # [B, 1, 1] for [B, T, F]
        spectra = queued[:, : self.filter_history_frames + 1]
        enhanced = self.model.apply_output(spectra, output.unsqueeze(1), min_gain, self.post_filter_beta)[
            :, 0
        ]
        return synthesis(enhanced, self.synthesis_window), model_state, spec_queue

    def _process_gains_only(
        self,
        spectrum: torch.Tensor,
        model_state: torch.Tensor,
        spec_queue: torch.Tensor,
        min_gain: torch.Tensor | float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``process_frames`` for a model that reads log power and emits only gains: the
        same numbers with fewer tensor views, since this runs every 10 ms for every stream."""
        gains, model_state = self.model.step(log_power(spectrum, self.features), model_state)
        if self.lookahead_frames:
            spec_queue = torch.cat([spec_queue, spectrum.unsqueeze(1)], dim=1)
            spectrum, spec_queue = spec_queue[:, 0], spec_queue[:, 1:]
        # post-filter, floor and multiply: the model's own output step, which is elementwise
        # for a model without a deep filter, so [B, F] spectra and gains need no time axis
        enhanced = self.model.apply_output(spectrum, gains, min_gain, self.post_filter_beta)
        return synthesis(enhanced, self.synthesis_window), model_state, spec_queue

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
        features = self.model.input_features(spectrum)
        state = self.model.initial_state(1)
        output_blocks = []
        for start in range(0, n_frames, _OFFLINE_BLOCK_FRAMES):
            output, state = self.model(features[:, start : start + _OFFLINE_BLOCK_FRAMES], state)
            output_blocks.append(output)
        output = torch.cat(output_blocks, dim=1)[:, self.lookahead_frames :]  # frame j's at index j
        spectrum = spectrum[:, : self.filter_history_frames + n_frames - self.lookahead_frames]
        enhanced = self.model.apply_output(
            spectrum, output, min_gain_from_db(attenuation_limit_db), self.post_filter_beta
        )
        out = overlap_add(synthesis(enhanced, self.synthesis_window), self.hop)[0]
        # out[0] is input sample -hop (the first frame starts half a window before the signal).
        return out[self.hop : self.hop + n_samples].numpy().copy()

"""Shared fixtures: tiny models (fast), weight folders and synthetic test audio.

Unit tests never use the corpus or the shipped weights' quality: tiny randomly initialised
models exercise every code path in milliseconds. Randomly initialised weights exist only
here, in temporary folders, never in the registry's shipped folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hush.models import FeatureConfig, RecurrentConfig, SplicedConfig, build_model, save_weights
from hush.models.base import GainModel

TINY_ARCHS = {
    "gru": RecurrentConfig(cell="gru", hidden_size=24, num_layers=2, dropout=0.0),
    "lstm": RecurrentConfig(cell="lstm", hidden_size=16, num_layers=2, dropout=0.0),
    "rnn": RecurrentConfig(cell="rnn", hidden_size=16, num_layers=1, dropout=0.0),
    "gru-deep-filter": RecurrentConfig(
        cell="gru",
        hidden_size=16,
        num_layers=1,
        dropout=0.0,
        deep_filter_frames=3,
        deep_filter_bins=40,
        phase_features=True,
    ),
    # asymmetric analysis window (30 ms FFT, 20 ms synthesis): see TINY_FEATURES
    "gru-asymmetric": RecurrentConfig(
        cell="gru", hidden_size=16, num_layers=1, dropout=0.0, deep_filter_frames=2, deep_filter_bins=60
    ),
    "dnn": SplicedConfig(past_frames=3, future_frames=0, hidden_sizes=(32,), dropout=0.0),
    "dnn-lookahead": SplicedConfig(past_frames=2, future_frames=2, label_frames=1, hidden_sizes=(32,)),
    "dnn-noise-aware": SplicedConfig(
        past_frames=2, future_frames=1, label_frames=1, hidden_sizes=(32,), noise_aware=True
    ),
}

# DSP settings of the kinds that do not use the defaults
TINY_FEATURES = {"gru-asymmetric": FeatureConfig(analysis_length=480)}


def tiny_model(kind: str, seed: int = 0) -> GainModel:
    torch.manual_seed(seed)
    model = build_model(TINY_FEATURES.get(kind, FeatureConfig()), TINY_ARCHS[kind]).eval()
    head = getattr(model, "filter_layer", None)
    if head is not None:
        # a deep filter head starts at zero (inert); randomise it so tests exercise the filter
        torch.nn.init.normal_(head.weight, std=0.5)
    return model


def speech_like(
    seconds: float, rate: int = 16000, seed: int = 0, channels: int | None = None, noise: float = 0.02
) -> np.ndarray:
    """Harmonic 'vowels' with syllable-rate envelope and pauses, plus white noise of standard
    deviation ``noise`` (0: the clean signal; same seed, same vowels): float32, [S] or [S, C]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 20))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 2 * (np.sin(2 * np.pi * 0.3 * t) > -0.5)
    signal = 0.1 * voiced * envelope + noise * rng.standard_normal(n)
    signal = signal.astype(np.float32)
    if channels is None:
        return signal
    return np.stack([np.roll(signal, 37 * c) * (1 - 0.2 * c) for c in range(channels)], axis=1)


@pytest.fixture(params=list(TINY_ARCHS))
def any_tiny_model(request) -> GainModel:
    return tiny_model(request.param)


@pytest.fixture
def weights_dir(tmp_path: Path) -> Path:
    """A folder with tiny 'gru' and 'dnn' weight files, as a user's --models-dir."""
    folder = tmp_path / "weights"
    save_weights(tiny_model("gru"), folder, "tiny-gru")
    save_weights(tiny_model("dnn"), folder, "tiny-dnn")
    return folder


def stream_in_chunks(enhancer, signal: np.ndarray, sizes: list[int]):
    """Feed ``signal`` to a new ``Stream`` in chunks of ``sizes`` (cycled), then flush;
    returns the concatenated output and the stream."""
    from hush.streaming import Stream

    stream = Stream(enhancer)
    out, pos, i = [], 0, 0
    while pos < signal.shape[0]:
        size = sizes[i % len(sizes)]
        out.append(stream.feed(signal[pos : pos + size]))
        pos += size
        i += 1
    out.append(stream.flush())
    return np.concatenate(out), stream


def stream_batched(streams: list, signals: list[np.ndarray], seed: int, max_chunk: int) -> list[np.ndarray]:
    """Push each signal into its stream in random chunks of 0..max_chunk-1 samples, step all
    the streams together with ``step_streams`` after every round, and flush at the end.
    Returns each stream's whole output ``[n_samples]``."""
    from hush.streaming import step_streams

    outputs: list[list[np.ndarray]] = [[] for _ in streams]
    rng = np.random.default_rng(seed)
    positions = [0] * len(streams)
    while any(p < len(x) for p, x in zip(positions, signals, strict=True)):
        for i, (stream, x) in enumerate(zip(streams, signals, strict=True)):
            n = int(rng.integers(0, max_chunk))
            stream.push(x[positions[i] : positions[i] + n])
            positions[i] += n
        while step_streams(streams):
            pass
        for i, stream in enumerate(streams):
            outputs[i].append(stream.pop_output())
    return [np.concatenate([*out, stream.flush()]) for out, stream in zip(outputs, streams, strict=True)]

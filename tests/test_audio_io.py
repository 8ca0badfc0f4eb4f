"""Reading, writing and resampling audio; enhancing signals at any rate and channel count."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import speech_like, tiny_model
from hush.streaming import Enhancer
from hush.streaming.audio_io import RateAdaptedStream, StreamResampler, enhance_signal, resample

ENHANCER = Enhancer(tiny_model("gru"))
RATES = [8000, 11025, 22050, 44100, 48000]


@settings(max_examples=30, deadline=None)
@given(
    rates=st.sampled_from([(48000, 16000), (16000, 48000), (44100, 16000), (16000, 22050), (8000, 16000)]),
    sizes=st.lists(st.integers(0, 900), min_size=1, max_size=12).filter(lambda s: sum(s) > 0),
)
def test_stream_resampler_is_chunk_invariant_and_exact_in_length(rates, sizes):
    rate_in, rate_out = rates
    x = speech_like(0.3, rate=rate_in, seed=len(sizes))
    whole = resample(x, rate_in, rate_out)
    assert whole.shape == (round(x.shape[0] * rate_out / rate_in),)
    converter, parts, pos, i = StreamResampler(rate_in, rate_out), [], 0, 0
    while pos < x.shape[0]:
        parts.append(converter.process(x[pos : pos + sizes[i % len(sizes)]]))
        pos += sizes[i % len(sizes)]
        i += 1
    parts.append(converter.flush())
    assert np.array_equal(np.concatenate(parts), whole)


def test_resampling_is_time_aligned():
    rate = 48000
    t = np.arange(rate) / rate
    tone = (np.sin(2 * np.pi * 440 * t) * np.hanning(rate)).astype(np.float32)
    down = resample(tone, rate, 16000)
    t16 = np.arange(16000) / 16000
    expected = np.sin(2 * np.pi * 440 * t16) * np.hanning(rate)[::3]
    assert np.abs(down - expected)[200:-200].max() < 1e-3


@pytest.mark.parametrize("rate", RATES)
def test_rate_adapted_stream_equals_offline_at_any_rate(rate):
    x = speech_like(0.8, rate=rate, seed=rate)
    offline = enhance_signal(ENHANCER, x, rate)
    stream = RateAdaptedStream(ENHANCER, rate)
    rng = np.random.default_rng(rate)
    parts, pos = [], 0
    while pos < x.shape[0]:
        n = int(rng.integers(0, 1500))
        parts.append(stream.feed(x[pos : pos + n]))
        pos += n
    parts.append(stream.flush())
    streamed = np.concatenate(parts)
    assert streamed.shape == x.shape
    assert np.abs(streamed - offline).max() < 1e-5


@pytest.mark.parametrize("rate", [16000, 48000])
def test_rate_adapted_stream_holds_back_little(rate):
    """Output never lags input by more than the model latency plus a few ms of resampling."""
    x = speech_like(1.0, rate=rate)
    stream = RateAdaptedStream(ENHANCER, rate)
    chunk = rate // 100
    worst = 0
    out = 0
    for pos in range(0, x.shape[0], chunk):
        out += stream.feed(x[pos : pos + chunk]).shape[0]
        worst = max(worst, pos + chunk - out)
    budget_ms = 20.0 + (8.0 if rate != 16000 else 0.0)
    assert worst / rate * 1000 <= budget_ms


def test_stereo_channels_are_enhanced_independently():
    stereo = speech_like(0.5, rate=44100, channels=2)
    both = enhance_signal(ENHANCER, stereo, 44100)
    left = enhance_signal(ENHANCER, stereo[:, 0], 44100)
    assert both.shape == stereo.shape
    assert np.array_equal(both[:, 0], left)

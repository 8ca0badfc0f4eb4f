"""Streaming equals offline enhancement for any chunking; batched streams equal single ones."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TINY_ARCHS, speech_like, stream_batched, stream_in_chunks, tiny_model
from hush.streaming import Enhancer, Stream, StreamFinishedError

ENHANCERS = {kind: Enhancer(tiny_model(kind), kind) for kind in TINY_ARCHS}


def _with_post_filter(kind: str, beta: float = 0.1) -> Enhancer:
    model = tiny_model(kind)
    model.post_filter_beta = beta
    return Enhancer(model, f"{kind}+post-filter")


# the post-filter runs in both engine paths: the deep-filter one and the lean gains-only one
ENHANCERS.update({f"{kind}+post-filter": _with_post_filter(kind) for kind in ("gru-deep-filter", "dnn")})
SIGNAL = speech_like(1.3, seed=3)
OFFLINE = {kind: e.enhance(SIGNAL) for kind, e in ENHANCERS.items()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(list(ENHANCERS)),
    sizes=st.lists(
        st.one_of(st.integers(0, 9), st.integers(10, 400), st.sampled_from([160, 320, 16000])),
        min_size=1,
        max_size=30,
    ).filter(lambda s: sum(s) > 0),
)
def test_streaming_equals_offline_for_any_chunking(kind, sizes):
    streamed, stream = stream_in_chunks(ENHANCERS[kind], SIGNAL, sizes)
    assert streamed.shape == SIGNAL.shape
    assert np.abs(streamed - OFFLINE[kind]).max() <= 1e-5
    assert stream.samples_out == stream.samples_in == SIGNAL.shape[0]


@settings(max_examples=25, deadline=None)
@given(length=st.integers(1, 2000), chunk=st.integers(1, 500))
def test_any_length_comes_back_whole(length, chunk):
    enhancer = ENHANCERS["dnn-lookahead"]
    signal = speech_like(length / 16000 + 0.01, seed=length)[:length]
    streamed, _ = stream_in_chunks(enhancer, signal, [chunk])
    offline = enhancer.enhance(signal)
    assert streamed.shape == offline.shape == (length,)
    assert np.abs(streamed - offline).max() <= 1e-5


def test_output_is_time_aligned_with_input():
    """With all gains at 1 the engine is an identity: no delay, no loss at the edges."""
    import torch

    model = tiny_model("gru")
    with torch.no_grad():
        model.output_layer.bias.fill_(60.0)  # sigmoid -> 1.0
    enhancer = Enhancer(model)
    out, _ = stream_in_chunks(enhancer, SIGNAL, [123])
    assert np.abs(out - SIGNAL).max() < 1e-5
    assert np.abs(enhancer.enhance(SIGNAL) - SIGNAL).max() < 1e-5


def test_output_held_back_is_at_most_the_latency():
    enhancer = ENHANCERS["gru"]
    stream = Stream(enhancer)
    got = 0
    for start in range(0, 16000, 7):
        got += stream.feed(SIGNAL[start : start + 7]).shape[0]
        assert 0 <= stream.samples_in - got < stream.latency_samples
    assert stream.latency_samples == 320 and stream.latency_ms == 20.0


@pytest.mark.parametrize("kind", ["lstm", "gru-deep-filter", "dnn-lookahead", "dnn+post-filter"])
def test_many_streams_in_one_model_call_equal_each_alone(kind):
    """Also for the models whose streams keep past or pending spectra between frames."""
    enhancer = ENHANCERS[kind]
    signals = [speech_like(0.6, seed=s) * (1 + s) for s in range(5)]
    alone = [enhancer.enhance(x) for x in signals]
    streams = [Stream(enhancer) for _ in signals]
    for got, expected in zip(stream_batched(streams, signals, seed=0, max_chunk=500), alone, strict=True):
        assert np.abs(got - expected).max() <= 1e-5


def test_reset_starts_over_and_flush_ends_the_stream():
    enhancer = ENHANCERS["gru"]
    stream = Stream(enhancer)
    first = np.concatenate([stream.feed(SIGNAL), stream.flush()])
    with pytest.raises(StreamFinishedError):
        stream.feed(SIGNAL[:10])
    stream.reset()
    second = np.concatenate([stream.feed(SIGNAL), stream.flush()])
    assert np.array_equal(first, second)


def test_empty_stream_flushes_to_nothing():
    stream = Stream(ENHANCERS["gru"])
    assert stream.feed(np.zeros(0, dtype=np.float32)).shape == (0,)
    assert stream.flush().shape == (0,)


def test_bad_chunks_are_rejected_clearly():
    stream = Stream(ENHANCERS["gru"])
    with pytest.raises(ValueError, match="NaN"):
        stream.feed(np.array([0.0, np.nan], dtype=np.float32))
    with pytest.raises(ValueError, match="1-D"):
        stream.feed(np.zeros((10, 2), dtype=np.float32))


def test_attenuation_limit_floors_the_gain():
    enhancer = ENHANCERS["gru"]
    noise = (0.05 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    limited = enhancer.enhance(noise, attenuation_limit_db=6.0)
    free = enhancer.enhance(noise)
    # with a 6 dB cap the output keeps at least half the amplitude in every bin
    assert np.sqrt(np.mean(limited**2)) >= 0.5 * np.sqrt(np.mean(noise**2)) * 0.9
    assert np.sqrt(np.mean(limited**2)) >= np.sqrt(np.mean(free**2)) - 1e-7
    stream = Stream(enhancer, attenuation_limit_db=6.0)
    out = np.concatenate([stream.feed(noise), stream.flush()])
    assert np.abs(out - limited).max() <= 1e-5
    # the same floor for a deep-filter model, offline and streamed
    filtered = ENHANCERS["gru-deep-filter"]
    limited = filtered.enhance(noise, attenuation_limit_db=6.0)
    assert np.sqrt(np.mean(limited**2)) >= np.sqrt(np.mean(filtered.enhance(noise) ** 2)) - 1e-7
    stream = Stream(filtered, attenuation_limit_db=6.0)
    assert np.abs(np.concatenate([stream.feed(noise), stream.flush()]) - limited).max() <= 1e-5
    with pytest.raises(ValueError):
        Stream(enhancer, attenuation_limit_db=-3)

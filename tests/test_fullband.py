"""Full band (issue 21): rates above the model's run natively, keep and denoise everything
above 8 kHz, pass audio through unchanged at a 0 dB limit, and stream exactly as offline."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_util import make_settings, running_app, stream_through

from conftest import speech_like, stream_batched, stream_in_chunks, tiny_model
from hush.evaluation.metrics import lsd_high_band
from hush.models import ModelRegistry
from hush.streaming import Enhancer, Stream
from hush.streaming.audio_io import RateAdaptedStream, enhance_signal

RATES = (48000, 44100)


def _band_db(x: np.ndarray, rate: int, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(x.shape[0], 1 / rate)
    return float(10 * np.log10(spec[(freqs >= lo) & (freqs < hi)].mean()))


def _white(rate: int, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    return (0.03 * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


@pytest.fixture(scope="module")
def gru() -> Enhancer:
    model, meta = ModelRegistry().load("gru")  # the shipped model: a deep filter, 30 ms analysis
    return Enhancer(model, meta.name)


# ---------------------------------------------------------------------------- rates
def test_which_rates_run_natively(gru):
    assert gru.at_rate(16000) is gru and not gru.fullband
    for rate in (24000, 32000, 44100, 48000, 96000):
        view = gru.at_rate(rate)
        assert view.fullband and view.model is gru.model and gru.at_rate(rate) is view  # one view per rate
        assert view.processing_rate(rate) == rate
        assert view.hop == rate // 100 and view.frame_length == 3 * rate // 100
        assert view.latency_ms == 20.0 and view.output_delay == view.hop
    assert gru.at_rate(44100).frame_length == 1323  # an odd FFT
    assert gru.processing_rate(22050) == 44100  # 10 ms is 220.5 samples: run at twice the rate
    assert gru.processing_rate(8000) == gru.processing_rate(11025) == 16000
    with pytest.raises(ValueError):
        gru.at_rate(22050)


# ---------------------------------------------------------------------------- pass-through
@pytest.mark.parametrize("rate", RATES)
def test_zero_db_limit_passes_everything_through(gru, rate):
    """Issue 21's user test: white noise at 48 (44.1) kHz with a 0 dB attenuation limit comes
    back unchanged at every frequency, to float precision (the band split is the STFT's own
    perfect reconstruction, with every gain exactly 1)."""
    noise = _white(rate, 3.0)
    out = enhance_signal(gru, noise, rate, attenuation_limit_db=0.0)
    assert out.shape == noise.shape
    assert np.abs(out - noise).max() < 1e-6
    for lo, hi in ((1000, 4000), (8500, 12000), (12000, 20000)):
        assert abs(_band_db(out, rate, lo, hi) - _band_db(noise, rate, lo, hi)) < 0.01
    stream = RateAdaptedStream(gru, rate, attenuation_limit_db=0.0)
    assert not stream.resampled
    streamed = np.concatenate([stream.feed(noise[:12345]), stream.feed(noise[12345:]), stream.flush()])
    assert np.abs(streamed - noise).max() < 1e-6


@pytest.mark.parametrize("rate", RATES)
def test_hush_enhance_at_0_db_writes_a_16_bit_file_back_sample_for_sample(tmp_path, rate):
    """The user's check, end to end: a 16-bit file through ``hush enhance --attenuation-limit 0``
    comes back identical (the writer rounds to the nearest step; libsndfile alone rounds
    down, so float rounding in the STFT would cost a step in a third of the samples)."""
    from typer.testing import CliRunner

    from hush.cli import app

    source, target = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(source, np.clip(4 * _white(rate, 1.0), -1, 1), rate, subtype="PCM_16")
    result = CliRunner().invoke(
        app, ["enhance", str(source), "-o", str(target), "--attenuation-limit", "0", "-q"]
    )
    assert result.exit_code == 0, result.output
    original, _ = sf.read(source, dtype="int16")
    enhanced, out_rate = sf.read(target, dtype="int16")
    assert out_rate == rate and np.array_equal(original, enhanced)


def test_zero_db_limit_is_exact_at_16_khz_too(gru):
    """The deep filter used to leave its phase at 0 dB (31.5 dB in, 31.2 out in 1-4 kHz)."""
    noise = _white(16000, 2.0)
    assert np.abs(gru.enhance(noise, attenuation_limit_db=0.0) - noise).max() < 1e-6
    streams = [Stream(gru, attenuation_limit_db=0.0), Stream(gru, attenuation_limit_db=12.0)]
    out = stream_batched(streams, [noise, noise], seed=1, max_chunk=400)  # a per-stream limit tensor
    assert np.abs(out[0] - noise).max() < 1e-6
    assert np.abs(out[1] - gru.enhance(noise, attenuation_limit_db=12.0)).max() < 1e-5


# ---------------------------------------------------------------------------- the high band
@pytest.mark.parametrize("rate", RATES)
def test_high_band_is_kept_and_reduced_by_the_models_own_gain(rate):
    """A model whose gains are all 0.5 (deep filter off): below 8 kHz the output is half the
    input; above, the shipped rule gives 0.5 ** 0.75, -4.5 dB."""
    model = tiny_model("gru-asymmetric")
    with torch.no_grad():
        model.output_layer.weight.zero_()
        model.output_layer.bias.zero_()  # sigmoid(0) = 0.5
        model.filter_layer.weight.zero_()
        model.filter_layer.bias.zero_()
    view = Enhancer(model).at_rate(rate)
    noise = _white(rate, 2.0)
    out = view.enhance(noise)
    low = _band_db(out, rate, 1000, 7000) - _band_db(noise, rate, 1000, 7000)
    assert low == pytest.approx(-6.02, abs=0.1)
    for lo, hi in ((8500, 12000), (12000, 20000)):
        assert _band_db(out, rate, lo, hi) - _band_db(noise, rate, lo, hi) == pytest.approx(-4.52, abs=0.1)


@pytest.mark.parametrize("rate", RATES)
def test_shipped_model_denoises_the_high_band(gru, rate):
    """Speech-like harmonics in white noise: the high band is turned down (not cut off: it
    stays far above the -60 dB of a 16 kHz round trip), and the output is closer to the clean
    high band than the input is."""
    clean = speech_like(2.0, rate, seed=1, noise=0.0)
    noisy = speech_like(2.0, rate, seed=1, noise=0.02)
    out = enhance_signal(gru, noisy, rate)
    drop = _band_db(out, rate, 8500, 20000) - _band_db(noisy, rate, 8500, 20000)
    assert -40 < drop < -3
    assert lsd_high_band(clean, out, rate) < lsd_high_band(clean, noisy, rate)


def test_below_8_khz_the_native_path_matches_the_16_khz_model(gru):
    """Content below 8 kHz: the 48 kHz view's output, taken back to 16 kHz, is close to the
    16 kHz engine's (the bins lie at the same frequencies; only windowing detail differs).
    The signal is band-limited below 6.3 kHz first, so that both engines see the same
    content: the resampler's roll-off above 7.2 kHz would otherwise show the 16 kHz model a
    different top band from the native path's, and its gains depend on it."""
    from hush.streaming.audio_io import resample

    x48 = resample(resample(speech_like(2.0, 48000, seed=4, noise=0.02), 48000, 14000), 14000, 48000)
    x16 = resample(x48, 48000, 16000)
    y16 = gru.enhance(x16)
    y48 = resample(gru.at_rate(48000).enhance(x48), 48000, 16000)
    error = y48 - y16
    assert 10 * np.log10(np.sum(y16**2) / np.sum(error**2)) > 20  # measured 28 dB


# ---------------------------------------------------------------------------- streaming
FULLBAND = {
    "gru-deep-filter@48k": Enhancer(tiny_model("gru-deep-filter"), "gru-deep-filter").at_rate(48000),
    "gru-asymmetric@44.1k": Enhancer(tiny_model("gru-asymmetric"), "gru-asymmetric").at_rate(44100),
    "dnn-lookahead@48k": Enhancer(tiny_model("dnn-lookahead"), "dnn-lookahead").at_rate(48000),
}
SIGNALS = {rate: speech_like(0.7, rate, seed=3) for rate in RATES}
OFFLINE = {kind: e.enhance(SIGNALS[e.sample_rate]) for kind, e in FULLBAND.items()}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(list(FULLBAND)),
    sizes=st.lists(
        st.one_of(st.integers(0, 9), st.integers(10, 1500), st.sampled_from([441, 480, 960, 1323, 48000])),
        min_size=1,
        max_size=30,
    ).filter(lambda s: sum(s) > 0),
)
def test_fullband_streaming_equals_offline_for_any_chunking(kind, sizes):
    enhancer = FULLBAND[kind]
    signal = SIGNALS[enhancer.sample_rate]
    streamed, stream = stream_in_chunks(enhancer, signal, sizes)
    assert streamed.shape == signal.shape
    assert np.abs(streamed - OFFLINE[kind]).max() <= 1e-5
    assert stream.samples_out == stream.samples_in == signal.shape[0]


@pytest.mark.parametrize("kind", ["gru-deep-filter@48k", "gru-asymmetric@44.1k", "dnn-lookahead@48k"])
def test_fullband_streams_in_one_batch_equal_each_alone(kind):
    enhancer = FULLBAND[kind]
    rate = enhancer.sample_rate
    signals = [speech_like(0.4, rate, seed=s) * (1 + s) for s in range(3)]
    alone = [enhancer.enhance(x) for x in signals]
    streams = [Stream(enhancer, attenuation_limit_db=[None, 6.0, 0.0][i]) for i in range(3)]
    got = stream_batched(streams, signals, seed=0, max_chunk=1500)
    assert np.abs(got[0] - alone[0]).max() <= 1e-5
    assert np.abs(got[1] - enhancer.enhance(signals[1], attenuation_limit_db=6.0)).max() <= 1e-5
    assert np.abs(got[2] - signals[2]).max() <= 1e-6  # 0 dB: the input


# ---------------------------------------------------------------------------- service
def test_rest_at_48_khz_is_full_band_and_passes_through_at_0_db(weights_dir):
    audio = _white(48000, 1.0)
    buffer = io.BytesIO()
    sf.write(buffer, audio, 48000, format="WAV", subtype="FLOAT")
    with running_app(make_settings(weights_dir)) as (client, _):
        response = client.post(
            "/v1/enhance?model=tiny-gru&attenuation_limit_db=0",
            content=buffer.getvalue(),
            headers={"Content-Type": "audio/wav"},
        )
        assert response.status_code == 200, response.text
        assert response.headers["X-Hush-Processing-Rate"] == "48000"
        assert response.headers["X-Hush-Precision"] == "int8"
        assert response.headers["X-Hush-Latency-Ms"] == "20.0"
        out, rate = sf.read(io.BytesIO(response.content), dtype="float32")
        assert rate == 48000 and out.shape == audio.shape
        assert np.abs(out - audio).max() < 1e-6
        response = client.post(
            "/v1/enhance?model=tiny-gru", content=buffer.getvalue(), headers={"Content-Type": "audio/wav"}
        )
        out, _ = sf.read(io.BytesIO(response.content), dtype="float32")
        drop = _band_db(out, 48000, 8500, 20000) - _band_db(audio, 48000, 8500, 20000)
        assert -40 < drop < 0  # kept, and reduced


@pytest.mark.parametrize("rate", RATES)
def test_websocket_at_full_band_rates(weights_dir, rate):
    from hush.models import load_weights

    model, meta = load_weights(weights_dir / "tiny-gru.json")
    enhancer = Enhancer(model, meta.name)
    audio = speech_like(0.5, rate, seed=7)
    with running_app(make_settings(weights_dir)) as (client, _):
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_text(f'{{"type": "start", "sample_rate": {rate}, "encoding": "pcm_f32le"}}')
            ready = ws.receive_json()
        assert ready["latency_ms"] == 20.0 and ready["full_band"] is True and ready["precision"] == "int8"
        assert ready["processing_rate"] == rate
        assert ready["frame_samples"] == ready["delay_samples"] == rate // 100
        out, messages, code = stream_through(client, audio, [1, 441, 3000, 77], rate=rate)
        assert code == 1000 and out.shape == audio.shape
        assert messages[-1]["samples_out"] == audio.size
        np.testing.assert_allclose(out, enhancer.at_rate(rate).enhance(audio), atol=1e-5)
        out, _, _ = stream_through(client, audio, [500], rate=rate, attenuation_limit_db=0)
        assert np.abs(out - audio).max() < 1e-6

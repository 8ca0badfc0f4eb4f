"""The stream engine under the service: batched steps, PCM codecs, tick bookkeeping."""

from __future__ import annotations

import time

import numpy as np
import pytest

from conftest import speech_like, stream_batched, tiny_model
from hush.service.engine import StreamEngine, check_audio, decode_audio, encode_audio
from hush.streaming import Enhancer, Stream, step_streams


@pytest.mark.parametrize("kind", ["gru", "dnn-lookahead"])
def test_batched_streams_with_mixed_limits_equal_each_alone(kind):
    """The service's case for step_streams: many streams in one call, with and without
    lookahead, some with an attenuation limit and some without, pushed unevenly."""
    enhancer = Enhancer(tiny_model(kind))
    limits = [None, 6.0, None, 0.0, 20.0]
    signals = [speech_like(0.5, seed=s) for s in range(len(limits))]
    alone = [
        enhancer.enhance(x, attenuation_limit_db=limit) for x, limit in zip(signals, limits, strict=True)
    ]
    streams = [Stream(enhancer, limit) for limit in limits]
    for got, expected in zip(stream_batched(streams, signals, seed=1, max_chunk=400), alone, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_step_streams_refuses_mixed_enhancers():
    a, b = Enhancer(tiny_model("gru")), Enhancer(tiny_model("gru"))
    streams = [Stream(a), Stream(b)]
    for stream in streams:
        stream.push(np.zeros(160, np.float32))
    with pytest.raises(ValueError, match="share one Enhancer"):
        step_streams(streams)


def test_pcm_codecs():
    x = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 1e-6], np.float32)
    s16 = np.frombuffer(encode_audio(x, "pcm_s16le"), "<i2")
    assert s16.tolist() == [0, 16384, -16384, 32767, -32768, 32767, -32768, 0]
    assert np.array_equal(decode_audio(s16.tobytes(), "pcm_s16le"), s16 / np.float32(32768))
    assert np.array_equal(decode_audio(encode_audio(x, "pcm_f32le"), "pcm_f32le"), x)
    assert check_audio(b"\x00" * 6, "pcm_s16le") == 3 and check_audio(b"", "pcm_f32le") == 0
    for payload, encoding in ((b"\x00" * 3, "pcm_s16le"), (b"\x00" * 6, "pcm_f32le")):
        with pytest.raises(ValueError, match="whole number"):
            check_audio(payload, encoding)
    for bad in (np.nan, np.inf, 1e6):
        with pytest.raises(ValueError, match="finite"):
            check_audio(np.array([0.0, bad], "<f4").tobytes(), "pcm_f32le")


def test_engine_tick_bookkeeping():
    """Frames, latency stamps, stats and done come back per session; closed sessions vanish."""
    engine = StreamEngine({"m": Enhancer(tiny_model("gru"), "m")})
    engine.tick(
        [("a", [("open", "m", 16000, "pcm_f32le", None)]), ("b", [("open", "m", 8000, "pcm_s16le", 6.0)])]
    )
    t = time.monotonic()
    x = speech_like(0.1)
    replies, stats = engine.tick(
        [
            ("a", [("audio", x[:100].tobytes(), t), ("audio", x[100:1600].tobytes(), t), ("stats",)]),
            ("b", [("audio", encode_audio(x[:800], "pcm_s16le"), t), ("end",)]),
        ]
    )
    by_id = {r.session_id: r for r in replies}
    a, b = by_id["a"], by_id["b"]
    assert a.error is None and a.frames == 10 and a.n_samples == 1600 - 160 and a.n_stats == 1 and not a.done
    assert [n for _, n in a.frame_latency] == [10] and a.stamps == [t]  # the 1st message completed no frame
    assert b.done and b.n_samples == 800 and len(b.audio) == 1600
    assert stats.frames["m"] >= 10 and stats.batch_sizes and stats.seconds > 0
    assert set(engine.entries) == {"a"}  # b ended
    engine.tick([("a", [("close",)])])
    assert not engine.entries
    replies, _ = engine.tick([("ghost", [("audio", b"\x00" * 4, t)])])  # unknown session: ignored
    assert replies == []


def test_engine_collects_each_session_the_bytes_its_own_stream_gives():
    """One tick with sessions in both encodings, one ending and one at a resampled rate:
    joining and encoding the plain sessions' output together gives every session exactly
    the bytes that collecting it alone gives (a second engine, fed the same, collects one
    session at a time)."""
    enhancer = Enhancer(tiny_model("gru"), "m")
    joined, one_by_one = StreamEngine({"m": enhancer}), StreamEngine({"m": enhancer})
    one_by_one._collect_plain = lambda encoding, sessions, t_done: [
        one_by_one._collect(session_id, entry, t_done) for session_id, entry in sessions
    ]
    sessions = {
        "s16": (16000, "pcm_s16le"),
        "f32": (16000, "pcm_f32le"),
        "s16b": (16000, "pcm_s16le"),
        "ends": (16000, "pcm_f32le"),
        "8k": (8000, "pcm_s16le"),
    }
    opens = [(sid, [("open", "m", rate, enc, None)]) for sid, (rate, enc) in sessions.items()]
    x = speech_like(0.2)
    chunks = [x[:700], x[700:1500], x[1500:3200]]
    got = {engine: {sid: b"" for sid in sessions} for engine in (joined, one_by_one)}
    t = time.monotonic()
    for engine in (joined, one_by_one):
        engine.tick(opens)
        for i, chunk in enumerate(chunks):
            batch = []
            for sid, (_rate, enc) in sessions.items():
                piece = chunk[: len(chunk) // 2] if sid == "8k" else chunk
                items = [("audio", encode_audio(piece, enc), t)]
                if sid == "ends" and i == len(chunks) - 1:
                    items.append(("end",))
                batch.append((sid, items))
            replies, _ = engine.tick(batch)
            for reply in replies:
                assert reply.error is None
                got[engine][reply.session_id] += reply.audio
    assert got[joined] == got[one_by_one]
    assert all(got[joined].values())
    assert len(got[joined]["ends"]) == 4 * 3200  # ended: as many samples out as in
    assert len(got[joined]["s16"]) < 2 * 3200  # still running: the latency is held back

"""WebSocket /v1/stream against the real app: round trips, batching, control, errors, limits."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest
import soundfile as sf
from service_util import (
    from_bytes,
    make_settings,
    read_until_close,
    running_app,
    send_messages,
    start_message,
    stream_through,
    to_bytes,
    wait_idle,
)
from typer.testing import CliRunner

from conftest import speech_like
from hush.cli import app as cli_app
from hush.models import load_weights
from hush.streaming import Enhancer
from hush.streaming.audio_io import enhance_signal

ODD_CHUNKS = [1, 7, 160, 333, 1000, 0, 2]


@pytest.fixture
def enhancers(weights_dir):
    out = {}
    for name in ("tiny-gru", "tiny-dnn"):
        model, meta = load_weights(weights_dir / f"{name}.json")
        out[name] = Enhancer(model, meta.name)
    return out


@pytest.fixture
def served(weights_dir):
    with running_app(make_settings(weights_dir)) as (client, state):
        yield client, state
        wait_idle(state)


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("rate", [16000, 8000, 48000])
def test_f32_round_trip_equals_offline(served, enhancers, rate):
    client, _ = served
    audio = speech_like(0.8, rate, seed=rate)
    out, messages, code = stream_through(client, audio, ODD_CHUNKS, rate=rate)
    assert code == 1000
    done = messages[-1]
    assert done["type"] == "done" and done["samples_in"] == done["samples_out"] == audio.size
    assert out.size == audio.size
    expected = enhance_signal(enhancers["tiny-gru"], audio, rate)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_round_trip_equals_hush_enhance_cli(served, tmp_path, weights_dir):
    client, _ = served
    rate = 44100
    audio = speech_like(0.6, rate, seed=3)
    source, target = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(source, audio, rate, subtype="FLOAT")
    result = CliRunner().invoke(
        cli_app,
        ["enhance", str(source), "-o", str(target), "--models-dir", str(weights_dir), "-m", "tiny-gru", "-q"],
    )
    assert result.exit_code == 0, result.output
    expected, _ = sf.read(target, dtype="float32")
    out, _, code = stream_through(client, audio, [441, 100, 4410], rate=rate)
    assert code == 1000 and out.size == expected.size
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("rate", [16000, 44100, 8000])
def test_s16_round_trip_within_quantisation(served, enhancers, rate):
    client, _ = served
    audio = speech_like(0.6, rate, seed=5)
    quantised = from_bytes(to_bytes(audio, "pcm_s16le"), "pcm_s16le")  # what the server receives
    out, messages, code = stream_through(client, audio, [320, 17, 2000], rate=rate, encoding="pcm_s16le")
    assert code == 1000 and out.size == audio.size and messages[-1]["samples_out"] == audio.size
    expected = enhance_signal(enhancers["tiny-gru"], quantised, rate)
    # Output is rounded to 16 bits: within one step of the float result (plus float noise).
    assert np.abs(out * 32768 - np.clip(expected * 32768, -32768, 32767)).max() <= 0.5 + 1e-2


def test_simultaneous_sessions_equal_each_alone(served, enhancers):
    """Interleaved sessions (two models, three rates) are batched together; each output is
    what that session gives alone."""
    client, _state = served
    specs = [
        ("tiny-gru", 16000, "pcm_f32le", 160),
        ("tiny-gru", 16000, "pcm_f32le", 97),
        ("tiny-dnn", 22050, "pcm_f32le", 500),
        ("tiny-gru", 48000, "pcm_s16le", 480),
    ]
    audios = [speech_like(0.5, rate, seed=i) for i, (_, rate, _, _) in enumerate(specs)]
    alone = [
        stream_through(client, audio, [chunk], rate=rate, encoding=enc, model=model)[0]
        for (model, rate, enc, chunk), audio in zip(specs, audios, strict=True)
    ]
    sockets = [client.websocket_connect("/v1/stream") for _ in specs]
    opened = [ws.__enter__() for ws in sockets]
    try:
        for ws, (model, rate, enc, _) in zip(opened, specs, strict=True):
            ws.send_text(start_message(rate, enc, model=model))
            assert ws.receive_json()["type"] == "ready"
        positions = [0] * len(specs)
        while any(p < a.size for p, a in zip(positions, audios, strict=True)):
            for i, (ws, (_, _, enc, chunk)) in enumerate(zip(opened, specs, strict=True)):
                if positions[i] < audios[i].size:
                    ws.send_bytes(to_bytes(audios[i][positions[i] : positions[i] + chunk], enc))
                    positions[i] += chunk
        for ws in opened:
            ws.send_text(json.dumps({"type": "end"}))
        together = []
        for ws, (_, _, enc, _) in zip(opened, specs, strict=True):
            payload, messages, code = read_until_close(ws)
            assert code == 1000 and messages[-1]["type"] == "done"
            together.append(from_bytes(payload, enc))
    finally:
        for ws in sockets:
            ws.__exit__(None, None, None)
    for got, ref, audio, spec in zip(together, alone, audios, specs, strict=True):
        assert got.size == audio.size
        # Batched and lone steps may differ by float rounding, which can flip a 16-bit rounding.
        np.testing.assert_allclose(got, ref, atol=1e-5 if spec[2] == "pcm_f32le" else 1.01 / 32768)
    metrics = client.get("/metrics").text
    assert "hush_frames_processed_total" in metrics


def test_configure_and_stats(served, enhancers):
    client, _ = served
    audio = speech_like(1.0, 16000, seed=9)
    half = 8000
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(start_message(16000, "pcm_f32le", attenuation_limit_db=None))
        ws.receive_json()
        ws.send_bytes(to_bytes(audio[:half], "pcm_f32le"))
        # 0 dB: the gain floor is 1, so from here on the output is the input itself.
        ws.send_text(json.dumps({"type": "configure", "attenuation_limit_db": 0}))
        ws.send_bytes(to_bytes(audio[half:], "pcm_f32le"))
        ws.send_text(json.dumps({"type": "stats"}))
        ws.send_text(json.dumps({"type": "end"}))
        payload, messages, code = read_until_close(ws)
    assert code == 1000
    out = from_bytes(payload, "pcm_f32le")
    stats = [m for m in messages if m["type"] == "stats"]
    assert len(stats) == 1 and stats[0]["samples_in"] == audio.size and stats[0]["attenuation_limit_db"] == 0
    assert messages[-1]["type"] == "done"
    before = enhance_signal(enhancers["tiny-gru"], audio, 16000)
    np.testing.assert_allclose(out[: half - 320], before[: half - 320], atol=1e-5)
    np.testing.assert_allclose(out[half + 320 :], audio[half + 320 :], atol=1e-5)
    assert not np.allclose(before[half + 320 :], audio[half + 320 :], atol=1e-3)  # the model does act


# ---------------------------------------------------------------------------- errors and close codes
START = start_message(16000, "pcm_s16le")
CASES = {
    "audio before start": ([b"\x00\x00" * 10], "malformed_message", 1007),
    "not json": (["{nope"], "malformed_message", 1007),
    "json but not an object": (["[1, 2]"], "malformed_message", 1007),
    "first message not start": (['{"type": "end"}'], "malformed_message", 1007),
    "start without fields": (['{"type": "start"}'], "malformed_message", 1007),
    "rate as string": ([start_message("16000", "pcm_s16le")], "malformed_message", 1007),
    "start twice": ([START, START], "malformed_message", 1007),
    "unknown type": ([START, '{"type": "dance"}'], "malformed_message", 1007),
    "odd length s16": ([START, b"\x00\x01\x02"], "malformed_message", 1007),
    "text where audio belongs": ([START, "\x00\x01 not json"], "malformed_message", 1007),
    "configure without value": ([START, '{"type": "configure"}'], "malformed_message", 1007),
    "negative attenuation": (
        [START, '{"type": "configure", "attenuation_limit_db": -1}'],
        "invalid_parameter",
        1007,
    ),
    "mp3 encoding": ([start_message(16000, "mp3")], "unsupported_format", 1003),
    "stereo": ([start_message(16000, "pcm_s16le", channels=2)], "unsupported_format", 1003),
    "rate too high": ([start_message(96000, "pcm_s16le")], "unsupported_format", 1003),
    "rate too low": ([start_message(7999, "pcm_s16le")], "unsupported_format", 1003),
    "unknown model": ([start_message(16000, "pcm_s16le", model="../../etc/passwd")], "unknown_model", 1007),
    "nan float": (
        [start_message(16000, "pcm_f32le"), np.array([0.1, np.nan], "<f4").tobytes()],
        "malformed_message",
        1007,
    ),
    "huge float": (
        [start_message(16000, "pcm_f32le"), np.array([1e30], "<f4").tobytes()],
        "malformed_message",
        1007,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_protocol_errors(served, case):
    client, state = served
    messages, code, close_code = CASES[case]
    with client.websocket_connect("/v1/stream") as ws:
        send_messages(ws, messages)
        _, replies, got_close = read_until_close(ws)
    errors = [m for m in replies if m["type"] == "error"]
    assert len(errors) == 1 and errors[0]["code"] == code and errors[0]["message"], replies
    assert got_close == close_code
    wait_idle(state)
    # The server lives on.
    out, _, ok = stream_through(client, speech_like(0.1), [160])
    assert ok == 1000 and out.size == 1600


def test_message_too_large(weights_dir):
    with running_app(make_settings(weights_dir, max_message_bytes=2048)) as (client, state):
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_text(START)
            ws.receive_json()
            ws.send_bytes(b"\x00" * 4096)
            _, replies, code = read_until_close(ws)
        assert code == 1009 and replies[-1]["code"] == "message_too_large"
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_text(json.dumps({"type": "start", "pad": "x" * 5000}))
            _, replies, code = read_until_close(ws)
        assert code == 1009
        wait_idle(state)


def test_api_keys_on_websocket(weights_dir):
    with running_app(make_settings(weights_dir, api_keys="sekrit")) as (client, state):
        for path, headers in (
            ("/v1/stream", {}),
            ("/v1/stream?api_key=wrong", {}),
            ("/v1/stream", {"X-API-Key": "no"}),
        ):
            with client.websocket_connect(path, headers=headers) as ws:
                _, replies, code = read_until_close(ws)
            assert code == 1008 and replies[0]["code"] == "unauthorized"
        for path, headers in (
            ("/v1/stream?api_key=sekrit", {}),
            ("/v1/stream", {"X-API-Key": "sekrit"}),
            ("/v1/stream", {"Authorization": "Bearer sekrit"}),
        ):
            with client.websocket_connect(path, headers=headers) as ws:
                ws.send_text(START)
                assert ws.receive_json()["type"] == "ready"
        wait_idle(state)


def test_overloaded(weights_dir):
    with running_app(make_settings(weights_dir, max_sessions=1)) as (client, state):
        with client.websocket_connect("/v1/stream") as first:
            first.send_text(START)
            assert first.receive_json()["type"] == "ready"
            with client.websocket_connect("/v1/stream") as second:
                _, replies, code = read_until_close(second)
            assert code == 1013 and replies[0]["code"] == "overloaded"
        wait_idle(state)
        _out, _, code = stream_through(client, speech_like(0.1), [160])
        assert code == 1000


def test_idle_timeout_and_session_length(weights_dir):
    with running_app(make_settings(weights_dir, idle_timeout_s=0.3)) as (client, state):
        with client.websocket_connect("/v1/stream") as ws:  # idle before start
            _, replies, code = read_until_close(ws)
        assert code == 1008 and replies[0]["code"] == "idle_timeout"
        with client.websocket_connect("/v1/stream") as ws:  # idle mid-stream
            ws.send_text(START)
            ws.receive_json()
            ws.send_bytes(b"\x00\x00" * 800)
            _, replies, code = read_until_close(ws)
        assert code == 1008 and replies[-1]["code"] == "idle_timeout"
        wait_idle(state)
    with running_app(make_settings(weights_dir, max_session_s=0.5)) as (client, state):
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_text(START)
            ws.receive_json()
            t0 = time.monotonic()
            closed = None
            while closed is None and time.monotonic() - t0 < 5:
                ws.send_bytes(b"\x00\x00" * 160)
                time.sleep(0.02)
                if time.monotonic() - t0 > 0.6:
                    _, replies, closed = read_until_close(ws)
        assert closed == 1008 and replies[-1]["code"] == "session_too_long"
        wait_idle(state)


def test_back_pressure_keeps_every_sample(weights_dir, enhancers):
    """A client that sends far more than the backlog at once: the server pauses reading
    until its output has left, and nothing is lost."""
    with running_app(make_settings(weights_dir, max_backlog_s=0.05)) as (client, state):
        audio = speech_like(1.5, 16000, seed=21)
        out, messages, code = stream_through(client, audio, [4000, 1, 333])
        assert code == 1000 and out.size == audio.size and messages[-1]["samples_out"] == audio.size
        np.testing.assert_allclose(out, enhance_signal(enhancers["tiny-gru"], audio, 16000), atol=1e-5)
        wait_idle(state)


def test_client_drop_frees_everything(served):
    client, state = served
    for n_chunks in (0, 3, 50):
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_text(START)
            ws.receive_json()
            for _ in range(n_chunks):
                ws.send_bytes(b"\x01\x00" * 160)
            assert state.connections == 1
        wait_idle(state)
    with client.websocket_connect("/v1/stream"):  # drop before start
        pass
    wait_idle(state)
    assert "hush_active_streams 0.0" in client.get("/metrics").text


def test_worker_failure_gives_1011_and_server_recovers(served, monkeypatch):
    client, state = served
    engine = state.scheduler.worker.engine
    original = engine._apply

    def broken(session_id, items):
        if any(item[0] == "audio" for item in items):
            raise RuntimeError("injected fault")
        return original(session_id, items)

    monkeypatch.setattr(engine, "_apply", broken)
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(START)
        ws.receive_json()
        ws.send_bytes(b"\x00\x00" * 160)
        _, replies, code = read_until_close(ws)
    assert code == 1011 and replies[-1]["code"] == "internal_error"
    monkeypatch.setattr(engine, "_apply", original)
    wait_idle(state)
    out, _, code = stream_through(client, speech_like(0.2), [160])
    assert code == 1000 and out.size == 3200


def test_process_worker_round_trip_and_crash_recovery(weights_dir, enhancers):
    """The default worker (a child process): same output; if it dies, live sessions get 1011,
    a new worker starts, and the next session works."""
    with running_app(make_settings(weights_dir, worker="process")) as (client, state):
        audio = speech_like(0.5, 32000, seed=11)
        out, _, code = stream_through(client, audio, [320, 31], rate=32000)
        assert code == 1000
        np.testing.assert_allclose(out, enhance_signal(enhancers["tiny-gru"], audio, 32000), atol=1e-5)
        assert "hush_worker_cpu_seconds_total" in client.get("/metrics").text
        pid = state.scheduler.worker.pid
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_text(START)
            ws.receive_json()
            os.kill(pid, signal.SIGKILL)
            ws.send_bytes(b"\x00\x00" * 160)
            _, replies, code = read_until_close(ws)
        assert code == 1011 and replies[-1]["code"] == "internal_error"
        wait_idle(state)
        deadline = time.monotonic() + 120
        while state.scheduler.worker.pid in (None, pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # the replacement worker is starting
        assert state.scheduler.worker.pid != pid
        out, _, code = stream_through(client, audio, [640], rate=32000)
        assert code == 1000 and out.size == audio.size


def test_streams_spread_over_worker_processes_and_a_crash_stays_in_its_lane(weights_dir, enhancers):
    """Two worker processes: concurrent sessions go to the least-loaded one, each worker
    batches its own, and a worker that dies takes only its own sessions down."""
    with running_app(make_settings(weights_dir, worker="process", workers=2)) as (client, state):
        scheduler = state.scheduler
        assert len(scheduler.lanes) == 2 and len(set(state.metrics.worker_pids)) == 2
        audio = speech_like(0.3, seed=12)
        expected = enhance_signal(enhancers["tiny-gru"], audio, 16000)
        connect = client.websocket_connect
        with connect("/v1/stream") as first, connect("/v1/stream") as second:
            for ws in (first, second):
                ws.send_text(start_message(16000, "pcm_f32le"))
                ws.receive_json()
            assert sorted(len(lane.sessions) for lane in scheduler.lanes) == [1, 1]
            metrics = client.get("/metrics").text
            assert 'hush_worker_streams{worker="0"} 1.0' in metrics
            assert 'hush_worker_streams{worker="1"} 1.0' in metrics
            victim_pid = scheduler.lanes[0].worker.pid
            os.kill(victim_pid, signal.SIGKILL)
            outcomes = {}
            for ws in (first, second):
                ws.send_bytes(audio.astype("<f4").tobytes())
                ws.send_text(json.dumps({"type": "end"}))
                payload, _, code = read_until_close(ws)
                outcomes[code] = np.frombuffer(payload, "<f4")
            assert sorted(outcomes) == [1000, 1011]  # one lane crashed, the other finished
            np.testing.assert_allclose(outcomes[1000], expected, atol=1e-5)
        wait_idle(state)
        deadline = time.monotonic() + 120
        while scheduler.lanes[0].worker.pid in (None, victim_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        out, _, code = stream_through(client, audio, [160])
        assert code == 1000 and out.size == audio.size


def test_precision_setting_reaches_streams_and_rest_alike(weights_dir, enhancers):
    """Default int8: streams equal offline enhancement with the rounded weights; HUSH_PRECISION
    =float32 streams the weight file's own numbers, and the two stay close."""
    audio = speech_like(0.3, seed=4)
    outs = {}
    for precision in ("int8", "float32"):
        overrides = {} if precision == "int8" else {"precision": "float32"}
        with running_app(make_settings(weights_dir, **overrides)) as (client, state):
            enhancer = state.enhancers["tiny-gru"]
            assert enhancer.precision == precision
            out, _, code = stream_through(client, audio, [320])
            expected = enhance_signal(Enhancer(enhancer.model, "tiny-gru", precision=precision), audio, 16000)
            assert code == 1000 and out.size == audio.size
            assert np.abs(out - expected).max() <= 1e-5
            outs[precision] = out
    assert np.abs(outs["int8"] - outs["float32"]).max() < 0.05 * np.abs(outs["float32"]).max() + 1e-3
    assert np.abs(outs["int8"] - outs["float32"]).max() > 0

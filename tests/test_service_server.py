"""`hush serve` for real: uvicorn on a free port, the worker process, HTTP and WebSocket
clients over TCP. Outputs equal `hush enhance` (offline path) on the same input."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest
import soundfile as sf
from websockets.sync.client import connect

from conftest import speech_like
from hush.bench.loadtest import LoadtestConfig, start_server, stop_server
from hush.models import load_weights
from hush.streaming import Enhancer
from hush.streaming.audio_io import enhance_signal


@pytest.fixture
def server(weights_dir):
    config = LoadtestConfig(
        streams=1,
        models_dir=[weights_dir],
        model="tiny-gru",
        server_env={"HUSH_API_KEYS": "k", "HUSH_INCLUDE_SHIPPED": "false"},
    )
    proc, ws_url = start_server(config)
    try:
        yield ws_url, "http" + ws_url[2:]
    finally:
        stop_server(proc)
    assert proc.returncode is not None


def test_real_server_rest_and_websocket(server, weights_dir):
    ws_url, http_url = server
    model, meta = load_weights(weights_dir / "tiny-gru.json")
    enhancer = Enhancer(model, meta.name)
    rate = 24000
    audio = speech_like(0.5, rate, seed=4)

    # REST: a float WAV comes back as the offline enhancement, sample for sample.
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="FLOAT")
    response = httpx.post(
        f"{http_url}/v1/enhance",
        content=buffer.getvalue(),
        headers={"Content-Type": "audio/wav", "X-API-Key": "k"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    got, got_rate = sf.read(io.BytesIO(response.content), dtype="float32")
    expected = enhance_signal(enhancer, audio, rate)
    assert got_rate == rate
    np.testing.assert_array_equal(got, expected)
    assert httpx.get(f"{http_url}/v1/models", timeout=10).status_code == 401

    # WebSocket: same audio in odd-sized f32 chunks, key in the query.
    with connect(f"{ws_url}/v1/stream?api_key=k", max_size=None) as ws:
        ws.send(json.dumps({"type": "start", "sample_rate": rate, "encoding": "pcm_f32le", "channels": 1}))
        ready = json.loads(ws.recv())
        assert ready["type"] == "ready" and ready["frame_samples"] == 240
        for start in range(0, audio.size, 999):
            ws.send(audio[start : start + 999].astype("<f4").tobytes())
        ws.send(json.dumps({"type": "end"}))
        out = bytearray()
        while True:
            message = ws.recv(timeout=30)
            if isinstance(message, bytes):
                out += message
            else:
                done = json.loads(message)
                break
        assert done["type"] == "done" and done["samples_out"] == audio.size
    streamed = np.frombuffer(bytes(out), "<f4")
    np.testing.assert_allclose(streamed, expected, atol=1e-5)
    assert ws.close_code == 1000

    metrics = httpx.get(f"{http_url}/metrics", headers={"X-API-Key": "k"}, timeout=10).text
    assert 'hush_frames_processed_total{model="tiny-gru"}' in metrics

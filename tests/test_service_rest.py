"""REST API against the real app (lifespan, thread pool, error handlers), tiny weights."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from service_util import make_settings, running_app
from typer.testing import CliRunner

from conftest import speech_like
from hush.cli import app as cli_app

runner = CliRunner()


def encode(audio: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def cli_enhance(tmp_path, weights_dir, data: bytes, suffix: str, *extra: str) -> np.ndarray:
    """What `hush enhance` writes for the same bytes, decoded."""
    source, target = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    source.write_bytes(data)
    result = runner.invoke(
        cli_app,
        [
            "enhance",
            str(source),
            "-o",
            str(target),
            "--models-dir",
            str(weights_dir),
            "-m",
            "tiny-gru",
            "-q",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    audio, _ = sf.read(target, dtype="float32", always_2d=True)
    return audio


@pytest.fixture
def client(weights_dir):
    with running_app(make_settings(weights_dir)) as (client, _state):
        yield client


# ---------------------------------------------------------------------------- success paths
def test_health_ready_models_docs(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["models"] == ["tiny-dnn", "tiny-gru"]
    models = client.get("/v1/models").json()
    assert models["default"] == "tiny-gru"
    by_name = {m["name"]: m for m in models["models"]}
    assert by_name["tiny-gru"]["kind"] == "recurrent/gru" and by_name["tiny-gru"]["default"] is True
    assert by_name["tiny-dnn"]["kind"].startswith("spliced")
    for info in by_name.values():
        assert info["parameters"] > 0 and info["latency_ms"] > 0 and isinstance(info["test_scores"], dict)
        assert info["precision"] == "int8"
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/enhance", "/v1/models", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])


@pytest.mark.parametrize(
    ("rate", "channels", "fmt", "subtype", "suffix"),
    [
        (16000, 1, "WAV", "PCM_16", ".wav"),
        (44100, 2, "FLAC", "PCM_24", ".flac"),
        (48000, 1, "WAV", "FLOAT", ".wav"),
    ],
)
def test_raw_body_matches_hush_enhance(client, tmp_path, weights_dir, rate, channels, fmt, subtype, suffix):
    data = encode(speech_like(0.7, rate, channels=channels), rate, fmt, subtype)
    response = client.post(
        "/v1/enhance?model=tiny-gru", content=data, headers={"Content-Type": f"audio/{suffix[1:]}"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == ("audio/wav" if fmt == "WAV" else "audio/flac")
    assert response.headers["x-hush-model"] == "tiny-gru"
    got, rate_out = sf.read(io.BytesIO(response.content), dtype="float32", always_2d=True)
    info = sf.info(io.BytesIO(response.content))
    assert (rate_out, info.channels, info.format, info.subtype) == (rate, channels, fmt, subtype)
    expected = cli_enhance(tmp_path, weights_dir, data, suffix)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_multipart_upload_and_format_and_attenuation(client, tmp_path, weights_dir):
    data = encode(speech_like(0.5, 22050), 22050, "WAV", "PCM_16")
    response = client.post(
        "/v1/enhance",
        params={"format": "flac", "attenuation_limit_db": 6},
        files={"file": ("noisy.wav", data, "audio/wav")},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/flac"
    info = sf.info(io.BytesIO(response.content))
    assert (info.format, info.subtype, info.samplerate) == ("FLAC", "PCM_16", 22050)
    got, _ = sf.read(io.BytesIO(response.content), dtype="float32", always_2d=True)
    expected = cli_enhance(tmp_path, weights_dir, data, ".wav", "--attenuation-limit", "6")
    # hush enhance keeps the input's container (WAV); libsndfile's FLAC and WAV writers may
    # round the same float to 16 bits one step apart.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1.01 / 32768)


def test_default_model_is_used_without_model_param(client):
    data = encode(speech_like(0.3), 16000, "WAV", "PCM_16")
    response = client.post("/v1/enhance", content=data, headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 200 and response.headers["x-hush-model"] == "tiny-gru"


# ---------------------------------------------------------------------------- errors
def aiff_bytes() -> bytes:
    return encode(speech_like(0.2), 16000, "AIFF", "PCM_16")


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status", "code"),
    [
        ("/v1/enhance", b"this is not audio at all", "audio/wav", 400, "unreadable_audio"),
        ("/v1/enhance", b"", "audio/wav", 400, "unreadable_audio"),
        ("/v1/enhance", b"RIFF\x00\x00", "application/octet-stream", 400, "unreadable_audio"),
        ("/v1/enhance", b"ID3\x03\x00", "audio/mpeg", 415, "unsupported_format"),
        ("/v1/enhance", b"hello", "text/plain", 415, "unsupported_format"),
        ("/v1/enhance", None, "audio/aiff", 415, "unsupported_format"),
        ("/v1/enhance", None, "application/octet-stream", 415, "unsupported_format"),
        ("/v1/enhance?model=nope", b"x", "audio/wav", 422, "unknown_model"),
        ("/v1/enhance?model=../../etc/passwd", b"x", "audio/wav", 422, "unknown_model"),
        ("/v1/enhance?format=mp3", b"x", "audio/wav", 422, "invalid_parameter"),
        ("/v1/enhance?attenuation_limit_db=-3", b"x", "audio/wav", 422, "invalid_parameter"),
        ("/v1/enhance?attenuation_limit_db=nan", b"x", "audio/wav", 422, "invalid_parameter"),
        ("/v1/enhance", b"--xyz\r\ngarbage", "multipart/form-data; boundary=xyz", 400, "malformed_request"),
        ("/v1/nothing", b"", "audio/wav", 404, "not_found"),
    ],
)
def test_error_codes(client, path, body, content_type, status, code):
    response = client.post(
        path, content=aiff_bytes() if body is None else body, headers={"Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["code"] == code and payload["status"] == status and payload["message"]


def test_method_not_allowed_is_json(client):
    response = client.get("/v1/enhance")
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


def test_multipart_without_file_part(client):
    response = client.post("/v1/enhance", data={"note": "no file"}, files={})
    assert response.status_code in (400, 415)
    assert response.json()["code"] in ("malformed_request", "unsupported_format")


def test_limits_body_size_and_duration(weights_dir):
    data = encode(speech_like(1.0), 16000, "WAV", "PCM_16")  # 32 kB, 1 s
    with running_app(make_settings(weights_dir, max_body_bytes=10_000)) as (client, _):
        response = client.post("/v1/enhance", content=data, headers={"Content-Type": "audio/wav"})
        assert response.status_code == 413 and response.json()["code"] == "body_too_large"

        def chunks():  # no Content-Length: the limit must hold while streaming the body
            for i in range(0, len(data), 4096):
                yield data[i : i + 4096]

        response = client.post("/v1/enhance", content=chunks(), headers={"Content-Type": "audio/wav"})
        assert response.status_code == 413 and response.json()["code"] == "body_too_large"
    with running_app(make_settings(weights_dir, max_duration_s=0.5)) as (client, _):
        response = client.post("/v1/enhance", content=data, headers={"Content-Type": "audio/wav"})
        assert response.status_code == 413 and response.json()["code"] == "audio_too_long"
        short = encode(speech_like(0.4), 16000, "WAV", "PCM_16")
        assert (
            client.post("/v1/enhance", content=short, headers={"Content-Type": "audio/wav"}).status_code
            == 200
        )


def test_rest_jobs_are_bounded(weights_dir):
    data = encode(speech_like(0.2), 16000, "WAV", "PCM_16")
    with running_app(make_settings(weights_dir, max_rest_jobs=1)) as (client, state):
        state.rest_jobs = 1  # as if one request were in progress
        response = client.post("/v1/enhance", content=data, headers={"Content-Type": "audio/wav"})
        assert response.status_code == 503 and response.json()["code"] == "overloaded"
        state.rest_jobs = 0
        assert (
            client.post("/v1/enhance", content=data, headers={"Content-Type": "audio/wav"}).status_code == 200
        )
        assert state.rest_jobs == 0


# ---------------------------------------------------------------------------- auth, CORS, metrics, static
def test_api_keys(weights_dir):
    data = encode(speech_like(0.2), 16000, "WAV", "PCM_16")
    with running_app(make_settings(weights_dir, api_keys="k-one,k-two")) as (client, _):
        for headers in (
            {},
            {"X-API-Key": "wrong"},
            {"Authorization": "Bearer wrong"},
            {"X-API-Key": "k-one "},
        ):
            response = client.get("/v1/models", headers=headers)
            assert response.status_code == 401 and response.json()["code"] == "unauthorized", headers
        assert (
            client.post("/v1/enhance", content=data, headers={"Content-Type": "audio/wav"}).status_code == 401
        )
        assert client.get("/v1/models", headers={"X-API-Key": "k-two"}).status_code == 200
        assert client.get("/v1/models", headers={"Authorization": "Bearer k-one"}).status_code == 200
        ok = client.post(
            "/v1/enhance", content=data, headers={"Content-Type": "audio/wav", "X-API-Key": "k-one"}
        )
        assert ok.status_code == 200
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"X-API-Key": "k-one"}).status_code == 200
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200


def test_cors_off_unless_configured(weights_dir):
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    with running_app(make_settings(weights_dir)) as (client, _):
        assert (
            "access-control-allow-origin"
            not in client.get("/healthz", headers={"Origin": "https://x"}).headers
        )
        assert "access-control-allow-origin" not in client.options("/v1/enhance", headers=preflight).headers
    with running_app(make_settings(weights_dir, cors_origins="https://app.example")) as (client, _):
        response = client.options("/v1/enhance", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        other = client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_metrics_count_requests_and_errors(client):
    client.get("/healthz")
    client.post("/v1/enhance", content=b"junk", headers={"Content-Type": "audio/wav"})
    text = client.get("/metrics").text
    assert 'hush_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'hush_errors_total{api="rest",code="unreadable_audio"} 1.0' in text
    for name in ("hush_active_streams", "hush_frames_processed", "hush_frame_latency_seconds_bucket"):
        assert name in text


def test_static_demo_page(weights_dir, tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<!doctype html><title>hush demo</title>")
    (static / "app.js").write_text("console.log('hi')")
    with running_app(make_settings(weights_dir, static_dir=static)) as (client, _):
        page = client.get("/")
        assert (
            page.status_code == 200
            and "hush demo" in page.text
            and page.headers["content-type"].startswith("text/html")
        )
        assert client.get("/static/app.js").text == "console.log('hi')"
    with running_app(make_settings(weights_dir)) as (client, _):
        assert client.get("/").status_code == 404 and client.get("/").json()["code"] == "not_found"


def test_unknown_default_model_fails_startup(weights_dir):
    from fastapi.testclient import TestClient

    from hush.service import create_app

    app = create_app(make_settings(weights_dir, default_model="missing"))
    with pytest.raises(RuntimeError, match="default model 'missing'"), TestClient(app):
        pass


def test_settings_from_environment(monkeypatch, weights_dir):
    from hush.service import Settings

    monkeypatch.setenv("HUSH_API_KEYS", "a, b")
    monkeypatch.setenv("HUSH_CORS_ORIGINS", "https://x.example")
    monkeypatch.setenv("HUSH_MODELS_DIR", f"{weights_dir}:/elsewhere")
    monkeypatch.setenv("HUSH_MAX_SESSIONS", "7")
    monkeypatch.setenv("HUSH_LOG_LEVEL", "DEBUG")
    settings = Settings(_env_file=None)
    assert [k.get_secret_value() for k in settings.api_keys] == ["a", "b"]
    assert settings.cors_origins == ["https://x.example"]
    assert [str(p) for p in settings.models_dir] == [str(weights_dir), "/elsewhere"]
    assert settings.max_sessions == 7 and settings.log_level == "debug"
    assert "a" not in repr(settings.api_keys)

"""`hush loadtest` end to end at toy scale: a spawned `hush serve` (real uvicorn, worker
process), real WebSocket clients at real-time pace, generated audio, JSON report."""

from __future__ import annotations

import json

import soundfile as sf
from typer.testing import CliRunner

from conftest import speech_like
from hush.cli import app


def test_loadtest_small(tmp_path, weights_dir):
    audio = tmp_path / "speech.wav"
    sf.write(audio, speech_like(1.0, 16000), 16000)
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            "loadtest",
            "--streams", "3",
            "--seconds", "1.5",
            "--audio", str(audio),
            "--models-dir", str(weights_dir),
            "--model", "tiny-gru",
            "--ramp-s", "0.1",
            "--json", str(report_path),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["ok"] and report["streams_completed"] == 3 and report["streams_failed"] == 0
    assert report["dropped_samples"] == 0 and report["samples_in"] == 3 * 24000
    server = report["server_added_latency"]
    assert server["count"] > 0 and 0 < server["p50_ms"] <= server["p99_ms"]
    rtt = report["client_round_trip"]
    assert rtt["count"] > 0 and rtt["p50_ms"] > 0
    assert report["lag_samples"] == [160]  # 16 kHz: the model's one-hop output delay
    assert min(report["observed_min_lag_samples"]) == 160
    assert report["cpu_percent_of_one_core"]["server_stream_worker_process"] > 0
    assert report["server_batches"]["model_calls"] > 0
    assert "server added latency" in result.output

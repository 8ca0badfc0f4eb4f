"""`hush loadtest` end to end at toy scale: a spawned `hush serve` (real uvicorn, worker
process), real WebSocket clients at real-time pace, generated audio, JSON report."""

from __future__ import annotations

import json

import soundfile as sf
from typer.testing import CliRunner

from conftest import speech_like
from hush.cli import app
from hush.service.metrics import usable_cores


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
    # the spawned server is on this machine and says how many cores it may use
    assert report["server_on_this_machine"] is True
    assert report["server_cores"] == usable_cores()
    assert "server added latency" in result.output


def _fake_report(config, held: bool, server_cores: int = 2) -> dict:
    """What `run_loadtest` reports, reduced to what the capacity search reads: p99 10 ms
    when the step holds, 40 ms when it does not."""
    from hush.bench.loadtest import server_is_local

    return {
        "config": {"streams": config.streams, "url": config.url},
        "machine": {"cores": 2},
        "server_cores": server_cores,
        "server_on_this_machine": server_is_local(config.url),
        "ok": True,
        "dropped_samples": 0,
        "streams_failed": 0,
        "server_added_latency": {"p50_ms": 5.0, "p99_ms": 10.0 if held else 40.0},
        "client_round_trip": {"p99_ms": 12.0},
        "cpu_percent_of_one_core": {"server": 50.0, "client": 10.0, "other_processes": 0.0},
        "server_batches": {"mean_streams_per_call": 20.0},
    }


def test_find_capacity_searches_and_reports_per_core(tmp_path, weights_dir, monkeypatch):
    """The search logic over a fake load test: holds up to 130 streams, fails above."""
    from hush.bench import loadtest

    def fake_run(config):
        return _fake_report(config, held=config.streams <= 130)

    monkeypatch.setattr(loadtest, "run_loadtest", fake_run)
    monkeypatch.setattr(loadtest.time, "sleep", lambda s: None)
    config = loadtest.LoadtestConfig(url="ws://127.0.0.1:1", deadline_ms=20.0)
    result = loadtest.find_capacity(config, start=100)
    tried = [step["streams"] for step in result["steps"]]
    assert tried[:2] == [100, 150]
    assert 125 <= result["capacity_streams"] <= 130 < result["first_failing_streams"]
    assert result["first_failing_streams"] - result["capacity_streams"] <= 7
    assert result["streams_per_core"] == round(result["capacity_streams"] / result["cores"], 1)
    down = loadtest.find_capacity(config, start=400)
    assert [s["streams"] for s in down["steps"]][:2] == [400, 200]
    assert 125 <= down["capacity_streams"] <= 130


def test_find_capacity_with_repeats_needs_every_run_at_a_count_to_hold(monkeypatch):
    """A count near the limit that holds only on some runs does not set the capacity when
    every count must hold ``repeats`` times in a row."""
    from hush.bench import loadtest

    runs: dict[int, int] = {}

    def noisy_run(config):
        n = config.streams
        runs[n] = runs.get(n, 0) + 1
        # up to 100 always holds; 101-130 holds on a count's first run only (a lucky run)
        return _fake_report(config, held=n <= 100 or (n <= 130 and runs[n] == 1))

    monkeypatch.setattr(loadtest, "run_loadtest", noisy_run)
    monkeypatch.setattr(loadtest.time, "sleep", lambda s: None)
    config = loadtest.LoadtestConfig(url="ws://127.0.0.1:1", deadline_ms=20.0)
    once = loadtest.find_capacity(config, start=80)
    assert once["capacity_streams"] > 100  # one lucky run per count is enough to pass
    runs.clear()
    twice = loadtest.find_capacity(config, start=80, repeats=2)
    assert 95 <= twice["capacity_streams"] <= 100 < twice["first_failing_streams"]
    assert twice["repeats"] == 2 and "2 runs in a row" in twice["criterion"]
    # a count that held was run twice; a failing count stopped at its first failure
    attempts = [(s["streams"], s["attempt"], s["held"]) for s in twice["steps"]]
    assert (80, 1, True) in attempts and (80, 2, True) in attempts
    assert all(not (a == 2 and n > 100 and held) for n, a, held in attempts)


def test_capacity_per_core_is_per_core_of_the_server_when_the_load_comes_from_elsewhere(monkeypatch):
    """With --url at another machine, streams per core divide by the cores the server reports
    in /metrics (hush_cpu_cores), not by the load generator's, and the note says where the
    generator ran."""
    from hush.bench import loadtest

    monkeypatch.setattr(loadtest, "run_loadtest", lambda c: _fake_report(c, c.streams <= 96, server_cores=8))
    monkeypatch.setattr(loadtest.time, "sleep", lambda s: None)
    remote = loadtest.find_capacity(loadtest.LoadtestConfig(url="ws://10.1.2.3:8000"), start=64)
    assert remote["cores"] == 8 and remote["streams_per_core"] == round(remote["capacity_streams"] / 8, 1)
    assert "another machine" in remote["note"]
    local = loadtest.find_capacity(loadtest.LoadtestConfig(url="ws://127.0.0.1:8000"), start=64)
    assert "same cores" in local["note"]


def test_server_is_local_knows_loopback_and_own_host_names():
    import socket

    from hush.bench.loadtest import server_is_local

    assert server_is_local("ws://127.0.0.1:8000") and server_is_local("ws://localhost:1")
    assert server_is_local("ws://[::1]:8000") and server_is_local(f"ws://{socket.gethostname()}:80")
    assert not server_is_local("ws://10.1.2.3:8000") and not server_is_local("wss://hush.example.com")

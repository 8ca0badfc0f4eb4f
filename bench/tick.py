"""``python -m hush.bench.tick``: what one tick of the service's stream worker costs, and where.

The worker (``service/engine.py: StreamEngine.tick``) takes one message from each of N
sessions, pushes the audio, steps every stream in batched model calls and encodes the
replies. This drives a ``StreamEngine`` directly through the three phases ``tick`` runs,
in this process at one thread, with one ``--chunk-ms`` message of noise per session per
tick (no sockets, no event loop), and splits the median tick into: applying the messages
(``apply_all``: decode, push), the model calls (``Enhancer.process_frames``, products
included), the per-stream frame bookkeeping around them (the rest of ``step_all``: gather
frames and state, scatter, overlap-add), and collecting the replies (``collect_all``: pop,
encode). A tick that must serve N streams in real time every
``--chunk-ms`` can take at most that long; the load test's p99 <= 20 ms needs it well under.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def measure(model_name: str, streams: int, chunk_ms: float, ticks: int = 40) -> dict:
    import torch

    from hush.models import ModelRegistry
    from hush.service.engine import StreamEngine
    from hush.streaming import Enhancer

    torch.set_num_threads(1)
    model, _ = ModelRegistry().load(model_name)
    enhancer = Enhancer(model, model_name)
    engine = StreamEngine({model_name: enhancer})
    engine.warm_up()
    chunk = round(chunk_ms * enhancer.sample_rate / 1000)
    rng = np.random.default_rng(0)
    payload = (rng.standard_normal(chunk) * 3000).astype("<i2").tobytes()
    ids = [f"s{i}" for i in range(streams)]
    engine.tick([(sid, [("open", model_name, enhancer.sample_rate, "pcm_s16le", None)]) for sid in ids])

    model_seconds = [0.0]
    process_frames = enhancer.process_frames

    def timed_process_frames(*args, **kwargs):
        start = time.perf_counter()
        out = process_frames(*args, **kwargs)
        model_seconds[0] += time.perf_counter() - start
        return out

    parts: dict[str, list[float]] = {"tick": [], "apply": [], "model": [], "bookkeeping": [], "collect": []}
    enhancer.process_frames = timed_process_frames  # instance attribute: this Enhancer only
    try:
        for index in range(ticks + 5):
            batch = [(sid, [("audio", payload, time.monotonic())]) for sid in ids]
            model_seconds[0] = 0.0
            t0 = time.perf_counter()
            _, groups = engine.apply_all(batch)
            t1 = time.perf_counter()
            engine.step_all(groups)
            t2 = time.perf_counter()
            engine.collect_all(groups, time.monotonic())
            t3 = time.perf_counter()
            if index >= 5:  # the first ticks warm caches and allocators
                parts["tick"].append(t3 - t0)
                parts["apply"].append(t1 - t0)
                parts["model"].append(model_seconds[0])
                parts["bookkeeping"].append(t2 - t1 - model_seconds[0])
                parts["collect"].append(t3 - t2)
    finally:
        del enhancer.process_frames
    result = {name: round(1000 * float(np.median(values)), 2) for name, values in parts.items()}
    frames = streams * (chunk // enhancer.hop)
    return {
        "model": model_name,
        "streams": streams,
        "chunk_ms": chunk_ms,
        "median_ms": result,
        "us_per_stream_frame": round(1000 * result["tick"] / frames, 1),
        "realtime_share": round(result["tick"] / chunk_ms, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="gru")
    parser.add_argument("--streams", type=int, action="append", default=None)
    parser.add_argument("--chunk-ms", type=float, default=20.0)
    parser.add_argument("--ticks", type=int, default=40)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    runs = [measure(args.model, n, args.chunk_ms, args.ticks) for n in args.streams or [100, 200]]
    for run in runs:
        parts = run["median_ms"]
        split = ", ".join(
            f"{name} {parts[name]:.2f}" for name in ("apply", "model", "bookkeeping", "collect")
        )
        print(  # noqa: T201
            f"{run['model']} {run['streams']:4d} streams, {run['chunk_ms']:g} ms messages:"
            f" tick {parts['tick']:.2f} ms ({split}); {run['us_per_stream_frame']} us per stream-frame,"
            f" {100 * run['realtime_share']:.0f} % of real time"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        args.json.write_text(json.dumps({"date": stamp, "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""``python -m hush.bench.int8_quality PAIRS_DIR``: do int8 weights keep quality?

The rule (issue 22): int8 may serve only if PESQ on validation mixtures stays within 0.02 of
the float model's. This enhances every ``noisy/*.wav`` of a pairs folder (``hush val-pairs``
writes one; never the test set) with each shipped model in float32 (offline, the torch
reference) and through the int8 fast step (``Enhancer(precision="int8")``, streamed in 10 ms
chunks as the service runs it), and reports mean wideband PESQ and STOI of both, their
mean and worst per-file difference, and the largest sample difference of the outputs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def compare(pairs: Path, names: list[str]) -> dict:
    import torch

    from hush.evaluation.metrics import pesq_wb, stoi_score
    from hush.models import ModelRegistry
    from hush.streaming import Enhancer, Stream
    from hush.streaming.audio_io import read_audio

    torch.set_num_threads(1)
    files = sorted((pairs / "noisy").glob("*.wav"))
    results = {}
    for name in names:
        model, _meta = ModelRegistry().load(name)
        float_enhancer = Enhancer(model, name, fast=False, precision="float32")
        int8_enhancer = Enhancer(model, f"{name}-int8", precision="int8")
        scores, diffs = [], []
        for path in files:
            noisy, _ = read_audio(path)
            clean, _ = read_audio(pairs / "clean" / path.name)
            noisy, clean = noisy.mean(axis=1), clean.mean(axis=1)
            a = float_enhancer.enhance(noisy)
            stream, hop = Stream(int8_enhancer), int8_enhancer.hop
            parts = [stream.feed(noisy[i : i + hop]) for i in range(0, noisy.shape[0], hop)]
            b = np.concatenate([*parts, stream.flush()])
            scores.append((pesq_wb(clean, a), pesq_wb(clean, b), stoi_score(clean, a), stoi_score(clean, b)))
            diffs.append(float(np.abs(a - b).max()))
        fp32, int8, stoi_fp32, stoi_int8 = np.array(scores).T
        delta = int8 - fp32
        results[name] = {
            "files": len(files),
            "pesq_fp32": round(float(fp32.mean()), 4),
            "pesq_int8": round(float(int8.mean()), 4),
            "mean_delta": round(float(delta.mean()), 4),
            "worst_file_delta": round(float(delta.min()), 4),
            "stoi_fp32": round(float(stoi_fp32.mean()), 4),
            "stoi_int8": round(float(stoi_int8.mean()), 4),
            "max_abs_sample_difference": round(max(diffs), 5),
            "holds": bool(abs(delta.mean()) <= 0.02),
        }
        print(name, results[name])  # noqa: T201
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pairs", type=Path)
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = compare(args.pairs, args.model or ["gru", "dnn"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "pairs": str(args.pairs),
            "results": results,
            "command": "python -m hush.bench.int8_quality " + " ".join(sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()

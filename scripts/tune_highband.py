"""Score high-band gain rules (``hush.streaming.highband.HighBandRule``) on a 48 kHz
VALIDATION pairs folder: the mean high-band log-spectral distance (8-20 kHz, to the clean
reference, ``evaluation.metrics.lsd_high_band``) of each rule, beside the noisy input's.
This is how the shipped default was chosen (docs/fullband.md); never point it at the test set.

    python scripts/tune_highband.py out/fullband48/val --model gru
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from hush.evaluation.metrics import lsd_high_band
from hush.evaluation.pairs import find_pairs, read_pair_native
from hush.models import ModelRegistry
from hush.streaming import Enhancer
from hush.streaming.highband import HighBandRule

RULES = {
    "ref 4-8k": HighBandRule(exponent=1.0),
    "ref 6-8k": HighBandRule(ref_hz=(6000.0, 8000.0), exponent=1.0),
    "ref 4-8k floor .1": HighBandRule(floor=0.1, exponent=1.0),
    "ref 4-8k floor .2": HighBandRule(floor=0.2, exponent=1.0),
    "ref 4-8k exp .5": HighBandRule(exponent=0.5),
    "ref 4-8k exp .75 (shipped)": HighBandRule(),
    "ref 4-8k exp 1.5": HighBandRule(exponent=1.5),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", type=Path)
    parser.add_argument("--model", default="gru")
    parser.add_argument("--rules", default=None, help="comma-separated rule names (default: all)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--peers", default="", help="also score these peers natively, e.g. rnnoise,dfn3")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _ = ModelRegistry().load(args.model)
    names = args.rules.split(",") if args.rules else list(RULES)
    pairs = [read_pair_native(p) for p in find_pairs(args.pairs)]
    scores: dict[str, list[float]] = {"noisy": [lsd_high_band(c, n, r) for c, n, r in pairs]}
    started = time.perf_counter()
    for name in names:
        enhancer = Enhancer(model, args.model, high_band=RULES[name])
        scores[name] = [lsd_high_band(c, enhancer.at_rate(r).enhance(n), r) for c, n, r in pairs]
    if args.peers:
        from hush.evaluation.peers import default_peers_dir, enhance_at_rate, load_peer

        for name in args.peers.split(","):
            peer = load_peer(name, default_peers_dir())
            scores[name] = [lsd_high_band(c, enhance_at_rate(peer, n, r), r) for c, n, r in pairs]
    summary = {
        name: {"lsd_hb": float(np.nanmean(v)), "ci95": float(1.96 * np.nanstd(v) / np.sqrt(len(v)))}
        for name, v in scores.items()
    }
    for name, row in summary.items():
        print(f"{name:28s} {row['lsd_hb']:6.2f} dB  +- {row['ci95']:.2f}")  # noqa: T201
    print(f"{len(pairs)} pairs, {time.perf_counter() - started:.0f} s")  # noqa: T201
    if args.json:
        args.json.write_text(
            json.dumps({"pairs": str(args.pairs), "model": args.model, "rules": summary}, indent=1)
        )


if __name__ == "__main__":
    main()

"""Copy a pairs folder (clean/, noisy/, mixtures.csv) to another rate with soxr VHQ, as the
corpus scripts resample: for the check that the full-band path matches the 16 kHz one below
8 kHz (docs/fullband.md).

    python scripts/upsample_pairs.py out/val16 out/val16_up48 --rate 48000
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import soundfile as sf
import soxr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--rate", type=int, default=48000)
    args = parser.parse_args()
    for sub in ("clean", "noisy"):
        (args.target / sub).mkdir(parents=True, exist_ok=True)
        for path in sorted((args.source / sub).iterdir()):
            audio, rate = sf.read(path, dtype="float64")
            out = soxr.resample(audio, rate, args.rate, quality="VHQ")
            sf.write(args.target / sub / f"{path.stem}.wav", out, args.rate, subtype="FLOAT")
    if (args.source / "mixtures.csv").is_file():
        shutil.copy(args.source / "mixtures.csv", args.target / "mixtures.csv")


if __name__ == "__main__":
    main()

"""Validation mixtures written out as a ``clean/`` + ``noisy/`` pairs folder, so that
``hush eval --pairs`` can score hush models and the peers on validation data: the same
yardstick as the test set, on audio that selection may use."""

from __future__ import annotations

import csv
from pathlib import Path

import soundfile as sf

from .config import TrainConfig
from .data import load_validation_audio, validation_mixtures


def write_validation_pairs(cfg: TrainConfig, out_dir: Path, count: int, seconds: float, seed: int) -> Path:
    """Write ``count`` fixed mixtures from the config's *validation* folders (never its
    training ones) to ``out_dir/clean`` and ``out_dir/noisy`` as 32-bit float WAV, so the
    scores see exactly the samples the mixer made, plus ``out_dir/mixtures.csv`` with each
    mixture's SNR in dB and its noise (a validation noise file's stem or a synthesised
    kind). Every mixture holds speech (PESQ and STOI are undefined without it).

    Args:
        cfg: a training config; its ``[data]`` settings make the mixtures.
        count: number of mixtures.
        seconds: length of each mixture.
        seed: the mixtures are a function of the config, ``seconds`` and ``seed`` alone.
    Returns:
        ``out_dir``.
    """
    d = cfg.data
    rate = cfg.features.sample_rate
    audio = load_validation_audio(d, rate)
    mixing = d.model_copy(update={"segment_s": seconds, "noise_only_prob": 0.0})
    mixtures = validation_mixtures(audio.maker(mixing, rate), count, seed)
    out_dir = Path(out_dir)
    (out_dir / "clean").mkdir(parents=True, exist_ok=True)
    (out_dir / "noisy").mkdir(parents=True, exist_ok=True)
    with open(out_dir / "mixtures.csv", "w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(["name", "snr_db", "noise"])
        for index, mixture in enumerate(mixtures):
            name = f"val_{index:04d}.wav"
            sf.write(out_dir / "clean" / name, mixture.clean, rate, subtype="FLOAT")
            sf.write(out_dir / "noisy" / name, mixture.noisy, rate, subtype="FLOAT")
            writer.writerow([name, f"{mixture.snr_db:.2f}", mixture.noise])
    return out_dir

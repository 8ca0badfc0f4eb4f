"""Test pairs: a folder with ``clean/`` and ``noisy/`` holding files of the same names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hush.streaming.audio_io import SUPPORTED_SUFFIXES, fit_length, read_audio, resample

from .metrics import SAMPLE_RATE


class PairsError(ValueError):
    """The pairs folder is not usable (missing sub-folders, no matching names)."""


@dataclass(frozen=True)
class Pair:
    name: str  # relative path inside clean/ and noisy/
    clean: Path
    noisy: Path


def find_pairs(folder: Path) -> list[Pair]:
    """Every audio file in ``folder/noisy`` that has a namesake in ``folder/clean``, sorted by
    name. Raises ``PairsError`` when a sub-folder is missing or nothing matches."""
    folder = Path(folder)
    clean_dir, noisy_dir = folder / "clean", folder / "noisy"
    for sub in (clean_dir, noisy_dir):
        if not sub.is_dir():
            raise PairsError(f"{folder} must hold clean/ and noisy/ folders; {sub} is missing")
    pairs = []
    for noisy in sorted(noisy_dir.rglob("*")):
        if noisy.is_file() and noisy.suffix.lower() in SUPPORTED_SUFFIXES:
            rel = noisy.relative_to(noisy_dir)
            if (clean_dir / rel).is_file():
                pairs.append(Pair(rel.as_posix(), clean_dir / rel, noisy))
    if not pairs:
        raise PairsError(f"no file in {noisy_dir} has a namesake in {clean_dir}")
    return pairs


def select(pairs: list[Pair], limit: int | None = None, every: int | None = None) -> list[Pair]:
    """Every ``every``-th pair (0, k, 2k, ...) and then at most ``limit`` of them."""
    if every is not None:
        if every < 1:
            raise ValueError("--every must be >= 1")
        pairs = pairs[::every]
    if limit is not None:
        if limit < 1:
            raise ValueError("--limit must be >= 1")
        pairs = pairs[:limit]
    return pairs


def _mono(path: Path) -> tuple[np.ndarray, int]:
    audio, info = read_audio(path)
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    return np.ascontiguousarray(mono, dtype=np.float32), info.sample_rate


def _cut(clean: np.ndarray, noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(clean.shape[0], noisy.shape[0])
    return fit_length(clean, n), fit_length(noisy, n)


def read_pair_native(pair: Pair) -> tuple[np.ndarray, np.ndarray, int]:
    """``(clean, noisy, rate)``: mono ``[S]`` float32 at the pair's own rate, cut to the
    shorter of the two (the noisy file is resampled to the clean one's rate if they differ)."""
    (clean, rate), (noisy, noisy_rate) = _mono(pair.clean), _mono(pair.noisy)
    return (*_cut(clean, resample(noisy, noisy_rate, rate)), rate)


def read_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray, int]:
    """``(clean, noisy, rate)``: mono ``[S]`` float32 at the rate the pair is scored at, cut
    to the shorter of the two; each file is read once.

    Pairs at 16 kHz or below are resampled to 16 kHz (soxr), where the metrics are defined
    (PESQ-wb, DNSMOS); pairs above it stay at the clean file's rate (``read_pair_native``),
    for the full-band systems and the high-band distance. Multichannel files are down-mixed.
    """
    (clean, rate), (noisy, noisy_rate) = _mono(pair.clean), _mono(pair.noisy)
    if rate <= SAMPLE_RATE:
        clean, noisy = resample(clean, rate, SAMPLE_RATE), resample(noisy, noisy_rate, SAMPLE_RATE)
        return (*_cut(clean, noisy), SAMPLE_RATE)
    return (*_cut(clean, resample(noisy, noisy_rate, rate)), rate)


def noise_types(folder: Path) -> dict[str, str]:
    """Pair name -> noise type, from ``folder/mixtures.csv`` when it has a ``noise_type``
    column (``hush val-pairs`` writes one); empty otherwise (the VoiceBank+DEMAND test set)."""
    import csv

    table = Path(folder) / "mixtures.csv"
    if not table.is_file():
        return {}
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "noise_type" not in rows[0]:
        return {}
    return {row["name"]: row["noise_type"] for row in rows if row.get("noise_type")}

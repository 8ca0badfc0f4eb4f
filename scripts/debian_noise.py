"""What scripts/fetch_ambient_noise.sh and scripts/fetch_extra_noise.sh share: fetching sound
files out of Debian packages and turning them into a licensed noise folder for training.

Each script lists its own selection (type, package, path, licence) and calls, in order:
``fetch_packages`` (apt-get download, unpack), ``read_sound`` for each selected file,
``speech_or_silence`` to drop clips a noise set must not hold, ``choose_val`` for the
per-type validation originals, then ``write_clips`` and ``write_manifest``. Paths name a
file inside an unpacked package: ``"a!b"`` is member ``b`` of zip archive ``a``, ``"a#N"``
entry ``N`` of an OpenTTD .cat archive. A developer tool (network, silero-vad, soxr,
soundfile); nothing in hush imports it.
"""

from __future__ import annotations

import csv
import io
import random
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from silero_vad import get_speech_timestamps

RATE = 16000  # Hz: what the noise folders hold
MAX_PIECE_S = 60  # longer clips are cut into equal pieces
MANIFEST_HEADER = ["split", "kind", "path", "duration_s", "source", "speaker_or_type", "license"]


def fetch_packages(packages: list[str], work: Path) -> dict[str, str]:
    """Download ``packages`` into ``work`` and unpack each into ``work/x/<package>``;
    returns each package's version (for the manifest's source column)."""
    subprocess.run(["apt-get", "download", *packages], cwd=work, check=True, stdout=subprocess.DEVNULL)
    versions = {}
    for package in packages:
        (deb,) = work.glob(f"{package}_*.deb")
        (work / "x" / package).mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x" / package)], check=True)
        control = subprocess.run(
            ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
        )
        versions[package] = control.stdout.strip()
    return versions


def opensfx_entry(data: bytes, index: int) -> tuple[bytes, str]:
    """Entry ``index`` of an OpenTTD .cat archive: (its RIFF bytes, its name field). The
    archive starts with an (offset, size) table; each entry is a name length, the name
    (a quoted title, then the sound's licence), then the RIFF data."""
    offset, size = struct.unpack_from("<II", data, index * 8)
    offset &= 0x7FFFFFFF
    name_len = data[offset]
    name = data[offset + 1 : offset + 1 + name_len].decode("latin-1")
    return data[offset + 1 + name_len : offset + size], name


def read_sound(root: Path, path: str) -> tuple[np.ndarray, str, str]:
    """One selected file of the package unpacked at ``root``.

    Returns:
        (samples ``[S]`` float64 mono at ``RATE``, a file-name stem, the OpenTTD name field
        for .cat entries (it holds their licence) or "").
    """
    name = ""
    if "!" in path:
        archive, member = path.split("!")
        raw, stem = zipfile.ZipFile(root / archive).read(member), Path(member).stem
    elif "#" in path:
        archive, index = path.split("#")
        raw, name = opensfx_entry((root / archive).read_bytes(), int(index))
        slug = "".join(c if c.isalnum() else "_" for c in name.split('"')[1].lower()).strip("_")
        stem = f"opensfx{int(index):03d}_{slug}"
    else:
        raw, stem = (root / path).read_bytes(), Path(path).stem
    audio, rate = sf.read(io.BytesIO(raw), dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != RATE:
        audio = soxr.resample(audio, rate, RATE, quality="VHQ")
    return audio, stem, name


def speech_or_silence(audio: np.ndarray, vad) -> str | None:
    """Why a clip must not be noise (silero-vad finds > 20 % speech or a speech segment over
    1.5 s, or its RMS is below -60 dBFS), or None when it may be."""
    rms_db = 20 * np.log10(np.sqrt(np.mean(audio**2)) + 1e-12)
    segments = get_speech_timestamps(torch.from_numpy(audio.astype(np.float32)), vad, sampling_rate=RATE)
    speech = sum(s["end"] - s["start"] for s in segments) / len(audio)
    longest = max((s["end"] - s["start"] for s in segments), default=0) / RATE
    if rms_db < -60 or speech > 0.2 or longest > 1.5:
        return f"rms={rms_db:.1f} dBFS speech={speech:.2f} longest={longest:.1f}s"
    return None


def choose_val(kept: list[tuple], seed: int, exclude: frozenset[str] = frozenset()) -> set[tuple[str, str]]:
    """(package, path) of the originals that go to validation: about 15 % of each type's
    (seeded; none for a type with fewer than three), every piece of one original in one split."""
    rng = random.Random(seed)
    val: set[tuple[str, str]] = set()
    for kind in sorted({k[0] for k in kept} - exclude):
        originals = sorted((k[1], k[2]) for k in kept if k[0] == kind)
        n_val = max(1, round(0.15 * len(originals))) if len(originals) >= 3 else 0
        val |= set(rng.sample(originals, n_val))
    return val


def write_clips(kept: list[tuple], out: Path, split_of, versions: dict[str, str]) -> list[list[str]]:
    """Write each kept (kind, package, path, licence, stem, audio) clip, peak-limited to 0.99
    and cut into pieces of at most ``MAX_PIECE_S``, as 16-bit FLAC at
    ``out/<split>/<kind>__<package>__<stem>[_partN].flac``; ``split_of(kind, package, path)``
    names the split. Returns the manifest rows."""
    rows = []
    for kind, package, path, licence, stem, audio in kept:
        split = split_of(kind, package, path)
        peak = np.abs(audio).max()
        if peak > 0.99:
            audio = audio * 0.99 / peak
        pieces = np.array_split(audio, int(np.ceil(len(audio) / (MAX_PIECE_S * RATE))))
        for i, piece in enumerate(pieces):
            name = f"{kind}__{package}__{stem}" + (f"_part{i + 1}" if len(pieces) > 1 else "") + ".flac"
            (out / split).mkdir(parents=True, exist_ok=True)
            sf.write(out / split / name, piece, RATE, subtype="PCM_16")
            source = f"Debian package {package} {versions[package]}: {path}"
            seconds = f"{len(piece) / RATE:.3f}"
            rows.append([split, "noise", f"{split}/{name}", seconds, source, kind, licence])
    return rows


def write_manifest(rows: list[list[str]], out: Path) -> None:
    """``out/manifest.csv``: train rows, then val, then any other split, each by path."""
    rows = sorted(rows, key=lambda r: ({"train": 0, "val": 1}.get(r[0], 2), r[2]))
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MANIFEST_HEADER)
        writer.writerows(rows)

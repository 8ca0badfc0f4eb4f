#!/usr/bin/env bash
# Fetch everyday-environment noise (street/traffic, crowds, vehicles, machinery/ventilation)
# from Debian game-data packages and write it as 16 kHz mono 16-bit FLAC into
# OUT_DIR/{train,val}/<type>__<package>__<stem>.flac plus OUT_DIR/manifest.csv
# (split,kind,path,duration_s,source,speaker_or_type,license). Licences are taken from each
# package's debian/copyright (per-file where it lists files). Clips with speech (silero-vad:
# >20% speech or a segment >1.5 s) or below -60 dBFS RMS are dropped; clips over 60 s are cut
# into equal pieces; about 15% of the originals of each type (seeded) go to val, all pieces
# of one original in one split. A developer tool that needs the network (Debian mirror) and
# the silero-vad, soxr and soundfile Python packages; nothing in hush calls it.
#
#   bash scripts/fetch_ambient_noise.sh out/ambient_noise   (the path configs/gru.toml reads)
set -euo pipefail
out_dir=$(realpath -m "${1:?usage: fetch_ambient_noise.sh OUT_DIR}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out_dir"
cd "$work"
packages=(lincity-ng-data ufoai-sound trigger-rally-data openttd-opensfx openarena-data)
apt-get download "${packages[@]}" >/dev/null
for pkg in "${packages[@]}"; do
    deb=$(ls "${pkg}"_*.deb)
    mkdir -p "x/$pkg"
    dpkg-deb -x "$deb" "x/$pkg"
    printf '%s\t%s\n' "$pkg" "$(dpkg-deb -f "$deb" Version)" >>versions.tsv
done
python3 - "$work" "$out_dir" <<'PY'
import csv
import io
import random
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from silero_vad import get_speech_timestamps, load_silero_vad

work, out = Path(sys.argv[1]), Path(sys.argv[2])
versions = dict(line.split("\t") for line in (work / "versions.tsv").read_text().splitlines())
RATE = 16000

LINCITY = "usr/share/games/lincity-ng/sounds/"
UFO = "usr/share/games/ufoai/base/0snd.pk3!sound/"
# (type, package, path inside the package; "a!b" = member b of zip a; "a#N" = entry N of an
# OpenTTD .cat archive, licence)
sel = []
for stems, kind in (
    (["TraficHigh1", "TraficHigh2", "TraficHigh3", "TraficLow1", "TraficLow2", "TraficLow3",
      "ResidentialHigh1", "ResidentialHigh2", "ResidentialHigh3",
      "ResidentialMed1", "ResidentialMed2", "ResidentialMed3"], "street"),
    (["MarketFull1", "MarketMed1", "SportsCroud1", "SportsCroud2", "SportsCroud3",
      "School1", "School2", "School3"], "crowd"),
    (["RailTrain1", "RailTrain2", "RailTrain3"], "vehicle"),
    (["IndustryHigh1", "IndustryHigh2", "IndustryHigh3", "IndustryLight1", "IndustryLight2",
      "IndustryLight3", "PowerCoalFull", "PowerCoalMed", "PowerCoalLow", "Mill1", "Mill3",
      "Recycle1", "Recycle2", "Recycle3", "CoalMine1", "CoalMine2", "CoalMine3",
      "OreMine1", "OreMine2", "OreMine3"], "machinery"),
):
    sel += [(kind, "lincity-ng-data", f"{LINCITY}{s}.wav", "GPL-2+") for s in stems]
sel += [
    ("machinery", "ufoai-sound", UFO + "ambience/minepump03.ogg", "CC-BY-3.0"),
    ("machinery", "ufoai-sound", UFO + "ambience/hum.ogg", "GPL-2+"),
    ("machinery", "ufoai-sound", UFO + "ambience/hum2.ogg", "GPL-2+"),
    ("machinery", "ufoai-sound", UFO + "ambience/machine1.ogg", "GPL-2+"),
    ("machinery", "ufoai-sound", UFO + "ambience/alien-ventilation.ogg", "CC-BY-SA-3.0"),
    ("machinery", "ufoai-sound", UFO + "ambience/alien-generator.ogg", "CC-BY-SA-3.0"),
    ("machinery", "ufoai-sound", UFO + "ambience/alienmachinery2.ogg", "CC-BY-SA-3.0"),
    ("machinery", "ufoai-sound", UFO + "ambience/alienmachinery3.ogg", "CC-BY-SA-3.0"),
    ("machinery", "ufoai-sound", UFO + "ambience/alienpowermachinery1.ogg", "CC-BY-SA-3.0"),
    ("machinery", "ufoai-sound", UFO + "ambience/wind_turbine.ogg", "CC-BY-SA-3.0"),
    ("machinery", "ufoai-sound", UFO + "ambience/engine_alien_big.ogg", "CC-BY-SA-3.0"),
    ("machinery", "ufoai-sound", UFO + "ambience/engine_alien_medium.ogg", "CC-BY-SA-3.0"),
    ("street", "ufoai-sound", UFO + "ambience/city_abnd_ufoai_atm.ogg", "GPL-2+"),
    ("street", "ufoai-sound", UFO + "ambience/sand-city.ogg", "CC-BY-SA-3.0"),
    ("vehicle", "ufoai-sound", UFO + "ugv/diesel-move.ogg", "CC-BY-SA-3.0"),
    ("vehicle", "ufoai-sound", UFO + "ugv/diesel-idle.ogg", "CC-BY-SA-3.0"),
    ("vehicle", "ufoai-sound", UFO + "ugv/hover-move.ogg", "CC-BY-SA-3.0"),
    # TV news and radio chatter: candidates for "TV murmur", rejected by the speech check
    ("street", "ufoai-sound", UFO + "ambience/tv_newswav.ogg", "CC-BY-SA-3.0"),
    ("street", "ufoai-sound", UFO + "ambience/radiomessage.ogg", "GPL-2+"),
    ("vehicle", "trigger-rally-data",
     "usr/share/games/trigger-rally/data.zip!sounds/engine.wav", "GPL-2+"),
    ("vehicle", "openttd-opensfx", "usr/share/games/openttd/baseset/opensfx/opensfx.cat#25", "CC0"),
    ("machinery", "openttd-opensfx",
     "usr/share/games/openttd/baseset/opensfx/opensfx.cat#40", "CC-BY-3.0"),
    ("machinery", "openarena-data",
     "usr/share/games/openarena/baseoa/pak0.pk3!sound/world/tim_machine.wav", "GPL-2+"),
]


def read_bytes(pkg, path):
    """Return (bytes, stem) of one selected file."""
    root = work / "x" / pkg
    if "!" in path:
        archive, member = path.split("!")
        return zipfile.ZipFile(root / archive).read(member), Path(member).stem
    if "#" in path:  # OpenTTD .cat: (offset, size) table, then per entry name length, name, RIFF
        archive, index = path.split("#")
        data = (root / archive).read_bytes()
        offset, size = struct.unpack_from("<II", data, int(index) * 8)
        offset &= 0x7FFFFFFF
        name_len = data[offset]
        name = data[offset + 1:offset + 1 + name_len].split(b'"')[1].decode()
        slug = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
        return data[offset + 1 + name_len:offset + size], f"opensfx{int(index):03d}_{slug}"
    return (root / path).read_bytes(), Path(path).stem


torch.set_num_threads(1)
vad = load_silero_vad()
kept, rejected = [], []
for kind, pkg, path, lic in sel:
    raw, stem = read_bytes(pkg, path)
    audio, rate = sf.read(io.BytesIO(raw), dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != RATE:
        audio = soxr.resample(audio, rate, RATE, quality="VHQ")
    rms_db = 20 * np.log10(np.sqrt(np.mean(audio**2)) + 1e-12)
    segs = get_speech_timestamps(torch.from_numpy(audio.astype(np.float32)), vad,
                                 sampling_rate=RATE)
    speech = sum(s["end"] - s["start"] for s in segs) / len(audio)
    longest = max((s["end"] - s["start"] for s in segs), default=0) / RATE
    if rms_db < -60 or speech > 0.2 or longest > 1.5:
        rejected.append(f"{pkg}:{path} rms={rms_db:.1f} dBFS speech={speech:.2f} longest={longest:.1f}s")
        continue
    peak = np.abs(audio).max()
    if peak > 0.99:
        audio *= 0.99 / peak
    kept.append((kind, pkg, path, lic, stem, audio))

rng = random.Random(20261126)
val = set()
for kind in sorted({k[0] for k in kept}):
    originals = sorted((k[1], k[2]) for k in kept if k[0] == kind)
    n_val = max(1, round(0.15 * len(originals))) if len(originals) >= 3 else 0
    val |= set(rng.sample(originals, n_val))

rows = []
for kind, pkg, path, lic, stem, audio in kept:
    split = "val" if (pkg, path) in val else "train"
    pieces = np.array_split(audio, int(np.ceil(len(audio) / (60 * RATE))))
    for i, piece in enumerate(pieces):
        name = f"{kind}__{pkg}__{stem}" + (f"_part{i + 1}" if len(pieces) > 1 else "") + ".flac"
        (out / split).mkdir(parents=True, exist_ok=True)
        sf.write(out / split / name, piece, RATE, subtype="PCM_16")
        rows.append([split, "noise", f"{split}/{name}", f"{len(piece) / RATE:.3f}",
                     f"Debian package {pkg} {versions[pkg]}: {path}", kind, lic])
rows.sort(key=lambda r: (r[0] != "train", r[2]))
with open(out / "manifest.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["split", "kind", "path", "duration_s", "source", "speaker_or_type", "license"])
    writer.writerows(rows)
for line in rejected:
    print("rejected:", line)
minutes = sum(float(r[3]) for r in rows) / 60
print(f"wrote {len(rows)} files ({len(kept)} originals, {minutes:.1f} min) to {out}")
PY

#!/usr/bin/env bash
# Build the 48 kHz validation and test sets of issue 21 (full band): speech recorded
# losslessly at 44.1 or 48 kHz, mixed with noise that has energy above 8 kHz, at -5..15 dB
# SNR, written as pairs folders for `hush eval --pairs`:
#
#   OUT_DIR/{val,test}/{clean,noisy}/<name>.flac   48 kHz mono, 24-bit
#   OUT_DIR/{val,test}/mixtures.csv                name, snr_db, speech group and clips, noise type and source
#   OUT_DIR/sources.csv                            every source file: split, kind, origin, licence
#
# Speech: the voice lines of the MegaGlest unit voices (Debian megaglest-data, CC-BY-SA-3.0;
# 44.1/48 kHz PCM), the ALSA speaker-test voice (alsa-utils, GPL-2, 48 kHz), the Open
# Invaders announcer (open-invaders-data, GPL-2+, 44.1 kHz), Pure Data's voice samples
# (puredata-doc, BSD-3-clause, 44.1 kHz), the BamBam prompts (bambam, GPL-3+, 44.1 kHz) and
# praatio's two example sentences (PyPI sdist, MIT, 48 kHz). A clip is kept only if it is
# really full band: its 8.5-16 kHz band no more than 60 dB below its 0.3-4 kHz band.
# Short clips of one voice are joined (0.15-0.4 s gaps) into 3.5-8 s utterances.
# Noise (types with energy above 8 kHz): fire, water, city and night ambiences, a mine pump
# and steam from ufoai-sound (per-file licences from its debian/copyright), rain from
# megaglest-data, an engine and gravel from trigger-rally-data, and white or pink noise.
#
# Split: by voice and by noise recording, so val and test share neither a speaker nor a
# noise recording: MegaGlest's Indian faction, the ALSA voice and praatio are validation
# voices; the Norse, Persian, Egyptian and common MegaGlest voices, Open Invaders, Pure Data
# and BamBam are test voices. The validation set may guide choices (the high-band rule); the
# test set is scored once. A developer tool that needs the network (Debian mirror, PyPI);
# nothing in hush calls it. Needs numpy, soundfile and soxr.
#
#   bash scripts/make_fullband_sets.sh out/fullband48
set -euo pipefail
out_dir=$(realpath -m "${1:?usage: make_fullband_sets.sh OUT_DIR}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out_dir" "$work/x"
cd "$work"
packages=(megaglest-data alsa-utils open-invaders-data puredata-doc bambam ufoai-sound trigger-rally-data)
apt-get download "${packages[@]}" >/dev/null
for pkg in "${packages[@]}"; do
    deb=$(ls "${pkg}"_*.deb)
    mkdir -p "x/$pkg"
    if [ "$pkg" = megaglest-data ]; then  # 1 GB unpacked: only its sounds and its copyright
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "x/$pkg" --wildcards '*.wav' '*/copyright'
    else
        dpkg-deb -x "$deb" "x/$pkg"
    fi
    printf '%s\t%s\n' "$pkg" "$(dpkg-deb -f "$deb" Version)" >>versions.tsv
done
python3 - <<'PY'
import re
import urllib.request

index = urllib.request.urlopen("https://pypi.org/simple/praatio/").read().decode()
url = re.search(r'href="([^"#]*/praatio-6\.2\.2\.tar\.gz)', index).group(1)
urllib.request.urlretrieve(url, "praatio-6.2.2.tar.gz")
PY
tar -xzf praatio-6.2.2.tar.gz -C x
python3 - "$work" "$out_dir" <<'PY'
import csv
import fnmatch
import hashlib
import io
import re
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

work, out = Path(sys.argv[1]), Path(sys.argv[2])
x = work / "x"
versions = dict(line.split("\t") for line in (work / "versions.tsv").read_text().splitlines())
RATE = 48000
rng = np.random.default_rng(20261205)


def band_db(audio, rate, lo, hi):
    n = min(audio.shape[0], 8 * rate)
    spec = np.abs(np.fft.rfft(audio[:n] * np.hanning(n))) ** 2
    freqs = np.fft.rfftfreq(n, 1 / rate)
    return 10 * np.log10(spec[(freqs >= lo) & (freqs < hi)].mean() + 1e-30)


def to48k(audio, rate):
    return audio if rate == RATE else soxr.resample(audio, rate, RATE, quality="VHQ")


def trim(audio, rate, below_db=40.0):
    """Cut leading and trailing 10 ms frames more than below_db under the loudest, keeping 50 ms."""
    hop = rate // 100
    frames = audio[: audio.shape[0] // hop * hop].reshape(-1, hop)
    level = 10 * np.log10((frames**2).mean(axis=1) + 1e-20)
    loud = np.nonzero(level > level.max() - below_db)[0]
    start, end = max(0, loud[0] * hop - rate // 20), min(audio.shape[0], (loud[-1] + 1) * hop + rate // 20)
    return audio[start:end]


def debian_licence(pkg, rel_path):
    """The licence of rel_path in pkg's debian/copyright: the last Files paragraph that matches it."""
    text = (x / pkg / f"usr/share/doc/{pkg}/copyright").read_text(errors="replace")
    found = None
    for para in text.split("\n\n"):
        lic = re.search(r"^License: *(\S.*)$", para, re.M)
        files = re.search(r"^Files:(.*?)(?=^\S|\Z)", para, re.M | re.S)
        if lic and files and any(fnmatch.fnmatch(rel_path, n) for n in files.group(1).split()):
            found = lic.group(1).strip()
    return found or "see debian/copyright"


sources = []  # split, kind, group, file, origin, licence, rate, seconds

# ---------------------------------------------------------------- speech
voices = defaultdict(list)  # group -> [(name, audio at 48 kHz)]
split_of = {}
seen = set()


def add_voice(group, split, name, path, origin, licence):
    data = Path(path).read_bytes()
    digest = hashlib.md5(data).hexdigest()
    if digest in seen:
        return
    seen.add(digest)
    audio, rate = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
    info = sf.info(io.BytesIO(data))
    if rate < 44100 or not info.subtype.startswith("PCM_") or info.subtype == "PCM_U8":
        return
    audio = trim(audio.mean(axis=1), rate)
    if audio.shape[0] < 0.3 * rate:
        return
    if band_db(audio, rate, 8500, 16000) < band_db(audio, rate, 300, 4000) - 60:
        return  # band-limited: not full-band speech
    voices[group].append((name, to48k(audio, rate)))
    split_of[group] = split
    sources.append([split, "speech", group, name, origin, licence, rate, f"{audio.shape[0] / rate:.3f}"])


glest = x / "megaglest-data/usr/share/games/megaglest/techs/megapack"
glest_version = versions["megaglest-data"]
for path in sorted(glest.rglob("*.wav")):
    stem = path.stem
    if not re.search(r"(^|_)(ack|select)\d*$", stem):
        continue  # voice lines only: attack and death sounds are grunts
    parts = path.relative_to(glest).parts
    faction = parts[1] if parts[0] == "factions" else "common"
    split = "val" if faction == "indian" else "test"
    rel = path.relative_to(x / "megaglest-data")
    add_voice(
        f"megaglest_{faction}",
        split,
        f"megaglest_{faction}_{'_'.join(parts[2:-2]) or 'common'}_{stem}",
        path,
        f"Debian megaglest-data {glest_version}: /{rel}",
        debian_licence("megaglest-data", str(rel)),
    )
for path in sorted((x / "alsa-utils/usr/share/sounds/alsa").glob("*.wav")):
    if path.stem != "Noise":
        add_voice("alsa", "val", f"alsa_{path.stem}", path,
                  f"Debian alsa-utils {versions['alsa-utils']}: /usr/share/sounds/alsa/{path.name}", "GPL-2")
praatio = next(x.glob("praatio-*/examples/files"))
for stem in ("bobby", "mary"):
    add_voice(f"praatio_{stem}", "val", f"praatio_{stem}", praatio / f"{stem}.wav",
              f"PyPI praatio-6.2.2 sdist: examples/files/{stem}.wav", "MIT")
for stem in ("welcome", "goodbye", "gameisover", "letsgo", "new_high_score", "screenshotsaved",
             "insane", "listhiscores", "options", "credits"):
    path = x / f"open-invaders-data/usr/share/open-invaders/{stem}.wav"
    if path.is_file():
        add_voice("openinvaders", "test", f"openinvaders_{stem}", path,
                  f"Debian open-invaders-data {versions['open-invaders-data']}: /usr/share/open-invaders/{stem}.wav",
                  debian_licence("open-invaders-data", f"{stem}.wav"))
for stem in ("voice", "voice2"):
    add_voice("puredata", "test", f"puredata_{stem}", x / f"puredata-doc/usr/share/doc/puredata-doc/sound/{stem}.wav",
              f"Debian puredata-doc {versions['puredata-doc']}: /usr/share/doc/puredata-doc/sound/{stem}.wav",
              "BSD-3-clause")
for stem in ("areyousure", "youcannot", "tuxok"):
    add_voice("bambam", "test", f"bambam_{stem}", x / f"bambam/usr/share/bambam/data/{stem}.wav",
              f"Debian bambam {versions['bambam']}: /usr/share/bambam/data/{stem}.wav",
              debian_licence("bambam", f"data/{stem}.wav"))

# ---------------------------------------------------------------- noise
noises = {"val": [], "test": []}  # (type, source name, audio at 48 kHz)


def add_noise(split, kind, name, data, origin, licence):
    audio, rate = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    noises[split].append((kind, name, to48k(audio, rate)))
    hb = band_db(audio, rate, 8500, 16000) - band_db(audio, rate, 300, 4000)
    sources.append([split, "noise", kind, name, origin, licence, rate, f"{audio.shape[0] / rate:.3f}"])
    print(f"noise {split} {kind:10s} {name:40s} {rate} Hz {audio.shape[0] / rate:6.1f} s  8.5-16 kHz vs 0.3-4 kHz: {hb:6.1f} dB")


ufo = zipfile.ZipFile(x / "ufoai-sound/usr/share/games/ufoai/base/0snd.pk3")
for split, kind, stem in (
    ("val", "fire", "fire1"), ("val", "fire", "fire03"), ("val", "fire", "fire05"),
    ("val", "water", "water01"), ("val", "city", "city_abnd_ufoai_atm"), ("val", "machinery", "minepump03"),
    ("test", "fire", "fire2"), ("test", "fire", "smallfire"), ("test", "fire", "fire04"),
    ("test", "fire", "firesoft"), ("test", "water", "waterfontain"), ("test", "night", "ufo_night_atm"),
    ("test", "machinery", "steam"),
):
    member = f"sound/ambience/{stem}.ogg"
    add_noise(split, kind, f"ufoai_{stem}", ufo.read(member),
              f"Debian ufoai-sound {versions['ufoai-sound']}: /usr/share/games/ufoai/base/0snd.pk3!{member}",
              debian_licence("ufoai-sound", f"base/{member}"))
rain = "usr/share/games/megaglest/tilesets/desert2/sounds/rain.wav"
add_noise("test", "rain", "megaglest_rain", (x / "megaglest-data" / rain).read_bytes(),
          f"Debian megaglest-data {glest_version}: /{rain}", debian_licence("megaglest-data", rain))
rally = zipfile.ZipFile(x / "trigger-rally-data/usr/share/games/trigger-rally/data.zip")
for split, kind, member in (("val", "vehicle", "sounds/gravel.wav"), ("test", "vehicle", "sounds/engine.wav")):
    add_noise(split, kind, f"triggerrally_{Path(member).stem}", rally.read(member),
              f"Debian trigger-rally-data {versions['trigger-rally-data']}: /usr/share/games/trigger-rally/data.zip!{member}",
              debian_licence("trigger-rally-data", f"data/data.zip/{member}"))


def coloured(kind, seconds, seed):
    white = np.random.default_rng(seed).standard_normal(int(seconds * RATE))
    if kind == "white":
        return white
    spec = np.fft.rfft(white)
    spec[1:] /= np.sqrt(np.arange(1, spec.shape[0]))  # 1/f power
    spec[0] = 0
    return np.fft.irfft(spec, n=white.shape[0])


noises["val"].append(("pink", "synthetic_pink", coloured("pink", 30, 1)))
noises["test"].append(("white", "synthetic_white", coloured("white", 30, 2)))
sources.append(["val", "noise", "pink", "synthetic_pink", "synthesised (numpy, seed 1)", "CC0", RATE, "30.000"])
sources.append(["test", "noise", "white", "synthetic_white", "synthesised (numpy, seed 2)", "CC0", RATE, "30.000"])

# ---------------------------------------------------------------- mixtures
COUNTS = {"val": 48, "test": 72}
for split, count in COUNTS.items():
    groups = sorted(g for g in voices if split_of[g] == split)
    # voices by how much they hold: every voice appears, big ones more often
    weights = np.array([sum(a.shape[0] for _, a in voices[g]) for g in groups], dtype=float) ** 0.5
    weights /= weights.sum()
    folder = out / split
    (folder / "clean").mkdir(parents=True, exist_ok=True)
    (folder / "noisy").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        group = groups[i] if i < len(groups) else str(rng.choice(groups, p=weights))
        target = rng.uniform(3.5, 8.0) * RATE
        parts, names, length = [], [], 0
        order = rng.permutation(len(voices[group]))
        j = 0
        while length < target and j < 4 * len(order):
            name, clip = voices[group][order[j % len(order)]]
            gap = np.zeros(int(rng.uniform(0.15, 0.4) * RATE))
            parts += [gap, clip]
            names.append(name)
            length += gap.shape[0] + clip.shape[0]
            j += 1
        clean = np.concatenate(parts + [np.zeros(int(0.2 * RATE))])
        clean *= 10 ** (-26 / 20) / np.sqrt(np.mean(clean**2))  # -26 dBFS RMS
        kind, noise_name, noise = noises[split][rng.integers(len(noises[split]))]
        if noise.shape[0] < clean.shape[0]:
            noise = np.tile(noise, int(np.ceil(clean.shape[0] / noise.shape[0])) + 1)
        start = rng.integers(0, noise.shape[0] - clean.shape[0] + 1)
        noise = noise[start : start + clean.shape[0]]
        snr = rng.uniform(-5.0, 15.0)
        noise = noise * np.sqrt(np.mean(clean**2) / (np.mean(noise**2) + 1e-20) / 10 ** (snr / 10))
        noisy = clean + noise
        peak = np.abs(noisy).max()
        if peak > 0.99:
            clean, noisy = clean * 0.99 / peak, noisy * 0.99 / peak
        name = f"{split}_{i:03d}_{kind}.flac"
        sf.write(folder / "clean" / name, clean, RATE, subtype="PCM_24")
        sf.write(folder / "noisy" / name, noisy, RATE, subtype="PCM_24")
        rows.append([name, f"{snr:.2f}", group, kind, noise_name, f"{clean.shape[0] / RATE:.3f}", " ".join(names)])
    with open(folder / "mixtures.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "snr_db", "speech_group", "noise_type", "noise_source", "seconds", "speech_clips"])
        writer.writerows(rows)
    minutes = sum(float(r[5]) for r in rows) / 60
    print(f"{split}: {count} mixtures ({minutes:.1f} min) of {len(groups)} voices: {', '.join(groups)}")
with open(out / "sources.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["split", "kind", "group_or_type", "name", "origin", "licence", "original_rate", "seconds"])
    writer.writerows(sources)
for split in ("val", "test"):
    speech = [r for r in sources if r[0] == split and r[1] == "speech"]
    print(f"{split} speech: {len(speech)} clips, {sum(float(r[7]) for r in speech) / 60:.1f} min")
PY

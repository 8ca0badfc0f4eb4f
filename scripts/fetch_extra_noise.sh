#!/usr/bin/env bash
# Fetch the noise types our corpus lacks (aircraft, road vehicles/engines, trains, more music)
# from Debian packages for training, and three further types that no training ever sees
# (keyboard typing, power tools, applause) for the unseen-type validation set. Written as
# 16 kHz mono 16-bit FLAC into
#
#   OUT_DIR/{train,val}/<type>__<package>__<stem>.flac   trained types, split by original recording
#   OUT_DIR/heldout_types/<type>__<package>__<stem>.flac validation only (scripts/make_validation_sets.sh)
#   OUT_DIR/manifest.csv                                 split,kind,path,duration_s,source,speaker_or_type,license
#
# Licences come from each package's debian/copyright (OpenTTD's OpenSFX names a licence per
# sound, which is used instead). Clips with speech (silero-vad: > 20 % speech or a segment
# > 1.5 s; this drops sung music) or below -60 dBFS RMS are dropped; music is one 36 s
# excerpt from the middle of each track, as in the corpus; clips over 60 s are cut into equal
# pieces; about 15 % of the originals of each trained type (seeded) go to val. Keyboard
# typing is built from bucklespring's recorded key presses (real recordings, placed at
# random typing rhythms). A developer tool that needs the network (Debian mirror) and the
# silero-vad, soxr and soundfile Python packages; nothing in hush calls it. About 3 minutes.
#
#   bash scripts/fetch_extra_noise.sh out/extra_noise   (the path configs/gru.toml reads)
set -euo pipefail
out_dir=$(realpath -m "${1:?usage: fetch_extra_noise.sh OUT_DIR}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out_dir"
python3 - "$work" "$out_dir" "$(dirname "$(realpath "$0")")" <<'PY'
import re
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from silero_vad import load_silero_vad

sys.path.insert(0, sys.argv[3])
from debian_noise import RATE, choose_val, fetch_packages, read_sound, speech_or_silence, write_clips, write_manifest

work, out = Path(sys.argv[1]), Path(sys.argv[2])
packages = ["flightgear-data-base", "torcs-data", "simutrans-pak64", "openttd-opensfx",
            "wesnoth-1.16-music", "supertux-data", "frozen-bubble-data", "bucklespring-data"]
versions = fetch_packages(packages, work)
FG = "usr/share/games/flightgear/"
TORCS = "usr/share/games/torcs/data/sound/"
SIMU = "usr/share/games/simutrans/pak/sound/"
OPENSFX = "usr/share/games/openttd/baseset/opensfx/opensfx.cat#"

# (type, package, path; "a#N" = entry N of an OpenTTD .cat archive, licence or None = the
# entry's own). Entries 25 and 40 of OpenSFX are already in scripts/fetch_ambient_noise.sh.
sel = []
sel += [("aircraft", "flightgear-data-base", FG + p, "GPL-2+") for p in (
    "Sounds/engine-prop.wav", "Sounds/prop.wav", "Sounds/exhaust_loop.wav", "Sounds/R-1535Slow.wav",
    "Sounds/turbine_start.wav", "Sounds/turbine_shutdown.wav", "Sounds/blade_vortex.wav",
    "Sounds/p51d_startup.wav", "Aircraft/c172p/Sounds/engine.wav",
    "Aircraft/c172p/Sounds/engine-idle.wav")]
sel += [("aircraft", "simutrans-pak64", SIMU + p, "Artistic-1.0") for p in ("planelow.wav", "comet-jet.wav")]
sel += [("aircraft", "openttd-opensfx", OPENSFX + str(n), None) for n in (8, 9, 24, 59, 61, 69)]
sel += [("road_vehicle", "torcs-data", TORCS + p, "GPL-2+") for p in (
    "206_engine.wav", "935.wav", "944.wav", "alpha-romeo.wav", "cleanviper.wav", "corolla1400hi2.wav",
    "engine-1.wav", "evo7_engine.wav", "f360.wav", "ferrarif355.wav", "ferrarif50.wav", "ford1b.wav",
    "ford2c.wav", "gt40.wav", "impreza2002_engine.wav", "lamborghinidiablo.wav", "lotus.wav",
    "mclarenf1.wav", "nsx.wav", "porsche_engine.wav", "renault-v10.wav", "road-ride.wav",
    "viper2.wav", "viper_long.wav", "xj220.wav")]
sel += [("road_vehicle", "flightgear-data-base", FG + "Aircraft/c172p/Sounds/" + p, "GPL-2+")
        for p in ("tires-rolling-asphalt.wav", "tires-rolling-gravel.wav")]
sel += [("road_vehicle", "simutrans-pak64", SIMU + p, "Artistic-1.0") for p in ("bus.wav", "truck.wav", "diesel.wav")]
sel += [("road_vehicle", "openttd-opensfx", OPENSFX + str(n), None) for n in (26, 27, 28)]
sel += [("train", "openttd-opensfx", OPENSFX + str(n), None) for n in (4, 5, 10, 14, 65, 71)]
sel += [("train", "simutrans-pak64", SIMU + p, "Artistic-1.0") for p in ("steam.wav", "crossing.wav")]
for pkg, folder, lic in (
    ("wesnoth-1.16-music", "usr/share/games/wesnoth/1.16/data/core/music", "GPL-2+"),
    ("supertux-data", "usr/share/games/supertux2/music", "GPL-2+"),
    ("frozen-bubble-data", "usr/share/games/frozen-bubble/snd", "GPL-2"),
):
    root = work / "x" / pkg
    tracks = sorted(p for p in (root / folder).rglob("*.ogg") if sf.info(str(p)).duration >= 30)
    sel += [("music", pkg, str(p.relative_to(root)), lic) for p in tracks]
# never trained: validation of unseen noise types only
HELDOUT = {"keyboard", "power_tools", "applause"}
sel += [("power_tools", "openttd-opensfx", OPENSFX + str(n), None) for n in (33, 56)]
sel += [("power_tools", "simutrans-pak64", SIMU + p, "Artistic-1.0") for p in ("buzzsaw.wav", "tree-cutting.wav", "jackhammer.wav")]
sel += [("applause", "openttd-opensfx", OPENSFX + "29", None)]
sel += [("applause", "frozen-bubble-data", "usr/share/games/frozen-bubble/snd/applause.ogg", "GPL-2")]

LICENCES = {"Creative Commons Attribution 3": "CC-BY-3.0", "Creative Commons Zero 1": "CC0",
            "Creative Commons Attribution-ShareAlike 3": "CC-BY-SA-3.0"}



def keyboard_typing(rng, seconds):
    """Real key-press recordings (bucklespring, an IBM Model M) at a typing rhythm: bursts
    of 3-12 keys 80-250 ms apart, pauses of 0.3-2 s between bursts."""
    keys = sorted((work / "x/bucklespring-data/usr/share/buckle/wav").glob("*.wav"))
    clips = []
    for key in keys:
        audio, rate = sf.read(str(key), dtype="float64", always_2d=True)
        clips.append(soxr.resample(audio.mean(axis=1), rate, RATE, quality="VHQ"))
    out = np.zeros(int(seconds * RATE))
    t = rng.uniform(0, 0.5)
    while t < seconds - 0.5:
        for _ in range(rng.integers(3, 13)):
            clip = clips[rng.integers(len(clips))] * 10 ** (rng.uniform(-4, 0) / 20)
            start = int(t * RATE)
            if start >= out.size:
                break
            end = min(start + clip.size, out.size)
            out[start:end] += clip[: end - start]
            t += rng.uniform(0.08, 0.25)
        t += rng.uniform(0.3, 2.0)
    return out



torch.set_num_threads(1)
vad = load_silero_vad()
kept, rejected = [], []
for kind, pkg, path, lic in sel:
    audio, stem, name = read_sound(work / "x" / pkg, path)
    # an OpenSFX sound names its own licence: "... License: Creative Commons Zero 1. ..."
    lic = lic or LICENCES[re.search(r"License: ([^.]*)", name).group(1).strip()]
    if kind == "music" and audio.size > 36 * RATE:
        middle = audio.size // 2
        audio = audio[middle - 18 * RATE:middle + 18 * RATE]
    if reason := speech_or_silence(audio, vad):
        rejected.append(f"{pkg}:{path} {reason}")
    else:
        kept.append((kind, pkg, path, lic, stem, audio))
typing_rng = np.random.default_rng(20261205)
for i in range(8):
    kept.append(("keyboard", "bucklespring-data", "usr/share/buckle/wav/*.wav (typing rhythm, seeded)",
                 "GPL-2+", f"typing{i + 1}", keyboard_typing(typing_rng, 20.0)))

val = choose_val(kept, seed=20261205, exclude=frozenset(HELDOUT))


def split_of(kind, pkg, path):
    return "heldout_types" if kind in HELDOUT else "val" if (pkg, path) in val else "train"


rows = write_clips(kept, out, split_of, versions)
write_manifest(rows, out)
for line in rejected:
    print("rejected:", line)
for split in ("train", "val", "heldout_types"):
    for kind in sorted({r[5] for r in rows if r[0] == split}):
        sub = [r for r in rows if r[0] == split and r[5] == kind]
        print(f"{split:14s} {kind:13s} {len(sub):3d} files {sum(float(r[3]) for r in sub) / 60:5.1f} min")
PY

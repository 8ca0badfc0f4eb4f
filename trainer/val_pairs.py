"""Validation mixtures written out as a ``clean/`` + ``noisy/`` pairs folder, so that
``hush eval --pairs`` can score hush models and the peers on validation data: the same
yardstick as the test set, on audio that selection may use.

By default the mixtures come from a config's validation folders with its own recipe (the
in-domain set). Given other speech or noise folders, and optionally only real recordings at
an SNR range of its own, the same writer makes the generalisation sets: speakers and noise
types that training never saw (scripts/make_validation_sets.sh).
"""

from __future__ import annotations

import csv
from pathlib import Path

import soundfile as sf

from .config import TrainConfig
from .data import (
    ValidationAudio,
    _manifest_column,
    list_audio,
    load_audio_files,
    load_speech,
    load_validation_audio,
    validation_mixtures,
)

# Only recorded noise: the synthesised kinds (coloured, babble, hum, tonal, impulsive) are off.
_REAL_ONLY = {
    "real_noise_weight": 1.0,
    "coloured_noise_weight": 0.0,
    "babble_weight": 0.0,
    "hum_weight": 0.0,
    "tonal_weight": 0.0,
    "impulsive_weight": 0.0,
    "second_noise_prob": 0.0,
}


def _audio(
    cfg: TrainConfig, speech_dirs: list[Path] | None, noise_dirs: list[Path] | None
) -> ValidationAudio:
    """The config's validation audio, with ``speech_dirs`` / ``noise_dirs`` in place of its
    folders where given (no licence filter there: they are scored, never trained on)."""
    d = cfg.data
    rate = cfg.features.sample_rate
    default = load_validation_audio(d, rate) if not (speech_dirs and noise_dirs) else None
    if speech_dirs:
        speech_files = list_audio(speech_dirs, d.manifests, None, None)
        # per speaker only where the manifests know every file's speaker
        known = _manifest_column(d.manifests, "speaker_or_type")
        balance = "speaker" if all(str(f.resolve()) in known for f in speech_files) else "file"
        speech, groups = load_speech(speech_files, rate, d.model_copy(update={"speech_balance": balance}))
    else:
        speech_files, speech, groups = default.speech_files, default.speech, default.speech_groups
    if noise_dirs:
        noise_files = list_audio(noise_dirs, d.manifests, None, None)
        noise = load_audio_files(noise_files, rate)
    else:
        noise_files, noise = default.noise_files, default.noise
    return ValidationAudio(speech_files, noise_files, speech, noise, groups)


def write_validation_pairs(
    cfg: TrainConfig,
    out_dir: Path,
    count: int,
    seconds: float,
    seed: int,
    speech_dirs: list[Path] | None = None,
    noise_dirs: list[Path] | None = None,
    real_noise_only: bool = False,
    snr_db: tuple[float, float] | None = None,
) -> Path:
    """Write ``count`` fixed mixtures to ``out_dir/clean`` and ``out_dir/noisy`` as 32-bit
    float WAV, so the scores see exactly the samples the mixer made, plus
    ``out_dir/mixtures.csv``: each mixture's SNR in dB, its noise (a noise file's stem or a
    synthesised kind) and that noise's type (the manifest's ``speaker_or_type`` of a
    recording, else the synthesised kind), which ``hush eval`` breaks its scores down by.
    Every mixture holds speech (PESQ and STOI are undefined without it).

    Args:
        cfg: a training config; its ``[data]`` settings make the mixtures, from its
            *validation* folders (never its training ones) unless replaced below.
        count: number of mixtures.
        seconds: length of each mixture.
        seed: the mixtures are a function of the config, the folders, the options and ``seed``.
        speech_dirs, noise_dirs: folders to draw speech or noise from instead.
        real_noise_only: one recorded noise per mixture, nothing synthesised.
        snr_db: SNR range instead of the config's (and no near-clean share).
    Returns:
        ``out_dir``.
    """
    rate = cfg.features.sample_rate
    audio = _audio(cfg, speech_dirs, noise_dirs)
    update: dict = {"segment_s": seconds, "noise_only_prob": 0.0}
    if real_noise_only:
        update |= _REAL_ONLY
    if snr_db is not None:
        update |= {"snr_db": tuple(snr_db), "high_snr_prob": 0.0}
    mixing = cfg.data.model_copy(update=update)
    if noise_dirs and mixing.noise_balance == "type":
        known = _manifest_column(mixing.manifests, "speaker_or_type")
        if not all(str(f.resolve()) in known for f in audio.noise_files):
            mixing = mixing.model_copy(update={"noise_balance": "file"})
    mixtures = validation_mixtures(audio.maker(mixing, rate), count, seed)
    types = _manifest_column(mixing.manifests, "speaker_or_type")
    type_of = {path.stem: types.get(str(path.resolve()), "") for path in audio.noise_files}
    out_dir = Path(out_dir)
    (out_dir / "clean").mkdir(parents=True, exist_ok=True)
    (out_dir / "noisy").mkdir(parents=True, exist_ok=True)
    with open(out_dir / "mixtures.csv", "w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(["name", "snr_db", "noise", "noise_type"])
        for index, mixture in enumerate(mixtures):
            name = f"val_{index:04d}.wav"
            sf.write(out_dir / "clean" / name, mixture.clean, rate, subtype="FLOAT")
            sf.write(out_dir / "noisy" / name, mixture.noisy, rate, subtype="FLOAT")
            first = mixture.noise.split(" + ")[0]
            writer.writerow([name, f"{mixture.snr_db:.2f}", mixture.noise, type_of.get(first) or first])
    return out_dir

"""Publish a trained model: copy its weight files into a models folder, record test scores,
and write its model card (``<name>.md``) from the provenance the weight file carries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hush.models.features import FeatureConfig
from hush.models.weights import WeightMetadata, read_metadata

# Licences in the corpus and fetched-noise manifests that allow commercial use of the
# material: every licence configs/gru.toml's allowed_licences accepts (free-software and
# CC licences without a non-commercial clause). Anything else (CC-BY-NC-*, "unverified")
# makes the card say so.
COMMERCIAL_LICENCES = {
    "Apache-2.0",
    "Artistic-1.0",
    "CC-BY-4.0",
    "CC-BY-3.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "CC0",
    "GPL",
    "GPL-2",
    "GPL-2+",
    "GPL-3",
    "GPL-3+",
    "LGPL-3+",
    "MIT",
    "Public Domain",
}


def _stft_words(feats: FeatureConfig) -> str:
    """The STFT in words: symmetric sqrt-Hann, or the asymmetric analysis/synthesis pair."""
    if feats.frame_length == feats.win_length:
        return f"{feats.win_length}-sample sqrt-Hann STFT"
    return (
        f"{feats.frame_length}-sample STFT with an asymmetric analysis window "
        f"({feats.win_length}-sample synthesis window)"
    )


def record_test_scores(json_path: Path, scores: dict[str, float], evaluation: dict) -> WeightMetadata:
    """Store test-set scores (and how they were measured) in a weight file's provenance.

    Only the JSON half changes; the tensor checksum is unaffected.
    """
    raw = json.loads(Path(json_path).read_text())
    raw["provenance"]["test_scores"] = {k: round(float(v), 4) for k, v in scores.items()}
    raw["provenance"]["extra"]["test_evaluation"] = evaluation
    Path(json_path).write_text(json.dumps(raw, indent=2) + "\n")
    return read_metadata(json_path)


def model_card(meta: WeightMetadata) -> str:
    """Markdown model card: what the model is, what it was trained on (with licences), how well it does."""
    extra = meta.provenance.extra
    data = extra.get("data", {})
    arch = meta.architecture.model_dump()
    feats = meta.features
    lines = [
        f"# Model card: `{meta.name}`",
        "",
        meta.description,
        "",
        "## Architecture",
        "",
        f"- family: {arch.pop('family')}; settings: " + ", ".join(f"{k}={v}" for k, v in arch.items()),
        f"- parameters: {meta.num_parameters:,}",
        f"- input: log power of a {_stft_words(feats)}, hop {feats.hop_length} "
        f"({1000 * feats.hop_length / feats.sample_rate:.0f} ms), at {feats.sample_rate} Hz, minus a causal "
        f"running mean (tau {feats.norm_tau_s} s)"
        + (
            f"; plus the a-posteriori SNR over a causal minimum-tracking noise floor "
            f"(rising at most {arch['noise_rise_db_per_s']} dB/s)"
            if arch.get("noise_aware")
            else ""
        )
        + (
            f"; plus cos and sin of the phase advance since the previous frame in the lowest "
            f"{arch['deep_filter_bins']} bins"
            if arch.get("phase_features")
            else ""
        ),
        "- output: one gain in [0, 1] per frequency bin and frame"
        + (
            f"; plus a complex deep filter over the current and {arch['deep_filter_frames'] - 1} past "
            f"spectra in the lowest {arch['deep_filter_bins']} bins, added to the gained spectrum there "
            "(past frames only: no added latency)"
            if arch.get("deep_filter_frames")
            else ""
        ),
        f"- algorithmic latency: {meta.latency_ms:.1f} ms ({meta.latency_samples} samples)",
        "",
        "## Training data",
        "",
        f"- {meta.provenance.data}",
    ]
    for key, label in (
        ("speech_licences", "training speech licences"),
        ("noise_licences", "training noise licences"),
        ("val_speech_licences", "validation speech licences (checkpoint selection only)"),
        ("val_noise_licences", "validation noise licences (checkpoint selection only)"),
    ):
        licences = data.get(key, {})
        if licences:
            lines.append(f"- {label}: {_counted(licences)}")
    all_licences = set(meta.provenance.licences)
    for key in ("val_speech_licences", "val_noise_licences"):
        all_licences |= set(data.get(key, {}))
    # earlier stages of a fine-tuned model count too: their data shaped these weights
    for stage in _earlier_stages(extra.get("init_from")):
        all_licences |= set(stage.get("licences") or [])
        all_licences |= set(stage.get("val_speech_licences") or {})
    if all_licences:
        commercial = all_licences <= COMMERCIAL_LICENCES
        lines.append(
            "- every training and validation file, in every stage, carries a licence that allows "
            "commercial use"
            if commercial
            else "- some training or validation files (see the stages below) carry licences that do NOT "
            "allow commercial use: " + ", ".join(sorted(all_licences - COMMERCIAL_LICENCES))
        )
        lines.append(
            "- share-alike and GPL sources were used as training material only; no audio from them "
            "ships with hush. Whether such licences reach trained weights is not settled law: check "
            "with your counsel if that matters to you."
        )
    if data.get("allowed_licences"):
        lines.append(f"- licence filter applied when training: {', '.join(data['allowed_licences'])}")
    data_cfg = extra.get("train_config", {}).get("data", {})
    snr = data_cfg.get("snr_db")
    high = data_cfg.get("high_snr_prob", 0.0)
    lines += [
        "- augmentation: on-the-fly mixing at random SNR"
        + (f" ({snr[0]:g} to {snr[1]:g} dB)" if snr else "")
        + (
            f", {100 * high:.0f} % of mixtures near-clean "
            f"({data_cfg['high_snr_db'][0]:g} to {data_cfg['high_snr_db'][1]:g} dB)"
            if high
            else ""
        )
        + " and random level, synthesised coloured noise, hum and babble, random microphone filters "
        "(see the training config)",
        "",
        "## Training run",
        "",
        f"- exported checkpoint: step {meta.provenance.steps} of {extra.get('total_steps', '?')}, "
        + (
            # select_on = "objective": the recorded figure is the whole training loss, extra
            # terms included (a negative -SI-SDR term can make it any size), not the base loss
            f"validation objective {meta.provenance.val_loss:.5f} (the whole training loss, extra terms "
            "included; the checkpoint was chosen on it)"
            if meta.provenance.val_loss_kind == "objective"
            else f"validation loss {meta.provenance.val_loss:.5f} (chosen on validation loss only)"
        ),
        f"- wall time: {extra.get('train_minutes', '?')} min on {extra.get('device', '?')} "
        f"({extra.get('world_size', 1)} process(es) at the end)",
        *([f"- history: {extra['run_history']}"] if extra.get("run_history") else []),
        *([f"- selection: {extra['selection_note']}"] if extra.get("selection_note") else []),
        f"- code: commit {extra.get('git_commit', '?')}; config: "
        f"`{extra.get('config_file') or f'configs/{meta.name}.toml'}`",
        *_earlier_stage_lines(extra.get("init_from")),
        "",
    ]
    scores = meta.provenance.test_scores
    evaluation = extra.get("test_evaluation", {})
    if scores:
        lines += [
            "## Test scores (VoiceBank+DEMAND test set, 16 kHz)",
            "",
            "| metric | value |",
            "|---|---|",
            *[f"| {key} | {value:.3f} |" for key, value in scores.items()],
            "",
            f"Measured {evaluation.get('date', '?')} on {evaluation.get('files', '?')} files with "
            f"`{evaluation.get('command', '?')}`. The test set was never used for training or selection.",
            "",
        ]
    lines += [
        "## Intended use and limits",
        "",
        "- single-talker speech in additive noise, 16 kHz internally (other rates are resampled)",
        "- trained mostly on read English; music and other speakers in the background are suppressed "
        "less reliably than stationary noise; reverberation is not removed",
        "",
    ]
    return "\n".join(lines)


def _earlier_stages(init_from: dict | None) -> list[dict]:
    """The chain of runs a fine-tuned model started from (provenance ``init_from``, nested),
    newest first; empty for a model trained from scratch."""
    chain = []
    while init_from:
        chain.append(init_from)
        init_from = init_from.get("init_from")
    return chain


def _earlier_stage_lines(init_from: dict | None) -> list[str]:
    """Card lines for a fine-tuned model: every run in the chain it started from, newest first.

    Stages are numbered from the first run (trained from scratch) as stage 1, unless a run
    records its own number (``extra["stage"]``, set by hand in an export): the project's
    stage numbers also count candidates that never shipped, so they can run ahead of the chain."""
    chain = _earlier_stages(init_from)
    lines: list[str] = []
    for depth, stage in enumerate(chain):
        number = stage.get("stage") or len(chain) - depth
        val_loss = stage.get("val_loss")
        # runs recorded before ``val_loss_kind`` existed say nothing, and were selected on the base loss
        # unless their export was annotated by hand
        val_label = (
            "validation objective (whole training loss)"
            if stage.get("val_loss_kind") == "objective"
            else "validation loss"
        )
        lines.append(
            f"- {'fine-tuned from' if depth == 0 else 'which was fine-tuned from'} stage {number}: weights "
            f"{stage.get('weights_sha256', '?')[:12]} (`{stage.get('path', '?')}`, config "
            f"`{stage.get('config_file') or '?'}`): {stage.get('steps', '?')} steps, {val_label} "
            f"{'?' if val_loss is None else f'{val_loss:.5f}'}, {stage.get('train_minutes', '?')} min"
        )
        if stage.get("run_history"):
            lines.append(f"- stage {number} history: {stage['run_history']}")
        if stage.get("selection_note"):
            lines.append(f"- stage {number} selection: {stage['selection_note']}")
        if stage.get("licences"):
            lines.append(f"- stage {number} training licences: {', '.join(stage['licences'])}")
        val = stage.get("val_speech_licences") or {}
        if val:
            lines.append(
                f"- stage {number} validation speech licences (checkpoint selection only): {_counted(val)}"
            )
    return lines


def _counted(licences: dict[str, int]) -> str:
    """``{"CC0": 3}`` -> ``"CC0 (3 files)"``, comma-separated."""
    return ", ".join(f"{name} ({count} files)" for name, count in licences.items())


def publish(export_json: Path, destination: Path) -> Path:
    """Copy ``name.json``/``name.safetensors`` into ``destination`` and write ``name.md``."""
    meta = read_metadata(export_json)
    destination.mkdir(parents=True, exist_ok=True)
    for suffix in (".json", ".safetensors"):
        target = destination / f"{meta.name}{suffix}"
        source = Path(export_json).with_suffix(suffix)
        if target.exists() and target.samefile(source):
            continue  # publishing in place: only the scores and the card change
        shutil.copyfile(source, target)
        target.chmod(0o644)
    return write_card(destination / f"{meta.name}.json")


def write_card(json_path: Path) -> Path:
    """(Re)write ``name.md`` beside ``name.json`` from its metadata."""
    card = Path(json_path).with_suffix(".md")
    card.write_text(model_card(read_metadata(json_path)))
    return card

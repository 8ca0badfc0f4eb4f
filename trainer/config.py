"""Every choice a training run makes, in one validated object read from a TOML file.

Checked-in configs under ``configs/`` reproduce each shipped model. Relative paths are
resolved against the current working directory (run ``hush train`` from the repo root).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hush.models.config import ArchitectureConfig, RecurrentConfig
from hush.models.features import FeatureConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    """Where audio comes from and how mixtures are made."""

    speech_train: list[Path] = [Path("../shared/data/speech/train")]
    speech_val: list[Path] = [Path("../shared/data/speech/val")]
    noise_train: list[Path] = [Path("../shared/data/noise/train")]
    noise_val: list[Path] = [Path("../shared/data/noise/val")]
    manifest: Path | None = Field(
        Path("../shared/data/manifest.csv"),
        description="CSV with path and license columns; needed only to filter by licence.",
    )
    extra_manifests: list[Path] = Field(
        [],
        description=(
            "More manifests of the same columns, for audio kept outside the corpus (for example "
            "noise fetched by scripts/fetch_ambient_noise.sh); read together with manifest."
        ),
    )
    allowed_licences: list[str] | None = Field(
        None, description="Keep only files whose manifest licence is in this list (None: keep all)."
    )
    max_files: int | None = Field(
        None, ge=1, description="Use at most this many files per folder set (tests)."
    )

    speech_balance: Literal["file", "speaker"] = Field(
        "file",
        description=(
            "How utterances are drawn: every file equally likely, or every speaker equally likely "
            "(the manifest's speaker_or_type column), then one of that speaker's files. "
            "'speaker' keeps a source with many files per speaker from dominating the training "
            "mixtures and the validation set; it needs the manifest."
        ),
    )

    noise_balance: Literal["file", "type"] = Field(
        "file",
        description=(
            "How recorded noises are drawn: every file equally likely, or every noise type "
            "equally likely (the manifest's speaker_or_type column), then one of its files. "
            "'type' keeps the corpus's many music files from drowning out the few recordings "
            "of other places; it needs the manifest."
        ),
    )

    segment_s: float = Field(4.0, gt=0, description="Length of each training mixture in seconds.")
    snr_db: tuple[float, float] = (-5.0, 20.0)
    high_snr_prob: float = Field(
        0.0,
        ge=0,
        le=1,
        description=(
            "Share of mixtures whose SNR is drawn from high_snr_db instead: near-clean input, "
            "which a model must learn to leave alone."
        ),
    )
    high_snr_db: tuple[float, float] = (20.0, 50.0)
    level_dbfs: tuple[float, float] = Field((-45.0, -15.0), description="RMS level of the mixture.")
    speech_fill: float = Field(
        0.9, ge=0, le=1, description="Chance a short utterance is followed by another."
    )
    noise_only_prob: float = Field(0.03, ge=0, le=1, description="Mixtures with no speech at all.")

    # Noise sources: real recordings and synthesised noise, chosen by these weights.
    real_noise_weight: float = Field(0.55, ge=0)
    coloured_noise_weight: float = Field(0.2, ge=0)
    babble_weight: float = Field(0.15, ge=0)
    hum_weight: float = Field(0.1, ge=0)
    tonal_weight: float = Field(
        0.0,
        ge=0,
        description=(
            "Synthesised tonal noise (trainer/data.py tonal_noise): engine-like harmonic series "
            "with a drifting fundamental, machine whine, sirens and beeps, the kinds of noise "
            "real recordings in the corpus are thinnest on."
        ),
    )
    impulsive_weight: float = Field(
        0.0,
        ge=0,
        description=(
            "Synthesised impulsive noise (trainer/data.py impulsive_noise): typing, clicks, "
            "knocks and clatter, which no recording in the corpus holds."
        ),
    )
    second_noise_prob: float = Field(0.3, ge=0, le=1, description="Add a second noise at a random level.")
    babble_talkers: tuple[int, int] = (3, 8)
    babble_reverb_prob: float = Field(
        0.0,
        ge=0,
        le=1,
        description=(
            "Babble heard across a room (cafe, station, open office): the summed talkers go "
            "through a diffuse-field impulse response (see babble_rt60_s, babble_drr_db)."
        ),
    )
    babble_rt60_s: tuple[float, float] = (0.3, 1.2)
    babble_drr_db: tuple[float, float] = Field(
        (-12.0, 3.0), description="Direct-to-reverberant ratio of reverberant babble (dB)."
    )
    speed_perturb_prob: float = Field(
        0.0,
        ge=0,
        le=1,
        description=(
            "Share of utterances (and babble talkers) played faster or slower by a factor from "
            "speed_range, which moves pitch and formants with it: more voices from few speakers."
        ),
    )
    speed_range: tuple[float, float] = (0.9, 1.1)
    modulation_prob: float = Field(0.2, ge=0, le=1, description="Slow random level changes of the noise.")

    random_filter_prob: float = Field(
        0.5, ge=0, le=1, description="Random second-order filter on speech and noise (microphone colour)."
    )
    reverb_prob: float = Field(0.0, ge=0, le=1, description="Room reverberation with pyroomacoustics.")
    reverb_rt60_s: tuple[float, float] = (0.15, 0.6)

    val_mixtures: int = Field(400, ge=1)
    val_seed: int = 1234

    @property
    def manifests(self) -> list[Path]:
        """The corpus manifest (when set), then the extra ones."""
        return ([self.manifest] if self.manifest is not None else []) + list(self.extra_manifests)


class OptimConfig(_Strict):
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0, description="AdamW's decoupled weight decay.")
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(500, ge=0)
    min_lr_ratio: float = Field(0.05, ge=0, le=1, description="Cosine schedule floor.")
    grad_clip: float = Field(1.0, gt=0, description="Max global gradient norm.")
    l2: float = Field(0.0, ge=0, description="Explicit L2 penalty on weights, added to the loss.")
    l1: float = Field(0.0, ge=0, description="L1 penalty on weights, added to the loss.")
    time_schedule: bool = Field(
        False,
        description=(
            "Run the cosine over whichever of max_steps or max_minutes runs out first (its "
            "progress is the larger of the two fractions), so that a run on a time budget of "
            "unknown speed still decays to the floor. Needs max_minutes."
        ),
    )


class LossConfig(_Strict):
    compression: float = Field(0.3, gt=0, le=1, description="Magnitudes are raised to this power.")
    complex_weight: float = Field(
        0.0, ge=0, description="Weight of an extra MSE on compressed complex spectra (0: magnitude only)."
    )
    suppression_weight: float = Field(
        0.0,
        ge=0,
        description=(
            "Extra weight on the compressed-magnitude error where the estimate falls below the "
            "clean speech (speech over-suppression), on top of the symmetric MSE (0: off)."
        ),
    )
    residual_weight: float = Field(
        0.0,
        ge=0,
        description=(
            "Extra weight on the compressed-magnitude error where the estimate rises above the "
            "clean speech (residual noise), on top of the symmetric MSE (0: off)."
        ),
    )
    residual_max_hz: float | None = Field(
        None,
        gt=0,
        description=(
            "Apply the residual term only to bins below this frequency (Hz; None: every bin). "
            "DNSMOS hears the noise left between harmonics below ~1 kHz during speech; over "
            "every bin the term also costs PESQ-wb and STOI (docs/results/dnsmos_gap_diagnosis.md)."
        ),
    )
    pesq_weight: float = Field(
        0.0,
        ge=0,
        description=(
            "Weight of a differentiable model of wide-band PESQ's disturbance (trainer/pesq_loss.py) "
            "between the enhanced and clean audio (0: off). Needs whole-sequence BPTT."
        ),
    )
    si_sdr_weight: float = Field(
        0.0,
        ge=0,
        description=(
            "Weight of -SI-SDR (dB) between the enhanced and clean audio (0: off). PESQ forgives a "
            "fixed equaliser and SI-SDR does not, so this keeps a PESQ term honest. Needs "
            "whole-sequence BPTT."
        ),
    )
    band_level_weight: float = Field(
        0.0,
        ge=0,
        description=(
            "Weight of the squared error (dB^2) of each item's long-term level per critical band, "
            "enhanced against clean (0: off). Forbids the fixed equaliser that a PESQ term alone "
            "learns, since PESQ forgives it, without holding the waveform as -SI-SDR does."
        ),
    )


class PhaseConfig(_Strict):
    """One phase of a phased run: what changes from the config's shared settings.

    A phased config trains its phases one after the other in one command. The first starts
    from the config's own ``init_weights`` (usually none: a random init); each later one
    starts from the checkpoint the phase before it exported, with a fresh optimizer and
    learning-rate schedule. That is how a curriculum (loss terms switched on later, a lower
    rate for a final polish) lives in one file. Features and architecture are shared by all
    phases. Unset fields keep the shared value; the ``optim``, ``loss`` and ``data`` tables
    are merged into the shared ones field by field.
    """

    name: str = Field(description="Folder name of the phase under output_dir (letters, digits, _ and -).")
    max_steps: int | None = Field(None, ge=1)
    max_minutes: float | None = Field(None, gt=0)
    val_every: int | None = Field(None, ge=1)
    patience: int | None = Field(None, ge=1)
    select_on: Literal["base", "objective"] | None = None
    batch_size: int | None = Field(None, ge=1)
    seed: int | None = Field(
        None, description="Default: the shared seed plus 1000 x the phase index, so phases draw new mixtures."
    )
    optim: dict[str, Any] = {}
    loss: dict[str, Any] = {}
    data: dict[str, Any] = {}

    @model_validator(mode="after")
    def _check_name(self) -> PhaseConfig:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", self.name):
            raise ValueError(f"phase name {self.name!r}: use 1-40 letters, digits, '_' or '-'")
        return self


# Settings a phase may change besides its optim, loss and data tables.
_PHASE_FIELDS = ("max_steps", "max_minutes", "val_every", "patience", "select_on", "batch_size", "seed")


class TrainConfig(_Strict):
    name: str = "gru"
    description: str = ""
    seed: int = 0
    output_dir: Path = Path("runs/gru")
    features: FeatureConfig = FeatureConfig()
    architecture: ArchitectureConfig = RecurrentConfig()
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    loss: LossConfig = LossConfig()

    init_weights: Path | None = Field(
        None,
        description=(
            "Start from these weights (a weight file's .json) instead of a random init; the "
            "architecture and features must match. Fine-tuning a shipped model uses this."
        ),
    )

    batch_size: int = Field(
        32, ge=1, description="Global batch: under torchrun each of N processes takes batch_size / N."
    )
    max_steps: int = Field(30000, ge=1)
    max_minutes: float | None = Field(None, gt=0, description="Stop (and export) after this wall time.")
    tbptt_frames: int | None = Field(
        None, ge=1, description="Truncated BPTT: backpropagate through chunks of this many frames."
    )
    val_every: int = Field(500, ge=1)
    select_on: Literal["base", "objective"] = Field(
        "base",
        description=(
            "What validation measures for early stopping and the exported checkpoint: the base "
            "loss (compressed-magnitude MSE, one yardstick across runs) or the whole training "
            "objective with its extra terms (for objectives, like loss.pesq_weight, that trade "
            "the base loss for something else)."
        ),
    )
    patience: int = Field(10, ge=1, description="Validations without improvement before stopping.")
    num_workers: int = Field(1, ge=0)
    prefetch_factor: int = Field(4, ge=1)
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch default).")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(True, description="bfloat16 autocast on GPU (ignored on CPU).")
    log_every: int = Field(50, ge=1)
    phases: list[PhaseConfig] = Field(
        [],
        description=(
            "Phases run one after the other by one command, each from the previous one's "
            "export (see PhaseConfig). Empty: one run with the settings above."
        ),
    )

    def phase_configs(self) -> list[TrainConfig]:
        """The config of each phase as a plain one-phase run, in order.

        Phase ``i`` writes to ``output_dir/<phase name>`` and starts from phase ``i - 1``'s
        export (phase 0 from ``init_weights``)."""
        shared = self.model_dump(exclude={"phases"})
        configs: list[TrainConfig] = []
        init = self.init_weights
        for index, phase in enumerate(self.phases):
            raw = {key: (dict(value) if isinstance(value, dict) else value) for key, value in shared.items()}
            for key in _PHASE_FIELDS:
                value = getattr(phase, key)
                if value is not None:
                    raw[key] = value
            if phase.seed is None:
                raw["seed"] = self.seed + 1000 * index
            for table in ("optim", "loss", "data"):
                raw[table] = {**raw[table], **getattr(phase, table)}
            raw["output_dir"] = Path(self.output_dir) / phase.name
            raw["init_weights"] = init
            configs.append(TrainConfig.model_validate(raw))
            init = configs[-1].export_json
        return configs

    @property
    def export_json(self) -> Path:
        """Where the run writes its exported weight file's JSON."""
        return Path(self.output_dir) / "export" / f"{self.name}.json"

    @model_validator(mode="after")
    def _check_phases(self) -> TrainConfig:
        names = [phase.name for phase in self.phases]
        if len(set(names)) != len(names):
            raise ValueError(f"phase names must differ: {names}")
        if any(phase.name == "export" for phase in self.phases):
            raise ValueError("'export' is the run's own export folder, not a phase name")
        self.phase_configs()  # every phase must be a valid run on its own: fail at load, not hours in
        return self

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.data.segment_s * self.features.sample_rate < 4 * self.features.win_length:
            raise ValueError("data.segment_s is too short for the STFT")
        if self.optim.time_schedule and self.max_minutes is None:
            raise ValueError("optim.time_schedule needs max_minutes")
        if (self.loss.pesq_weight > 0 or self.loss.si_sdr_weight > 0) and self.tbptt_frames:
            raise ValueError(
                "loss.pesq_weight and loss.si_sdr_weight need whole-sequence BPTT (no tbptt_frames)"
            )
        if self.loss.pesq_weight > 0 and self.features.sample_rate != 16000:
            raise ValueError("loss.pesq_weight models wide-band PESQ, which is defined at 16 kHz")
        return self


def load_config(path: Path | str, overrides: dict | None = None) -> TrainConfig:
    """Read a TOML config; ``overrides`` (nested dicts) win over the file.

    A nested override is merged into the file's table, except one that names an
    architecture ``family``: that replaces the whole table (fields differ per family).
    An override of something a phase may set (``max_steps``, a field of ``data``, ...)
    also wins over every phase's own value, so ``--max-steps 40`` shortens each phase.
    """
    raw = tomllib.loads(Path(path).read_text())
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and "family" not in value:
            raw.setdefault(key, {}).update(value)
        else:
            raw[key] = value
        for phase in raw.get("phases", []):
            if key in ("optim", "loss", "data") and isinstance(value, dict):
                phase[key] = {**phase.get(key, {}), **value}
            elif key in _PHASE_FIELDS:
                phase[key] = value
    return TrainConfig.model_validate(raw)

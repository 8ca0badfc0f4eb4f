"""Architecture settings for the two model families.

These pydantic models are what a weight file's JSON records under ``"architecture"``;
``extra="forbid"`` makes a file written by a different code version fail loudly instead
of being silently misread.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RecurrentConfig(BaseModel):
    """Causal frame-by-frame recurrent denoiser (see ``models/recurrent.py``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: Literal["recurrent"] = "recurrent"
    cell: Literal["rnn", "gru", "lstm"] = Field("gru", description="Recurrent cell type.")
    hidden_size: int = Field(256, ge=1, le=4096)
    num_layers: int = Field(2, ge=1, le=8)
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Between layers, training only.")
    deep_filter_frames: int = Field(
        0,
        ge=0,
        le=8,
        description=(
            "N: taps of a complex deep filter over the current and N-1 past spectra, added to the "
            "gains in the lowest deep_filter_bins bins; 0 disables it. Past frames only, so it "
            "adds no latency."
        ),
    )
    deep_filter_bins: int = Field(96, ge=1, le=4096, description="Lowest bins the deep filter covers.")
    phase_features: bool = Field(
        False,
        description=(
            "Also feed the model cos and sin of each filtered bin's phase advance since the "
            "previous frame: the local frequency a deep filter must know to add frames coherently, "
            "which log power does not carry. Needs deep_filter_frames >= 2."
        ),
    )

    @model_validator(mode="after")
    def _phase_needs_history(self) -> RecurrentConfig:
        if self.phase_features and self.deep_filter_frames < 2:
            raise ValueError("phase_features needs deep_filter_frames >= 2 (a previous spectrum)")
        return self


class SplicedConfig(BaseModel):
    """Spliced-frame feed-forward DNN baseline (see ``models/spliced.py``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: Literal["spliced"] = "spliced"
    past_frames: int = Field(4, ge=0, le=64, description="K: past frames spliced with the current one.")
    future_frames: int = Field(0, ge=0, le=8, description="L: future frames; each adds one hop of latency.")
    hidden_sizes: tuple[int, ...] = Field((512, 512), min_length=1)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    label_frames: int = Field(
        0,
        ge=0,
        le=8,
        description=(
            "M: spliced labels. Each step predicts gains for frames t-L-M..t-L; a frame's final gain "
            "is the mean of its M+1 predictions. Adds M hops of latency."
        ),
    )
    noise_aware: bool = Field(
        False,
        description=(
            "Append each frame's a-posteriori SNR (log power over a causal minimum-tracking "
            "noise floor) to the input: the level context a short window cannot see."
        ),
    )
    noise_rise_db_per_s: float = Field(
        5.0, gt=0, le=100, description="How fast the tracked noise floor may rise, dB per second."
    )


ArchitectureConfig = Annotated[RecurrentConfig | SplicedConfig, Field(discriminator="family")]

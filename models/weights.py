"""Self-describing weight files: ``<name>.safetensors`` (tensors) + ``<name>.json`` (metadata).

The JSON records the architecture, the DSP settings, sample rate, latency, where the
weights came from and a format version; it also holds the SHA-256 of the tensor file, so a
truncated or altered file is caught before any tensor is read. Loading checks all of it
and raises ``WeightFileError`` with a message that says what is wrong and where.

No pickles: code can move without breaking old files (the Demucs serializer's problem).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .base import GainModel
from .config import ArchitectureConfig
from .factory import build_model
from .features import FeatureConfig

FORMAT_NAME = "hush-weights"
FORMAT_VERSION = 1
MODEL_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class WeightFileError(ValueError):
    """A weight file set is missing, corrupt, or does not match this version of hush."""


class Provenance(BaseModel):
    """Where the weights came from. Free-form extras (configs, scores) go in ``extra``."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field("", description="Training data, e.g. folders and licences.")
    steps: int = Field(0, ge=0, description="Optimizer steps of the exported checkpoint.")
    val_loss: float | None = None
    licences: list[str] = Field(default_factory=list, description="Licences of the training data.")
    test_scores: dict[str, float] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def val_loss_kind(self) -> str:
        """``"objective"`` when ``val_loss`` is the whole training loss, extra terms included
        (the trainer's ``select_on = "objective"``), on no common scale with a base loss;
        else ``"base"``."""
        return "objective" if self.extra.get("train_config", {}).get("select_on") == "objective" else "base"


class WeightMetadata(BaseModel):
    """The JSON half of a weight file set."""

    model_config = ConfigDict(extra="forbid")

    format: str
    format_version: int
    name: str
    description: str = ""
    architecture: ArchitectureConfig
    features: FeatureConfig
    sample_rate: int
    latency_samples: int
    latency_ms: float
    num_parameters: int
    weights_sha256: str
    post_filter_beta: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description=(
            "Strength of the inference post-filter (models/postfilter.py) these weights were "
            "evaluated with; 0 = off. Training never applies it."
        ),
    )
    provenance: Provenance = Field(default_factory=Provenance)


def validate_model_name(name: str) -> str:
    """Model names are identifiers, never paths: lowercase letters, digits, ``_ . -``."""
    if not isinstance(name, str) or not MODEL_NAME_PATTERN.match(name) or ".." in name:
        raise ValueError(f"invalid model name {name!r}: use 1-64 lowercase letters, digits, '_', '.' or '-'")
    return name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_weights(
    model: GainModel,
    directory: Path | str,
    name: str,
    *,
    description: str = "",
    provenance: Provenance | None = None,
) -> Path:
    """Write ``directory/name.safetensors`` and ``directory/name.json``; returns the JSON path."""
    validate_model_name(name)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensor_path = directory / f"{name}.safetensors"
    tensors = {
        key: value.detach().to(torch.float32).contiguous() for key, value in model.state_dict().items()
    }
    save_file(tensors, str(tensor_path), metadata={"format": FORMAT_NAME, "name": name})
    meta = WeightMetadata(
        format=FORMAT_NAME,
        format_version=FORMAT_VERSION,
        name=name,
        description=description,
        architecture=model.arch,
        features=model.features,
        sample_rate=model.features.sample_rate,
        latency_samples=model.latency_samples,
        latency_ms=1000.0 * model.latency_samples / model.features.sample_rate,
        num_parameters=model.num_parameters(),
        weights_sha256=_sha256(tensor_path),
        post_filter_beta=model.post_filter_beta,
        provenance=provenance or Provenance(),
    )
    json_path = directory / f"{name}.json"
    json_path.write_text(json.dumps(meta.model_dump(mode="json"), indent=2) + "\n")
    return json_path


def read_metadata(json_path: Path | str) -> WeightMetadata:
    """Parse and validate the JSON half only (cheap; used to list models)."""
    json_path = Path(json_path)
    try:
        raw = json.loads(json_path.read_text())
    except FileNotFoundError as err:
        raise WeightFileError(f"{json_path}: metadata file not found") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise WeightFileError(f"{json_path}: metadata is not valid JSON ({err})") from err
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise WeightFileError(f"{json_path}: not a hush weight file (format != {FORMAT_NAME!r})")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise WeightFileError(
            f"{json_path}: format version {version!r} is not supported (this hush reads {FORMAT_VERSION})"
        )
    try:
        meta = WeightMetadata.model_validate(raw)
    except ValidationError as err:
        raise WeightFileError(f"{json_path}: invalid metadata:\n{err}") from err
    try:
        validate_model_name(meta.name)
    except ValueError as err:
        raise WeightFileError(f"{json_path}: {err}") from err
    if meta.sample_rate != meta.features.sample_rate:
        raise WeightFileError(
            f"{json_path}: sample_rate {meta.sample_rate} disagrees with features.sample_rate "
            f"{meta.features.sample_rate}"
        )
    return meta


def load_weights(path: Path | str) -> tuple[GainModel, WeightMetadata]:
    """Load a model from ``name.json`` (or ``name.safetensors``, or the stem) in eval mode.

    Raises:
        WeightFileError: on any mismatch: checksum, tensor names or shapes, latency,
            non-finite values, unknown architecture or format version.
    """
    path = Path(path)
    json_path = path.with_suffix(".json") if path.suffix in (".safetensors", "") else path
    tensor_path = json_path.with_suffix(".safetensors")
    meta = read_metadata(json_path)
    if not tensor_path.is_file():
        raise WeightFileError(f"{tensor_path}: tensor file not found")
    if _sha256(tensor_path) != meta.weights_sha256:
        raise WeightFileError(f"{tensor_path}: checksum mismatch, the file is corrupt or was replaced")
    try:
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightFileError(f"{tensor_path}: unreadable tensor file ({err})") from err

    model = build_model(meta.features, meta.architecture)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise WeightFileError(
            f"{tensor_path}: tensors do not match the architecture "
            f"(missing {missing}, unexpected {unexpected})"
        )
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise WeightFileError(
                f"{tensor_path}: tensor {key} has shape {tuple(value.shape)}, "
                f"architecture needs {tuple(expected[key].shape)}"
            )
        if not torch.isfinite(value).all():
            raise WeightFileError(f"{tensor_path}: tensor {key} holds NaN or infinite values")
    model.load_state_dict(tensors, strict=True)
    model.eval()
    model.post_filter_beta = meta.post_filter_beta

    if model.latency_samples != meta.latency_samples or not math.isclose(
        meta.latency_ms, 1000.0 * model.latency_samples / meta.sample_rate, abs_tol=1e-6
    ):
        raise WeightFileError(
            f"{json_path}: recorded latency {meta.latency_samples} samples / {meta.latency_ms} ms disagrees "
            f"with the architecture's {model.latency_samples} samples"
        )
    if model.num_parameters() != meta.num_parameters:
        raise WeightFileError(f"{json_path}: recorded parameter count disagrees with the tensors")
    return model, meta

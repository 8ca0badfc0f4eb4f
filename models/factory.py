"""Build a model from its recorded architecture."""

from __future__ import annotations

from .base import GainModel
from .config import RecurrentConfig, SplicedConfig
from .features import FeatureConfig
from .recurrent import RecurrentDenoiser
from .spliced import SplicedDNN


def build_model(features: FeatureConfig, arch: RecurrentConfig | SplicedConfig) -> GainModel:
    """A freshly initialised model of the given architecture. Only the trainer wants this:
    everything that enhances audio loads trained weights through ``models.weights``."""
    if isinstance(arch, RecurrentConfig):
        return RecurrentDenoiser(features, arch)
    if isinstance(arch, SplicedConfig):
        return SplicedDNN(features, arch)
    raise TypeError(f"unknown architecture {type(arch).__name__}")

"""Networks, features and weight files. Pure torch; imports nothing else from hush."""

from .base import GainModel
from .config import RecurrentConfig, SplicedConfig
from .factory import build_model
from .features import FeatureConfig
from .registry import DEFAULT_MODEL, ModelRegistry, UnknownModelError, model_load_message
from .weights import Provenance, WeightFileError, WeightMetadata, load_weights, read_metadata, save_weights

__all__ = [
    "DEFAULT_MODEL",
    "FeatureConfig",
    "GainModel",
    "ModelRegistry",
    "Provenance",
    "RecurrentConfig",
    "SplicedConfig",
    "UnknownModelError",
    "WeightFileError",
    "WeightMetadata",
    "build_model",
    "load_weights",
    "model_load_message",
    "read_metadata",
    "save_weights",
]

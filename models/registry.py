"""Find models by name: the weights shipped inside the package, plus any folders a user adds.

A name is looked up in a dictionary built by scanning folders for ``*.json`` weight
metadata; it is never joined onto a path, so ``../../etc/passwd`` is just an unknown name.
Models are loaded lazily and once: every stream of the process then shares that object.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .base import GainModel
from .weights import WeightFileError, WeightMetadata, load_weights, read_metadata, validate_model_name

SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "gru"
ENV_MODELS_DIR = "HUSH_MODELS_DIR"


class UnknownModelError(KeyError):
    """The requested model name is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0])


def model_load_message(err: UnknownModelError | WeightFileError) -> str:
    """The one-line explanation every command prints when a model cannot be loaded."""
    if isinstance(err, UnknownModelError):
        return f"{err}. Pass --weights PATH to use a weight file directly."
    return f"cannot load weights: {err}"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    json_path: Path
    metadata: WeightMetadata


class ModelRegistry:
    """Maps model names to weight files. Later folders override earlier ones by name.

    Args:
        extra_dirs: folders to scan after the shipped weights. When ``None``, the folders
            listed in ``$HUSH_MODELS_DIR`` (``os.pathsep``-separated) are used.
        include_shipped: scan the weights that ship with the package.
    """

    def __init__(self, extra_dirs: list[Path | str] | None = None, include_shipped: bool = True) -> None:
        if extra_dirs is None:
            env = os.environ.get(ENV_MODELS_DIR, "")
            extra_dirs = [p for p in env.split(os.pathsep) if p]
        self.dirs: list[Path] = ([SHIPPED_WEIGHTS_DIR] if include_shipped else []) + [
            Path(d) for d in extra_dirs
        ]
        self.entries: dict[str, ModelEntry] = {}
        self.problems: dict[Path, str] = {}
        self._loaded: dict[str, tuple[GainModel, WeightMetadata]] = {}
        self._lock = threading.Lock()
        for directory in self.dirs:
            self._scan(directory)

    def _scan(self, directory: Path) -> None:
        if not directory.is_dir():
            if directory != SHIPPED_WEIGHTS_DIR:
                self.problems[directory] = "not a folder"
            return
        for json_path in sorted(directory.glob("*.json")):
            try:
                meta = read_metadata(json_path)
            except WeightFileError as err:
                self.problems[json_path] = str(err)
                continue
            self.entries[meta.name] = ModelEntry(meta.name, json_path, meta)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def entry(self, name: str) -> ModelEntry:
        try:
            validate_model_name(name)
        except ValueError as err:
            raise UnknownModelError(str(err)) from None
        if name not in self.entries:
            known = ", ".join(self.names()) or "none"
            raise UnknownModelError(f"unknown model {name!r} (available: {known})")
        return self.entries[name]

    def load(self, name: str) -> tuple[GainModel, WeightMetadata]:
        """The loaded model and its metadata; loads on first use, then shares it."""
        entry = self.entry(name)
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = load_weights(entry.json_path)
            return self._loaded[name]

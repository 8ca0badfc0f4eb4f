"""Validation loss on one yardstick for models with different STFTs.

The trainer's validation loss is measured on each model's own spectra, so it cannot rank
a model with an asymmetric analysis window (more bins) against one without. Here every
model enhances the config's fixed validation set to audio, and the base loss (compressed
magnitude MSE) is measured on the default 20 ms sqrt-Hann STFT of that audio against the
clean speech: the same number for every model, whatever its own STFT.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hush.models import load_weights
from hush.models.features import FeatureConfig, analysis_window, overlap_add, synthesis, synthesis_window

from .config import LossConfig, TrainConfig
from .data import load_validation_audio, validation_set
from .loss import compressed_spectral_loss
from .train import enhance_spectra, spectra


@torch.no_grad()
def enhance_batch(weights: Path, noisy: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Enhance ``[N, S]`` audio with a weight file's model, offline and causally, as the
    engine does (the trainer's own framing and output rule); returns ``[N, S']`` audio
    aligned with the input, ``S'`` = the samples every frame has finished (``S' < S``)."""
    model, _ = load_weights(weights)
    model.eval()
    feats = model.features
    own = cfg.model_copy(update={"features": feats})
    window, out_window = analysis_window(feats), synthesis_window(feats)
    outputs = []
    for start in range(0, noisy.shape[0], cfg.batch_size):
        estimate = enhance_spectra(model, spectra(noisy[start : start + cfg.batch_size], own, window))
        audio = overlap_add(synthesis(estimate, out_window), feats.hop_length)
        # audio[:, 0] is sample -hop; the last hop still lacks the next frame's half
        outputs.append(audio[:, feats.hop_length : -feats.hop_length])
    return torch.cat(outputs)


def audio_validation_loss(cfg: TrainConfig, weights: list[Path]) -> dict[str, float]:
    """The base loss (``cfg.loss.compression``, no extra terms) of each weight file's
    output on ``cfg``'s validation set, on the default STFT. Returns ``{path: loss}``."""
    d = cfg.data
    rate = cfg.features.sample_rate
    audio = load_validation_audio(d, rate)
    clean, noisy, _ = validation_set(audio.maker(d, rate), d.val_mixtures, d.val_seed)
    reference = cfg.model_copy(update={"features": FeatureConfig(sample_rate=rate)})
    window = analysis_window(reference.features)
    base_loss = LossConfig(compression=cfg.loss.compression)
    results = {}
    for path in weights:
        enhanced = enhance_batch(path, noisy, cfg)
        est = spectra(enhanced, reference, window)
        # models with more look-ahead finish fewer samples: compare over the enhanced length
        ref = spectra(clean[:, : enhanced.shape[1]], reference, window)
        results[str(path)] = float(compressed_spectral_loss(est, ref, base_loss))
    return results

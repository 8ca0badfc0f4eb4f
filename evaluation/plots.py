"""Spectrogram pictures: one figure per file with a row per system, and a before/after picture.

matplotlib runs with the Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
NFFT, HOP = 512, 128
DYNAMIC_RANGE_DB = 80.0

LABELS = {
    "noisy": "noisy input",
    "rnnoise": "RNNoise",
    "dfn3": "DeepFilterNet3",
    "dtln": "DTLN",
    "gtcrn": "GTCRN",
    "noisereduce": "noisereduce",
    "clean": "clean reference",
}


def label(system: str) -> str:
    return LABELS.get(system, f"hush {system}")


def spectrogram_db(x: np.ndarray) -> np.ndarray:
    """Log power spectrogram ``[257, frames]`` in dB (Hann 512, hop 128 at 16 kHz)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < NFFT:
        x = np.pad(x, (0, NFFT - x.shape[0]))
    frames = 1 + (x.shape[0] - NFFT) // HOP
    index = np.arange(NFFT)[None, :] + HOP * np.arange(frames)[:, None]
    spectrum = np.fft.rfft(x[index] * np.hanning(NFFT), axis=1)
    return (10.0 * np.log10(np.abs(spectrum) ** 2 + 1e-12)).T


def _figure(rows: list[tuple[str, np.ndarray]], path: Path, title: str | None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = [spectrogram_db(x) for _, x in rows]
    top = max(float(s.max()) for s in specs)
    seconds = rows[0][1].shape[0] / SAMPLE_RATE
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(9, 1.7 * len(rows) + 0.4), sharex=True, squeeze=False, layout="constrained"
    )
    image = None
    for ax, (text, _), spec in zip(axes[:, 0], rows, specs, strict=True):
        image = ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=top - DYNAMIC_RANGE_DB,
            vmax=top,
            extent=(0.0, seconds, 0.0, SAMPLE_RATE / 2000),
        )
        ax.set_ylabel("kHz")
        ax.set_title(text, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.colorbar(image, ax=axes[:, 0].tolist(), label="dB", pad=0.01, fraction=0.03)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _caption(system: str, scores: dict | None) -> str:
    if not scores:
        return label(system)
    parts = [f"PESQ {scores['pesq']:.2f}", f"SI-SDR {scores['si_sdr']:.1f} dB"]
    if "dnsmos_ovrl" in scores:
        parts.append(f"OVRL {scores['dnsmos_ovrl']:.2f}")
    return f"{label(system)}  ({', '.join(parts)})"


def comparison_figure(
    path: Path,
    clean: np.ndarray,
    outputs: dict[str, np.ndarray],
    scores: dict[str, dict] | None = None,
    title: str | None = None,
) -> Path:
    """One row per system in ``outputs`` (``[S]`` at 16 kHz; ``"noisy"`` first when present),
    then the clean reference; row titles carry that file's scores."""
    scores = scores or {}
    order = sorted(outputs, key=lambda name: name != "noisy")
    rows = [(_caption(name, scores.get(name)), outputs[name]) for name in order]
    rows.append((label("clean"), clean))
    return _figure(rows, path, title)


def before_after_figure(
    path: Path,
    noisy: np.ndarray,
    enhanced: np.ndarray,
    system: str,
    clean: np.ndarray | None = None,
    title: str | None = None,
) -> Path:
    """The README picture: noisy input above ``system``'s output (and the clean reference)."""
    rows = [(f"before: {label('noisy')}", noisy), (f"after: {label(system)}", enhanced)]
    if clean is not None:
        rows.append((label("clean"), clean))
    return _figure(rows, path, title)

"""Summaries of per-file scores: mean with a 95% t-interval, and a breakdown by input-SNR band."""

from __future__ import annotations

import math

import numpy as np

from .metrics import METRICS

CI_METHOD = "Student t, 95%: mean +- t(0.975, n-1) * sd / sqrt(n), over files"

# Input-SNR bands in dB: [low, high). VoiceBank+DEMAND's test SNRs are 2.5, 7.5, 12.5 and 17.5 dB.
SNR_BANDS: tuple[tuple[str, float, float], ...] = (
    ("<5", -math.inf, 5.0),
    ("5-10", 5.0, 10.0),
    ("10-15", 10.0, 15.0),
    (">=15", 15.0, math.inf),
)


def snr_band(snr_db: float) -> str:
    for label, low, high in SNR_BANDS:
        if low <= snr_db < high:
            return label
    return SNR_BANDS[-1][0]  # +inf (a noisy file identical to clean)


def mean_ci(values: list[float] | np.ndarray) -> tuple[float, float, int]:
    """``(mean, half-width of the 95% t-interval, n)`` over the finite values.

    NaN values (e.g. PESQ finding no utterance) are left out and show in ``n``. With fewer
    than two values the half-width is NaN.
    """
    from scipy.stats import t

    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, n
    half = float(t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, half, n


def _group_stats(scores: list[dict]) -> dict:
    """``files``, each metric's mean and ``ci95`` over one group of files' scores."""
    stats: dict = {"files": len(scores), "ci95": {}}
    for metric in METRICS:
        mean, half, _ = mean_ci([s.get(metric, math.nan) for s in scores])
        stats[metric] = mean
        stats["ci95"][metric] = [mean - half, mean + half]
    return stats


def summarise(records: list[dict], systems: list[str]) -> dict[str, dict]:
    """Per system: every metric's mean, ``ci95`` [low, high], ``n`` (finite values),
    ``by_snr``: per band ``files``, each metric's mean and ``ci95``, and, when records carry a
    ``noise_type``, ``by_noise_type`` in the same form.

    ``records``: one dict per file, ``{"name", "snr_db", "scores": {system: {metric: value}}}``
    (plus ``"noise_type"`` when the pairs folder names each mixture's noise).
    """
    result: dict[str, dict] = {}
    for system in systems:
        rows = [(r["snr_db"], r["scores"][system]) for r in records if system in r["scores"]]
        entry: dict = {"ci95": {}, "n": {}, "by_snr": {}}
        for metric in METRICS:
            mean, half, n = mean_ci([s.get(metric, math.nan) for _, s in rows])
            entry[metric] = mean
            entry["ci95"][metric] = [mean - half, mean + half]
            entry["n"][metric] = n
        for label, _, _ in SNR_BANDS:
            band = [s for snr, s in rows if snr_band(snr) == label]
            if band:
                entry["by_snr"][label] = _group_stats(band)
        typed = [(r["noise_type"], r["scores"][system]) for r in records if r.get("noise_type")]
        typed = [(kind, s) for kind, s in typed if s is not None]
        if typed:
            entry["by_noise_type"] = {
                kind: _group_stats([s for k, s in typed if k == kind])
                for kind in sorted({k for k, _ in typed})
            }
        result[system] = entry
    return result

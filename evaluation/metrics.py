"""Per-file objective metrics: PESQ-wb, STOI, SI-SDR, DNSMOS P.835, the input SNR, and for
full-band pairs the high-band log-spectral distance.

Every function but ``lsd_high_band`` takes mono float signals at 16 kHz (``[S]``, full
scale = 1.0); those metrics look only below 8 kHz. The intrusive metrics (PESQ, STOI,
SI-SDR, LSD) compare an estimate with the clean reference of the same length; DNSMOS is
non-intrusive and scores the estimate alone.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
METRICS = ("pesq", "stoi", "si_sdr", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "lsd_hb")
# lsd_hb's band, Hz: above everything a 16 kHz signal holds, up to the edge of hearing
HIGH_BAND_HZ = (8000.0, 20000.0)
_EPS = 1e-12


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), both signals made zero-mean first.

    The reference is scaled by the least-squares factor ``<s, x> / <s, s>``; everything in the
    estimate that this scaled reference does not explain counts as distortion.
    """
    s = np.asarray(reference, dtype=np.float64)
    x = np.asarray(estimate, dtype=np.float64)
    if s.shape != x.shape:
        raise ValueError(f"reference {s.shape} and estimate {x.shape} differ in shape")
    s = s - s.mean()
    x = x - x.mean()
    alpha = np.dot(s, x) / (np.dot(s, s) + _EPS)
    target = alpha * s
    distortion = x - target
    return float(10.0 * np.log10((np.dot(target, target) + _EPS) / (np.dot(distortion, distortion) + _EPS)))


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """Input SNR in dB: clean power over the power of ``noisy - clean``."""
    c = np.asarray(clean, dtype=np.float64)
    n = np.asarray(noisy, dtype=np.float64) - c
    return float(10.0 * np.log10((np.dot(c, c) + _EPS) / (np.dot(n, n) + _EPS)))


def lsd_high_band(
    reference: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int,
    band_hz: tuple[float, float] = HIGH_BAND_HZ,
    active_db: float = 40.0,
    floor: float = 1e-10,
) -> float:
    """High-band log-spectral distance in dB between ``estimate`` and the clean ``reference``
    (both ``[S]`` at ``sample_rate``; lower is better, 0 = identical spectra).

    Definition: an STFT with a periodic Hann window of 32 ms and a 16 ms hop; per bin the
    power ``P = |X|^2 / sum(w^2)`` (white noise of variance s2 gives s2 in every bin), floored
    at ``floor`` (1e-10, -100 dB: about the quantisation noise of 16-bit audio, so two
    near-silent bins do not differ by an arbitrary amount). Per frame, the RMS over the bins
    with ``8 kHz <= f < min(20 kHz, Nyquist)`` of ``10 log10 P_ref - 10 log10 P_est``; then
    the mean over the frames where the reference is active: its full-band frame energy
    within ``active_db`` (40 dB) of its loudest frame. Silent reference frames are left
    out, so the figure measures speech frames (and the noise left in them), not pauses.
    NaN when the rate has no such band or the reference is silent.
    """
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    if ref.shape != est.shape:
        raise ValueError(f"reference {ref.shape} and estimate {est.shape} differ in shape")
    n_fft = round(0.032 * sample_rate)
    hop = n_fft // 2
    if ref.shape[0] < n_fft or sample_rate / 2 <= band_hz[0]:
        return math.nan
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    starts = np.arange(0, ref.shape[0] - n_fft + 1, hop)
    index = starts[:, None] + np.arange(n_fft)[None, :]
    norm = np.sum(window**2)
    p_ref = np.abs(np.fft.rfft(ref[index] * window, axis=-1)) ** 2 / norm
    p_est = np.abs(np.fft.rfft(est[index] * window, axis=-1)) ** 2 / norm
    frame_energy = p_ref.sum(axis=-1)
    if not frame_energy.max() > 0:
        return math.nan
    active = frame_energy >= frame_energy.max() * 10 ** (-active_db / 10)
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    bins = (freqs >= band_hz[0]) & (freqs < min(band_hz[1], sample_rate / 2))
    diff = 10 * np.log10(np.maximum(p_ref[active][:, bins], floor)) - 10 * np.log10(
        np.maximum(p_est[active][:, bins], floor)
    )
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=-1))))


def pesq_wb(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Wide-band PESQ (ITU-T P.862.2) MOS-LQO, 1.04..4.64; NaN where PESQ cannot score the
    pair (no utterance detected, or a silent estimate, on which pesq 0.0.4 raises ValueError
    from inside its error path)."""
    from pesq import PesqError, pesq

    if reference.shape != estimate.shape:
        raise ValueError(f"reference {reference.shape} and estimate {estimate.shape} differ in shape")
    try:
        return float(pesq(SAMPLE_RATE, reference.astype(np.float64), estimate.astype(np.float64), "wb"))
    except (PesqError, ValueError):
        return math.nan


def stoi_score(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Short-time objective intelligibility (Taal et al. 2011), 0..1 (classic, not extended)."""
    from pystoi import stoi

    return float(stoi(reference.astype(np.float64), estimate.astype(np.float64), SAMPLE_RATE, extended=False))


class Dnsmos:
    """DNSMOS P.835 (SIG, BAK, OVRL) with the ONNX models that ship inside ``speechmos``.

    ``speechmos.dnsmos.run`` builds its ONNX Runtime sessions with default options, which use
    every core in every worker process; this wrapper rebuilds the same two sessions with one
    thread each (the evaluation parallelises over files instead) and reuses speechmos' own
    segmenting, mel features and polynomial mapping unchanged, so the scores are speechmos'.
    Nothing is downloaded: the model files are package data of the installed wheel.
    """

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime as ort
        from speechmos import dnsmos

        folder = Path(dnsmos.__file__).parent / "dnsmos_models"
        primary, p808 = folder / "sig_bak_ovr.onnx", folder / "model_v8.onnx"
        for path in (primary, p808):
            if not path.is_file():
                raise FileNotFoundError(f"speechmos is missing its DNSMOS model {path}; reinstall speechmos")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._model = dnsmos.DNSMOS.__new__(dnsmos.DNSMOS)
        self._model.primary_model_path = str(primary)
        self._model.onnx_sess = ort.InferenceSession(
            str(primary), options, providers=["CPUExecutionProvider"]
        )
        self._model.p808_onnx_sess = ort.InferenceSession(
            str(p808), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, audio: np.ndarray) -> dict[str, float]:
        """Score ``[S]`` audio at 16 kHz; returns ``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_ovrl``.

        speechmos rejects samples outside [-1, 1]; an enhancer may overshoot slightly, so the
        signal is clipped, as a DAC or a file writer would.
        """
        clipped = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
        scores = self._model(clipped, SAMPLE_RATE, False)
        return {
            "dnsmos_sig": float(scores["sig_mos"]),
            "dnsmos_bak": float(scores["bak_mos"]),
            "dnsmos_ovrl": float(scores["ovrl_mos"]),
        }


def score(clean: np.ndarray, estimate: np.ndarray, dnsmos: Dnsmos | None) -> dict[str, float]:
    """All metrics of ``estimate`` against ``clean`` (same length, 16 kHz); DNSMOS keys only
    when a ``Dnsmos`` scorer is given."""
    result = {
        "pesq": pesq_wb(clean, estimate),
        "stoi": stoi_score(clean, estimate),
        "si_sdr": si_sdr(clean, estimate),
    }
    if dnsmos is not None:
        result.update(dnsmos(estimate))
    return result

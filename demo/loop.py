"""The audio callback of ``hush demo``, independent of any audio library.

``DemoLoop.callback`` has sounddevice's duplex-callback signature, so a PortAudio stream
calls it directly and a test can call it with arrays. Per block of ``blocksize`` frames
(one engine hop at the device rate) it:

1. feeds the microphone block to a ``RateAdaptedStream`` (any device rate) and keeps the
   enhanced samples it returns, which are sample-aligned with the input but arrive later;
2. plays stream position ``p .. p + blocksize`` of either the raw or the enhanced signal.
   Both are read at the SAME position, so the raw/enhanced toggle switches between two
   time-aligned versions of the same audio: no jump, no echo, a fair A/B comparison;
3. updates the level meters and hands the block to the recorder, if any.

The playback position trails the input by ``delay`` samples: the most the enhanced signal
can lag the input for this rate and block size (measured once with silence, because the
lag depends only on the block sizes, never on the sample values). At 16 kHz that is one
hop; other rates add the resamplers' lag. Should the enhanced signal ever still be late,
the block is completed with silence and the position stalls, so the delay grows by what
was missing instead of glitching again (``late_samples`` counts it).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from hush.streaming import Enhancer
from hush.streaming.audio_io import RateAdaptedStream

# Blocks simulated to measure the enhanced signal's worst lag behind the input. With
# fractional rate ratios (44.1 kHz) the per-block output count varies with a long period,
# so simulate many blocks; it costs a fraction of a second once, at start-up.
_LAG_PROBE_BLOCKS = 1200


def block_size(enhancer: Enhancer, sample_rate: int) -> int:
    """One engine hop (10 ms) at ``sample_rate``, in frames: 160 at 16 kHz, 480 at 48 kHz."""
    return max(1, round(enhancer.hop * sample_rate / enhancer.sample_rate))


def measure_delay(
    enhancer: Enhancer, sample_rate: int, blocksize: int, blocks: int = _LAG_PROBE_BLOCKS
) -> int:
    """Worst lag, in samples at ``sample_rate``, of the enhanced output behind the input.

    Fed block by block, a stream returns fewer samples than it was given; the shortfall
    depends only on block sizes, so running silence through a fresh stream measures it.
    """
    if enhancer.processing_rate(sample_rate) == sample_rate:  # the model's rate, or full band
        engine = enhancer.at_rate(sample_rate)
        if blocksize == engine.hop:
            return engine.output_delay  # exact: the engine withholds this much, then keeps pace
    probe = RateAdaptedStream(enhancer, sample_rate)
    silence = np.zeros(blocksize, dtype=np.float32)
    fed = returned = worst = 0
    for _ in range(blocks):
        returned += probe.feed(silence).shape[0]
        fed += blocksize
        worst = max(worst, fed - returned)
    return worst


def level_db(block: np.ndarray) -> float:
    """RMS level of a block in dB relative to full scale (floor -100 dB)."""
    if block.size == 0:
        return -100.0
    rms = float(np.sqrt(np.mean(np.square(block, dtype=np.float64))))
    return max(-100.0, 20.0 * math.log10(rms + 1e-12))


class LevelMeter:
    """A VU-style meter: the RMS level of each block in dBFS with a falling peak hold.

    ``level`` jumps up at once and falls at ``fall_db_per_s``, so speech reads steadily;
    ``peak`` is the highest sample magnitude since the last ``reset_peak``.
    """

    def __init__(self, fall_db_per_s: float = 30.0) -> None:
        self.fall_db_per_s = fall_db_per_s
        self.level = -100.0
        self.last = -100.0
        self.peak = 0.0

    def update(self, block: np.ndarray, seconds: float) -> None:
        self.last = level_db(block)
        self.level = max(self.last, self.level - self.fall_db_per_s * seconds)
        if block.size:
            self.peak = max(self.peak, float(np.max(np.abs(block))))

    def reset_peak(self) -> float:
        peak, self.peak = self.peak, 0.0
        return peak


class Recorder:
    """Writes raw and enhanced audio side by side: channel 1 raw microphone, channel 2 the
    enhanced signal, time-aligned sample for sample (the enhanced column is exactly what
    ``hush enhance`` makes of the raw column).

    The audio thread only appends to a deque (no disk I/O in the callback); ``drain``
    writes what both columns have in common from another thread, ``close`` the rest.
    WAV is written as 32-bit float so the recording holds the exact samples.
    """

    def __init__(self, path: Path | str, sample_rate: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        subtype = "FLOAT" if self.path.suffix.lower() == ".wav" else None
        self._file = sf.SoundFile(self.path, "w", samplerate=sample_rate, channels=2, subtype=subtype)
        self.sample_rate = sample_rate
        self._queue: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self._raw = np.zeros(0, dtype=np.float32)
        self._enhanced = np.zeros(0, dtype=np.float32)
        self._lock = threading.Lock()
        self.frames_written = 0

    def add(self, raw: np.ndarray, enhanced: np.ndarray) -> None:
        """Called from the audio thread: queue the block's raw input and enhanced output."""
        self._queue.append((raw.copy(), enhanced.copy()))

    def drain(self) -> None:
        """Write every complete (raw, enhanced) row queued so far."""
        with self._lock:
            if self._file.closed:
                return
            raws, enhanced = [self._raw], [self._enhanced]
            while self._queue:
                raw, enh = self._queue.popleft()
                raws.append(raw)
                enhanced.append(enh)
            self._raw, self._enhanced = np.concatenate(raws), np.concatenate(enhanced)
            rows = min(self._raw.shape[0], self._enhanced.shape[0])
            if rows:
                self._file.write(np.stack([self._raw[:rows], self._enhanced[:rows]], axis=1))
                self.frames_written += rows
                self._raw, self._enhanced = self._raw[rows:], self._enhanced[rows:]

    def close(self, enhanced_tail: np.ndarray) -> None:
        """Write the rest, with the stream's flushed tail completing the enhanced column."""
        self._queue.append((np.zeros(0, dtype=np.float32), enhanced_tail))
        self.drain()
        with self._lock:
            if self._raw.size:  # only if the tail came up short, which flush() never does
                self._file.write(np.stack([self._raw, np.zeros_like(self._raw)], axis=1))
                self.frames_written += self._raw.shape[0]
            self._file.close()

    @property
    def seconds(self) -> float:
        return self.frames_written / self.sample_rate


@dataclass
class LoopStats:
    blocks: int = 0
    xruns: int = 0  # blocks whose PortAudio status flagged an over- or underflow
    late_samples: int = 0  # enhanced samples that missed their slot (silence played instead)
    callback_s_total: float = 0.0
    callback_s_max: float = 0.0


class DemoLoop:
    """Microphone block in, raw or enhanced block out; meters and recording on the side.

    Args:
        enhancer: the shared model.
        sample_rate: the audio device's rate in Hz (8 kHz .. 192 kHz).
        blocksize: frames per callback; default one hop at ``sample_rate``.
        enhanced: start with enhanced (True) or raw (False) playback.
        attenuation_limit_db: cap on noise attenuation, as ``hush enhance``.
        record: write raw and enhanced side by side to this file.
        torch_threads: torch threads for the model step, set in the audio thread itself.
    """

    def __init__(
        self,
        enhancer: Enhancer,
        sample_rate: int,
        blocksize: int | None = None,
        *,
        enhanced: bool = True,
        attenuation_limit_db: float | None = None,
        record: Path | str | None = None,
        torch_threads: int = 1,
    ) -> None:
        self.enhancer = enhancer
        self.torch_threads = torch_threads
        self._audio_thread: int | None = None
        self.sample_rate = sample_rate
        self.blocksize = blocksize or block_size(enhancer, sample_rate)
        self.stream = RateAdaptedStream(enhancer, sample_rate, attenuation_limit_db)
        self.delay = measure_delay(enhancer, sample_rate, self.blocksize)
        self.enhanced = enhanced
        self.input_meter = LevelMeter()
        self.output_meter = LevelMeter()
        self.stats = LoopStats()
        self.error: BaseException | None = None
        self.recorder = Recorder(record, sample_rate) if record else None
        # Raw and enhanced history from absolute stream position `_base` on; the play
        # position starts `delay` samples before the first input sample (silence).
        self._raw = np.zeros(0, dtype=np.float32)
        self._enh = np.zeros(0, dtype=np.float32)
        self._base = 0
        self._position = -self.delay
        self._closed = False

    # ------------------------------------------------------------------ controls
    def toggle(self) -> bool:
        """Switch between raw and enhanced playback; returns True when now enhanced."""
        self.enhanced = not self.enhanced
        return self.enhanced

    @property
    def mode(self) -> str:
        return "enhanced" if self.enhanced else "raw"

    @property
    def latency_ms(self) -> float:
        """Delay from microphone block to speaker block added by hush: the engine's and the
        resamplers' lag (``delay``) plus one block of buffering (the callback period)."""
        return 1000.0 * (self.delay + self.late_delay + self.blocksize) / self.sample_rate

    @property
    def late_delay(self) -> int:
        """Extra delay accumulated by stalls (zero unless the enhanced signal came late)."""
        return self.stats.late_samples

    # ------------------------------------------------------------------ the callback
    def callback(self, indata: np.ndarray, outdata: np.ndarray, frames: int, time_info, status) -> None:
        """sounddevice ``Stream`` callback: ``indata [frames, C_in]`` float32 (channel 0 is
        used), ``outdata [frames, C_out]`` filled with the same mono signal on every channel."""
        started = time.perf_counter()
        if status:
            self.stats.xruns += 1
        if self.error is not None or self._closed:
            outdata.fill(0.0)
            return
        try:
            if self._audio_thread != threading.get_ident():
                # OpenMP's thread count is per calling thread: a fresh PortAudio thread
                # would use one OpenMP worker per core, and on a busy machine each 10 ms
                # step then took ~12 ms instead of ~0.2 ms (measured). Set it here.
                torch.set_num_threads(self.torch_threads)
                self._audio_thread = threading.get_ident()
            raw = np.ascontiguousarray(indata[:, 0], dtype=np.float32)
            enhanced = self.stream.feed(raw)
            self._raw = np.concatenate([self._raw, raw])
            self._enh = np.concatenate([self._enh, enhanced])
            block = self._play(frames)
            outdata[:] = block[:, None]
            seconds = frames / self.sample_rate
            self.input_meter.update(raw, seconds)
            self.output_meter.update(block, seconds)
            if self.recorder is not None:
                self.recorder.add(raw, enhanced)
        except Exception as err:  # never let an exception escape into PortAudio's thread
            self.error = err
            outdata.fill(0.0)
        finally:
            elapsed = time.perf_counter() - started
            self.stats.blocks += 1
            self.stats.callback_s_total += elapsed
            self.stats.callback_s_max = max(self.stats.callback_s_max, elapsed)

    def _play(self, frames: int) -> np.ndarray:
        """``frames`` samples of the selected signal from the play position on."""
        source = self._enh if self.enhanced else self._raw
        available_end = self._base + self._enh.shape[0]  # enhanced is the one that lags
        start, end = self._position, self._position + frames
        out = np.zeros(frames, dtype=np.float32)
        lo, hi = max(start, self._base), min(end, available_end)
        if hi > lo:
            out[lo - start : hi - start] = source[lo - self._base : hi - self._base]
        if end > available_end:
            # The enhanced signal is late: play silence for what is missing and stall.
            missing = end - max(start, available_end)
            self.stats.late_samples += missing
            end -= missing
        self._position = end
        # Forget what has been played.
        drop = max(0, self._position - self._base)
        if drop:
            self._raw, self._enh = self._raw[drop:], self._enh[drop:]
            self._base += drop
        return out

    # ------------------------------------------------------------------ end
    def close(self) -> None:
        """Finish the recording (flushing the stream's tail into it). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.recorder is not None:
            self.recorder.close(self.stream.flush())

    @property
    def callback_load(self) -> float:
        """Mean callback time as a fraction of the block period (1.0 = no headroom left)."""
        if not self.stats.blocks:
            return 0.0
        period = self.blocksize / self.sample_rate
        return self.stats.callback_s_total / self.stats.blocks / period

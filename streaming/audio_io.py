"""Reading, writing and resampling audio; enhancing signals at any rate and channel count.

Policy for channels: every channel is enhanced on its own, with its own stream state and
the same model, so stereo stays stereo (a down-mix would destroy the image, and the two
channels of a stereo recording rarely carry the same noise).

Resampling uses libsamplerate (``samplerate`` package, ``sinc_medium``: 90 % bandwidth,
about 3 ms of streaming lag per direction). soxr's streaming resampler, the obvious choice,
releases output in bursts: measured 37 ms worst-case lag per direction at HQ (48 <-> 16 kHz),
which would triple the service's latency at 48 kHz. ``StreamResampler`` is used by BOTH the
streaming path (``RateAdaptedStream``) and the offline path (``resample``/``enhance_signal``),
and libsamplerate is chunk-invariant, so the two agree to float rounding at every rate.

Full band: rates above the model's at which its windows are whole numbers of samples (24,
32, 44.1, 48, 96 kHz ...) are not resampled at all: they run on the model's view at that
rate (``Enhancer.at_rate``), which keeps and denoises everything above 8 kHz. Only the rest
are resampled, to ``Enhancer.processing_rate``: rates below the model's to the model's
(nothing above 8 kHz to keep), others above it to a supported multiple (22.05 -> 44.1 kHz).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import samplerate
import soundfile as sf

from .engine import Enhancer
from .stream import Stream, step_streams

# Container formats we read and write, by libsndfile's name, and their usual extensions.
SUPPORTED_FORMATS = {"WAV": ".wav", "FLAC": ".flac", "OGG": ".ogg"}
SUPPORTED_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus"}
RESAMPLER = "sinc_medium"
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000


class AudioFileError(ValueError):
    """The audio cannot be used: unreadable, empty, unsupported, or out of range."""


class UnsupportedFormatError(AudioFileError):
    """The container or codec is not one hush reads (WAV, FLAC, Ogg Vorbis/Opus)."""


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    frames: int
    format: str  # libsndfile container name: WAV, FLAC, OGG
    subtype: str  # libsndfile subtype: PCM_16, FLOAT, VORBIS, OPUS, ...

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def read_audio(source: str | Path | bytes | BinaryIO) -> tuple[np.ndarray, AudioInfo]:
    """Decode a file or bytes into ``[S, C]`` float32 samples and their ``AudioInfo``.

    Raises:
        UnsupportedFormatError: not WAV, FLAC or Ogg.
        AudioFileError: unreadable, corrupt, empty, or an implausible sample rate.
    """
    name = str(source) if isinstance(source, str | Path) else "<bytes>"
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    if isinstance(source, str | Path) and not Path(source).is_file():
        raise AudioFileError(f"{name}: file not found")
    try:
        with sf.SoundFile(handle) as f:
            info = AudioInfo(f.samplerate, f.channels, f.frames, f.format, f.subtype)
            if info.format not in SUPPORTED_FORMATS:
                raise UnsupportedFormatError(
                    f"{name}: unsupported format {info.format} (use WAV, FLAC or Ogg Vorbis/Opus)"
                )
            audio = f.read(dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        raise UnsupportedFormatError(f"{name}: not a readable WAV, FLAC or Ogg file ({err})") from err
    except (RuntimeError, EOFError, OSError) as err:
        raise AudioFileError(f"{name}: cannot decode audio ({err})") from err
    if not MIN_SAMPLE_RATE <= info.sample_rate <= MAX_SAMPLE_RATE:
        raise AudioFileError(f"{name}: sample rate {info.sample_rate} Hz is outside 8000..192000 Hz")
    if audio.shape[0] == 0:
        raise AudioFileError(f"{name}: the file holds no audio")
    if not np.isfinite(audio).all():
        raise AudioFileError(f"{name}: the file holds NaN or infinite samples")
    return audio, AudioInfo(info.sample_rate, info.channels, audio.shape[0], info.format, info.subtype)


def write_audio(target: str | Path | BinaryIO, audio: np.ndarray, info: AudioInfo) -> None:
    """Write ``[S, C]`` samples with the container, subtype and rate of ``info``.

    Integer PCM output is clipped to [-1, 1] first (what a DAC would do anyway) so that
    louder-than-full-scale samples do not wrap around. 8 to 24-bit PCM is rounded to the
    nearest step here: libsndfile's own float conversion rounds down, so a sample a hair
    below a step (float rounding in the STFT) would lose a whole step, and a 16-bit file
    passed through at a 0 dB attenuation limit would not come back sample for sample
    (``round(x * 32768)`` is also what the WebSocket's ``pcm_s16le`` output does).
    """
    subtype = info.subtype
    if subtype.startswith("PCM") or subtype in ("ULAW", "ALAW"):
        audio = np.clip(audio, -1.0, 1.0)
    bits = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24}.get(subtype)
    if bits is not None:
        step = 2.0 ** (bits - 1)
        audio = np.clip(np.round(np.asarray(audio, dtype=np.float64) * step), -step, step - 1) / step
    sf.write(target, audio, info.sample_rate, format=info.format, subtype=subtype)


class StreamResampler:
    """Mono streaming sample-rate conversion, time-aligned (no delay) and chunk-invariant.

    ``process`` returns what is ready (about 3 ms behind); ``flush`` returns the rest, so
    that in total ``round(samples_in * rate_out / rate_in)`` samples come out, whatever the
    chunking. ``resample`` runs this same class over a whole signal.
    """

    # Zeros pushed per round at the end to drain the filter.
    _DRAIN_BLOCK = 512

    def __init__(self, rate_in: int, rate_out: int) -> None:
        self.rate_in, self.rate_out = rate_in, rate_out
        self.ratio = rate_out / rate_in
        self._converter = samplerate.Resampler(RESAMPLER, channels=1)
        self.samples_in = 0
        self.samples_out = 0

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """``[n]`` float32 at ``rate_in`` -> the ``[m]`` float32 samples now ready at ``rate_out``."""
        self.samples_in += chunk.shape[0]
        if not chunk.size:
            return np.zeros(0, dtype=np.float32)
        out = self._converter.process(chunk, self.ratio, end_of_input=False)
        self.samples_out += out.shape[0]
        return out.astype(np.float32, copy=False)

    def flush(self) -> np.ndarray:
        """The remaining samples: exactly ``round(samples_in * ratio)`` have left in total."""
        target = round(self.samples_in * self.ratio)
        parts = [np.zeros(0, dtype=np.float32)]
        zeros = np.zeros(self._DRAIN_BLOCK, dtype=np.float32)
        while self.samples_out < target:
            out = self._converter.process(zeros, self.ratio, end_of_input=False)
            self.samples_out += out.shape[0]
            parts.append(out.astype(np.float32, copy=False))
        tail = np.concatenate(parts)
        excess = self.samples_out - target
        self.samples_out = target
        return tail[: tail.shape[0] - excess]


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """``[S]`` or ``[S, C]`` float32 from ``rate_in`` to ``rate_out`` Hz, time-aligned, with
    ``round(S * rate_out / rate_in)`` samples: exactly what ``StreamResampler`` streams."""
    if rate_in == rate_out:
        return audio
    if audio.ndim == 2:
        return np.stack([resample(audio[:, c], rate_in, rate_out) for c in range(audio.shape[1])], axis=1)
    converter = StreamResampler(rate_in, rate_out)
    signal = np.ascontiguousarray(audio, dtype=np.float32)
    return np.concatenate([converter.process(signal), converter.flush()])


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad the first axis to ``length`` (resampling may be off by a sample)."""
    if audio.shape[0] >= length:
        return audio[:length]
    pad = [(0, length - audio.shape[0])] + [(0, 0)] * (audio.ndim - 1)
    return np.pad(audio, pad)


def enhance_signal(
    enhancer: Enhancer, audio: np.ndarray, sample_rate: int, attenuation_limit_db: float | None = None
) -> np.ndarray:
    """Enhance ``[S, C]`` (or ``[S]``) audio at any rate; returns the same shape and rate.

    Each channel is enhanced offline at ``enhancer.processing_rate(sample_rate)``: natively
    (full band) where that is the signal's own rate, else resampled there and back and cut
    to the input length. Either way the output is time-aligned with the input.
    """
    mono = audio.ndim == 1
    audio2d = audio[:, None] if mono else audio
    out = np.empty_like(audio2d, dtype=np.float32)
    rate = enhancer.processing_rate(sample_rate)
    view = enhancer.at_rate(rate)
    for channel in range(audio2d.shape[1]):
        x = resample(np.ascontiguousarray(audio2d[:, channel], dtype=np.float32), sample_rate, rate)
        y = view.enhance(x, attenuation_limit_db=attenuation_limit_db)
        out[:, channel] = fit_length(resample(y, rate, sample_rate), audio2d.shape[0])
    return out[:, 0] if mono else out


class RateAdaptedStream:
    """A mono ``Stream`` at any input rate: natively at a full-band rate (no resampling),
    else resample in, enhance, resample out (see the module docstring).

    ``feed``/``flush`` have ``Stream``'s contract at ``sample_rate``: any chunk size in,
    whatever is ready out, and after ``flush`` samples out == samples in, equal to
    ``enhance_signal`` on the whole input.

    For batching many streams (the service), call ``push`` on each, then
    ``streaming.step_streams`` on their ``.stream`` objects, then ``collect``.
    """

    def __init__(
        self, enhancer: Enhancer, sample_rate: int, attenuation_limit_db: float | None = None
    ) -> None:
        if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
            raise ValueError(
                f"sample rate {sample_rate} Hz is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
            )
        self.processing_rate = enhancer.processing_rate(sample_rate)
        self.enhancer = enhancer.at_rate(self.processing_rate)
        self.sample_rate = sample_rate
        self.stream: Stream = Stream(self.enhancer, attenuation_limit_db)
        self._resampled = sample_rate != self.processing_rate
        self.reset()

    @property
    def resampled(self) -> bool:
        """Whether this stream goes through resamplers (False: native, full band)."""
        return self._resampled

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency of the engine at its processing rate (20 ms for the shipped
        models); where the stream is resampled, the resamplers add about 3 ms per direction."""
        return self.stream.latency_ms

    def reset(self) -> None:
        self.stream.reset()
        self.samples_in = 0
        self.samples_out = 0
        self._carry = np.zeros(0, dtype=np.float32)  # resampled output beyond what may leave yet
        if self._resampled:
            self._down = StreamResampler(self.sample_rate, self.processing_rate)
            self._up = StreamResampler(self.processing_rate, self.sample_rate)

    def push(self, samples: np.ndarray, last: bool = False) -> None:
        """Queue input at ``sample_rate`` for the model (no model call)."""
        chunk = np.ascontiguousarray(samples, dtype=np.float32)
        if chunk.ndim != 1:
            raise ValueError(f"expected a 1-D chunk of mono samples, got shape {chunk.shape}")
        if chunk.size and not np.isfinite(chunk).all():
            raise ValueError("audio contains NaN or infinite samples")
        self.samples_in += chunk.size
        if self._resampled:
            chunk = self._down.process(chunk)
            if last:
                chunk = np.concatenate([chunk, self._down.flush()])
        self.stream.push(chunk)

    def collect(self, final: bool = False) -> np.ndarray:
        """Enhanced output at ``sample_rate`` that is ready (everything, when ``final``)."""
        out = self.stream.flush() if final else self.stream.pop_output()
        if self._resampled:
            out = self._up.process(out)
            if final:
                out = np.concatenate([out, self._up.flush()])
        if self._carry.size:
            out = np.concatenate([self._carry, out])
        allowed = self.samples_in - self.samples_out
        if final:
            out, self._carry = fit_length(out, allowed), np.zeros(0, dtype=np.float32)
        else:
            out, self._carry = out[:allowed], out[allowed:]
        self.samples_out += out.shape[0]
        return out

    def feed(self, samples: np.ndarray) -> np.ndarray:
        self.push(samples)
        while self.stream.frames_ready:
            step_streams([self.stream])
        return self.collect()

    def flush(self) -> np.ndarray:
        if self._resampled:
            self.push(np.zeros(0, dtype=np.float32), last=True)
        return self.collect(final=True)

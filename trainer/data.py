"""Noisy mixtures made on the fly from folders of clean speech and of noise.

Each training example is a ``segment_s`` second pair ``(clean, noisy)``:

1. speech: a random utterance (cropped, or followed by others after short gaps);
2. noise: a real recording, or synthesised coloured noise, hum, or babble from other
   training utterances where real noise is thin (optionally heard across a reverberant
   room); sometimes a second noise on top, and slow level changes; utterances may be sped
   up or slowed down for more voices;
3. a random second-order filter on each (microphone and room colour, as RNNoise does),
   and optionally room reverberation;
4. mixed at an SNR drawn from ``snr_db`` and scaled to a random level.

The validation set is the same recipe on the val folders with a fixed seed, made once.
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from scipy.signal import fftconvolve, lfilter
from torch.utils.data import IterableDataset, get_worker_info

from .config import DataConfig

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".opus", ".mp3"}


# --------------------------------------------------------------------------- file lists
Manifests = Path | list[Path] | None


def _manifest_column(manifests: Manifests, column: str) -> dict[str, str]:
    """Map resolved file path -> ``column``, from one or more manifests with a ``path``
    column relative to the manifest's folder (empty when there is none)."""
    if manifests is None:
        return {}
    table: dict[str, str] = {}
    for manifest in [manifests] if isinstance(manifests, Path) else manifests:
        if not Path(manifest).is_file():
            continue
        resolved = Path(manifest).resolve()
        table |= _read_manifest_column(str(resolved), resolved.stat().st_mtime_ns, column)
    return table


@functools.lru_cache(maxsize=16)
def _read_manifest_column(manifest: str, mtime_ns: int, column: str) -> dict[str, str]:
    """One manifest's ``path -> column`` map. Cached (keyed on the file's mtime, so an edited
    manifest is read again) because a training start asks for it about a dozen times and
    resolving every path costs about 0.4 s per read of the corpus manifest. Callers merge it
    into a new dict and never change it."""
    root = Path(manifest).parent
    with Path(manifest).open(newline="") as handle:
        return {str((root / row["path"]).resolve()): row[column] for row in csv.DictReader(handle)}


def list_audio(
    dirs: list[Path], manifest: Manifests, allowed_licences: list[str] | None, max_files: int | None
) -> list[Path]:
    """Audio files under ``dirs`` (sorted, recursive), filtered by manifest licence if asked."""
    files: list[Path] = []
    for directory in dirs:
        if not Path(directory).is_dir():
            raise FileNotFoundError(f"audio folder not found: {directory}")
        files += sorted(p for p in Path(directory).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if allowed_licences is not None:
        licences = _manifest_column(manifest, "license")
        if not licences:
            raise FileNotFoundError(f"licence filtering needs the manifest, not found: {manifest}")
        allowed = set(allowed_licences)
        files = [p for p in files if licences.get(str(p.resolve())) in allowed]
    if max_files is not None:
        files = files[:max_files]
    if not files:
        raise FileNotFoundError(f"no audio files in {[str(d) for d in dirs]}")
    return files


def speaker_groups(files: list[Path], manifest: Manifests, what: str = "speech") -> list[int]:
    """One group index per file: files of the same speaker or noise type (the manifest's
    ``speaker_or_type`` column; speaker ids carry their source's prefix) share an index."""
    speakers = _manifest_column(manifest, "speaker_or_type")
    setting = "speech_balance = 'speaker'" if what == "speech" else "noise_balance = 'type'"
    if not speakers:
        raise FileNotFoundError(f"{setting} needs the manifest, not found: {manifest}")
    missing = [str(path) for path in files if str(path.resolve()) not in speakers]
    if missing:
        label = "speaker" if what == "speech" else "type"
        raise ValueError(f"{len(missing)} {what} files have no {label} in {manifest}, e.g. {missing[0]}")
    index: dict[str, int] = {}
    return [index.setdefault(speakers[str(path.resolve())], len(index)) for path in files]


def noise_groups(files: list[Path], data: DataConfig) -> list[int] | None:
    """Each noise file's type group with ``noise_balance = 'type'`` (``None``: by file)."""
    return None if data.noise_balance == "file" else speaker_groups(files, data.manifests, "noise")


def load_speech(
    files: list[Path], sample_rate: int, data: DataConfig
) -> tuple[list[np.ndarray], list[int] | None]:
    """Decoded speech and, with ``speech_balance = 'speaker'``, each signal's speaker group
    (``None`` otherwise: every file equally likely)."""
    if data.speech_balance == "file":
        return load_audio_files(files, sample_rate), None
    groups = speaker_groups(files, data.manifests)
    signals, kept = [], []
    for path, group in zip(files, groups, strict=True):
        decoded = load_audio_files([path], sample_rate)  # [] for an empty file
        signals += decoded
        kept += [group] * len(decoded)
    return signals, kept


def licence_summary(files: list[Path], manifest: Manifests) -> dict[str, int]:
    """How many of ``files`` carry each licence (``unknown`` when not in the manifest)."""
    licences = _manifest_column(manifest, "license")
    counts: dict[str, int] = {}
    for path in files:
        key = licences.get(str(path.resolve()), "unknown")
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def load_audio_files(files: list[Path], sample_rate: int) -> list[np.ndarray]:
    """Decode every file to mono float32 at ``sample_rate`` (down-mix, then soxr resampling)."""
    signals = []
    for path in files:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        if rate != sample_rate:
            audio = soxr.resample(audio, rate, sample_rate).astype(np.float32)
        if audio.size:
            signals.append(np.ascontiguousarray(audio))
    return signals


@dataclass(frozen=True)
class ValidationAudio:
    """The validation speech and noise a config selects, as files and decoded signals."""

    speech_files: list[Path]
    noise_files: list[Path]
    speech: list[np.ndarray]  # each [S] float32 at the config's sample rate
    noise: list[np.ndarray]
    speech_groups: list[int] | None = None  # speaker group of each speech signal (speech_balance)

    def maker(self, data: DataConfig, sample_rate: int) -> MixtureMaker:
        """The mixer over these signals: speaker groups as loaded, noises named by file stem
        and grouped by type with ``noise_balance = 'type'``."""
        names = [path.stem for path in self.noise_files]
        return MixtureMaker(
            data,
            sample_rate,
            self.speech,
            self.noise,
            names,
            self.speech_groups,
            noise_groups(self.noise_files, data),
        )


def load_validation_audio(data: DataConfig, sample_rate: int) -> ValidationAudio:
    """The validation folders' files under the same licence filter and file cap as training
    (the validation loss chooses the checkpoint that ships), decoded at ``sample_rate``."""
    speech_files = list_audio(data.speech_val, data.manifests, data.allowed_licences, data.max_files)
    noise_files = list_audio(data.noise_val, data.manifests, data.allowed_licences, data.max_files)
    speech, groups = load_speech(speech_files, sample_rate, data)
    return ValidationAudio(
        speech_files, noise_files, speech, load_audio_files(noise_files, sample_rate), groups
    )


# --------------------------------------------------------------------------- helpers
def active_power(x: np.ndarray, frame: int = 160) -> float:
    """Mean power over frames within 40 dB of the loudest one (ignores pauses)."""
    n = x.shape[0] // frame
    if n == 0:
        return float(np.mean(x**2) + 1e-12)
    energy = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    active = energy[energy > energy.max() * 1e-4]
    return float(active.mean() + 1e-12)


def random_filter(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RNNoise's augmentation: ``(1 + r1 z^-1 + r2 z^-2) / (1 + r3 z^-1 + r4 z^-2)``,
    ``r ~ U(-3/8, 3/8)`` (always stable), a mild random tilt/resonance."""
    r = rng.uniform(-0.375, 0.375, size=4)
    return lfilter([1.0, r[0], r[1]], [1.0, r[2], r[3]], x).astype(np.float32)


def crop_or_loop(x: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``length``-sample excerpt; short signals are looped from a random phase."""
    if x.shape[0] >= length:
        start = int(rng.integers(0, x.shape[0] - length + 1))
        return x[start : start + length]
    reps = math.ceil(length / x.shape[0]) + 1
    start = int(rng.integers(0, x.shape[0]))
    return np.tile(x, reps)[start : start + length]


def coloured_noise(length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a power-law slope (brown .. blue) times a smooth random spectral shape."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
    slope = rng.uniform(-2.0, 1.0)  # power ~ f^slope: -2 brown, -1 pink, 0 white, 1 blue
    shape = (np.maximum(freqs, 20.0) / 1000.0) ** (slope / 2.0)
    knots = rng.uniform(-10.0, 10.0, size=8)  # dB at log-spaced frequencies
    knot_f = np.geomspace(50.0, sample_rate / 2, num=8)
    shape *= 10 ** (np.interp(np.log(np.maximum(freqs, 50.0)), np.log(knot_f), knots) / 20.0)
    return np.fft.irfft(spectrum * shape, n=length).astype(np.float32)


def hum(length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum and buzz: 50 or 60 Hz with random harmonics, plus a little broadband noise."""
    f0 = rng.choice([50.0, 60.0]) * rng.uniform(0.98, 1.02)
    t = np.arange(length) / sample_rate
    out = np.zeros(length)
    decay = rng.uniform(0.0, 0.3)
    for k in range(1, int(rng.integers(3, 40))):
        if k * f0 >= sample_rate / 2:
            break
        out += (
            np.exp(-decay * k) * rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3))
        )
    out /= np.sqrt(np.mean(out**2)) + 1e-9
    return (out + 10 ** (rng.uniform(-40, -15) / 20) * rng.standard_normal(length)).astype(np.float32)


def _drifting_frequency(
    length: int, sample_rate: int, base_hz: float, depth: float, rng: np.random.Generator
) -> np.ndarray:
    """``[length]`` instantaneous frequency in Hz: ``base_hz`` times a smooth random curve
    within ``1 +- depth`` (a few knots per second: an engine revving, a fan spinning up)."""
    knots = max(2, int(length / sample_rate * rng.uniform(0.5, 3.0)) + 1)
    curve = np.interp(np.linspace(0, knots - 1, length), np.arange(knots), rng.uniform(-depth, depth, knots))
    return base_hz * (1.0 + curve)


def _harmonics(frequency: np.ndarray, sample_rate: int, count: int, tilt_db: float, rng) -> np.ndarray:
    """Sum of harmonics ``k * frequency`` (k = 1..count, below Nyquist), phase-continuous, with a
    spectral tilt of ``tilt_db`` per octave and random per-harmonic levels (+-6 dB)."""
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    out = np.zeros(frequency.shape[0])
    for k in range(1, count + 1):
        if k * frequency.max() >= 0.45 * sample_rate:
            break
        level = 10 ** ((tilt_db * math.log2(k) + rng.uniform(-6, 6)) / 20)
        out += level * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return out


def tonal_noise(length: int, sample_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Synthesised tonal noise ``[length]`` (unnormalised) and its label, one of:

    * ``engine``: a harmonic series on a 25-250 Hz fundamental (firing rate of a car, bus,
      boat or propeller engine) that drifts by up to 30 %, rolled off by 3-12 dB per octave,
      over low-passed rumble; the strongest part of cabin and street noise, and one our
      recordings cover with a handful of files;
    * ``whine``: a few partials of a 300-4000 Hz tone drifting a few per cent (turbines,
      fans, drills, electric motors) over a little broadband noise;
    * ``siren``: a tone swept up and down (wail or two-tone), a few harmonics;
    * ``beeps``: on/off tones (alarms, reversing vehicles, phones) at 400-3500 Hz.
    """
    t = np.arange(length) / sample_rate
    kind = rng.choice(["engine", "whine", "siren", "beeps"], p=[0.5, 0.2, 0.15, 0.15])
    if kind == "engine":
        frequency = _drifting_frequency(
            length, sample_rate, math.exp(rng.uniform(math.log(25), math.log(250))), 0.3, rng
        )
        tonal = _harmonics(frequency, sample_rate, int(rng.integers(8, 60)), -rng.uniform(3, 12), rng)
        rumble = lfilter([1.0], [1.0, -rng.uniform(0.95, 0.995)], rng.standard_normal(length))
        tonal /= np.std(tonal) + 1e-9
        rumble /= np.std(rumble) + 1e-9
        out = tonal + 10 ** (rng.uniform(-15, 5) / 20) * rumble
    elif kind == "whine":
        frequency = _drifting_frequency(length, sample_rate, rng.uniform(300, 4000), 0.05, rng)
        out = _harmonics(frequency, sample_rate, int(rng.integers(1, 5)), -rng.uniform(6, 15), rng)
        out /= np.std(out) + 1e-9
        out += 10 ** (rng.uniform(-30, -10) / 20) * rng.standard_normal(length)
    elif kind == "siren":
        low, high = sorted(rng.uniform(400, 1800, size=2))
        high = max(high, low * 1.3)
        rate_hz = rng.uniform(0.1, 1.0) if rng.random() < 0.5 else rng.uniform(1.5, 6.0)
        sweep = 0.5 + 0.5 * np.sin(2 * np.pi * rate_hz * t + rng.uniform(0, 2 * np.pi))
        if rng.random() < 0.3:  # two-tone: jump between the pitches
            sweep = (sweep > 0.5).astype(float)
        out = _harmonics(low + (high - low) * sweep, sample_rate, int(rng.integers(1, 6)), -6.0, rng)
    else:
        frequency = np.full(length, rng.uniform(400, 3500))
        out = _harmonics(frequency, sample_rate, int(rng.integers(1, 4)), -10.0, rng)
        period = rng.uniform(0.15, 1.5)
        duty = rng.uniform(0.2, 0.7)
        gate = ((t + rng.uniform(0, period)) % period) < duty * period
        ramp = max(1, int(0.004 * sample_rate))  # 4 ms edges, as a real beeper's
        gate = np.convolve(gate.astype(float), np.ones(ramp) / ramp, mode="same")
        out = out * gate + 10 ** (rng.uniform(-50, -25) / 20) * rng.standard_normal(length)
    return out.astype(np.float32), str(kind)


def _resonant_burst(
    length: int, sample_rate: int, centre_hz: float, q: float, decay_s: float, rng: np.random.Generator
) -> np.ndarray:
    """One transient ``[length]``: white noise under an exponential decay (time constant
    ``decay_s``), through a two-pole resonator at ``centre_hz`` with quality ``q``, plus
    the unfiltered first millisecond (the click of the impact itself)."""
    t = np.arange(length) / sample_rate
    excitation = rng.standard_normal(length) * np.exp(-t / decay_s)
    radius = math.exp(-math.pi * centre_hz / (q * sample_rate))
    theta = 2 * math.pi * centre_hz / sample_rate
    ringing = lfilter([1.0 - radius], [1.0, -2 * radius * math.cos(theta), radius * radius], excitation)
    ringing /= np.max(np.abs(ringing)) + 1e-9
    tick = excitation * (t < 0.001)
    return ringing + rng.uniform(0.2, 1.0) * tick / (np.max(np.abs(tick)) + 1e-9)


def impulsive_noise(length: int, sample_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Synthesised impulsive noise ``[length]`` (unnormalised) and its label, one of:

    * ``typing``: key presses in bursts of 1-4 s (4-10 keys a second, irregular), each a
      bright 2-8 ms click ringing at 1.5-6 kHz, often followed 60-150 ms later by a softer
      release click, each key's level within +-6 dB;
    * ``clicks``: isolated short ticks (mouse, pen, clock) every 0.2-1.5 s;
    * ``knocks``: low thumps ringing at 80-600 Hz for 15-80 ms (knocking, footsteps, a
      table bumped) at irregular intervals;
    * ``clatter``: dishes and cutlery, bright partials at 2-7 kHz ringing for 40-300 ms.

    Why: impulsive noise is absent from the corpus's recordings and from the other
    synthesised kinds, and a model that never heard it leaves keyboard clicks in (the
    leave-type-out validation, docs/results/val_generalisation.md: `gru` BAK 2.88 on
    keyboard against ~4.0 for the peers). Between the events there is only a faint hiss.
    """
    kind = str(rng.choice(["typing", "clicks", "knocks", "clatter"], p=[0.45, 0.2, 0.2, 0.15]))
    out = np.zeros(length)
    tail = int(0.35 * sample_rate)  # the longest event
    onsets: list[float] = []
    if kind == "typing":
        position = rng.uniform(-0.5, 0.5)
        while position < length / sample_rate:
            burst_end = position + rng.uniform(1.0, 4.0)
            rate_hz = rng.uniform(4.0, 10.0)
            while position < burst_end:
                onsets.append(position)
                position += rng.gamma(4.0, 1.0 / (4.0 * rate_hz))  # irregular, mean 1 / rate
            position += rng.uniform(0.2, 2.0)  # a pause between bursts
    else:
        low, high = {"clicks": (0.2, 1.5), "knocks": (0.15, 1.2), "clatter": (0.1, 1.0)}[kind]
        position = rng.uniform(0.0, high)
        while position < length / sample_rate:
            onsets.append(position)
            position += rng.uniform(low, high)
    for onset in onsets:
        start = round(onset * sample_rate)
        if kind in ("typing", "clicks"):
            event = _resonant_burst(
                tail, sample_rate, rng.uniform(1500, 6000), rng.uniform(2, 8), rng.uniform(0.002, 0.008), rng
            )
            if kind == "typing" and rng.random() < 0.7:  # the key's release
                delay = round(rng.uniform(0.06, 0.15) * sample_rate)
                release = _resonant_burst(
                    tail - delay, sample_rate, rng.uniform(1500, 6000), 4.0, rng.uniform(0.002, 0.006), rng
                )
                event[delay:] += 10 ** (rng.uniform(-12, -4) / 20) * release
        elif kind == "knocks":
            event = _resonant_burst(
                tail, sample_rate, rng.uniform(80, 600), rng.uniform(3, 15), rng.uniform(0.015, 0.08), rng
            )
        else:
            partials = int(rng.integers(1, 4))
            event = sum(
                _resonant_burst(tail, sample_rate, rng.uniform(2000, 7000), rng.uniform(30, 200), decay, rng)
                for decay in rng.uniform(0.04, 0.3, size=partials)
            )
        event = event * 10 ** (rng.uniform(-6, 6) / 20)
        lo, hi = max(start, 0), min(start + tail, length)
        if lo < hi:
            out[lo:hi] += event[lo - start : hi - start]
    out /= np.sqrt(np.mean(out**2)) + 1e-9
    out += 10 ** (rng.uniform(-45, -25) / 20) * rng.standard_normal(length)
    return out.astype(np.float32), kind


def diffuse_rir(sample_rate: int, rt60_s: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Statistical impulse response of a distant source ``[rt60_s * sample_rate]``: a unit
    direct impulse, then Gaussian noise decaying 60 dB over ``rt60_s`` (Polack's diffuse
    model), scaled so the direct path is ``drr_db`` above the tail's energy. No room
    geometry is needed (unlike ``make_rirs``), which suits a crowd of talkers all around."""
    length = max(2, int(rt60_s * sample_rate))
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-3.0 * math.log(10.0) * t / rt60_s)
    tail[0] = 0.0
    tail *= math.sqrt(10 ** (-drr_db / 10) / (np.sum(tail**2) + 1e-12))
    tail[0] = 1.0
    return tail.astype(np.float32)


def slow_modulation(length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth gain curve varying by up to +-8 dB over about a second."""
    knots = max(2, int(length / sample_rate * 2))
    db = rng.uniform(-8.0, 8.0, size=knots)
    return (10 ** (np.interp(np.linspace(0, knots - 1, length), np.arange(knots), db) / 20)).astype(
        np.float32
    )


# --------------------------------------------------------------------------- mixtures
@dataclass
class Mixture:
    clean: np.ndarray  # [S] float32
    noisy: np.ndarray  # [S] float32
    snr_db: float
    # what was mixed in: a noise file's stem, "coloured", "babble" or "hum"; " + " joins a second
    noise: str = ""


def _members(groups: list[int] | None) -> list[np.ndarray] | None:
    """Indices of the signals in each group (``None`` without groups)."""
    if groups is None:
        return None
    labels = np.asarray(groups)
    return [np.flatnonzero(labels == g) for g in np.unique(labels)]


class MixtureMaker:
    """Makes mixtures from in-memory speech and noise signals (all at ``sample_rate``)."""

    def __init__(
        self,
        cfg: DataConfig,
        sample_rate: int,
        speech: list[np.ndarray],
        noise: list[np.ndarray],
        noise_names: list[str] | None = None,
        speech_groups: list[int] | None = None,
        noise_groups: list[int] | None = None,
    ) -> None:
        """``noise_names`` (one per ``noise`` signal, e.g. file stems) only label the mixtures.
        ``speech_groups`` (one speaker index per ``speech`` signal) makes every speaker, not
        every signal, equally likely, for utterances and babble talkers alike.
        ``noise_groups`` (one type index per ``noise`` signal) does the same for recorded
        noise: every type equally likely, then one of its files."""
        if not speech or not noise:
            raise ValueError("need at least one speech and one noise signal")
        if noise_names is not None and len(noise_names) != len(noise):
            raise ValueError("need one name per noise signal")
        if speech_groups is not None and len(speech_groups) != len(speech):
            raise ValueError("need one speaker group per speech signal")
        if noise_groups is not None and len(noise_groups) != len(noise):
            raise ValueError("need one type group per noise signal")
        self.speaker_signals = _members(speech_groups)
        self.noise_type_signals = _members(noise_groups)
        self.cfg = cfg
        self.sample_rate = sample_rate
        self.speech = speech
        self.noise = noise
        self.noise_names = noise_names or [f"noise {index}" for index in range(len(noise))]
        self.length = round(cfg.segment_s * sample_rate)
        weights = np.array(
            [
                cfg.real_noise_weight,
                cfg.coloured_noise_weight,
                cfg.babble_weight,
                cfg.hum_weight,
                cfg.tonal_weight,
                cfg.impulsive_weight,
            ],
            dtype=float,
        )
        if weights.sum() <= 0:
            raise ValueError("at least one noise weight must be positive")
        self.noise_probs = weights / weights.sum()
        # Kinds whose weight is 0 at the end of the list are not drawn from at all, so a config
        # written before a kind existed keeps its random stream (and its mixtures).
        kinds = len(weights)
        while kinds > 4 and weights[kinds - 1] == 0:
            kinds -= 1
        self._kind_probs = self.noise_probs[:kinds]
        self._rirs: list[tuple[np.ndarray, np.ndarray]] | None = None

    def _utterance(self, rng: np.random.Generator) -> np.ndarray:
        """One speech signal: any file equally likely, or any speaker with speaker groups."""
        if self.speaker_signals is None:
            # one draw, as before speaker balance existed: older configs keep their random stream
            return self.speech[int(rng.integers(len(self.speech)))]
        signals = self.speaker_signals[int(rng.integers(len(self.speaker_signals)))]
        return self.speech[int(signals[int(rng.integers(len(signals)))])]

    def _voice(self, rng: np.random.Generator) -> np.ndarray:
        """An utterance, sometimes sped up or slowed down (``speed_perturb_prob``)."""
        utterance = self._utterance(rng)
        # draw only when the option is on, so older configs keep their random stream
        if self.cfg.speed_perturb_prob > 0 and rng.random() < self.cfg.speed_perturb_prob:
            speed = rng.uniform(*self.cfg.speed_range)
            # resampled to rate / speed and played at rate: speed times faster, pitch up too
            utterance = soxr.resample(utterance, self.sample_rate, self.sample_rate / speed)
            utterance = utterance.astype(np.float32)
        return utterance

    def _speech(self, rng: np.random.Generator) -> np.ndarray:
        out = np.zeros(self.length, dtype=np.float32)
        pos = int(rng.integers(0, max(1, int(0.3 * self.length))))
        while pos < self.length:
            utterance = self._voice(rng) * np.float32(10 ** (rng.uniform(-6, 6) / 20))
            room = self.length - pos
            if utterance.shape[0] > room:
                start = int(rng.integers(0, utterance.shape[0] - room + 1)) if pos == 0 else 0
                utterance = utterance[start : start + room]
            out[pos : pos + utterance.shape[0]] += utterance
            pos += utterance.shape[0] + int(rng.uniform(0.1, 0.8) * self.sample_rate)
            if rng.random() > self.cfg.speech_fill:
                break
        return out

    def _one_noise(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """One unit-power noise ``[S]`` and its label."""
        kind = rng.choice(len(self._kind_probs), p=self._kind_probs)
        label = ["", "coloured", "babble", "hum", "tonal", "impulsive"][kind]
        if kind == 0:
            if self.noise_type_signals is None:
                index = int(rng.integers(len(self.noise)))  # one draw: older configs' stream
            else:
                members = self.noise_type_signals[int(rng.integers(len(self.noise_type_signals)))]
                index = int(members[int(rng.integers(len(members)))])
            noise, label = crop_or_loop(self.noise[index], self.length, rng), self.noise_names[index]
        elif kind == 1:
            noise = coloured_noise(self.length, self.sample_rate, rng)
        elif kind == 2:
            lo, hi = self.cfg.babble_talkers
            noise = np.zeros(self.length, dtype=np.float32)
            for _ in range(int(rng.integers(lo, hi + 1))):
                talker = crop_or_loop(self._voice(rng), self.length, rng)
                noise += talker / np.float32(np.sqrt(active_power(talker)))
            if self.cfg.babble_reverb_prob > 0 and rng.random() < self.cfg.babble_reverb_prob:
                rir = diffuse_rir(
                    self.sample_rate,
                    rng.uniform(*self.cfg.babble_rt60_s),
                    rng.uniform(*self.cfg.babble_drr_db),
                    rng,
                )
                # lead in with the segment's own end so the reverberation has built up at
                # sample 0, as in a room where the crowd was talking before the recording
                lead = noise[-min(rir.shape[0], self.length) :]
                noise = fftconvolve(np.concatenate([lead, noise]), rir)[lead.shape[0] :]
                noise = noise[: self.length]
        elif kind == 3:
            noise = hum(self.length, self.sample_rate, rng)
        elif kind == 4:
            noise, label = tonal_noise(self.length, self.sample_rate, rng)
        else:
            noise, label = impulsive_noise(self.length, self.sample_rate, rng)
        noise = noise.astype(np.float32)
        if rng.random() < self.cfg.modulation_prob:
            noise = noise * slow_modulation(self.length, self.sample_rate, rng)
        return noise / np.float32(np.sqrt(np.mean(noise**2)) + 1e-9), label

    def _reverb(self, speech: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(reverberant input, target = direct path + first 50 ms of reflections)."""
        if self._rirs is None:
            self._rirs = make_rirs(32, self.sample_rate, self.cfg.reverb_rt60_s, rng)
        rir, early = self._rirs[int(rng.integers(len(self._rirs)))]
        wet = np.convolve(speech, rir)[: self.length].astype(np.float32)
        target = np.convolve(speech, early)[: self.length].astype(np.float32)
        return wet, target

    def make(self, rng: np.random.Generator) -> Mixture:
        cfg = self.cfg
        no_speech = rng.random() < cfg.noise_only_prob
        speech = np.zeros(self.length, dtype=np.float32) if no_speech else self._speech(rng)
        target = speech
        if not no_speech and cfg.reverb_prob > 0 and rng.random() < cfg.reverb_prob:
            speech, target = self._reverb(speech, rng)
        if cfg.random_filter_prob > 0 and rng.random() < cfg.random_filter_prob:
            # the same microphone colours the speech and its target
            r = rng.uniform(-0.375, 0.375, size=4)
            speech = lfilter([1.0, r[0], r[1]], [1.0, r[2], r[3]], speech).astype(np.float32)
            target = lfilter([1.0, r[0], r[1]], [1.0, r[2], r[3]], target).astype(np.float32)

        noise, label = self._one_noise(rng)
        if rng.random() < cfg.second_noise_prob:
            second, second_label = self._one_noise(rng)
            noise = noise + second * np.float32(10 ** (rng.uniform(-15, 0) / 20))
            label = f"{label} + {second_label}"
        if cfg.random_filter_prob > 0 and rng.random() < cfg.random_filter_prob:
            noise = random_filter(noise, rng)

        # Draw the extra coin only when the option is on, so older configs keep their exact
        # random stream (and the shipped weights stay reproducible).
        if cfg.high_snr_prob > 0 and rng.random() < cfg.high_snr_prob:
            snr = float(rng.uniform(*cfg.high_snr_db))
        else:
            snr = float(rng.uniform(*cfg.snr_db))
        if not no_speech:
            noise_power = np.mean(noise**2) + 1e-12
            noise = noise * np.float32(np.sqrt(active_power(speech) / noise_power / 10 ** (snr / 10)))
        noisy = speech + noise
        gain = 10 ** (rng.uniform(*cfg.level_dbfs) / 20) / (np.sqrt(np.mean(noisy**2)) + 1e-9)
        peak = np.max(np.abs(noisy)) * gain
        if peak > 0.99:
            gain *= 0.99 / peak
        gain = np.float32(gain)
        return Mixture(clean=target * gain, noisy=noisy * gain, snr_db=snr, noise=label)


def make_rirs(
    count: int, sample_rate: int, rt60_range: tuple[float, float], rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shoebox room impulse responses (pyroomacoustics), each with its early part (50 ms)."""
    import pyroomacoustics as pra  # optional dependency: only needed when reverb_prob > 0

    rirs = []
    while len(rirs) < count:
        dims = rng.uniform([3, 3, 2.4], [10, 8, 4])
        rt60 = rng.uniform(*rt60_range)
        try:
            absorption, max_order = pra.inverse_sabine(rt60, dims)
        except ValueError:
            continue
        room = pra.ShoeBox(
            dims, fs=sample_rate, materials=pra.Material(absorption), max_order=min(max_order, 20)
        )
        source = rng.uniform([0.5, 0.5, 1.0], dims - 0.5)
        mic = rng.uniform([0.5, 0.5, 1.0], dims - 0.5)
        room.add_source(source)
        room.add_microphone(mic)
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float32)
        direct = int(np.argmax(np.abs(rir)))
        rir = rir[max(direct - 40, 0) :]
        rir /= np.abs(rir).max() + 1e-9
        early = rir.copy()
        early[int(0.05 * sample_rate) + 40 :] = 0.0
        rirs.append((rir, early))
    return rirs


class MixtureStream(IterableDataset):
    """An endless stream of ``(clean [S], noisy [S])`` float tensors.

    Every (rank, worker) pair draws from its own seeded generator, so runs are
    reproducible for a given seed, world size and worker count.
    """

    def __init__(self, maker: MixtureMaker, seed: int, rank: int = 0) -> None:
        super().__init__()
        self.maker = maker
        self.seed = seed
        self.rank = rank

    def __iter__(self):
        info = get_worker_info()
        worker = info.id if info is not None else 0
        rng = np.random.default_rng([self.seed, self.rank, worker])
        while True:
            mix = self.maker.make(rng)
            yield torch.from_numpy(mix.clean), torch.from_numpy(mix.noisy)


def validation_mixtures(maker: MixtureMaker, count: int, seed: int) -> list[Mixture]:
    """``count`` fixed mixtures, a function of the maker's settings and signals and ``seed``."""
    rng = np.random.default_rng(seed)
    return [maker.make(rng) for _ in range(count)]


def validation_set(
    maker: MixtureMaker, count: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """``count`` fixed mixtures: clean ``[N, S]``, noisy ``[N, S]``, SNRs ``[N]`` (dB)."""
    mixtures = validation_mixtures(maker, count, seed)
    clean = torch.from_numpy(np.stack([m.clean for m in mixtures]))
    noisy = torch.from_numpy(np.stack([m.noisy for m in mixtures]))
    return clean, noisy, np.array([m.snr_db for m in mixtures])

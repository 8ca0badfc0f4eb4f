"""The stream engine: every live stream's DSP state, advanced in batched model calls.

It runs in the scheduler's worker (a child process by default, or a thread) and talks to
the event loop only through ``tick``: a list of per-session items in, a list of per-session
replies out. Nothing here touches a socket, and nothing on the event loop touches a stream.

A tick drains the items of every session with input, pushes the audio, runs
``step_streams`` over all streams of each model until none has a whole frame left (one
batched model call per frame step), and collects the output, already encoded to bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from hush.streaming import Enhancer, Stream, step_streams
from hush.streaming.audio_io import RateAdaptedStream

ENCODINGS = ("pcm_s16le", "pcm_f32le")
BYTES_PER_SAMPLE = {"pcm_s16le": 2, "pcm_f32le": 4}
# Float samples beyond this are rejected: nominal full scale is 1.0, and squaring much
# larger values overflows float32 power spectra into inf/NaN.
MAX_ABS_SAMPLE = 1000.0


def check_audio(payload: bytes, encoding: str) -> int:
    """Validate one binary message; returns its sample count.

    Raises:
        ValueError: a partial sample, or non-finite / absurdly large float samples.
    """
    width = BYTES_PER_SAMPLE[encoding]
    if len(payload) % width:
        raise ValueError(f"{len(payload)} bytes is not a whole number of {width}-byte {encoding} samples")
    if encoding == "pcm_f32le" and payload:
        samples = np.frombuffer(payload, dtype="<f4")
        if not (np.isfinite(samples).all() and np.abs(samples).max() <= MAX_ABS_SAMPLE):
            raise ValueError(f"float samples must be finite and within +-{MAX_ABS_SAMPLE:g}")
    return len(payload) // width


def decode_audio(payload: bytes, encoding: str) -> np.ndarray:
    """Little-endian PCM bytes (already checked) -> ``[n]`` float32; s16 scaled by 1/32768
    (what libsndfile does when ``hush enhance`` reads a 16-bit file)."""
    if encoding == "pcm_s16le":
        samples = np.frombuffer(payload, dtype="<i2").astype(np.float32)
        samples *= np.float32(1.0 / 32768.0)
        return samples
    return np.frombuffer(payload, dtype="<f4").astype(np.float32)


def encode_audio(samples: np.ndarray, encoding: str) -> bytes:
    """``[n]`` float32 -> little-endian PCM bytes; s16 is rounded and clipped to its range."""
    if encoding == "pcm_s16le":
        scaled = samples * np.float32(32768.0)
        # In place, with the ufuncs themselves: np.clip's Python wrappers cost more than
        # the arithmetic on a 10 ms block, and this runs for every stream every tick.
        np.rint(scaled, out=scaled)
        np.minimum(scaled, np.float32(32767.0), out=scaled)
        np.maximum(scaled, np.float32(-32768.0), out=scaled)
        return scaled.astype("<i2").tobytes()
    return samples.astype("<f4", copy=False).tobytes()


# Items of one session, in arrival order (tuples: cheap to pickle to a worker process):
#   ("open", model, sample_rate, encoding, attenuation_limit_db)
#   ("audio", payload bytes, t_recv)        t_recv: time.monotonic() on receipt
#   ("configure", attenuation_limit_db)     applies from the first frame not yet complete
#   ("stats",)  ("end",)  ("close",)


class Reply(NamedTuple):
    """What one tick produced for one session."""

    session_id: str
    audio: bytes  # enhanced audio in the session's encoding (may be empty)
    n_samples: int
    stamps: list[float]  # t_recv of each audio message whose frames this tick completed
    frame_latency: list[tuple[float, int]]  # (seconds from receipt to end of model step, frames)
    frames: int  # frames processed so far by this stream
    n_stats: int  # stats replies owed, after this audio
    done: bool  # end was processed: the audio is the last of the stream
    error: str | None  # internal error: the session must be closed with 1011


class TickStats(NamedTuple):
    seconds: float
    batch_sizes: list[int]
    frames: dict[str, int]  # model -> frames processed this tick


@dataclass
class _Entry:
    """One session's state. ``core`` is the ``Stream`` that ``step_streams`` batches, at the
    session's processing rate; ``adapted`` wraps it with resamplers when the session's rate
    is not one the engine runs natively (at the model's own rate and at full-band rates the
    wrapper would only add per-call overhead, so it is left out)."""

    model: str
    core: Stream
    adapted: RateAdaptedStream | None
    encoding: str
    finished: bool = False
    arrivals: list[tuple[int, float]] = field(default_factory=list)
    n_stats: int = 0
    ending: bool = False


# Sessions stepped together: (model, processing rate) -> [(session id, entry)].
StreamGroups = dict[tuple[str, int], list[tuple[str, _Entry]]]


class StreamEngine:
    """Owns the streams. ``enhancers`` are shared, read-only models by name."""

    def __init__(self, enhancers: dict[str, Enhancer]) -> None:
        self.enhancers = enhancers
        self.entries: dict[str, _Entry] = {}

    def warm_up(self, max_batch: int = 128) -> None:
        """Run each model at a spread of batch sizes before serving: torch's first calls at
        a new size are several times slower (kernel selection, allocations), and without
        this the first streams' first frames pay for it."""
        for enhancer in self.enhancers.values():
            size = 1
            while size <= max_batch:
                streams = [Stream(enhancer) for _ in range(size)]
                for stream in streams:
                    stream.push(np.zeros(2 * enhancer.hop, dtype=np.float32))
                while step_streams(streams):
                    pass
                size = size * 2 if size < 8 else size + size // 2

    def tick(self, batch: list[tuple[str, list[tuple]]]) -> tuple[list[Reply], TickStats]:
        t_start = time.monotonic()
        replies, groups = self.apply_all(batch)
        batch_sizes, frames = self.step_all(groups)
        replies += self.collect_all(groups, time.monotonic())
        return replies, TickStats(time.monotonic() - t_start, batch_sizes, frames)

    # The three phases of a tick (public so that bench/tick.py can time them apart).

    def apply_all(self, batch: list[tuple[str, list[tuple]]]) -> tuple[list[Reply], StreamGroups]:
        """Apply every session's items; (error replies, live entries grouped by model and
        processing rate: the streams that share one batched model call)."""
        replies: list[Reply] = []
        groups: StreamGroups = {}
        for session_id, items in batch:
            try:
                entry = self._apply(session_id, items)
            except Exception as err:  # one session's bad state must not take the tick down
                self.entries.pop(session_id, None)
                replies.append(Reply(session_id, b"", 0, [], [], 0, 0, False, f"{type(err).__name__}: {err}"))
                continue
            if entry is not None:
                groups.setdefault((entry.model, entry.core.sample_rate), []).append((session_id, entry))
        return replies, groups

    def step_all(self, groups: StreamGroups) -> tuple[list[int], dict[str, int]]:
        """Step each group until no stream has a whole frame left, one batched model call
        per frame step; (the batch sizes, frames per model)."""
        batch_sizes: list[int] = []
        frames: dict[str, int] = {}
        for (model, _rate), group in groups.items():
            streams = [entry.core for _, entry in group]
            total = 0
            while advanced := step_streams(streams):
                total += advanced
                batch_sizes.append(advanced)
            if total:
                frames[model] = frames.get(model, 0) + total
        return batch_sizes, frames

    def collect_all(self, groups: StreamGroups, t_done: float) -> list[Reply]:
        """Every stepped session's reply. Streams that only hand over their new output (most
        of them, every tick) are collected per encoding with one join and one encode for
        all; streams that end or resample go one by one."""
        replies: list[Reply] = []
        plain: dict[str, list[tuple[str, _Entry]]] = {}
        for group in groups.values():
            for session_id, entry in group:
                if entry.adapted is None and not entry.ending:
                    plain.setdefault(entry.encoding, []).append((session_id, entry))
                else:
                    replies.append(self._collect(session_id, entry, t_done))
        for encoding, sessions in plain.items():
            replies += self._collect_plain(encoding, sessions, t_done)
        return replies

    def _apply(self, session_id: str, items: list[tuple]) -> _Entry | None:
        """Apply a session's items in order; the entry to step, or None (closed)."""
        entry = self.entries.get(session_id)
        for item in items:
            kind = item[0]
            if kind == "open":
                _, model, rate, encoding, limit = item
                enhancer = self.enhancers[model]
                if enhancer.processing_rate(rate) == rate:  # the model's rate, or full band natively
                    core, adapted = Stream(enhancer.at_rate(rate), limit), None
                else:
                    adapted = RateAdaptedStream(enhancer, rate, limit)
                    core = adapted.stream
                entry = self.entries[session_id] = _Entry(model, core, adapted, encoding)
            elif kind == "close":
                self.entries.pop(session_id, None)
                return None
            elif entry is None or entry.finished or entry.ending:
                continue
            elif kind == "audio":
                stream = entry.core
                before = stream.frames_ready
                (entry.adapted or stream).push(decode_audio(item[1], entry.encoding))
                entry.arrivals.append((stream.frames_ready - before, item[2]))
            elif kind == "configure":
                # Frames already complete keep the old limit; the new one starts after them.
                stream = entry.core
                while stream.frames_ready:
                    step_streams([stream])
                stream.set_attenuation_limit(item[1])
            elif kind == "stats":
                entry.n_stats += 1
            elif kind == "end":
                entry.ending = True
        return entry

    def _collect(self, session_id: str, entry: _Entry, t_done: float) -> Reply:
        try:
            if entry.adapted is not None:
                out = entry.adapted.flush() if entry.ending else entry.adapted.collect()
            else:
                out = entry.core.flush() if entry.ending else entry.core.pop_output()
            payload = encode_audio(out, entry.encoding) if out.size else b""
        except Exception as err:
            self.entries.pop(session_id, None)
            return Reply(session_id, b"", 0, [], [], 0, 0, False, f"{type(err).__name__}: {err}")
        return self._reply(session_id, entry, payload, int(out.size), t_done)

    def _collect_plain(self, encoding: str, sessions: list[tuple[str, _Entry]], t_done: float) -> list[Reply]:
        """``_collect`` for streams at their native rate that are not ending, all in one
        encoding: their blocks joined and encoded in one call, then the bytes cut per session
        (the same bytes as encoding each alone: the encoding is per sample)."""
        blocks = [entry.core.pop_blocks() for _, entry in sessions]
        counts = [sum(block.shape[0] for block in stream_blocks) for stream_blocks in blocks]
        joined = [block for stream_blocks in blocks for block in stream_blocks]
        payload = encode_audio(np.concatenate(joined), encoding) if joined else b""
        width = BYTES_PER_SAMPLE[encoding]
        replies, start = [], 0
        for (session_id, entry), count in zip(sessions, counts, strict=True):
            end = start + count * width
            replies.append(self._reply(session_id, entry, payload[start:end], count, t_done))
            start = end
        return replies

    def _reply(self, session_id: str, entry: _Entry, payload: bytes, n_samples: int, t_done: float) -> Reply:
        """The session's reply for this tick; resets what it reports and retires an ended stream."""
        stamps = [t for n, t in entry.arrivals if n]
        latency = [(t_done - t, n) for n, t in entry.arrivals if n]
        reply = Reply(
            session_id,
            payload,
            n_samples,
            stamps,
            latency,
            entry.core.frames_processed,
            entry.n_stats,
            entry.ending,
            None,
        )
        entry.arrivals = []
        entry.n_stats = 0
        if entry.ending:
            entry.finished = True
            self.entries.pop(session_id, None)
        return reply

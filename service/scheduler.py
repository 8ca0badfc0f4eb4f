"""The batching scheduler: every live stream of a model advances in ONE model call per tick.

Threading model
---------------
* The event loop owns the sockets. For each message it decodes the audio and appends it
  to the session's ``inbox`` (a ``deque``: appends and pops are atomic across threads),
  then wakes the scheduler. It never touches a stream's DSP state.
* One worker thread owns every stream's DSP state. A tick drains the inboxes of all
  sessions with input, pushes the audio, runs ``step_streams`` over all streams of each
  model until none has a whole frame left (one batched model call per frame step), and
  collects the output, already encoded to bytes.
* Back on the loop, each session's output goes to its ``outbox``; a per-session sender
  task writes it to the socket, so a slow client never holds up the others.

Ticks are back to back, not on a clock: audio that arrives during a tick waits for the
next one, so the batch grows with the load and the cost per stream falls as streams are
added, while a lone stream still gets its frame processed as soon as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hush.streaming import Enhancer, step_streams
from hush.streaming.audio_io import RateAdaptedStream

from .metrics import Metrics

log = logging.getLogger("hush.service")

ENCODINGS = ("pcm_s16le", "pcm_f32le")
BYTES_PER_SAMPLE = {"pcm_s16le": 2, "pcm_f32le": 4}
# Float samples beyond this are rejected: nominal full scale is 1.0, and squaring much
# larger values overflows float32 power spectra into inf/NaN.
MAX_ABS_SAMPLE = 1000.0


def decode_audio(payload: bytes, encoding: str) -> np.ndarray:
    """Little-endian PCM bytes -> ``[n]`` float32 samples (s16 scaled by 1/32768, like libsndfile).

    Raises:
        ValueError: a partial sample, or non-finite / absurdly large float samples.
    """
    width = BYTES_PER_SAMPLE[encoding]
    if len(payload) % width:
        raise ValueError(f"{len(payload)} bytes is not a whole number of {width}-byte {encoding} samples")
    if encoding == "pcm_s16le":
        return np.frombuffer(payload, dtype="<i2").astype(np.float32) * np.float32(1.0 / 32768.0)
    samples = np.frombuffer(payload, dtype="<f4").astype(np.float32)
    if samples.size and not (np.isfinite(samples).all() and np.abs(samples).max() <= MAX_ABS_SAMPLE):
        raise ValueError(f"float samples must be finite and within +-{MAX_ABS_SAMPLE:g}")
    return samples


def encode_audio(samples: np.ndarray, encoding: str) -> bytes:
    """``[n]`` float32 -> little-endian PCM bytes; s16 is rounded and clipped to its range."""
    if encoding == "pcm_s16le":
        scaled = np.rint(samples * np.float32(32768.0))
        return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()
    return samples.astype("<f4", copy=False).tobytes()


class LatencyStats:
    """Fixed-bin histogram of latencies (0.1 ms bins up to 250 ms, then one overflow bin)."""

    BIN_MS = 0.1
    N_BINS = 2501

    def __init__(self) -> None:
        self.counts = [0] * self.N_BINS
        self.count = 0
        self.total_ms = 0.0
        self.max_ms = 0.0

    def add(self, ms: float, n: int = 1) -> None:
        self.counts[min(int(ms / self.BIN_MS), self.N_BINS - 1)] += n
        self.count += n
        self.total_ms += ms * n
        self.max_ms = max(self.max_ms, ms)

    def merge_sparse(self, pairs: list[list[int]]) -> None:
        for index, n in pairs:
            self.counts[min(max(int(index), 0), self.N_BINS - 1)] += int(n)
            self.count += int(n)

    def percentile(self, q: float) -> float | None:
        """Upper edge of the bin holding the ``q``-th percentile, ms (``None`` when empty)."""
        if not self.count:
            return None
        rank = q / 100.0 * self.count
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if n and seen >= rank:
                return round((index + 1) * self.BIN_MS, 3)
        return round(self.N_BINS * self.BIN_MS, 3)

    def summary(self, histogram: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "count": self.count,
            "p50_ms": self.percentile(50),
            "p99_ms": self.percentile(99),
            "max_ms": round(self.max_ms, 3),
            "mean_ms": round(self.total_ms / self.count, 3) if self.count else None,
        }
        if histogram:
            out["histogram"] = {
                "bin_ms": self.BIN_MS,
                "counts": [[i, n] for i, n in enumerate(self.counts) if n],
            }
        return out


@dataclass
class Session:
    """One WebSocket stream. ``stream`` is touched only by the worker thread."""

    model: str
    enhancer: Enhancer
    stream: RateAdaptedStream
    encoding: str
    sample_rate: int
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    inbox: deque = field(default_factory=deque)
    started: float = field(default_factory=time.monotonic)
    # Loop side: counters in samples at the stream's rate.
    samples_received: int = 0
    samples_sent: int = 0
    added_latency: LatencyStats = field(default_factory=LatencyStats)
    # Worker side.
    frames: int = 0
    frame_latency: LatencyStats = field(default_factory=LatencyStats)
    finished: bool = False

    @property
    def in_flight(self) -> int:
        """Samples received but not yet sent back."""
        return self.samples_received - self.samples_sent

    def stats(self, histogram: bool = False) -> dict[str, Any]:
        """Counters and latency summaries (``histogram``: with the added-latency bins)."""
        return {
            "session_id": self.id,
            "model": self.model,
            "sample_rate": self.sample_rate,
            "samples_in": self.samples_received,
            "samples_out": self.samples_sent,
            "frames": self.frames,
            "seconds": round(time.monotonic() - self.started, 3),
            "attenuation_limit_db": self.stream.stream.attenuation_limit_db,
            "added_latency": self.added_latency.summary(histogram),
            "frame_latency": self.frame_latency.summary(),
        }


# Outbox items, produced by the worker and consumed by the session's sender:
#   ("audio", payload bytes, n_samples, [t_recv of each message that released this output])
#   ("stats", None, 0, [])    -> the sender replies with session.stats()
#   ("done", None, 0, [])     -> the sender sends the done message and stops
#   ("error", code, 0, [])    -> the worker failed on this session


class Scheduler:
    """Owns the worker thread and the live sessions; one instance per app."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.sessions: dict[str, Session] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hush-step")
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.ticks = 0
        self.worker_seconds = 0.0
        self._worker_ident: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hush-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # ------------------------------------------------------------------ loop side
    def add(self, session: Session) -> None:
        self.sessions[session.id] = session
        self.metrics.active_streams.set(len(self.sessions))

    def remove(self, session: Session) -> None:
        if self.sessions.pop(session.id, None) is not None:
            session.inbox.clear()
            self.metrics.active_streams.set(len(self.sessions))

    def submit(self, session: Session, item: tuple) -> None:
        """Queue audio or a control item for the worker, in order, and wake it."""
        session.inbox.append(item)
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            work = [s for s in self.sessions.values() if s.inbox]
            if not work:
                continue
            try:
                results = await loop.run_in_executor(self._executor, self._tick, work)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in the batched step: those sessions fail, the server lives
                log.exception("scheduler tick failed for %d sessions", len(work))
                results = [(s, [("error", "internal_error", 0, [])]) for s in work]
            for session, items in results:
                if session.id in self.sessions:
                    for item in items:
                        session.outbox.put_nowait(item)

    # ------------------------------------------------------------------ worker side
    def _tick(self, work: list[Session]) -> list[tuple[Session, list[tuple]]]:
        """Runs in the worker thread: drain inboxes, batched model steps, collect output."""
        t_start = time.perf_counter()
        self._worker_ident = threading.get_ident()
        results: list[tuple[Session, list[tuple]]] = []
        groups: dict[Enhancer, list[Session]] = {}
        pending: dict[str, tuple[list[tuple[int, float]], list[str]]] = {}
        for session in work:
            try:
                arrivals, controls = self._drain(session)
            except Exception:
                log.exception("session %s: cannot queue its input", session.id)
                results.append((session, [("error", "internal_error", 0, [])]))
                continue
            pending[session.id] = (arrivals, controls)
            groups.setdefault(session.enhancer, []).append(session)

        for enhancer, group in groups.items():
            streams = [s.stream.stream for s in group]
            frames = 0
            while advanced := step_streams(streams):
                frames += advanced
                self.metrics.batch_size.observe(advanced)
            if frames:
                self.metrics.frames.labels(enhancer.name).inc(frames)
        t_done = time.perf_counter()

        for session in (s for group in groups.values() for s in group):
            arrivals, controls = pending[session.id]
            items: list[tuple] = []
            try:
                final = "end" in controls
                rstream = session.stream
                session.frames = rstream.stream.frames_processed
                out = rstream.flush() if final else rstream.collect()
            except Exception:
                log.exception("session %s: step failed", session.id)
                results.append((session, [("error", "internal_error", 0, [])]))
                continue
            stamps = []
            for n_frames, t_recv in arrivals:
                if n_frames:
                    ms = 1000.0 * (t_done - t_recv)
                    session.frame_latency.add(ms, n_frames)
                    for _ in range(n_frames):
                        self.metrics.frame_latency.observe(ms / 1000.0)
                    stamps.append(t_recv)
            if out.size:
                items.append(("audio", encode_audio(out, session.encoding), int(out.size), stamps))
            items.extend(("stats", None, 0, []) for control in controls if control == "stats")
            if final:
                session.finished = True
                items.append(("done", None, 0, []))
            results.append((session, items))

        elapsed = time.perf_counter() - t_start
        self.metrics.tick_seconds.observe(elapsed)
        self.ticks += 1
        self.worker_seconds += elapsed
        return results

    @staticmethod
    def _drain(session: Session) -> tuple[list[tuple[int, float]], list[str]]:
        """Apply a session's queued items in order. Returns (frames completed by each audio
        message with its arrival time, control replies owed after this tick's output)."""
        rstream = session.stream
        stream = rstream.stream
        arrivals: list[tuple[int, float]] = []
        controls: list[str] = []
        while session.inbox:
            kind, value, t_recv = session.inbox.popleft()
            if session.finished:
                continue
            if kind == "audio":
                before = stream.frames_ready
                rstream.push(value)
                arrivals.append((stream.frames_ready - before, t_recv))
            elif kind == "configure":
                # The new limit applies from the first frame not yet complete: finish the
                # frames already queued with the old one.
                while stream.frames_ready:
                    step_streams([stream])
                stream.set_attenuation_limit(value)
            elif kind == "stats":
                controls.append("stats")
            elif kind == "end":
                controls.append("end")
                break
        return arrivals, controls

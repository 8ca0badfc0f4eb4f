"""The batching scheduler: every live stream of a model advances in ONE model call per tick.

Threading model
---------------
* The event loop owns the sockets. For each message it validates the audio and appends
  it to the session's ``inbox``, then wakes the scheduler. It never touches DSP state.
* The worker owns every stream's DSP state (``engine.StreamEngine``). Each tick takes the
  inboxes of all sessions with input and returns their encoded output.
* Back on the loop, each session's output goes to its ``outbox``; a per-session sender
  task writes it to the socket, so a slow client never holds up the others.

Ticks are paced, not clocked: a tick starts when there is input and at least
``tick_interval`` has passed since the previous one started. Audio that arrives meanwhile
waits for the next tick, so the batch grows with the load and the cost per stream falls as
streams are added, while a lone stream still gets its frame processed as soon as it arrives.

The worker is a child process by default, and there may be several: one per core less
the one the event loop needs (``Settings.worker_count``; ``HUSH_WORKERS`` sets the number).
Each runs a lane of its own (its sessions, its paced tick loop); a new session joins the
lane with the fewest sessions and stays there, so the streams spread over the cores while
each worker still batches its own. The event loop stays one (one process owns the sockets).

Why processes: in a thread the worker would share the GIL with the event loop, and each
of the ~50 torch calls of a batched step released the GIL and then waited up to the 5 ms
switch interval to get it back from a busy event loop: at 100 streams that convoy made
ticks 100x slower than their compute. A process has its own GIL, so the
loop and the model run on separate cores. ``worker="thread"`` remains for tests and for
hosts that cannot start processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import pickle
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from hush.streaming import Enhancer

from .engine import Reply, StreamEngine, TickStats
from .metrics import Metrics

log = logging.getLogger("hush.service")


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
    """One WebSocket stream, as the event loop sees it (the DSP state is in the worker)."""

    model: str
    enhancer: Enhancer
    encoding: str
    sample_rate: int
    attenuation_limit_db: float | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    inbox: deque = field(default_factory=deque)
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    started: float = field(default_factory=time.monotonic)
    samples_received: int = 0
    samples_sent: int = 0
    frames: int = 0
    added_latency: LatencyStats = field(default_factory=LatencyStats)
    frame_latency: LatencyStats = field(default_factory=LatencyStats)
    lane: int = 0  # index of the scheduler lane (worker) that owns its DSP state

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
            "attenuation_limit_db": self.attenuation_limit_db,
            "added_latency": self.added_latency.summary(histogram),
            "frame_latency": self.frame_latency.summary(),
        }


# Outbox items for the session's sender task:
#   ("audio", payload, n_samples, stamps)   ("stats",)   ("done",)   ("error", message)

TickResult = tuple[list[Reply], TickStats]


class ThreadWorker:
    """The engine in a thread of this process (shares the GIL with the event loop)."""

    def __init__(self, enhancers: dict[str, Enhancer]) -> None:
        self.engine = StreamEngine(enhancers)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hush-step")

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.engine.warm_up)

    async def tick(self, batch: list[tuple[str, list[tuple]]]) -> TickResult:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.engine.tick, batch)

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)


class ProcessWorker:
    """The engine in a child process, driven over a socket pair by the event loop itself.

    Messages are pickles with an 8-byte length prefix (``worker.py`` speaks the same). The
    loop pickles the batch (about 0.1 ms for 100 streams) and awaits the reply through its
    selector, so no thread of this process has to win the GIL back from a busy loop.
    """

    def __init__(self, spec: dict[str, Any], start_timeout_s: float = 180.0) -> None:
        self.spec = spec
        self.start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None

    async def start(self) -> None:
        parent, child = socket.socketpair()
        with child:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "hush.service.worker", str(child.fileno()), json.dumps(self.spec)],
                pass_fds=[child.fileno()],
                stdin=subprocess.DEVNULL,
            )
        parent.setblocking(False)
        self._sock = parent
        try:
            async with asyncio.timeout(self.start_timeout_s):
                _tag, names = await self._recv()
        except TimeoutError:
            raise RuntimeError("the stream worker process did not start in time") from None
        except (EOFError, OSError):
            code = await asyncio.get_running_loop().run_in_executor(None, self._proc.wait)
            raise RuntimeError(f"the stream worker process exited with code {code}") from None
        log.info("stream worker process %d ready with %s", self._proc.pid, ", ".join(names))

    async def _send(self, obj: Any) -> None:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        await asyncio.get_running_loop().sock_sendall(self._sock, struct.pack("!Q", len(data)) + data)

    async def _recv_exact(self, n: int) -> bytearray:
        loop = asyncio.get_running_loop()
        buffer = bytearray(n)
        view = memoryview(buffer)
        got = 0
        while got < n:
            k = await loop.sock_recv_into(self._sock, view[got:])
            if k == 0:
                raise EOFError("the stream worker closed its end")
            got += k
        return buffer

    async def _recv(self) -> Any:
        (size,) = struct.unpack("!Q", await self._recv_exact(8))
        return pickle.loads(await self._recv_exact(size))

    async def tick(self, batch: list[tuple[str, list[tuple]]]) -> TickResult:
        await self._send(batch)
        return await self._recv()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()  # EOF: the worker exits
        if self._proc is not None:
            try:
                await loop.run_in_executor(None, self._proc.wait, 10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                await loop.run_in_executor(None, self._proc.wait)


Worker = ThreadWorker | ProcessWorker


class _Lane:
    """One worker, the sessions assigned to it and its own paced tick loop.

    Lanes are independent: a slow or crashed worker holds up only its own sessions, and each
    lane batches its own streams into one model call per tick."""

    def __init__(self, index: int, worker: Worker) -> None:
        self.index = index
        self.worker = worker
        self.sessions: dict[str, Session] = {}
        self.closing: list[str] = []
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.restarting = False


class Scheduler:
    """Owns the live sessions and drives the workers; one instance per app.

    Several workers (``worker`` a list; process workers, one per core by default) each run
    their own lane: a new session goes to the lane with the fewest sessions and stays there,
    so the load spreads over the cores while every lane still batches its streams."""

    def __init__(
        self,
        metrics: Metrics,
        worker: Worker | list[Worker],
        restart: Any = None,
        tick_interval_s: float = 0.0,
    ) -> None:
        self.metrics = metrics
        self.tick_interval = tick_interval_s
        workers = worker if isinstance(worker, list) else [worker]
        if not workers:
            raise ValueError("the scheduler needs at least one worker")
        self.lanes = [_Lane(i, w) for i, w in enumerate(workers)]
        self._restart = restart  # builds a fresh worker after a crash (process mode)
        self.sessions: dict[str, Session] = {}
        self.ticks = 0

    @property
    def worker(self) -> Worker:
        """The first lane's worker (the only one in thread mode)."""
        return self.lanes[0].worker

    @property
    def workers(self) -> list[Worker]:
        return [lane.worker for lane in self.lanes]

    @property
    def restarting(self) -> bool:
        return any(lane.restarting for lane in self.lanes)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await asyncio.gather(*(lane.worker.start() for lane in self.lanes))
        self._publish_pids()
        loop = asyncio.get_running_loop()
        for lane in self.lanes:
            lane.task = loop.create_task(self._run(lane), name=f"hush-scheduler-{lane.index}")

    async def stop(self) -> None:
        for lane in self.lanes:
            if lane.task is not None:
                lane.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.task
                lane.task = None
        await asyncio.gather(*(lane.worker.stop() for lane in self.lanes), return_exceptions=True)

    @property
    def running(self) -> bool:
        """Ticking, with live workers (False while a crashed worker is replaced)."""
        return all(
            lane.task is not None and not lane.task.done() and not lane.restarting for lane in self.lanes
        )

    def _publish_pids(self) -> None:
        self.metrics.worker_pids = [pid for pid in (getattr(w, "pid", None) for w in self.workers) if pid]

    # ------------------------------------------------------------------ loop side
    def add(self, session: Session) -> None:
        # the least-loaded lane that is not being restarted (any lane if all are)
        lane = min(self.lanes, key=lambda ln: (ln.restarting, len(ln.sessions)))
        session.lane = lane.index
        self.sessions[session.id] = session
        lane.sessions[session.id] = session
        session.inbox.append(
            ("open", session.model, session.sample_rate, session.encoding, session.attenuation_limit_db)
        )
        self._count(lane)
        lane.wake.set()

    def remove(self, session: Session) -> None:
        """Forget a session; its DSP state is dropped by its worker on the next tick."""
        if self.sessions.pop(session.id, None) is not None:
            lane = self.lanes[session.lane]
            lane.sessions.pop(session.id, None)
            session.inbox.clear()
            lane.closing.append(session.id)
            self._count(lane)
            lane.wake.set()

    def _count(self, lane: _Lane) -> None:
        self.metrics.active_streams.set(len(self.sessions))
        self.metrics.worker_streams.labels(str(lane.index)).set(len(lane.sessions))

    def submit(self, session: Session, item: tuple) -> None:
        """Queue audio or a control item for the session's worker, in order, and wake it."""
        session.inbox.append(item)
        self.lanes[session.lane].wake.set()

    def _take_batch(self, lane: _Lane) -> list[tuple[str, list[tuple]]]:
        batch = [(sid, [("close",)]) for sid in lane.closing]
        lane.closing = []
        for session in lane.sessions.values():
            if session.inbox:
                items = list(session.inbox)
                session.inbox.clear()
                batch.append((session.id, items))
        return batch

    async def _run(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        last_start = -math.inf
        while True:
            await lane.wake.wait()
            # Pace the ticks: back to back, a fast worker would run hundreds of tiny ticks a
            # second, each paying the fixed cost of a model call (and the worker would never
            # rest). Waiting until `tick_interval` after the previous tick lets the batch
            # grow; a stream that was quiet that long (a lone stream) does not wait at all.
            delay = last_start + self.tick_interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lane.wake.clear()
            last_start = loop.time()
            batch = self._take_batch(lane)
            if not batch:
                continue
            try:
                replies, stats = await lane.worker.tick(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "stream worker %d failed; failing its %d live sessions", lane.index, len(lane.sessions)
                )
                await self._recover(lane)
                continue
            try:
                self._deliver(replies, stats)
            except Exception:  # never let one bad reply stop the scheduler
                log.exception("cannot deliver a tick's output")

    async def _recover(self, lane: _Lane) -> None:
        """A worker died or raised: its live sessions are lost (1011); start a new worker.
        The other lanes keep serving meanwhile, and new sessions go to them."""
        for session in lane.sessions.values():
            session.outbox.put_nowait(("error", "the stream worker failed"))
        if self._restart is not None:
            lane.restarting = True
            try:
                while True:
                    with contextlib.suppress(Exception):
                        await lane.worker.stop()
                    lane.worker = self._restart()
                    try:
                        await lane.worker.start()
                        break
                    except Exception:
                        log.exception("cannot restart stream worker %d; retrying in 1 s", lane.index)
                        await asyncio.sleep(1.0)
            finally:
                lane.restarting = False
            self._publish_pids()

    def _deliver(self, replies: list[Reply], stats: TickStats) -> None:
        metrics = self.metrics
        self.ticks += 1
        metrics.tick_seconds.observe(stats.seconds)
        for size in stats.batch_sizes:
            metrics.batch_size.observe(size)
        for model, frames in stats.frames.items():
            metrics.frames.labels(model).inc(frames)
        for reply in replies:
            session = self.sessions.get(reply.session_id)
            if session is None:
                continue
            if reply.error is not None:
                log.error("session %s: %s", session.id, reply.error)
                session.outbox.put_nowait(("error", "internal error in the stream"))
                continue
            session.frames = reply.frames
            for seconds, n in reply.frame_latency:
                session.frame_latency.add(1000.0 * seconds, n)
                metrics.frame_latency.observe(seconds, n)
            if reply.n_samples:
                session.outbox.put_nowait(("audio", reply.audio, reply.n_samples, reply.stamps))
            for _ in range(reply.n_stats):
                session.outbox.put_nowait(("stats",))
            if reply.done:
                session.outbox.put_nowait(("done",))

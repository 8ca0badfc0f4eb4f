"""Prometheus metrics. Each app owns its registry, so several apps (tests) never collide."""

from __future__ import annotations

import bisect
import itertools
import math
import os
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process, from /proc (Linux); None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WorkerCpuCollector(Collector):
    """CPU seconds of the stream worker processes, summed (the server's own process is in
    ``process_cpu_seconds_total``; their sum is the service's CPU use). A worker that was
    replaced after a crash no longer counts, so the sum can step down then."""

    def __init__(self, worker_pids: Callable[[], list[int]]) -> None:
        self.worker_pids = worker_pids

    def collect(self) -> Iterator[CounterMetricFamily]:
        seconds = [process_cpu_seconds(pid) for pid in self.worker_pids()]
        family = CounterMetricFamily(
            "hush_worker_cpu_seconds",
            "CPU seconds of the stream worker processes, summed (0 in thread mode).",
        )
        family.add_metric([], sum(s for s in seconds if s is not None))
        yield family


class FastHistogram(Collector):
    """A Prometheus histogram for the event loop's hot path: ``observe(value, n)`` records
    ``n`` equal observations at once and takes no lock (observe from one thread only).
    prometheus_client's Histogram takes a lock per observation: at 100 streams that is
    20 000 lock round trips a second on the event loop."""

    def __init__(self, name: str, documentation: str, buckets: Iterable[float], registry: CollectorRegistry):
        self.name = name
        self.documentation = documentation
        self.upper = sorted(float(b) for b in buckets)
        self.counts = [0] * (len(self.upper) + 1)
        self.sum = 0.0
        registry.register(self)

    def observe(self, value: float, n: int = 1) -> None:
        self.counts[bisect.bisect_left(self.upper, value)] += n
        self.sum += value * n

    def collect(self) -> Iterator[HistogramMetricFamily]:
        edges = [*self.upper, math.inf]
        cumulative = itertools.accumulate(self.counts)
        yield HistogramMetricFamily(
            self.name,
            self.documentation,
            buckets=[
                ("+Inf" if math.isinf(e) else repr(e), c) for e, c in zip(edges, cumulative, strict=True)
            ],
            sum_value=self.sum,
        )

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self.name, self.documentation)


# Seconds. Dense below 20 ms, where the real-time budget lives.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.1,
    0.25,
    1.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.worker_pids: list[int] = []
        self.registry.register(WorkerCpuCollector(lambda: self.worker_pids))
        # CPU seconds, memory and open files of the server process: the load generator
        # reads process_cpu_seconds_total to report the server's CPU use.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter(
            "hush_http_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.errors = Counter(
            "hush_errors", "Errors by stable error code, REST and WebSocket.", ["api", "code"], registry=r
        )
        self.enhanced_seconds = Counter(
            "hush_rest_audio_seconds", "Seconds of audio enhanced through REST.", registry=r
        )
        # The load generator may run elsewhere (`hush loadtest --url`); it reads this to
        # report capacity per core of the server's machine rather than its own.
        self.cpu_cores = Gauge("hush_cpu_cores", "CPU cores this server process may run on.", registry=r)
        self.cpu_cores.set(usable_cores())
        self.active_streams = Gauge("hush_active_streams", "Live WebSocket sessions.", registry=r)
        self.worker_streams = Gauge(
            "hush_worker_streams", "Live sessions per stream worker (scheduler lane).", ["worker"], registry=r
        )
        self.sessions = Counter(
            "hush_stream_sessions", "Finished WebSocket sessions by outcome.", ["outcome"], registry=r
        )
        self.frames = Counter(
            "hush_frames_processed", "10 ms model frames processed for streams.", ["model"], registry=r
        )
        self.frame_latency = FastHistogram(
            "hush_frame_latency_seconds",
            "Per-frame processing latency: from receiving the audio that completes a frame "
            "to the end of the batched model step that enhanced it (queueing + compute).",
            LATENCY_BUCKETS,
            r,
        )
        self.added_latency = FastHistogram(
            "hush_stream_added_latency_seconds",
            "Server receive -> send of each audio message that released output.",
            LATENCY_BUCKETS,
            r,
        )
        self.tick_seconds = Histogram(
            "hush_batch_step_seconds",
            "Duration of one scheduler tick (all batched model calls of the tick).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "hush_batch_streams", "Streams in one batched model call.", buckets=BATCH_BUCKETS, registry=r
        )

"""Prometheus metrics. Each app owns its registry, so several apps (tests) never collide."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

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


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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
        self.active_streams = Gauge("hush_active_streams", "Live WebSocket sessions.", registry=r)
        self.sessions = Counter(
            "hush_stream_sessions", "Finished WebSocket sessions by outcome.", ["outcome"], registry=r
        )
        self.frames = Counter(
            "hush_frames_processed", "10 ms model frames processed for streams.", ["model"], registry=r
        )
        self.frame_latency = Histogram(
            "hush_frame_latency_seconds",
            "Per-frame processing latency: from receiving the audio that completes a frame "
            "to the end of the batched model step that enhanced it (queueing + compute).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.added_latency = Histogram(
            "hush_stream_added_latency_seconds",
            "Server receive -> send of each audio message that released output.",
            buckets=LATENCY_BUCKETS,
            registry=r,
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

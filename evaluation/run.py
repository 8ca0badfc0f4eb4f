"""The evaluation run behind ``hush eval``: enhance every noisy file with every system, score it,
and summarise. Files are spread over a process pool; each worker loads every system once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from hush.models.quantize import DEFAULT_PRECISION

from .metrics import SAMPLE_RATE, Dnsmos, lsd_high_band, score, snr_db
from .pairs import Pair, read_pair
from .peers import enhance_at_rate, load_peer, peer_latency_ms
from .stats import CI_METHOD, summarise

NOISY = "noisy"
PEER_PREFERENCE = ("dfn3", "gtcrn", "dtln", "rnnoise", "noisereduce")


@dataclass(frozen=True)
class ModelSpec:
    """A hush model to load in each worker: a registered ``name`` or a ``weights`` file."""

    label: str
    name: str | None = None
    weights: str | None = None
    models_dirs: tuple[str, ...] = ()
    latency_ms: float | None = None
    attenuation_limit_db: float | None = None  # cap on noise attenuation in dB; None: unlimited
    precision: str = DEFAULT_PRECISION  # the weights' precision (streaming.engine.Enhancer)


@dataclass(frozen=True)
class EvalConfig:
    models: tuple[ModelSpec, ...] = ()
    peers: tuple[str, ...] = ()
    peers_dir: str = "../shared/peers"
    dnsmos: bool = True
    plots_dir: str | None = None
    plot_files: tuple[str, ...] = ()  # pair names to draw

    @property
    def systems(self) -> list[str]:
        """Every system scored, in table order: the input, the peers, then hush models."""
        return [NOISY, *self.peers, *(m.label for m in self.models)]


def load_model_spec(spec: ModelSpec):
    """``(Enhancer, WeightMetadata)`` for a spec (raises the registry's errors)."""
    from hush.models import ModelRegistry, load_weights
    from hush.streaming import Enhancer

    if spec.weights is not None:
        model, meta = load_weights(Path(spec.weights))
    else:
        model, meta = ModelRegistry(extra_dirs=[Path(d) for d in spec.models_dirs]).load(spec.name)
    return Enhancer(model, meta.name, precision=spec.precision), meta


@dataclass
class _Worker:
    config: EvalConfig
    # (samples, rate) -> enhanced samples at that rate
    systems: dict[str, Callable[[np.ndarray, int], np.ndarray]] = field(default_factory=dict)
    dnsmos: Dnsmos | None = None


_WORKER: _Worker | None = None


def exit_with_parent(parent_pid: int, poll_s: float = 1.0) -> threading.Thread:
    """Start a daemon thread that ends this process once ``parent_pid`` is no longer its
    parent (the parent died and the process was re-parented).

    Why: pool workers hold both ends of the executor's call queue, so when ``hush eval`` is
    killed they never see it close; without this they wait on it forever, idle, each still
    holding its models (~0.5 GB)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread


def _init_worker(config: EvalConfig, one_thread: bool, parent_pid: int | None = None) -> None:
    """Load every system and the DNSMOS models once per process (a pool worker:
    ``parent_pid`` set, and it exits if that parent dies)."""
    global _WORKER
    if parent_pid is not None:
        exit_with_parent(parent_pid)
    if one_thread:
        import torch

        torch.set_num_threads(1)
    from hush.streaming.audio_io import enhance_signal

    worker = _Worker(config)
    worker.systems[NOISY] = lambda x, rate: x
    for name in config.peers:
        peer = load_peer(name, Path(config.peers_dir))
        worker.systems[name] = lambda x, rate, p=peer: (
            p.enhance(x) if rate == SAMPLE_RATE else enhance_at_rate(p, x, rate)
        )
    for spec in config.models:
        enhancer, _ = load_model_spec(spec)
        worker.systems[spec.label] = lambda x, rate, e=enhancer, lim=spec.attenuation_limit_db: (
            enhance_signal(e, x, rate, lim)
        )
    worker.dnsmos = Dnsmos() if config.dnsmos else None
    _WORKER = worker


def _evaluate_pair(pair: Pair) -> dict:
    """Enhance and score one pair with every system; a failing system is recorded, not fatal.

    Pairs at 16 kHz or below are scored at 16 kHz, as always. Pairs above it (48 kHz) are
    enhanced at their own rate by every system (hush full band, RNNoise and DeepFilterNet3
    natively); PESQ, STOI, SI-SDR and DNSMOS then score both signals resampled to 16 kHz,
    and ``lsd_hb`` scores the high band at the pair's rate."""
    worker = _WORKER
    assert worker is not None, "worker not initialised"
    try:
        clean, noisy, rate = read_pair(pair)
    except (OSError, ValueError) as err:  # AudioFileError is a ValueError
        return {"name": pair.name, "unreadable": f"{type(err).__name__}: {err}"}
    record: dict = {
        "name": pair.name,
        "seconds": clean.shape[0] / rate,
        "snr_db": snr_db(clean, noisy),
        "scores": {},
        "errors": {},
    }
    if rate != SAMPLE_RATE:
        record["sample_rate"] = rate
    from hush.streaming.audio_io import resample

    clean16 = clean if rate == SAMPLE_RATE else resample(clean, rate, SAMPLE_RATE)
    outputs: dict[str, np.ndarray] = {}
    for system, enhance in worker.systems.items():
        try:
            enhanced = np.asarray(enhance(noisy, rate), dtype=np.float32)
            if enhanced.shape != noisy.shape:
                raise ValueError(f"output shape {enhanced.shape} != input shape {noisy.shape}")
            if not np.isfinite(enhanced).all():
                raise ValueError("output holds NaN or infinite samples")
            if rate == SAMPLE_RATE:
                record["scores"][system] = score(clean, enhanced, worker.dnsmos)
            else:
                enhanced16 = resample(enhanced, rate, SAMPLE_RATE)
                record["scores"][system] = {
                    **score(clean16, enhanced16, worker.dnsmos),
                    "lsd_hb": lsd_high_band(clean, enhanced, rate),
                }
                enhanced = enhanced16
            outputs[system] = enhanced
        except Exception as err:
            record["errors"][system] = f"{type(err).__name__}: {err}"
    config = worker.config
    if config.plots_dir and pair.name in config.plot_files:
        from .plots import before_after_figure, comparison_figure

        folder = Path(config.plots_dir)
        stem = pair.name.rsplit(".", 1)[0].replace("/", "_")
        comparison_figure(folder / f"{stem}.png", clean16, outputs, record["scores"], title=pair.name)
        if pair.name == config.plot_files[0]:
            # README picture: the input against the first hush model (else the strongest peer).
            preference = [m.label for m in config.models] + [p for p in PEER_PREFERENCE if p in config.peers]
            shown = next((name for name in preference if name in outputs), None)
            if shown is not None:
                before_after_figure(
                    folder / "before_after.png",
                    outputs[NOISY],
                    outputs[shown],
                    shown,
                    clean=clean16,
                    title=pair.name,
                )
    return record


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Spawned workers inherit these: one BLAS/OpenMP thread each, since files run in parallel."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _iter_records(config: EvalConfig, pairs: list[Pair], workers: int) -> Iterator[dict]:
    if workers <= 1:
        _init_worker(config, one_thread=False)
        for pair in pairs:
            yield _evaluate_pair(pair)
        return
    # spawn, not fork: ONNX Runtime, torch and the Rust DeepFilterNet runtime hold threads
    # and locks that a forked child would inherit in an undefined state.
    with (
        _single_threaded_children(),
        ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=(config, True, os.getpid()),
        ) as pool,
    ):
        futures = [pool.submit(_evaluate_pair, pair) for pair in pairs]
        for future in as_completed(futures):
            yield future.result()


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask, which containers narrow), else the count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_eval(
    config: EvalConfig,
    pairs: list[Pair],
    workers: int | None = None,
    progress: Callable[[Iterator[dict], int], Iterator[dict]] | None = None,
    noise_types: dict[str, str] | None = None,
) -> dict:
    """Evaluate ``pairs`` with every system in ``config``; returns the JSON-ready result.

    ``noise_types`` (pair name -> the type of noise in it, see ``pairs.noise_types``) adds
    ``by_noise_type`` to each system's summary.

    ``{"systems": {name: {"pesq", "stoi", "si_sdr", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl",
    "ci95", "n", "by_snr", "latency_ms", "kind"}}, "files": int, "per_file": [...], ...}``
    """
    workers = max(1, min(workers or available_cpus(), len(pairs)))
    if config.plots_dir:
        Path(config.plots_dir).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    records_iter = _iter_records(config, pairs, workers)
    if progress is not None:
        records_iter = progress(records_iter, len(pairs))
    records = sorted(records_iter, key=lambda r: r["name"])
    seconds = time.perf_counter() - start
    failures = [
        {"file": r["name"], "system": "*", "error": r["unreadable"]} for r in records if "unreadable" in r
    ]
    records = [r for r in records if "unreadable" not in r]
    for record in records:
        if noise_types and record["name"] in noise_types:
            record["noise_type"] = noise_types[record["name"]]

    systems = summarise(records, config.systems)
    latency = {NOISY: 0.0, **{p: peer_latency_ms(p) for p in config.peers}}
    latency.update({m.label: m.latency_ms for m in config.models})
    for name, entry in systems.items():
        entry["latency_ms"] = latency.get(name)
        entry["kind"] = "input" if name == NOISY else ("peer" if name in config.peers else "hush")
    failures += [
        {"file": r["name"], "system": system, "error": error}
        for r in records
        for system, error in r.pop("errors").items()
    ]
    return {
        "systems": systems,
        "files": len(records),
        "audio_seconds": float(sum(r["seconds"] for r in records)),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "ci_method": CI_METHOD,
        "workers": workers,
        "run_seconds": seconds,
        "failures": failures,
        "per_file": records,
    }


def json_safe(value):
    """NaN/inf -> None, recursively, so the JSON file is standard JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value

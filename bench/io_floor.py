"""``python -m hush.bench.io_floor``: the load test with the model's arithmetic taken away.

It answers one question about ``hush loadtest``'s targets: could any speed-up of the
model step alone get the service there on this machine? The server runs exactly as in
``hush loadtest`` (same process layout, sockets, tick loop, STFT, overlap-add and frame
bookkeeping) but serves a *floor* model: the shipped model's DSP settings (window,
hop, deep filter) with a 1 x 8 GRU, about 1 % of its parameters, so its products cost next
to nothing. Whatever latency the floor model still misses is not the model's doing.

``--idle-client`` runs the load generator (this process) at Linux's ``SCHED_IDLE``
priority once the server has started at normal priority, so on a shared machine the
generator only takes the CPU the server leaves: an approximation of the generator on
another machine, which is how a server's capacity is measured when one is at hand.

The floor model is written to a temporary folder for the run and deleted afterwards;
it is a measuring instrument, never served to users.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

FLOOR_NAME = "floor-gru"
FLOOR_HIDDEN = 8


def floor_model(like: str = "gru"):
    """A recurrent model with ``like``'s DSP settings and deep filter but one GRU layer of
    ``FLOOR_HIDDEN`` units: the same frames, features and synthesis per step, ~1 % of the
    products. Returns ``(model, like_parameter_count)``."""
    import torch

    from hush.models import ModelRegistry, RecurrentConfig, build_model

    reference, _meta = ModelRegistry().load(like)
    arch = reference.arch
    if not isinstance(arch, RecurrentConfig):
        raise ValueError(f"{like!r} is not a recurrent model")
    torch.manual_seed(0)
    small = arch.model_copy(update={"hidden_size": FLOOR_HIDDEN, "num_layers": 1})
    return build_model(reference.features, small).eval(), reference.num_parameters()


@contextlib.contextmanager
def idle_priority(enabled: bool) -> Iterator[bool]:
    """Run the body at ``SCHED_IDLE`` (Linux) and restore the policy after; yields whether
    the priority was changed."""
    if not enabled or not hasattr(os, "SCHED_IDLE"):
        yield False
        return
    before = os.sched_getscheduler(0), os.sched_getparam(0)
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    try:
        yield True
    finally:
        with contextlib.suppress(PermissionError):
            os.sched_setscheduler(0, before[0], before[1])


def run(
    streams: int,
    seconds: float,
    chunk_ms: float,
    idle_client: bool,
    model: str | None = None,
    audio: Path | None = None,
) -> dict[str, Any]:
    """One load test against ``hush serve``; ``model=None`` serves the floor model; ``audio``
    as in ``hush loadtest`` (default: validation speech in noise)."""
    from hush.bench.loadtest import LoadtestConfig, run_loadtest, start_server, stop_server
    from hush.models import save_weights

    with tempfile.TemporaryDirectory(prefix="hush-floor-") as folder:
        config = LoadtestConfig(streams=streams, seconds=seconds, chunk_ms=chunk_ms, model=model, audio=audio)
        floor_params = like_params = None
        if model is None:
            floor, like_params = floor_model()
            floor_params = floor.num_parameters()
            save_weights(floor, folder, FLOOR_NAME, description="load-test floor: gru's DSP, 1 x 8 GRU")
            config = replace(config, model=FLOOR_NAME, models_dir=[Path(folder)])
        # The server starts before the priority drops, so it does not inherit SCHED_IDLE.
        proc, ws_url = start_server(config)
        try:
            with idle_priority(idle_client) as demoted:
                report = run_loadtest(replace(config, url=ws_url))
        finally:
            stop_server(proc)
    report["config"]["url"] = "spawned hush serve"
    report["io_floor"] = {
        "model": "floor (gru DSP, 1 x 8 GRU)" if model is None else model,
        "floor_parameters": floor_params,
        "gru_parameters": like_params,
        "client_sched_idle": demoted,
    }
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--chunk-ms", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=1, help="Independent runs, one after another.")
    parser.add_argument("--idle-client", action="store_true", help="Load generator at SCHED_IDLE.")
    parser.add_argument("--model", default=None, help="Serve this model instead of the floor (a control).")
    parser.add_argument("--audio", type=Path, default=None, help="Audio to stream, as hush loadtest.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = []
    for _ in range(args.repeats):
        report = run(args.streams, args.seconds, args.chunk_ms, args.idle_client, args.model, args.audio)
        lat, cpu = report["server_added_latency"], report["cpu_percent_of_one_core"]
        print(  # noqa: T201
            f"{report['io_floor']['model']}, {args.streams} streams, {args.chunk_ms:g} ms, "
            f"client idle={report['io_floor']['client_sched_idle']}: p99 {lat['p99_ms']} ms, "
            f"dropped {report['dropped_samples']}, CPU event loop {cpu['server_event_loop_process']} "
            f"+ worker {cpu['server_stream_worker_process']} + client {cpu['client']} % of a core"
        )
        runs.append(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
        print(f"wrote {args.json}")  # noqa: T201


if __name__ == "__main__":
    main()

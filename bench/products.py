"""``python -m hush.bench.products``: the service's batched matrix products in cheaper arithmetic.

Why: at 200 streams the stream worker spends about half of each tick in the seven matrix
products of the batched frame step (float32 BLAS on the int8-rounded weights, already
near the core's float32 peak), so a load target that needs the worker twice as cheap needs
cheaper products. Each candidate computes ``x [B, K] @ W^T + b`` for every product of the
shipped model's step (``streaming/fast_step.py``: input layer, each RNN layer's input and
recurrent products, hidden layer, both heads in one) on the same int8-rounded weights:

* ``float32``: what the engine runs (``torch.addmm`` on the dequantised weights).
* ``int8 act x2``: activations quantised per row to two int8 parts (``x = s (hi + lo/254)``,
  ``s = max|x_row| / 127``), each multiplied exactly with the int8 weights by
  ``torch._int_mm`` (int32 sums, AMX or VNNI where the CPU has them), rescaled per row and
  per channel. Integer sums make a row's result independent of its batch; the activations
  keep ~15 bits.
* ``int8 act x1``: the same with one part (8-bit activations): the cheapest integer form.
* ``bfloat16``: ``torch.addmm`` in bfloat16 (inputs, weights and output rounded to 8-bit
  mantissas; AMX on CPUs that have it).

Reported per candidate: median µs per step (the seven products) over interleaved rounds,
its ratio to float32, the largest relative deviation from a float64 product of the same
rounded weights, and whether a row's result is bit-identical alone and inside the batch
(what "streaming equals offline" and "a stream gets the same output alone or batched"
rest on).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hush.streaming.int8_dense import _compiled


@_compiled
def _split_rows(x: np.ndarray, parts: int, packed: np.ndarray, row_scale: np.ndarray) -> None:
    """Quantise each row of ``x [B, K]`` to ``parts`` (1 or 2) int8 parts, part ``p`` at rows
    ``p B .. (p + 1) B`` of ``packed [parts B, K]``; ``row_scale [B]`` gets ``max|x_row| / 127``."""
    rows, width = x.shape
    for b in range(rows):
        peak = np.float32(1e-30)
        for k in range(width):
            peak = max(peak, abs(x[b, k]))
        row_scale[b] = peak / np.float32(127.0)
        inverse = np.float32(127.0) / peak
        if parts == 1:
            for k in range(width):
                packed[b, k] = np.int8(np.rint(x[b, k] * inverse))
        else:
            for k in range(width):
                u = x[b, k] * inverse
                hi = np.rint(u)
                packed[b, k] = np.int8(hi)
                packed[rows + b, k] = np.int8(np.rint((u - hi) * np.float32(254.0)))


@_compiled
def _join_rows(sums, parts, row_scale, col_scale, bias, out) -> None:
    """``out [B, N] = (sums[b] + sums[B + b] / 254) * row_scale[b] * col_scale[n] + bias[n]``
    (the second term only with two parts)."""
    rows, cols = out.shape
    low = np.float32(1.0 / 254.0)
    for b in range(rows):
        r = row_scale[b]
        if parts == 1:
            for n in range(cols):
                out[b, n] = np.float32(sums[b, n]) * (r * col_scale[n]) + bias[n]
        else:
            for n in range(cols):
                acc = np.float32(sums[b, n]) + np.float32(sums[rows + b, n]) * low
                out[b, n] = acc * (r * col_scale[n]) + bias[n]


class _Layer:
    """One product's int8 weights ``q [N, K]``, per-channel ``scale [N]``, ``bias [N]``."""

    def __init__(self, dense) -> None:
        self.q = torch.from_numpy(dense.q)  # [N, K] int8
        self.q_t = self.q.T.contiguous()  # [K, N] for torch._int_mm
        self.scale, self.bias = dense.scale, dense.bias
        self.weight_t = dense.weight_t  # [K, N] float32, q * scale
        self.bias_t = dense.bias_t
        self.weight_t_bf16 = self.weight_t.to(torch.bfloat16)
        self.bias_bf16 = self.bias_t.to(torch.bfloat16)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.q_t.shape)  # (K, N)


def model_layers(name: str) -> list[_Layer]:
    """The seven products of ``name``'s int8 fast step, in order."""
    from hush.models import ModelRegistry
    from hush.streaming import Enhancer

    model, _ = ModelRegistry().load(name)
    kernel = Enhancer(model, name).fast_step.kernel
    denses = [kernel.input, *(d for pair in kernel.rnn for d in pair), kernel.hidden_layer, kernel.head]
    return [_Layer(d) for d in denses]


def _float32(layer: _Layer) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: torch.addmm(layer.bias_t, torch.from_numpy(x), layer.weight_t).numpy()


def _bfloat16(layer: _Layer) -> Callable[[np.ndarray], np.ndarray]:
    def product(x: np.ndarray) -> np.ndarray:
        x16 = torch.from_numpy(x).to(torch.bfloat16)
        return torch.addmm(layer.bias_bf16, x16, layer.weight_t_bf16).float().numpy()

    return product


def _int8_activations(layer: _Layer, parts: int) -> Callable[[np.ndarray], np.ndarray]:
    def product(x: np.ndarray) -> np.ndarray:
        rows = x.shape[0]
        packed = np.empty((parts * rows, x.shape[1]), dtype=np.int8)
        row_scale = np.empty(rows, dtype=np.float32)
        _split_rows(x, parts, packed, row_scale)
        sums = torch._int_mm(torch.from_numpy(packed), layer.q_t).numpy()
        out = np.empty((rows, layer.q.shape[0]), dtype=np.float32)
        _join_rows(sums, parts, row_scale, layer.scale, layer.bias, out)
        return out

    return product


CANDIDATES: dict[str, Callable[[_Layer], Callable[[np.ndarray], np.ndarray]]] = {
    "float32": _float32,
    "int8 act x2": lambda layer: _int8_activations(layer, 2),
    "int8 act x1": lambda layer: _int8_activations(layer, 1),
    "bfloat16": _bfloat16,
}


def measure(name: str = "gru", batch: int = 200, rounds: int = 15, seed: int = 0) -> dict:
    """Time and check every candidate on ``name``'s products at ``batch`` rows."""
    torch.set_num_threads(1)
    layers = model_layers(name)
    rng = np.random.default_rng(seed)
    # activations of the size the step sees (features and RNN outputs are O(1))
    inputs = [rng.standard_normal((batch, layer.shape[0])).astype(np.float32) for layer in layers]
    products = {cand: [make(layer) for layer in layers] for cand, make in CANDIDATES.items()}
    results: dict[str, dict] = {}
    for cand, fns in products.items():
        deviation, batch_independent = 0.0, True
        for layer, fn, x in zip(layers, fns, inputs, strict=True):
            weight = layer.weight_t.numpy().astype(np.float64)
            exact = x.astype(np.float64) @ weight + layer.bias.astype(np.float64)
            got = fn(x)
            deviation = max(deviation, float(np.abs(got - exact).max() / np.abs(exact).max()))
            batch_independent &= bool(np.array_equal(fn(np.ascontiguousarray(x[3:4]))[0], got[3]))
        results[cand] = {"max_rel_deviation": deviation, "row_same_alone_and_batched": batch_independent}
    times: dict[str, list[float]] = {cand: [] for cand in products}
    for _ in range(rounds):  # interleaved, so that a busy machine slows every candidate alike
        for cand, fns in products.items():
            start = time.perf_counter()
            for fn, x in zip(fns, inputs, strict=True):
                fn(x)
            times[cand].append(time.perf_counter() - start)
    base = float(np.median(times["float32"]))
    for cand, row in results.items():
        median = float(np.median(times[cand]))
        row["us_per_step"] = round(1e6 * median, 1)
        row["ratio_to_float32"] = round(median / base, 3)
    return {
        "model": name,
        "batch": batch,
        "products": [list(layer.shape) for layer in layers],
        "cpu_flags": _cpu_flags(),
        "results": results,
    }


def _cpu_flags() -> list[str]:
    """The CPU's matrix extensions (AMX, AVX-512 VNNI / BF16), from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    lines = [line for line in text.splitlines() if line.startswith("flags")]
    flags = lines[0].split(":", 1)[1].split() if lines else []
    return sorted(f for f in flags if f.startswith(("amx", "avx512_vnni", "avx512_bf16", "avx_vnni")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="gru")
    parser.add_argument("--batch", type=int, action="append", default=None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": []}
    for batch in args.batch or [200]:
        run = measure(args.model, batch, args.rounds)
        report["runs"].append(run)
        for cand, row in run["results"].items():
            print(  # noqa: T201
                f"{args.model} batch {batch:4d} {cand:12s} {row['us_per_step']:9.1f} us"
                f"  x{row['ratio_to_float32']:.2f}  max rel dev {row['max_rel_deviation']:.1e}"
                f"  alone == batched: {row['row_same_alone_and_batched']}"
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""``python -m hush.bench.candidates``: the inference paths tried for the frame step, side by side.

Each candidate runs the model's one-frame step, ``(features [B, input_size], state [B, S])
-> (output, state)``, for the shipped weights at one thread; the DSP around the step
(FFTs, deep filter, overlap-add) is the same for all of them and is left out here (``hush
bench`` measures whole frames). The candidates are interleaved round by round, so a busy
shared machine slows them alike, and each figure is the median over the rounds:

* ``torch``: ``GainModel.step``, the reference path (what the engine ran before).
* ``numpy``: the lean NumPy kernel of ``streaming/fast_step.py`` (the engine's path now).
* ``onnxruntime``: the exported stateful step graph (``models/onnx_export.py``) in
  ONNX Runtime, one thread, all optimisations, inputs and outputs bound to preallocated
  arrays with I/O binding.
* ``torch.compile``: ``torch.compile(model.step)`` (inductor, CPU).
* ``int8``: ``torch.ao.quantization.quantize_dynamic`` of the Linear and GRU layers (int8
  weights, activations quantised per call). Changes the numbers; its max deviation from the
  reference is reported beside its time.
* ``numpy+int8``: the NumPy kernel with int8 weights (``precision="int8"``, the engine's
  default: weights rounded per output channel, float32 arithmetic; a compiled GEMV for one
  or two rows, BLAS on the rounded weights for more). Its deviation from the float
  reference is the rounding of the weights.

Each candidate's max abs deviation from ``torch`` over the timed frames is reported too.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np


def int8_model(model):
    """A copy of ``model`` with ``torch.ao.quantization.quantize_dynamic`` applied to its
    Linear and RNN layers: int8 weights (per tensor), activations quantised per call."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model), {torch.nn.Linear, torch.nn.GRU, torch.nn.LSTM}, dtype=torch.qint8
        )
    if hasattr(quantized, "_rnn_inference"):
        # the reference path calls the fused ATen kernel on the float weights; a quantised
        # RNN module has its own forward
        quantized._rnn_inference = lambda x, state: quantized.rnn(x, state)
    return quantized.eval()


def _candidates(model, batch: int, tmp: Path) -> dict[str, Callable]:
    """name -> ``step(features np [B, I], state np [B, S]) -> (output np, state np)``."""
    import torch

    from hush.streaming.fast_step import FastStep

    out: dict[str, Callable] = {}

    def torch_step(features, state):
        with torch.inference_mode():
            o, s = model.step(torch.from_numpy(features), torch.from_numpy(state))
        return o.numpy(), s.numpy()

    out["torch"] = torch_step
    kernel = FastStep.build(model).kernel

    def numpy_step(features, state):
        o, s = kernel.step(features, state)
        return kernel.torch_layout(o), s

    out["numpy"] = numpy_step
    int8_kernel = FastStep.build(model, "int8").kernel

    def numpy_int8_step(features, state):
        o, s = int8_kernel.step(features, state)
        return int8_kernel.torch_layout(o), s

    out["numpy+int8"] = numpy_int8_step

    try:
        import onnxruntime as ort

        from hush.models.onnx_export import export_onnx

        path = export_onnx(model, tmp / "step.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        out_buf = np.empty((batch, model.output_size), np.float32)
        state_buf = np.empty((batch, model.state_size), np.float32)
        binding = session.io_binding()

        def ort_step(features, state):
            binding.bind_cpu_input("features", features)
            binding.bind_cpu_input("state", state)
            binding.bind_output(names[0], "cpu", 0, np.float32, out_buf.shape, out_buf.ctypes.data)
            binding.bind_output(names[1], "cpu", 0, np.float32, state_buf.shape, state_buf.ctypes.data)
            session.run_with_iobinding(binding)
            return out_buf, state_buf.copy()

        out["onnxruntime"] = ort_step
    except ImportError as err:
        print(f"onnxruntime skipped: {err}")  # noqa: T201

    compiled = torch.compile(model.step, dynamic=False)

    def compiled_step(features, state):
        with torch.inference_mode():
            o, s = compiled(torch.from_numpy(features), torch.from_numpy(state))
        return o.numpy(), s.numpy()

    out["torch.compile"] = compiled_step

    quantized = int8_model(model)

    def int8_step(features, state):
        with torch.inference_mode():
            o, s = quantized.step(torch.from_numpy(features), torch.from_numpy(state))
        return o.numpy(), s.numpy()

    out["int8"] = int8_step
    return out


def measure(name: str, batch: int, frames: int = 200, rounds: int = 9) -> dict:
    """Median microseconds per step of each candidate for the shipped model ``name``."""
    import torch

    from hush.models import ModelRegistry

    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # only settable once per process
        torch.set_num_interop_threads(1)
    model, _meta = ModelRegistry().load(name)
    rng = np.random.default_rng(0)
    features = (rng.standard_normal((frames, batch, model.input_size)) * 3 - 8).astype(np.float32)
    if getattr(model, "phase_features", False):
        features[..., model.n_bins :] = np.clip(features[..., model.n_bins :] / 10, -1, 1)
    with tempfile.TemporaryDirectory() as tmp:
        steps = _candidates(model, batch, Path(tmp))
        timings: dict[str, list[float]] = {k: [] for k in steps}
        deviation: dict[str, float] = dict.fromkeys(steps, 0.0)
        reference: list[np.ndarray] = []
        for round_ in range(rounds + 1):  # round 0 warms up (and compiles)
            for cand, step in steps.items():
                state = model.initial_state(batch).numpy()
                outputs = []
                started = time.perf_counter()
                for t in range(frames):
                    output, state = step(features[t], state)
                    if round_ == 0:
                        outputs.append(output.copy())
                elapsed = time.perf_counter() - started
                if round_ == 0:
                    if cand == "torch":
                        reference = outputs
                    pairs = zip(outputs, reference, strict=True)
                    deviation[cand] = max(float(np.abs(a - b).max()) for a, b in pairs)
                else:
                    timings[cand].append(1e6 * elapsed / frames)
    base = float(np.median(timings["torch"]))
    return {
        cand: {
            "us_per_step": round(float(np.median(ts)), 1),
            "ratio_to_torch": round(float(np.median(ts)) / base, 3),
            "max_abs_deviation": deviation[cand],
        }
        for cand, ts in timings.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--batch", type=int, action="append", default=None)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = {}
    for name in args.model or ["gru", "dnn"]:
        for batch in args.batch or [1, 100]:
            key = f"{name} batch {batch}"
            results[key] = measure(name, batch, args.frames, args.rounds)
            for cand, row in results[key].items():
                print(  # noqa: T201
                    f"{key:14s} {cand:14s} {row['us_per_step']:9.1f} us  x{row['ratio_to_torch']:.3f}"
                    f"  max dev {row['max_abs_deviation']:.2e}"
                )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        args.json.write_text(json.dumps({"date": stamp, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()

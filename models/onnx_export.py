"""ONNX export of a model's one-frame step, with the stream state as explicit tensors.

The graph is stateless (silero-vad's pattern): ``(features [B, F], state [B, S]) ->
(gains [B, F], next_state [B, S])``; whoever runs it keeps the state between calls. A model
with a deep filter names its first output ``gains_and_filter`` instead: ``[B, output_size]``,
the gains then the filter coefficients, laid out as ``hush_output_layout`` says; applying
them needs the last ``hush_filter_history_frames`` spectra, which the caller keeps. With
phase features the input is ``[B, input_size]`` as ``hush_input_layout`` says. The
weight file's JSON is embedded in the model's metadata so that DSP settings travel with
the graph. ``verify_onnx`` runs onnxruntime against torch over a sequence of frames,
as DeepFilterNet's export script does.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .base import GainModel
from .features import FeatureConfig
from .weights import WeightMetadata

OPSET = 17


class _Step(nn.Module):
    def __init__(self, model: GainModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.step(features, state)


def export_onnx(model: GainModel, path: Path | str, metadata: WeightMetadata | None = None) -> Path:
    """Write the step graph to ``path`` (batch size is dynamic)."""
    import onnx  # optional dependency: hush[onnx]

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    features = torch.zeros(2, model.input_size)
    state = model.initial_state(2)
    output_name = "gains" if model.output_size == model.n_bins else "gains_and_filter"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
        torch.onnx.export(
            _Step(model).eval(),
            (features, state),
            str(path),
            input_names=["features", "state"],
            output_names=[output_name, "next_state"],
            dynamic_axes={name: {0: "batch"} for name in ("features", "state", output_name, "next_state")},
            opset_version=OPSET,
            dynamo=False,
        )
    graph = onnx.load(str(path))
    props = {
        "hush_features": json.dumps(model.features.model_dump(mode="json")),
        "hush_architecture": json.dumps(model.arch.model_dump(mode="json")),
        "hush_state_size": str(model.state_size),
        "hush_lookahead_frames": str(model.lookahead_frames),
        "hush_filter_history_frames": str(model.filter_history_frames),
        "hush_output_layout": model.output_layout,
        "hush_input_layout": model.input_layout,
        "hush_initial_state": json.dumps(model.initial_state(1)[0].tolist()),
        # the graph emits raw gains; a runtime applies this post-filter itself (0: none)
        "hush_post_filter_beta": str(model.post_filter_beta),
    }
    if metadata is not None:
        props["hush_metadata"] = json.dumps(metadata.model_dump(mode="json"))
    for key, value in props.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(path))
    return path


def verify_onnx(
    model: GainModel, path: Path | str, frames: int = 200, batch: int = 3, seed: int = 0
) -> float:
    """Run torch and onnxruntime side by side for ``frames`` steps of ``batch`` streams with
    random log-power input; returns the max abs difference of gains and state."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    model = model.eval()
    generator = torch.Generator().manual_seed(seed)
    state_torch = model.initial_state(batch)
    state_onnx = state_torch.numpy().copy()
    worst = 0.0
    with torch.inference_mode():
        for _ in range(frames):
            feats = torch.randn(batch, model.input_size, generator=generator) * 3.0 - 8.0
            gains_torch, state_torch = model.step(feats, state_torch)
            gains_onnx, state_onnx = session.run(None, {"features": feats.numpy(), "state": state_onnx})
            worst = max(
                worst,
                float(np.abs(gains_onnx - gains_torch.numpy()).max()),
                float(np.abs(state_onnx - state_torch.numpy()).max()),
            )
    return worst


def onnx_feature_config(path: Path | str) -> FeatureConfig:
    """The DSP settings embedded in an exported graph."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return FeatureConfig.model_validate_json(props["hush_features"])

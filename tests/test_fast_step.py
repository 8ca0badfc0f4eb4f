"""The NumPy frame step (streaming/fast_step.py) gives the torch path's numbers, within 1e-5."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import TINY_ARCHS, speech_like, stream_batched, tiny_model
from hush.models import ModelRegistry
from hush.models.spliced import SplicedDNN
from hush.streaming import Enhancer, Stream
from hush.streaming.fast_step import FastStep


def _streamed(enhancer: Enhancer, signal: np.ndarray, chunk: int, limit: float | None = None) -> np.ndarray:
    stream = Stream(enhancer, limit)
    parts = [stream.feed(signal[i : i + chunk]) for i in range(0, signal.shape[0], chunk)]
    return np.concatenate([*parts, stream.flush()])


@pytest.mark.parametrize("kind", list(TINY_ARCHS))
def test_kernel_step_equals_model_step(kind):
    """Random weights, a batch of 3 streams, 60 frames: output and state as torch's."""
    model = tiny_model(kind)
    kernel = FastStep.build(model).kernel
    generator = torch.Generator().manual_seed(1)
    state_t = model.initial_state(3)
    state_n = state_t.numpy().copy()
    with torch.inference_mode():
        for _ in range(60):
            feats = torch.randn(3, model.input_size, generator=generator) * 3.0 - 8.0
            if getattr(model, "phase_features", False):
                feats[:, model.n_bins :] = torch.tanh(feats[:, model.n_bins :])
            out_t, state_t = model.step(feats, state_t)
            out_n, state_n = kernel.step(feats.numpy(), state_n)
            np.testing.assert_allclose(kernel.torch_layout(out_n), out_t.numpy(), atol=1e-5)
            np.testing.assert_allclose(state_n, state_t.numpy(), atol=1e-5)


@pytest.mark.parametrize("kind", list(TINY_ARCHS))
@pytest.mark.parametrize(("beta", "precision"), [(0.0, "float32"), (0.1, "float32"), (0.0, "int8")])
def test_fast_engine_equals_torch_engine_and_offline(kind, beta, precision):
    model = tiny_model(kind)
    model.post_filter_beta = beta
    fast = Enhancer(model, kind, precision=precision)
    reference = Enhancer(model, kind, fast=False, precision=precision)
    assert fast.fast_step is not None and reference.fast_step is None
    signal = speech_like(0.5, seed=2)
    for limit in (None, 6.0):
        offline = reference.enhance(signal, attenuation_limit_db=limit)
        got = _streamed(fast, signal, 160, limit)
        assert np.abs(got - _streamed(reference, signal, 160, limit)).max() <= 1e-5
        assert np.abs(got - offline).max() <= 1e-5


@pytest.mark.parametrize("kind", ["gru-deep-filter", "lstm", "dnn-noise-aware"])
def test_fast_batched_step_equals_each_stream_alone(kind):
    """The service's case: uneven pushes, mixed attenuation limits, one batched call per frame."""
    enhancer = Enhancer(tiny_model(kind))
    limits = [None, 6.0, None, 12.0]
    signals = [speech_like(0.4, seed=s) * (1 + s) for s in range(len(limits))]
    alone = [enhancer.enhance(x, attenuation_limit_db=lim) for x, lim in zip(signals, limits, strict=True)]
    streams = [Stream(enhancer, lim) for lim in limits]
    for got, expected in zip(stream_batched(streams, signals, seed=4, max_chunk=400), alone, strict=True):
        assert np.abs(got - expected).max() <= 1e-5


@pytest.mark.parametrize("name", ["gru", "dnn"])
def test_shipped_models_fast_path_equals_torch(name):
    model, _meta = ModelRegistry().load(name)
    fast, reference = Enhancer(model, name), Enhancer(model, name, fast=False)
    assert fast.fast_step is not None
    signal = speech_like(0.6, seed=5, noise=0.05)
    for limit in (None, 12.0):
        assert np.abs(_streamed(fast, signal, 160, limit) - reference.enhance(signal, limit)).max() <= 1e-5
    streams = [Stream(fast, lim) for lim in (None, 12.0, 3.0)]
    signals = [signal * g for g in (1.0, 0.3, 2.0)]
    got = stream_batched(streams, signals, seed=0, max_chunk=480)
    for out, x, lim in zip(got, signals, (None, 12.0, 3.0), strict=True):
        assert np.abs(out - reference.enhance(x, lim)).max() <= 1e-5


class _CustomDNN(SplicedDNN):
    """A model class the fast step does not know (a subclass may change the math)."""


def test_unsupported_models_fall_back_to_torch():
    plain = tiny_model("dnn")
    custom = _CustomDNN(plain.features, plain.arch)
    custom.load_state_dict(plain.state_dict())
    custom.eval()
    assert FastStep.build(custom) is None
    enhancer = Enhancer(custom)
    assert enhancer.fast_step is None
    signal = speech_like(0.3, seed=1)
    assert np.abs(_streamed(enhancer, signal, 100) - enhancer.enhance(signal)).max() <= 1e-5
    training = tiny_model("gru").train()
    assert FastStep.build(training) is None
    quantize = torch.ao.quantization.quantize_dynamic
    quantized = quantize(tiny_model("dnn"), {torch.nn.Linear}, dtype=torch.qint8)
    assert FastStep.build(quantized) is None and Enhancer(quantized).fast_step is None
    double = tiny_model("gru").to(torch.float64)
    assert FastStep.build(double) is None


@pytest.mark.parametrize("kind", ["gru-deep-filter", "lstm", "dnn-noise-aware"])
def test_int8_streams_what_offline_int8_gives_alone_or_batched(kind):
    """int8 rounds the weights, not the promise: streamed (one stream: the compiled GEMV;
    a batch: BLAS on the same rounded weights) equals offline enhancement with the rounded
    model within 1e-5, and stays close to the float model."""
    model = tiny_model(kind)
    int8, reference = Enhancer(model, kind, precision="int8"), Enhancer(model, kind, fast=False)
    assert int8.precision == "int8" and int8.fast_step is not None
    assert getattr(model, "weights_precision", "float32") == "float32"  # the caller's model is untouched
    signal = speech_like(0.4, seed=3)
    got = _streamed(int8, signal, 160)
    assert np.abs(got - int8.enhance(signal)).max() <= 1e-5
    expected = reference.enhance(signal)
    assert np.isfinite(got).all() and np.abs(got - expected).max() < 0.02 * np.abs(expected).max() + 1e-3
    assert np.abs(got - expected).max() > 0  # it is not the float model
    streams = [Stream(int8) for _ in range(9)]
    outs = stream_batched(streams, [signal] * 9, seed=2, max_chunk=400)
    for out in outs:
        assert np.abs(out - got).max() <= 1e-5
    # a view at another rate shares the rounded model
    assert int8.at_rate(48000).model is int8.model and int8.at_rate(48000).precision == "int8"


def test_int8_rounds_the_torch_path_too_where_the_fast_step_does_not_apply():
    plain = tiny_model("dnn")
    custom = _CustomDNN(plain.features, plain.arch)
    custom.load_state_dict(plain.state_dict())
    custom.eval()
    enhancer = Enhancer(custom, precision="int8")
    assert enhancer.fast_step is None and enhancer.precision == "int8"
    signal = speech_like(0.3, seed=4)
    # the same rounded numbers as the plain model's int8 fast step
    fast_int8 = _streamed(Enhancer(plain, precision="int8"), signal, 160)
    assert np.abs(enhancer.enhance(signal) - fast_int8).max() <= 1e-5
    with pytest.raises(ValueError, match="precision"):
        FastStep.build(plain, "int4")
    with pytest.raises(ValueError, match="precision"):
        Enhancer(plain, precision="int4")


class _ChangedEnhancer(Enhancer):
    """A torch frame step the NumPy kernel does not mirror (say, a change still to port)."""

    @torch.inference_mode()
    def process_frames(self, frames, model_state, spec_queue, min_gain=0.0):
        out, state, queue = super().process_frames(frames, model_state, spec_queue, min_gain)
        return out * 0.5, state, queue


def test_a_torch_step_the_kernel_does_not_reproduce_keeps_torch():
    model = tiny_model("gru-deep-filter")
    with pytest.warns(RuntimeWarning, match="disagrees"):
        changed = _ChangedEnhancer(model)
    assert changed.fast_step is None and changed.precision == "int8"  # torch runs the rounded weights
    signal = speech_like(0.3, seed=6)
    halved = _streamed(changed, signal, 160)
    assert np.abs(halved - 0.5 * Enhancer(model).enhance(signal)).max() <= 1e-5
    assert Enhancer(model).fast_step is not None  # the real step agrees

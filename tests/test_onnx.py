"""ONNX export: the exported graph gives the torch model's outputs."""

import pytest

from conftest import TINY_ARCHS, tiny_model

pytest.importorskip("onnxruntime", reason="ONNX parity needs hush[onnx]")
from hush.models.onnx_export import export_onnx, onnx_feature_config, verify_onnx


@pytest.mark.parametrize("kind", list(TINY_ARCHS))
def test_onnx_step_matches_torch(tmp_path, kind):
    model = tiny_model(kind)
    path = export_onnx(model, tmp_path / f"{kind}.onnx")
    assert verify_onnx(model, path, frames=100, batch=3) < 1e-5
    assert onnx_feature_config(path) == model.features


def test_onnx_carries_the_post_filter_setting(tmp_path):
    import onnx

    model = tiny_model("gru")
    model.post_filter_beta = 0.05
    path = export_onnx(model, tmp_path / "pf.onnx")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert float(props["hush_post_filter_beta"]) == 0.05

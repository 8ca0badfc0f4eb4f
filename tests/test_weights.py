"""Weight files: save, load, validate, and the settings they carry."""

import json

import pytest
import torch

from conftest import tiny_model
from hush.models import (
    ModelRegistry,
    Provenance,
    UnknownModelError,
    WeightFileError,
    load_weights,
    save_weights,
)
from hush.models.registry import SHIPPED_WEIGHTS_DIR


@pytest.mark.parametrize("kind", ["gru", "lstm", "rnn", "dnn", "dnn-lookahead"])
def test_round_trip_keeps_weights_and_settings(tmp_path, kind):
    model = tiny_model(kind)
    prov = Provenance(data="synthetic", steps=12, val_loss=0.5, licences=["CC0"], test_scores={"pesq": 1.5})
    json_path = save_weights(model, tmp_path, "m1", description="test", provenance=prov)
    loaded, meta = load_weights(json_path)
    assert meta.name == "m1" and meta.provenance == prov
    assert meta.architecture == model.arch and meta.features == model.features
    assert meta.latency_samples == model.latency_samples and meta.latency_ms == model.latency_samples / 16
    assert meta.sample_rate == 16000 and meta.format_version == 1
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert not loaded.training
    # the .safetensors path and the bare stem work too
    assert load_weights(tmp_path / "m1.safetensors")[1].name == "m1"
    assert load_weights(tmp_path / "m1")[1].name == "m1"


@pytest.fixture
def saved(tmp_path):
    save_weights(tiny_model("gru"), tmp_path, "m1")
    return tmp_path / "m1.json", tmp_path / "m1.safetensors"


def test_flipped_byte_is_caught(saved):
    json_path, tensor_path = saved
    data = bytearray(tensor_path.read_bytes())
    data[-5] ^= 0xFF
    tensor_path.write_bytes(bytes(data))
    with pytest.raises(WeightFileError, match="checksum"):
        load_weights(json_path)


def test_truncated_tensor_file_is_caught(saved):
    json_path, tensor_path = saved
    tensor_path.write_bytes(tensor_path.read_bytes()[:100])
    with pytest.raises(WeightFileError, match="checksum"):
        load_weights(json_path)


def test_garbage_tensor_file_with_matching_checksum_is_caught(saved):
    import hashlib

    json_path, tensor_path = saved
    tensor_path.write_bytes(b"not a safetensors file at all")
    meta = json.loads(json_path.read_text())
    meta["weights_sha256"] = hashlib.sha256(tensor_path.read_bytes()).hexdigest()
    json_path.write_text(json.dumps(meta))
    with pytest.raises(WeightFileError, match="unreadable"):
        load_weights(json_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format_version=99), "format version"),
        (lambda m: m.update(format="something-else"), "not a hush weight file"),
        (lambda m: m["architecture"].update(hidden_size=25), "shape"),
        (lambda m: m["architecture"].update(cell="transformer"), "invalid metadata"),
        (lambda m: m["features"].update(win_length=480), "invalid metadata"),
        (lambda m: m.update(sample_rate=48000), "sample_rate"),
        (lambda m: m.update(latency_samples=160), "latency"),
        (lambda m: m.update(name="../../etc/passwd"), "invalid model name"),
        (lambda m: m.pop("architecture"), "invalid metadata"),
    ],
)
def test_metadata_mismatch_is_caught(saved, edit, message):
    json_path, _ = saved
    meta = json.loads(json_path.read_text())
    edit(meta)
    json_path.write_text(json.dumps(meta))
    with pytest.raises(WeightFileError, match=message):
        load_weights(json_path)


def test_broken_json_and_missing_files(saved, tmp_path):
    json_path, _ = saved
    json_path.write_text("{not json")
    with pytest.raises(WeightFileError, match="not valid JSON"):
        load_weights(json_path)
    with pytest.raises(WeightFileError, match="not found"):
        load_weights(tmp_path / "nothing.json")


def test_missing_tensor_file(saved):
    json_path, tensor_path = saved
    tensor_path.unlink()
    with pytest.raises(WeightFileError, match="tensor file not found"):
        load_weights(json_path)


def test_registry_finds_user_folders_and_shares_loaded_models(weights_dir):
    registry = ModelRegistry(extra_dirs=[weights_dir])
    assert {"tiny-gru", "tiny-dnn"} <= set(registry.names())
    first, _ = registry.load("tiny-gru")
    second, _ = registry.load("tiny-gru")
    assert first is second


@pytest.mark.parametrize("name", ["../weights/tiny-gru", "/etc/passwd", "tiny-gru.json", "TINY", "", "nope"])
def test_registry_names_are_never_paths(weights_dir, name):
    registry = ModelRegistry(extra_dirs=[weights_dir])
    with pytest.raises(UnknownModelError):
        registry.load(name)


def test_registry_reports_broken_files_without_failing(weights_dir):
    (weights_dir / "broken.json").write_text("[]")
    registry = ModelRegistry(extra_dirs=[weights_dir])
    assert "tiny-gru" in registry.names()
    assert any("broken.json" in str(path) for path in registry.problems)


def test_shipped_weights_are_trained_and_load():
    """Everything in the shipped folder loads, and records real training provenance."""
    registry = ModelRegistry(extra_dirs=[])
    shipped = [n for n in registry.names() if registry.entries[n].json_path.parent == SHIPPED_WEIGHTS_DIR]
    assert not registry.problems
    for name in shipped:
        _, meta = registry.load(name)
        assert meta.provenance.steps > 0 and meta.provenance.val_loss is not None
        assert (SHIPPED_WEIGHTS_DIR / f"{name}.safetensors").stat().st_size < 5 * 2**20

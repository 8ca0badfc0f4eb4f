"""``hush compare``: paired per-file differences between two ``hush eval`` results."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hush.cli import app
from hush.evaluation.compare import compare_files, paired_differences
from hush.evaluation.metrics import METRICS


def _result(offsets: dict[str, float]) -> dict:
    """A minimal ``hush eval`` result: 5 files, each metric = file index + the system's offset."""
    per_file = [
        {
            "name": f"f{i}.wav",
            "snr_db": 5.0,
            "scores": {system: {m: i + off for m in METRICS} for system, off in offsets.items()},
        }
        for i in range(5)
    ]
    return {"systems": {s: {} for s in offsets}, "per_file": per_file}


def test_paired_difference_is_exact_for_a_constant_shift():
    a, b = _result({"gru": 0.25}), _result({"gru": 0.0})
    diffs = paired_differences(a, "gru", b, "gru")
    assert diffs["files"] == 5
    for metric in METRICS:
        # every file moved by the same amount: the per-file differences have no spread
        assert diffs[metric]["mean"] == pytest.approx(0.25)
        assert diffs[metric]["ci95_half"] == pytest.approx(0.0, abs=1e-12)


def test_only_files_scored_on_both_sides_count(tmp_path):
    a = _result({"new": 1.0, "noisy": 0.0})
    b = _result({"gru": 0.5})
    b["per_file"] = b["per_file"][:3]
    (tmp_path / "a.json").write_text(json.dumps({"sets": {"val": a}}))
    (tmp_path / "b.json").write_text(json.dumps({"sets": {"val": b, "other": b}}))
    result = compare_files(tmp_path / "a.json", "new", tmp_path / "b.json", "gru")
    assert list(result) == ["val"] and result["val"]["files"] == 3
    assert result["val"]["pesq"]["mean"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="nope not in"):
        compare_files(tmp_path / "a.json", "nope", tmp_path / "b.json", "gru")


def test_cli_prints_and_writes_the_differences(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(_result({"gru": 0.1, "rnnoise": 0.0})))
    out = tmp_path / "diff.json"
    a = str(tmp_path / "a.json")
    run = CliRunner().invoke(app, ["compare", a, a, "--b", "rnnoise", "--json", str(out)])
    assert run.exit_code == 0, run.output
    assert "+0.100" in run.output
    written = json.loads(out.read_text())
    assert written["sets"][""]["stoi"]["mean"] == pytest.approx(0.1)
    bad = CliRunner().invoke(app, ["compare", str(tmp_path / "a.json"), str(tmp_path / "missing.json")])
    assert bad.exit_code == 2


def test_cli_leaves_out_metrics_no_file_has(tmp_path):
    result = _result({"gru": 0.1})
    for row in result["per_file"]:
        row["scores"]["gru"]["lsd_hb"] = None  # 16 kHz pairs: no high band to score
    (tmp_path / "a.json").write_text(json.dumps({"sets": {"out/val/in_domain": result}}))
    a = str(tmp_path / "a.json")
    run = CliRunner().invoke(app, ["compare", a, a])
    assert run.exit_code == 0, run.output
    assert "lsd_hb" not in run.output and "nan" not in run.output
    assert "in_domain" in run.output and "+0.000" in run.output


def test_by_type_splits_each_set_by_its_files_noise_types(tmp_path):
    """Files 0-2 are keyboard, 3-4 applause; A beats B by 0.3 on keyboard files only."""
    a, b = _result({"gru": 0.0}), _result({"gru": 0.0})
    for row_a, row_b in zip(a["per_file"], b["per_file"], strict=True):
        kind = "keyboard" if int(row_a["name"][1]) < 3 else "applause"
        row_a["noise_type"] = row_b["noise_type"] = kind
        if kind == "keyboard":
            row_a["scores"]["gru"] = {m: v + 0.3 for m, v in row_a["scores"]["gru"].items()}
    (tmp_path / "a.json").write_text(json.dumps({"sets": {"out/val/unseen_types": a}}))
    (tmp_path / "b.json").write_text(json.dumps({"sets": {"out/val/unseen_types": b}}))
    plain = compare_files(tmp_path / "a.json", "gru", tmp_path / "b.json", "gru")
    assert list(plain) == ["out/val/unseen_types"]
    split = compare_files(tmp_path / "a.json", "gru", tmp_path / "b.json", "gru", by_type=True)
    assert list(split) == [
        "out/val/unseen_types",
        "out/val/unseen_types [applause]",
        "out/val/unseen_types [keyboard]",
    ]
    assert split["out/val/unseen_types [keyboard]"]["files"] == 3
    assert split["out/val/unseen_types [keyboard]"]["dnsmos_bak"]["mean"] == pytest.approx(0.3)
    assert split["out/val/unseen_types [applause]"]["pesq"]["mean"] == pytest.approx(0.0)
    assert split["out/val/unseen_types"]["pesq"]["mean"] == pytest.approx(0.3 * 3 / 5)
    run = CliRunner().invoke(
        app, ["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--by-type"]
    )
    assert run.exit_code == 0, run.output
    assert "unseen_types · keyboard" in run.output and "+0.300 ± 0.000" in run.output

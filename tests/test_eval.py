"""hush eval: metric sanity, statistics, pairs, and the command end to end on generated audio."""

import json
import math
import sys

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from hush.cli import app

pytest.importorskip("pesq")
pytest.importorskip("pystoi")
pytest.importorskip("speechmos")

from hush.evaluation.metrics import Dnsmos, pesq_wb, si_sdr, snr_db, stoi_score
from hush.evaluation.pairs import PairsError, find_pairs, select
from hush.evaluation.peers import parse_peers, peer_problem
from hush.evaluation.stats import mean_ci, snr_band, summarise

RATE = 16000
runner = CliRunner()
METRIC_KEYS = {"pesq", "stoi", "si_sdr", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"}


def voiced(seconds: float, seed: int = 0) -> np.ndarray:
    """Clean 'speech': harmonic syllables with a gliding pitch and real pauses (PESQ's voice
    activity detector needs silence between utterances), float32 [S] at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 110 + 40 * rng.random() + 25 * np.sin(2 * np.pi * 0.8 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    harmonics = sum(np.sin(k * phase + rng.random() * 6) * np.exp(-0.15 * k) for k in range(1, 30))
    syllables = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 0.5
    words = (np.sin(2 * np.pi * 0.7 * t + rng.random()) > -0.2).astype(float)
    return (0.25 * harmonics * syllables * words / 4).astype(np.float32)


def add_noise(clean: np.ndarray, snr: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(clean.shape[0])
    noise *= np.sqrt(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (snr / 10))
    return (clean + noise).astype(np.float32)


# --- metrics -------------------------------------------------------------------------------


def test_si_sdr_sanity():
    clean = voiced(2.0)
    assert si_sdr(clean, clean) > 100
    assert si_sdr(clean, 0.3 * clean + 0.01) > 100  # invariant to scale and offset
    assert abs(si_sdr(clean, add_noise(clean, 10.0)) - 10.0) < 0.5
    noise = np.random.default_rng(3).standard_normal(clean.shape[0]).astype(np.float32)
    assert si_sdr(clean, noise) < -20
    assert abs(snr_db(clean, add_noise(clean, 7.0)) - 7.0) < 1e-3
    with pytest.raises(ValueError):
        si_sdr(clean, clean[:-1])


def test_pesq_stoi_dnsmos_sanity():
    clean = voiced(3.0)
    noisy = add_noise(clean, 0.0)
    assert pesq_wb(clean, clean) > 4.4
    assert pesq_wb(clean, noisy) < 2.0
    assert math.isnan(pesq_wb(clean, np.zeros_like(clean)))  # no utterance: NaN, not a crash
    assert stoi_score(clean, clean) > 0.99
    assert stoi_score(clean, noisy) < stoi_score(clean, add_noise(clean, 20.0))
    from speechmos import dnsmos

    reference = dnsmos.run(noisy, RATE)  # our one-thread sessions give speechmos' own scores
    assert Dnsmos()(noisy)["dnsmos_ovrl"] == pytest.approx(reference["ovrl_mos"], abs=1e-6)
    scores = Dnsmos()(noisy * 3.0)  # overshoot beyond [-1, 1] is clipped, not rejected
    assert set(scores) == {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"}
    assert all(1.0 <= v <= 5.0 for v in scores.values())


def test_mean_ci_is_a_t_interval():
    mean, half, n = mean_ci([1, 2, 3, 4, 5, float("nan")])
    assert (mean, n) == (3.0, 5)
    assert half == pytest.approx(2.7764451 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    assert math.isnan(mean_ci([2.0])[1]) and mean_ci([])[2] == 0


def test_summary_and_snr_bands():
    assert [snr_band(x) for x in (-3, 4.99, 5, 12.5, 15, 40)] == ["<5", "<5", "5-10", "10-15", ">=15", ">=15"]
    records = [
        {"snr_db": snr, "scores": {"a": dict.fromkeys(METRIC_KEYS, value)}}
        for snr, value in ((2.5, 1.0), (2.5, 3.0), (17.5, 4.0))
    ]
    entry = summarise(records, ["a"])["a"]
    assert entry["pesq"] == pytest.approx(8 / 3) and entry["n"]["pesq"] == 3
    assert entry["by_snr"]["<5"]["files"] == 2 and entry["by_snr"]["<5"]["stoi"] == 2.0
    assert set(entry["by_snr"]) == {"<5", ">=15"}


def test_pairs_matching_and_selection(tmp_path):
    with pytest.raises(PairsError, match="clean"):
        find_pairs(tmp_path)
    for sub in ("clean", "noisy"):
        (tmp_path / sub).mkdir()
    for i in range(10):
        sf.write(tmp_path / "noisy" / f"f{i}.wav", np.zeros(100), RATE)
        if i != 4:
            sf.write(tmp_path / "clean" / f"f{i}.wav", np.zeros(100), RATE)
    pairs = find_pairs(tmp_path)
    assert [p.name for p in pairs] == [f"f{i}.wav" for i in range(10) if i != 4]
    assert [p.name for p in select(pairs, every=4)] == ["f0.wav", "f5.wav", "f9.wav"]
    assert [p.name for p in select(pairs, every=4, limit=2)] == ["f0.wav", "f5.wav"]


def test_peer_names_and_missing_peers(tmp_path, monkeypatch):
    assert parse_peers("all")[0] == "rnnoise" and parse_peers("dtln, gtcrn") == ["dtln", "gtcrn"]
    with pytest.raises(ValueError, match="unknown peer"):
        parse_peers("rnnoise,nope")
    assert "weights not found" in peer_problem("dtln", tmp_path)
    monkeypatch.setitem(sys.modules, "noisereduce", None)  # import now raises ImportError
    assert "not installed" in peer_problem("noisereduce", tmp_path)


# --- the command end to end ----------------------------------------------------------------


@pytest.fixture
def pairs_dir(tmp_path):
    folder = tmp_path / "pairs"
    for sub in ("clean", "noisy"):
        (folder / sub).mkdir(parents=True)
    for i, snr in enumerate((2.5, 7.5, 17.5)):
        clean = voiced(2.5, seed=i)
        sf.write(folder / "clean" / f"s{i}.flac", clean, RATE, subtype="PCM_16")
        sf.write(folder / "noisy" / f"s{i}.flac", add_noise(clean, snr, seed=10 + i), RATE, subtype="PCM_16")
    return folder


def _eval(*args):
    return runner.invoke(app, ["eval", *map(str, args)])


def test_eval_end_to_end(pairs_dir, weights_dir, tmp_path):
    out_json, out_md, plots = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "plots"
    result = _eval(
        "--pairs", pairs_dir,
        "--weights", weights_dir / "tiny-gru.json",
        "--peers", "noisereduce,dtln",
        "--peers-dir", tmp_path / "no-peers-here",
        "--json", out_json, "--markdown", out_md, "--plots", plots, "--plot-files", "2",
        "--workers", "2", "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # the missing peer is skipped with its reason; the others run
    assert "skipping peer dtln: weights not found" in result.output
    data = json.loads(out_json.read_text())
    assert data["files"] == 3
    assert list(data["systems"]) == ["noisy", "noisereduce", "tiny-gru"]
    for entry in data["systems"].values():
        assert set(entry) >= METRIC_KEYS
        assert all(isinstance(entry[k], float) for k in METRIC_KEYS)
        assert entry["ci95"]["pesq"][0] <= entry["pesq"] <= entry["ci95"]["pesq"][1]
        assert sum(band["files"] for band in entry["by_snr"].values()) == 3
    noisy = data["systems"]["noisy"]
    assert set(noisy["by_snr"]) == {"<5", "5-10", ">=15"}
    assert noisy["si_sdr"] == pytest.approx(np.mean([r["snr_db"] for r in data["per_file"]]), abs=0.1)
    assert data["skipped_peers"].keys() == {"dtln"} and data["failures"] == []
    # the noisy "system" is the input itself; the tiny model's output is not
    first = data["per_file"][0]["scores"]
    assert first["noisy"]["pesq"] != first["tiny-gru"]["pesq"]
    # README outputs
    text = out_md.read_text()
    assert "| noisy input |" in text and "| hush tiny-gru |" in text and "hush eval --pairs" in text
    pictures = sorted(p.name for p in plots.glob("*.png"))
    assert pictures == ["before_after.png", "s0.png", "s2.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots.glob("*.png"))


@pytest.mark.parametrize("limit", [None, 6.0])
def test_eval_matches_hush_enhance(pairs_dir, weights_dir, tmp_path, limit):
    """The hush system's scores are those of the file `hush enhance` writes (same output),
    with an attenuation limit too."""
    out_json = tmp_path / "r.json"
    weights = weights_dir / "tiny-dnn.json"
    capped = ["--attenuation-limit", str(limit)] if limit is not None else []
    result = _eval("--pairs", pairs_dir, "--model", "tiny-dnn", "--models-dir", weights_dir, "--limit", "1",
                   "--workers", "1", "--json", out_json, "--quiet", *capped)  # fmt: skip
    assert result.exit_code == 0, result.output
    enhanced = tmp_path / "enh.wav"
    done = runner.invoke(app, ["enhance", str(pairs_dir / "noisy" / "s0.flac"), "-o", str(enhanced),
                               "--weights", str(weights), "--quiet", *capped])  # fmt: skip
    assert done.exit_code == 0, done.output
    clean, _ = sf.read(pairs_dir / "clean" / "s0.flac", dtype="float32")
    written, _ = sf.read(enhanced, dtype="float32")
    data = json.loads(out_json.read_text())
    scores = data["per_file"][0]["scores"]["tiny-dnn"]
    # the .wav holds the same signal as 16-bit PCM, so SI-SDR agrees to quantisation noise
    assert scores["si_sdr"] == pytest.approx(si_sdr(clean, written), abs=0.05)
    assert data["attenuation_limit_db"] == limit
    assert ("--attenuation-limit 6.0" in data["command"]) == (limit is not None)


def test_eval_argument_errors(pairs_dir, tmp_path, monkeypatch):
    result = _eval("--pairs", tmp_path, "--peers", "noisereduce")
    assert result.exit_code == 2 and "clean/ and noisy/" in result.output
    result = _eval("--pairs", pairs_dir, "--peers", "bogus")
    assert result.exit_code == 2 and "unknown peer" in result.output
    result = _eval("--pairs", pairs_dir, "--model", "no-such-model")
    assert (
        result.exit_code == 2 and "unknown model" in result.output and "Pass --weights PATH" in result.output
    )
    result = _eval(
        "--pairs", pairs_dir, "--peers", "noisereduce", "--plots", tmp_path, "--plot-names", "x.flac"
    )
    assert result.exit_code == 2 and "not among the selected pairs: x.flac" in result.output
    # with no --model the shipped default is scored; hide it so that only the missing peer is left
    import hush.models

    monkeypatch.setattr(hush.models, "DEFAULT_MODEL", "no-such-default")
    result = _eval("--pairs", pairs_dir, "--peers", "dtln", "--peers-dir", tmp_path)
    assert result.exit_code == 2 and "nothing to evaluate" in result.output


def test_unreadable_file_is_reported_not_fatal(pairs_dir, tmp_path):
    (pairs_dir / "noisy" / "s1.flac").write_bytes(b"fLaC but not really")
    out_json = tmp_path / "r.json"
    result = _eval(
        "--pairs", pairs_dir, "--peers", "noisereduce", "--workers", "1", "--json", out_json, "--quiet"
    )
    assert result.exit_code == 1
    assert "reading failed on s1.flac" in result.output
    data = json.loads(out_json.read_text())
    assert data["files"] == 2 and [f["file"] for f in data["failures"]] == ["s1.flac"]


def test_several_pairs_sets_in_one_run_with_noise_types(pairs_dir, weights_dir, tmp_path):
    """Repeated --pairs scores each set under its own name (in-domain beside held-out types);
    a set whose mixtures.csv types its noises gets scores per type."""
    import shutil

    typed = tmp_path / "typed"
    shutil.copytree(pairs_dir, typed)
    (typed / "mixtures.csv").write_text(
        "name,snr_db,noise,noise_type\ns0.flac,2.5,a,siren\ns1.flac,7.5,b,siren\ns2.flac,17.5,c,keyboard\n"
    )
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    result = _eval(
        "--pairs", pairs_dir, "--pairs", typed, "--weights", weights_dir / "tiny-dnn.json",
        "--workers", "1", "--json", out_json, "--markdown", out_md, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text())
    assert list(data["sets"]) == [str(pairs_dir), str(typed)] and "--pairs" in data["command"]
    plain, by_type = data["sets"][str(pairs_dir)], data["sets"][str(typed)]
    assert "by_noise_type" not in plain["systems"]["tiny-dnn"]
    types = by_type["systems"]["tiny-dnn"]["by_noise_type"]
    assert {kind: stats["files"] for kind, stats in types.items()} == {"keyboard": 1, "siren": 2}
    # the same files score the same in both sets; the per-type means are means of their files
    files = {r["name"]: r["scores"]["tiny-dnn"]["si_sdr"] for r in by_type["per_file"]}
    assert types["siren"]["si_sdr"] == pytest.approx((files["s0.flac"] + files["s1.flac"]) / 2)
    assert plain["systems"]["tiny-dnn"]["si_sdr"] == pytest.approx(by_type["systems"]["tiny-dnn"]["si_sdr"])
    text = out_md.read_text()
    assert f"### {typed}" in text and "by noise type" in text and "siren (n=2)" in text
    assert "PESQ-wb by noise type" in result.output


# --- 48 kHz pairs: full band and the high-band distance ----------------------------------


def test_high_band_distance():
    from hush.evaluation.metrics import lsd_high_band

    rate = 48000
    rng = np.random.default_rng(0)
    clean = (0.1 * rng.standard_normal(rate)).astype(np.float32)
    assert lsd_high_band(clean, clean, rate) == 0.0
    # a gain of 0.5 everywhere is 6.02 dB in every bin of every frame
    assert lsd_high_band(clean, 0.5 * clean, rate) == pytest.approx(6.02, abs=0.01)
    # the band held nothing at all: every bin sits at the -100 dB floor
    lowpassed = np.fft.irfft(np.fft.rfft(clean) * (np.fft.rfftfreq(rate, 1 / rate) < 7000), n=rate)
    assert lsd_high_band(clean, lowpassed.astype(np.float32), rate) > 60
    assert math.isnan(lsd_high_band(clean[:8000], clean[:8000], 16000))  # no band above 8 kHz


def test_eval_at_48_khz_runs_full_band_and_scores_the_high_band(weights_dir, tmp_path):
    from hush.models import load_weights
    from hush.streaming import Enhancer
    from hush.streaming.audio_io import resample

    rate = 48000
    folder = tmp_path / "pairs48"
    for sub in ("clean", "noisy"):
        (folder / sub).mkdir(parents=True)
    for i, snr in enumerate((2.5,)):
        clean = resample(voiced(2.0, seed=i), RATE, rate)
        sf.write(folder / "clean" / f"s{i}.wav", clean, rate, subtype="FLOAT")
        sf.write(folder / "noisy" / f"s{i}.wav", add_noise(clean, snr, seed=20 + i), rate, subtype="FLOAT")
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    result = _eval(
        "--pairs", folder, "--weights", weights_dir / "tiny-gru.json",
        "--json", out_json, "--markdown", out_md, "--workers", "1", "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text())
    assert all(math.isfinite(data["systems"][s]["lsd_hb"]) for s in ("noisy", "tiny-gru"))
    assert "HB LSD 8-20 kHz" in out_md.read_text()
    # the hush system is the model's full-band 48 kHz view, scored after resampling to 16 kHz
    model, meta = load_weights(weights_dir / "tiny-gru.json")
    clean, _ = sf.read(folder / "clean" / "s0.wav", dtype="float32")
    noisy, _ = sf.read(folder / "noisy" / "s0.wav", dtype="float32")
    enhanced = Enhancer(model, meta.name).at_rate(rate).enhance(noisy)
    expected = pesq_wb(resample(clean, rate, RATE), resample(enhanced, rate, RATE))
    first = next(r for r in data["per_file"] if r["name"] == "s0.wav")
    assert first["sample_rate"] == rate
    assert first["scores"]["tiny-gru"]["pesq"] == pytest.approx(expected, abs=1e-6)


def test_16_khz_results_have_no_high_band_column(pairs_dir, weights_dir, tmp_path):
    out_md = tmp_path / "r.md"
    result = _eval(
        "--pairs", pairs_dir, "--weights", weights_dir / "tiny-gru.json", "--limit", "1",
        "--markdown", out_md, "--workers", "1", "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "HB LSD" not in out_md.read_text() and "| noisy input |" in out_md.read_text()

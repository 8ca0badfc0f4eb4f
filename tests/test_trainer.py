"""The trainer end to end on generated audio: CI has no corpus, so the test writes its own."""

import json
import time

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from conftest import speech_like
from hush.cli import app
from hush.models import ModelRegistry, load_weights, read_metadata
from hush.streaming import Enhancer
from hush.trainer.config import DataConfig, load_config
from hush.trainer.data import MixtureMaker, load_validation_audio, validation_mixtures, validation_set

pytest.importorskip("scipy")


@pytest.fixture
def corpus(tmp_path):
    """Folders laid out like ../shared/data: speech/{train,val}, noise/{train,val}, manifest.csv."""
    rng = np.random.default_rng(0)
    rows = ["split,kind,path,duration_s,source,speaker_or_type,license"]
    for split, n in (("train", 6), ("val", 2)):
        for i in range(n):
            path = tmp_path / "speech" / split / f"s{i}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, speech_like(1.5, seed=i + 10 * len(split)), 16000)
            licence = "CC-BY-NC-SA-4.0" if i == 0 else "CC-BY-4.0"
            rows.append(f"{split},speech,{path.relative_to(tmp_path)},1.5,test,s{i},{licence}")
            noise = tmp_path / "noise" / split / f"n{i}.ogg"
            noise.parent.mkdir(parents=True, exist_ok=True)
            sf.write(noise, (0.1 * rng.standard_normal(24000)).astype(np.float32), 16000, format="OGG")
            rows.append(f"{split},noise,{noise.relative_to(tmp_path)},1.5,test,white,CC0")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def _write_config(corpus, tmp_path, extra=""):
    config = tmp_path / "tiny.toml"
    config.write_text(
        f"""
name = "tiny"
output_dir = "{tmp_path / "run"}"
batch_size = 4
max_steps = 30
val_every = 10
log_every = 10
num_workers = 0
threads = 1
{extra}
[architecture]
family = "recurrent"
cell = "gru"
hidden_size = 16
num_layers = 1
[data]
speech_train = ["{corpus / "speech/train"}"]
speech_val = ["{corpus / "speech/val"}"]
noise_train = ["{corpus / "noise/train"}"]
noise_val = ["{corpus / "noise/val"}"]
manifest = "{corpus / "manifest.csv"}"
allowed_licences = ["CC-BY-4.0", "CC0"]
segment_s = 1.0
val_mixtures = 6
"""
    )
    return config


def test_tiny_training_run_exports_weights_that_load_and_run(corpus, tmp_path):
    config = _write_config(corpus, tmp_path)
    started = time.monotonic()
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 60
    export = tmp_path / "run" / "export" / "tiny.json"
    model, meta = load_weights(export)
    assert meta.provenance.steps > 0 and meta.provenance.val_loss is not None
    # the licence filter dropped the non-commercial file and the card data says so
    assert meta.provenance.extra["data"]["speech_licences"] == {"CC-BY-4.0": 5}
    assert meta.provenance.extra["data"]["val_speech_licences"] == {"CC-BY-4.0": 1}
    assert "CC-BY-NC-SA-4.0" not in meta.provenance.licences
    out = Enhancer(model).enhance(speech_like(0.5))
    assert out.shape == (8000,) and np.isfinite(out).all()
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,") and len(log) > 3

    # resuming continues from the last checkpoint instead of starting over
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--resume", "--max-steps", "40"])
    assert result.exit_code == 0, result.output
    assert load_weights(export)[1].provenance.extra["total_steps"] == 40


@pytest.mark.parametrize(
    ("term", "penalised_scale", "spared_scale"),
    [("suppression_weight", 0.5, 1.5), ("residual_weight", 1.5, 0.5)],
)
def test_one_sided_terms_penalise_only_their_side(term, penalised_scale, spared_scale):
    """The suppression term weighs estimates below the clean level (speech removed), the
    residual term estimates above it (noise left); each leaves the other side alone."""
    from hush.trainer.config import LossConfig
    from hush.trainer.loss import compressed_spectral_loss

    clean = torch.polar(torch.rand(2, 10, 5) + 0.5, torch.rand(2, 10, 5) * 6)
    penalised, spared = clean * penalised_scale, clean * spared_scale
    plain, extra = LossConfig(), LossConfig(**{term: 2.0})
    assert torch.isclose(
        compressed_spectral_loss(spared, clean, extra), compressed_spectral_loss(spared, clean, plain)
    )
    # the penalised side costs 1 + weight times as much
    assert torch.isclose(
        compressed_spectral_loss(penalised, clean, extra),
        3.0 * compressed_spectral_loss(penalised, clean, plain),
    )


def test_residual_term_limited_to_low_bins():
    """With residual_max_hz the residual term weighs only the bins below it: noise left
    above the limit costs what the plain loss charges, below it 1 + weight times as much."""
    from hush.trainer.config import LossConfig
    from hush.trainer.loss import compressed_spectral_loss

    clean = torch.polar(torch.ones(1, 4, 9), torch.zeros(1, 4, 9))  # 9 bins, 0 to 8 kHz
    low, high = clean.clone(), clean.clone()
    low[..., :2] *= 2.0  # 0 and 1 kHz too loud
    high[..., 5:] *= 2.0  # 5 to 8 kHz too loud
    plain = LossConfig()
    limited = LossConfig(residual_weight=2.0, residual_max_hz=1500.0)
    assert torch.isclose(
        compressed_spectral_loss(high, clean, limited, 16000), compressed_spectral_loss(high, clean, plain)
    )
    low_plain = compressed_spectral_loss(low, clean, plain)
    assert torch.isclose(compressed_spectral_loss(low, clean, limited, 16000), 3.0 * low_plain)
    with pytest.raises(ValueError, match="sample rate"):
        compressed_spectral_loss(low, clean, limited)


def test_tbptt_lookahead_and_penalties_train(corpus, tmp_path):
    config = _write_config(corpus, tmp_path, extra="tbptt_frames = 25\nmax_minutes = 1.0")
    cfg = load_config(
        config,
        {
            "architecture": {"family": "spliced", "past_frames": 2, "future_frames": 1, "hidden_sizes": [16]},
            "optim": {"l1": 1e-6, "l2": 1e-5},
            "loss": {"complex_weight": 0.5, "suppression_weight": 1.0, "residual_weight": 0.5},
            "features": {"analysis_length": 480},
            "max_steps": 12,
        },
    )
    from hush.trainer.train import train

    result = train(cfg, progress=False)
    assert result.steps == 12 and np.isfinite(result.best_val_loss)
    model = load_weights(result.export_json)[0]
    assert model.lookahead_frames == 1
    # the asymmetric window travels in the weight file: 241 bins, still 20 ms + one hop
    assert model.features.analysis_length == 480 and model.n_bins == 241
    assert model.latency_samples == 320 + 160
    enhanced = Enhancer(model).enhance(np.random.default_rng(0).standard_normal(4000).astype(np.float32))
    assert enhanced.shape == (4000,) and np.isfinite(enhanced).all()


def test_pesq_term_trains_and_selects_on_the_whole_objective(corpus, tmp_path):
    config = _write_config(corpus, tmp_path, extra='select_on = "objective"')
    cfg = load_config(
        config,
        {
            "loss": {"pesq_weight": 0.01, "band_level_weight": 0.01, "suppression_weight": 1.0},
            "max_steps": 10,
        },
    )
    from hush.trainer.train import evaluate, train

    result = train(cfg, progress=False)
    assert result.steps == 10 and np.isfinite(result.best_val_loss)
    model, meta = load_weights(result.export_json)
    assert meta.provenance.extra["train_config"]["loss"]["pesq_weight"] == 0.01
    # the recorded validation loss is the whole objective, PESQ term included, so it is
    # above the base loss of the same weights on the same validation set
    maker = load_validation_audio(cfg.data, 16000).maker(cfg.data, 16000)
    clean, noisy, _ = validation_set(maker, cfg.data.val_mixtures, cfg.data.val_seed)
    base = evaluate(model, clean, noisy, cfg.model_copy(update={"select_on": "base"}), torch.device("cpu"))
    objective = evaluate(model, clean, noisy, cfg, torch.device("cpu"))
    assert objective == pytest.approx(meta.provenance.val_loss, rel=1e-4)
    assert objective > base + 0.005


def test_validation_set_is_deterministic(corpus):
    from hush.trainer.data import list_audio, load_audio_files

    speech = load_audio_files(list_audio([corpus / "speech/val"], None, None, None), 16000)
    noise = load_audio_files(list_audio([corpus / "noise/val"], None, None, None), 16000)
    maker = MixtureMaker(DataConfig(segment_s=1.0), 16000, speech, noise)
    a = validation_set(maker, 4, seed=7)
    b = validation_set(maker, 4, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    clean, noisy, snr = a
    assert clean.shape == noisy.shape == (4, 16000) and (np.abs(noisy) <= 0.99 + 1e-6).all()
    assert ((snr >= -5) & (snr <= 20)).all()

    # high_snr_prob moves that share of mixtures into high_snr_db; off, the stream is unchanged
    off = MixtureMaker(DataConfig(segment_s=1.0, high_snr_prob=0.0), 16000, speech, noise)
    assert all(np.array_equal(x, y) for x, y in zip(a, validation_set(off, 4, seed=7), strict=True))
    high = MixtureMaker(
        DataConfig(segment_s=1.0, high_snr_prob=1.0, high_snr_db=(30, 40)), 16000, speech, noise
    )
    assert (validation_set(high, 4, seed=7)[2] >= 30).all()


def test_fine_tuning_starts_from_init_weights(corpus, tmp_path):
    from hush.trainer.train import train

    config = _write_config(corpus, tmp_path)
    first = train(load_config(config, {"max_steps": 10}), progress=False)
    start, start_meta = load_weights(first.export_json)

    def frozen_start(output_dir, **overrides):
        """One step at a negligible learning rate from ``first``: the weights stay as loaded."""
        settings = {
            "init_weights": str(first.export_json),
            "output_dir": str(tmp_path / output_dir),
            "max_steps": 1,
            "optim": {"lr": 1e-12, "warmup_steps": 0, "weight_decay": 0.0},
        }
        return train(load_config(config, settings | overrides), progress=False)

    # zero steps of training after the warm start leave the weights as they were
    tuned = frozen_start("tuned")
    model, meta = load_weights(tuned.export_json)
    for name, value in start.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value, atol=1e-6, rtol=0)
    assert meta.provenance.extra["init_from"]["weights_sha256"] == start_meta.weights_sha256
    from hush.trainer.publish import model_card

    card = model_card(meta)
    assert f"fine-tuned from stage 1: weights {start_meta.weights_sha256[:12]}" in card
    assert "stage 1 training licences: CC-BY-4.0, CC0" in card

    # a third stage's card lists both earlier stages, newest first, with any selection note
    # written into an export by hand (why that run was picked)
    tuned_json = json.loads(tuned.export_json.read_text())
    tuned_json["provenance"]["extra"]["selection_note"] = "picked on validation PESQ"
    tuned.export_json.write_text(json.dumps(tuned_json))
    third = train(
        load_config(
            config,
            {"init_weights": str(tuned.export_json), "output_dir": str(tmp_path / "third"), "max_steps": 1},
        ),
        progress=False,
    )
    card = model_card(load_weights(third.export_json)[1])
    assert f"fine-tuned from stage 2: weights {meta.weights_sha256[:12]}" in card
    assert f"which was fine-tuned from stage 1: weights {start_meta.weights_sha256[:12]}" in card
    assert card.index("stage 2:") < card.index("stage 1:")
    assert "- stage 2 selection: picked on validation PESQ" in card
    # a run that records the project's own stage number is called by it
    third_meta = load_weights(third.export_json)[1]
    third_meta.provenance.extra["init_from"]["stage"] = 13
    assert f"fine-tuned from stage 13: weights {meta.weights_sha256[:12]}" in model_card(third_meta)
    # the parent's figure is named for what it is: these runs select on the base loss, a run
    # selected on its whole objective (extra loss terms included) is not called a loss
    assert third_meta.provenance.extra["init_from"]["val_loss_kind"] == "base"
    assert "steps, validation loss " in card
    third_meta.provenance.extra["init_from"]["val_loss_kind"] = "objective"
    assert "steps, validation objective (whole training loss) " in model_card(third_meta)
    assert "in every stage, carries a licence that allows commercial use" in card
    # a non-commercial file anywhere in the chain (here stage 1's validation set) is named
    third_meta = load_weights(third.export_json)[1]
    third_meta.provenance.extra["init_from"]["init_from"]["val_speech_licences"] = {"CC-BY-NC-SA-4.0": 3}
    assert "do NOT allow commercial use: CC-BY-NC-SA-4.0" in model_card(third_meta)
    # the free licences the training configs accept are commercial, and only the NC one is named
    third_meta.provenance.extra["init_from"]["init_from"]["licences"] = ["Artistic-1.0", "LGPL-3+", "MIT"]
    assert "do NOT allow commercial use: CC-BY-NC-SA-4.0\n" in model_card(third_meta)

    # the one partial start allowed: a deep filter on top of a model without one. Its head
    # starts at zero, so the filtered model enhances exactly as the plain one did.
    filtered = frozen_start(
        "filtered",
        architecture={
            "family": "recurrent",
            "cell": "gru",
            "hidden_size": 16,
            "num_layers": 1,
            "deep_filter_frames": 3,
            "deep_filter_bins": 32,
            "phase_features": True,
        },
    )
    filtered_model, filtered_meta = load_weights(filtered.export_json)
    assert filtered_model.filter_history_frames == 2
    card = model_card(filtered_meta)
    assert "complex deep filter over the current and 2 past spectra in the lowest 32 bins" in card
    assert "phase advance since the previous frame in the lowest 32 bins" in card
    noisy = speech_like(0.5, seed=4)
    np.testing.assert_allclose(
        Enhancer(filtered_model).enhance(noisy), Enhancer(start).enhance(noisy), atol=1e-6
    )

    # a start at another FFT size (an asymmetric analysis window): the per-bin weights are
    # interpolated over frequency, so the model starts out enhancing nearly as before
    finer = frozen_start("finer", features={"analysis_length": 480})
    finer_model, finer_meta = load_weights(finer.export_json)
    assert finer_meta.features.analysis_length == 480 and finer_model.n_bins == 241
    bias, source_bias = finer_model.output_layer.bias.detach(), start.output_layer.bias.detach()
    assert torch.allclose(bias[::3], source_bias[::2], atol=1e-6)  # bins at the same frequencies
    assert torch.allclose(bias[1::3], (source_bias[:-1:2] + 2 * source_bias[1::2]) / 3, atol=1e-6)
    reference, moved = Enhancer(start).enhance(noisy), Enhancer(finer_model).enhance(noisy)
    assert np.sqrt(np.mean((moved - reference) ** 2) / np.mean(reference**2)) < 0.1

    # a starting point built differently is refused, not half loaded
    with pytest.raises(ValueError, match="other features or architecture"):
        train(
            load_config(
                config,
                {
                    "init_weights": str(first.export_json),
                    "output_dir": str(tmp_path / "bad"),
                    "architecture": {"family": "recurrent", "cell": "gru", "hidden_size": 8, "num_layers": 1},
                },
            ),
            progress=False,
        )


def test_publish_writes_card_and_scores(corpus, tmp_path):
    config = _write_config(corpus, tmp_path)
    assert CliRunner().invoke(app, ["train", "--config", str(config), "--max-steps", "10"]).exit_code == 0
    scores = tmp_path / "eval.json"
    scores.write_text(json.dumps({"systems": {"tiny": {"pesq": 2.5, "stoi": 0.9}}, "files": 3, "date": "d"}))
    dest = tmp_path / "published"
    result = CliRunner().invoke(
        app,
        ["publish", str(tmp_path / "run/export/tiny.json"), "--to", str(dest), "--scores", str(scores)],
    )
    assert result.exit_code == 0, result.output
    card = (dest / "tiny.md").read_text()
    assert "CC-BY-4.0" in card and "allows commercial use" in card and "| pesq | 2.500 |" in card
    registry = ModelRegistry(extra_dirs=[dest])
    assert registry.entries["tiny"].metadata.provenance.test_scores == {"pesq": 2.5, "stoi": 0.9}
    registry.load("tiny")  # the checksum still holds after the JSON was updated

    # publishing in place (a model already in its folder) only updates scores and card
    scores.write_text(json.dumps({"systems": {"tiny": {"pesq": 2.75}}, "files": 3, "date": "d"}))
    result = CliRunner().invoke(
        app, ["publish", str(dest / "tiny.json"), "--to", str(dest), "--scores", str(scores)]
    )
    assert result.exit_code == 0, result.output
    assert ModelRegistry(extra_dirs=[dest]).entries["tiny"].metadata.provenance.test_scores == {"pesq": 2.75}
    assert "| pesq | 2.750 |" in (dest / "tiny.md").read_text()


def test_distributed_training_with_torchrun(corpus, tmp_path):
    """Two processes on CPU (gloo backend): the code path multi-GPU runs take with NCCL.

    With a time budget and the time schedule on, the ranks share rank 0's clock every step
    (so that they take the same rate and stop at the same step)."""
    import os
    import subprocess
    import sys

    config = _write_config(corpus, tmp_path, "max_minutes = 10.0\n[optim]\ntime_schedule = true\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "hush.cli",
            "train",
            "--config",
            str(config),
            "--max-steps",
            "12",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("best val loss") == 1  # only rank 0 reports
    _, meta = load_weights(tmp_path / "run" / "export" / "tiny.json")
    assert meta.provenance.extra["world_size"] == 2 and meta.provenance.steps in (10, 12)


def test_val_pairs_writes_validation_mixtures_for_eval(corpus, tmp_path):
    from hush.evaluation.pairs import find_pairs
    from hush.trainer.data import list_audio, load_audio_files

    # training folders that do not exist: the command must read only the validation ones
    config = _write_config(corpus, tmp_path).read_text()
    config = config.replace(str(corpus / "speech/train"), str(tmp_path / "missing")).replace(
        str(corpus / "noise/train"), str(tmp_path / "missing")
    )
    (tmp_path / "val.toml").write_text(config)
    out = tmp_path / "pairs"
    args = ["val-pairs", "--config", str(tmp_path / "val.toml"), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--count", "3", "--seconds", "1.0", "--seed", "5"])
    assert result.exit_code == 0, result.output
    pairs = find_pairs(out)
    assert [p.name for p in pairs] == ["val_0000.wav", "val_0001.wav", "val_0002.wav"]

    # exactly the mixer's samples (float WAV, no requantisation), speech in every mixture
    cfg = load_config(tmp_path / "val.toml")
    d = cfg.data
    speech = load_audio_files(list_audio(d.speech_val, d.manifest, d.allowed_licences, None), 16000)
    noise_files = list_audio(d.noise_val, d.manifest, d.allowed_licences, None)
    noise = load_audio_files(noise_files, 16000)
    mixing = d.model_copy(update={"segment_s": 1.0, "noise_only_prob": 0.0})
    clean, noisy, snr = validation_set(MixtureMaker(mixing, 16000, speech, noise), 3, seed=5)
    for index, pair in enumerate(pairs):
        written_clean, rate = sf.read(pair.clean, dtype="float32")
        written_noisy, _ = sf.read(pair.noisy, dtype="float32")
        assert rate == 16000
        assert np.array_equal(written_clean, clean[index].numpy())
        assert np.array_equal(written_noisy, noisy[index].numpy())
        assert np.abs(written_clean).max() > 0
    table = (out / "mixtures.csv").read_text().splitlines()
    assert table[0] == "name,snr_db,noise,noise_type" and len(table) == 4
    assert [float(row.split(",")[1]) for row in table[1:]] == pytest.approx(snr, abs=0.01)
    # each mixture names what was mixed in: validation noise files or synthesised kinds
    known = {path.stem for path in noise_files} | {"coloured", "babble", "hum"}
    assert all(set(row.split(",")[2].split(" + ")) <= known for row in table[1:])

    # the corpus manifest types every recorded noise "white"; synthesised kinds name themselves
    assert all(row.split(",")[3] in {"white", "coloured", "babble", "hum"} for row in table[1:])

    # a config whose validation folders are missing is a clear error, not a traceback
    broken = config.replace(str(corpus / "speech/val"), str(tmp_path / "missing"))
    (tmp_path / "broken.toml").write_text(broken)
    result = CliRunner().invoke(app, [*args[:2], str(tmp_path / "broken.toml"), *args[3:]])
    assert result.exit_code == 2
    assert "missing" in result.output


def test_val_loss_ranks_models_with_different_stfts_on_one_yardstick(corpus, tmp_path):
    from hush.models import FeatureConfig, RecurrentConfig, build_model, save_weights

    arch = RecurrentConfig(cell="gru", hidden_size=8, num_layers=1, dropout=0.0)
    paths = {}
    for name, features in {"short": FeatureConfig(), "long": FeatureConfig(analysis_length=480)}.items():
        torch.manual_seed(0)
        passthrough = build_model(features, arch)
        with torch.no_grad():
            passthrough.output_layer.bias.fill_(60.0)  # every gain 1: output = input
        paths[name] = save_weights(passthrough, tmp_path / name, "passthrough")
    config = _write_config(corpus, tmp_path)
    args = ["val-loss", "--config", str(config), "--weights", str(paths["short"]), "--weights"]
    result = CliRunner().invoke(app, [*args, str(paths["long"])])
    assert result.exit_code == 0, result.output
    losses = [float(line.split()[0]) for line in result.output.splitlines()]
    # both hand back the noisy input, so on the common STFT they score the same, above 0
    assert len(losses) == 2 and losses[0] > 0
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)

    result = CliRunner().invoke(app, [*args, str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "missing" in result.output


def test_time_schedule_decays_over_whichever_budget_ends_first(corpus, tmp_path):
    from hush.trainer.train import _lr_at

    config = _write_config(corpus, tmp_path, "max_minutes = 10.0\n[optim]\nlr = 1e-3\nwarmup_steps = 0\n")
    by_steps = load_config(config, {"max_steps": 1000})
    by_time = load_config(config, {"max_steps": 1000, "optim": {"time_schedule": True}})
    floor = 1e-3 * by_steps.optim.min_lr_ratio
    # without the option the clock is ignored; with it, half the minutes is half the cosine
    assert _lr_at(10, by_steps, minutes=9.9) > 0.99e-3
    assert _lr_at(10, by_time, minutes=5.0) == pytest.approx(floor + (1e-3 - floor) * 0.5)
    # the step budget still counts when it is the nearer end, and time past the budget stays at the floor
    assert _lr_at(500, by_time, minutes=1.0) == pytest.approx(_lr_at(500, by_steps))
    assert _lr_at(10, by_time, minutes=12.0) == pytest.approx(floor)
    with pytest.raises(ValueError, match="time_schedule needs max_minutes"):
        load_config(_write_config(corpus, tmp_path, "[optim]\ntime_schedule = true\n"))


def test_mixtures_name_their_noise_without_changing_the_audio():
    speech = [speech_like(1.0, seed=seed) for seed in range(3)]
    noise = [np.random.default_rng(seed).standard_normal(16000).astype(np.float32) for seed in range(2)]
    data = DataConfig(segment_s=1.0, second_noise_prob=0.5)
    named = validation_mixtures(MixtureMaker(data, 16000, speech, noise, ["fan", "street"]), 12, seed=3)
    plain = validation_mixtures(MixtureMaker(data, 16000, speech, noise), 12, seed=3)
    # labels are bookkeeping: the same seed gives the same samples with or without names
    assert all(np.array_equal(a.noisy, b.noisy) for a, b in zip(named, plain, strict=True))
    parts = [part for mixture in named for part in mixture.noise.split(" + ")]
    assert set(parts) <= {"fan", "street", "coloured", "babble", "hum"}
    assert {"fan", "street"} & set(parts) and any(" + " in mixture.noise for mixture in named)
    only_real = DataConfig(segment_s=1.0, coloured_noise_weight=0, babble_weight=0, hum_weight=0)
    mixture = validation_mixtures(MixtureMaker(only_real, 16000, speech, noise[:1], ["fan"]), 1, seed=0)[0]
    assert mixture.noise.split(" + ")[0] == "fan"
    with pytest.raises(ValueError, match="one name per noise"):
        MixtureMaker(data, 16000, speech, noise, ["fan"])


def test_speaker_balance_draws_every_speaker_equally():
    # nine files of one speaker and one of another: per file the lone speaker is 10 % of the
    # utterances, per speaker half
    speech = [speech_like(1.0, seed=seed) for seed in range(10)]
    noise = [np.random.default_rng(0).standard_normal(16000).astype(np.float32)]
    data = DataConfig(segment_s=1.0)

    def lone_share(maker: MixtureMaker) -> float:
        rng = np.random.default_rng(1)
        return np.mean([maker._utterance(rng) is speech[9] for _ in range(4000)])

    assert lone_share(MixtureMaker(data, 16000, speech, noise)) == pytest.approx(0.1, abs=0.02)
    balanced = MixtureMaker(data, 16000, speech, noise, speech_groups=[0] * 9 + [1])
    assert lone_share(balanced) == pytest.approx(0.5, abs=0.03)
    with pytest.raises(ValueError, match="one speaker group per speech signal"):
        MixtureMaker(data, 16000, speech, noise, speech_groups=[0, 1])


def test_speaker_groups_come_from_the_manifest_and_reach_training(corpus, tmp_path):
    from hush.trainer.data import list_audio, speaker_groups

    manifest = corpus / "manifest.csv"
    # two training files of one speaker
    manifest.write_text(manifest.read_text().replace(",test,s3,", ",test,s2,"))
    files = list_audio([corpus / "speech/train"], manifest, None, None)
    groups = speaker_groups(files, manifest)
    assert [f.name for f in files] == [f"s{i}.flac" for i in range(6)]
    assert groups[2] == groups[3] and len(set(groups)) == 5
    with pytest.raises(FileNotFoundError, match="needs the manifest"):
        speaker_groups(files, tmp_path / "none.csv")
    stray = corpus / "speech/train/stray.flac"
    sf.write(stray, speech_like(1.0, seed=99), 16000)
    with pytest.raises(ValueError, match="no speaker"):
        speaker_groups([*files, stray], manifest)
    stray.unlink()

    config = _write_config(corpus, tmp_path)
    config.write_text(config.read_text().replace("[data]\n", '[data]\nspeech_balance = "speaker"\n'))
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    model, _ = load_weights(tmp_path / "run" / "export" / "tiny.json")
    assert model.num_parameters() > 0
    provenance = json.loads((tmp_path / "run" / "export" / "tiny.json").read_text())["provenance"]
    assert provenance["extra"]["train_config"]["data"]["speech_balance"] == "speaker"


def test_noise_type_balance_draws_every_type_equally():
    # nine recordings of one type and one of another: per file the lone type is 10 % of the
    # recorded noises, per type half
    speech = [speech_like(1.0, seed=0)]
    noise = [np.random.default_rng(seed).standard_normal(16000).astype(np.float32) for seed in range(10)]
    names = [f"music_{i}" for i in range(9)] + ["cafe"]
    data = DataConfig(segment_s=1.0, coloured_noise_weight=0.0, babble_weight=0.0, hum_weight=0.0)

    def lone_share(maker: MixtureMaker) -> float:
        rng = np.random.default_rng(1)
        return np.mean([maker._one_noise(rng)[1] == "cafe" for _ in range(4000)])

    assert lone_share(MixtureMaker(data, 16000, speech, noise, names)) == pytest.approx(0.1, abs=0.02)
    balanced = MixtureMaker(data, 16000, speech, noise, names, noise_groups=[0] * 9 + [1])
    assert lone_share(balanced) == pytest.approx(0.5, abs=0.03)
    with pytest.raises(ValueError, match="one type group per noise signal"):
        MixtureMaker(data, 16000, speech, noise, names, noise_groups=[0, 1])


def test_extra_manifest_brings_licensed_noise_from_outside_the_corpus(corpus, tmp_path):
    from hush.trainer.data import list_audio, noise_groups

    extra = tmp_path / "ambient"
    rows = ["split,kind,path,duration_s,source,speaker_or_type,license"]
    for split in ("train", "val"):
        for name, licence in (("cafe_a", "CC0"), ("cafe_b", "CC0"), ("bus", "CC-BY-NC-4.0")):
            path = extra / split / f"{name}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, 0.05 * np.random.default_rng(len(name)).standard_normal(24000), 16000)
            rows.append(f"{split},noise,{split}/{name}.flac,1.5,test,{name[:4]},{licence}")
    (extra / "manifest.csv").write_text("\n".join(rows) + "\n")

    allowed = ["CC0", "CC-BY-4.0"]
    corpus_only = DataConfig(manifest=corpus / "manifest.csv", allowed_licences=allowed)
    both = corpus_only.model_copy(update={"extra_manifests": [extra / "manifest.csv"]})
    folders = [corpus / "noise/train", extra / "train"]
    # without its manifest the fetched noise has no licence and is left out
    assert [f.name for f in list_audio(folders, corpus_only.manifests, allowed, None)] == [
        f"n{i}.ogg" for i in range(6)
    ]
    files = list_audio(folders, both.manifests, allowed, None)
    assert [f.name for f in files][-2:] == ["cafe_a.flac", "cafe_b.flac"]  # not the NC one
    balanced = both.model_copy(update={"noise_balance": "type"})
    assert noise_groups(files, both) is None
    assert noise_groups(files, balanced) == [0] * 6 + [1, 1]  # "white", then "cafe"

    config = _write_config(corpus, tmp_path)
    config.write_text(
        config.read_text()
        .replace(
            f'noise_train = ["{corpus / "noise/train"}"]',
            f'noise_train = ["{corpus / "noise/train"}", "{extra / "train"}"]',
        )
        .replace(
            f'noise_val = ["{corpus / "noise/val"}"]',
            f'noise_val = ["{corpus / "noise/val"}", "{extra / "val"}"]',
        )
        .replace(
            "[data]\n",
            f'[data]\nnoise_balance = "type"\nextra_manifests = ["{extra / "manifest.csv"}"]\n',
        )
    )
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    provenance = json.loads((tmp_path / "run" / "export" / "tiny.json").read_text())["provenance"]
    assert provenance["extra"]["train_config"]["data"]["noise_balance"] == "type"
    assert provenance["extra"]["data"]["noise_licences"] == {"CC0": 8}


def test_diffuse_rir_decays_at_its_rt60_with_the_asked_direct_to_reverberant_ratio():
    from hush.trainer.data import diffuse_rir

    rir = diffuse_rir(16000, rt60_s=0.8, drr_db=-6.0, rng=np.random.default_rng(0))
    assert rir.shape == (12800,) and rir[0] == 1.0
    tail = rir[1:].astype(np.float64)
    assert 10 * np.log10(1.0 / np.sum(tail**2)) == pytest.approx(-6.0, abs=1e-6)
    # energy 0.4 s later (half the RT60) is 30 dB down, within the noise of one draw
    early, late = np.mean(tail[:800] ** 2), np.mean(tail[6400:7200] ** 2)
    assert 10 * np.log10(early / late) == pytest.approx(30.0, abs=2.0)


def test_reverberant_babble_fills_the_pauses_between_words():
    # one talker speaking 0.5 s on, 0.5 s off: dry, the pauses are silent; across a
    # reverberant room they fill with the tail
    words = np.zeros(16000, dtype=np.float32)
    words[:8000] = np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    noise = [np.ones(16000, dtype=np.float32)]
    only_babble = dict(
        segment_s=2.0,
        real_noise_weight=0,
        coloured_noise_weight=0,
        hum_weight=0,
        babble_talkers=(1, 1),
        modulation_prob=0.0,
    )

    def quietest_to_mean_db(data: DataConfig) -> float:
        maker = MixtureMaker(data, 16000, [words], noise)
        babble, label = maker._one_noise(np.random.default_rng(3))
        assert label == "babble" and np.mean(babble**2) == pytest.approx(1.0, rel=1e-3)
        frames = np.mean(babble[: 32000 // 160 * 160].reshape(-1, 160) ** 2, axis=1)
        return float(10 * np.log10(frames.min() / frames.mean() + 1e-12))

    assert quietest_to_mean_db(DataConfig(**only_babble)) < -60
    reverberant = DataConfig(
        **only_babble, babble_reverb_prob=1.0, babble_rt60_s=(1.0, 1.0), babble_drr_db=(-10.0, -10.0)
    )
    # 0.5 s into a pause the tail of a 1 s RT60 is 30 dB down, not silent
    assert quietest_to_mean_db(reverberant) > -35


def test_speed_perturbation_changes_duration_and_keeps_the_default_stream():
    speech = [speech_like(1.0, seed=seed) for seed in range(3)]
    noise = [np.random.default_rng(0).standard_normal(16000).astype(np.float32)]
    faster = DataConfig(segment_s=1.0, speed_perturb_prob=1.0, speed_range=(1.25, 1.25))
    voice = MixtureMaker(faster, 16000, speech, noise)._voice(np.random.default_rng(0))
    assert voice.dtype == np.float32 and voice.shape[0] == pytest.approx(16000 / 1.25, abs=2)
    # off (the default), no extra random draws: mixtures are exactly those of a config
    # that never heard of the option
    off = DataConfig(segment_s=1.0, speed_perturb_prob=0.0, babble_reverb_prob=0.0)
    a = validation_mixtures(MixtureMaker(off, 16000, speech, noise), 4, seed=5)
    b = validation_mixtures(MixtureMaker(DataConfig(segment_s=1.0), 16000, speech, noise), 4, seed=5)
    assert all(np.array_equal(x.noisy, y.noisy) for x, y in zip(a, b, strict=True))


PHASES = """
[[phases]]
name = "first"
max_steps = 6
[phases.optim]
lr = 3e-3
warmup_steps = 2

[[phases]]
name = "second"
max_steps = 4
select_on = "objective"
[phases.loss]
si_sdr_weight = 0.01
[phases.data]
high_snr_prob = 0.5
"""


def test_phased_config_runs_each_phase_from_the_one_before(corpus, tmp_path):
    """One command runs every phase in turn; phase 2 starts from phase 1's export with its own
    settings merged over the shared ones, and the last phase's export is the run's."""
    config = _write_config(corpus, tmp_path, extra=PHASES)
    cfg = load_config(config)
    first, second = cfg.phase_configs()
    assert first.init_weights is None and second.init_weights == first.export_json
    assert (first.optim.lr, second.optim.lr) == (3e-3, cfg.optim.lr)
    assert (first.loss.si_sdr_weight, second.loss.si_sdr_weight) == (0.0, 0.01)
    assert second.data.high_snr_prob == 0.5 and second.data.segment_s == cfg.data.segment_s
    assert first.seed != second.seed  # a new phase draws new mixtures

    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    phase_one = load_weights(run / "first" / "export" / "tiny.json")[1].provenance
    final = load_weights(run / "export" / "tiny.json")[1].provenance
    assert phase_one.extra["phase"] == "first" and final.extra["phase"] == "second"
    assert final.extra["init_from"]["path"] == str(first.export_json)
    assert final.extra["init_from"]["weights_sha256"] == read_metadata(first.export_json).weights_sha256
    assert final.extra["total_steps"] == 4 and phase_one.extra["total_steps"] == 6

    # --resume skips finished phases; --max-steps overrides every phase's own
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--resume"])
    assert result.exit_code == 0, result.output
    assert "10 steps" in result.output
    cfg = load_config(config, {"max_steps": 3})
    assert [phase.max_steps for phase in cfg.phase_configs()] == [3, 3]


def test_phased_config_errors_surface_at_load(corpus, tmp_path):
    bad = PHASES.replace("si_sdr_weight = 0.01", "si_sdr_wieght = 0.01")
    with pytest.raises(ValueError, match="si_sdr_wieght"):
        load_config(_write_config(corpus, tmp_path, extra=bad))
    twice = PHASES.replace('name = "second"', 'name = "first"')
    with pytest.raises(ValueError, match="phase names must differ"):
        load_config(_write_config(corpus, tmp_path, extra=twice))


def _labels_with_only(**synthesised_weight: float) -> set[str]:
    """The noise labels of 20 validation mixtures drawn with one synthesised kind as the only
    noise source (``tonal_weight=1``, say)."""
    speech = [speech_like(1.0, seed=0)]
    noise = [np.random.default_rng(1).standard_normal(16000).astype(np.float32)]
    only = DataConfig(
        segment_s=1.0,
        real_noise_weight=0,
        coloured_noise_weight=0,
        babble_weight=0,
        hum_weight=0,
        **synthesised_weight,
    )
    mixtures = validation_mixtures(MixtureMaker(only, 16000, speech, noise), 20, 3)
    return {m.noise.split(" + ")[0] for m in mixtures}


def test_tonal_noise_is_tonal_and_off_by_default_keeps_the_stream():
    """Tonal noise puts its energy in a few narrow peaks (unlike coloured noise), every kind
    turns up, and a config without it draws exactly the mixtures it drew before."""
    from hush.trainer.data import tonal_noise

    def peakiness(x: np.ndarray) -> np.ndarray:
        """Per 32 ms frame, the share of its power in its strongest 12 of 257 bins (a drifting
        or swept tone is narrow at any one moment)."""
        frames = x[: x.size // 512 * 512].reshape(-1, 512) * np.hanning(512)
        power = np.sort(np.abs(np.fft.rfft(frames)) ** 2, axis=1)[:, ::-1]
        return power[:, :12].sum(axis=1) / (power.sum(axis=1) + 1e-20)

    rng = np.random.default_rng(0)
    kinds: dict[str, list[float]] = {}
    for _ in range(40):
        noise, kind = tonal_noise(16000, 16000, rng)
        assert noise.shape == (16000,) and noise.dtype == np.float32 and np.isfinite(noise).all()
        # beeps are judged while they sound: their gaps hold only a faint hiss
        share = peakiness(noise)
        kinds.setdefault(kind, []).append(float(share.max() if kind == "beeps" else np.median(share)))
    assert set(kinds) == {"engine", "whine", "siren", "beeps"}
    assert all(np.median(shares) > 0.85 for shares in kinds.values()), kinds
    white = peakiness(rng.standard_normal(16000))
    assert np.median(white) < 0.2

    speech = [speech_like(1.0, seed=0)]
    noise = [np.random.default_rng(1).standard_normal(16000).astype(np.float32)]
    old = validation_mixtures(MixtureMaker(DataConfig(segment_s=1.0), 16000, speech, noise), 8, seed=2)
    off = DataConfig(segment_s=1.0, tonal_weight=0.0)
    same = validation_mixtures(MixtureMaker(off, 16000, speech, noise), 8, seed=2)
    assert all(np.array_equal(a.noisy, b.noisy) for a, b in zip(old, same, strict=True))
    labels = _labels_with_only(tonal_weight=1)
    assert labels <= {"engine", "whine", "siren", "beeps"} and len(labels) >= 2


def test_impulsive_noise_is_impulsive_and_off_by_default_keeps_the_stream():
    """Impulsive noise puts most of its energy in a small share of 10 ms frames (white noise
    spreads it over all), every kind turns up, and a config without it, or one written
    before it existed, draws exactly the mixtures it drew before."""
    from hush.trainer.data import impulsive_noise

    def loudest_share(x: np.ndarray) -> float:
        """Share of the power in the loudest 10 % of 10 ms frames."""
        power = np.sort((x[: x.size // 160 * 160].reshape(-1, 160) ** 2).sum(axis=1))[::-1]
        return float(power[: max(1, power.size // 10)].sum() / (power.sum() + 1e-20))

    rng = np.random.default_rng(0)
    kinds: dict[str, list[float]] = {}
    for _ in range(40):
        noise, kind = impulsive_noise(32000, 16000, rng)
        assert noise.shape == (32000,) and noise.dtype == np.float32 and np.isfinite(noise).all()
        kinds.setdefault(kind, []).append(loudest_share(noise))
    assert set(kinds) == {"typing", "clicks", "knocks", "clatter"}
    assert all(np.median(shares) > 0.4 for shares in kinds.values()), kinds
    assert loudest_share(rng.standard_normal(32000)) < 0.15

    speech = [speech_like(1.0, seed=0)]
    noise = [np.random.default_rng(1).standard_normal(16000).astype(np.float32)]
    for base in (DataConfig(segment_s=1.0), DataConfig(segment_s=1.0, tonal_weight=0.2)):
        old = validation_mixtures(MixtureMaker(base, 16000, speech, noise), 8, seed=2)
        off = base.model_copy(update={"impulsive_weight": 0.0})
        same = validation_mixtures(MixtureMaker(off, 16000, speech, noise), 8, seed=2)
        assert all(np.array_equal(a.noisy, b.noisy) for a, b in zip(old, same, strict=True))
    labels = _labels_with_only(impulsive_weight=1)
    assert labels <= {"typing", "clicks", "knocks", "clatter"} and len(labels) >= 2


def test_generalisation_pairs_draw_only_the_given_folders(corpus, tmp_path):
    """--speech/--noise/--real-noise-only/--snr make a set of unseen speakers and noise types:
    only those recordings, one per mixture, at the asked SNRs, each typed from the manifest."""
    heldout = tmp_path / "heldout"
    rows = ["split,kind,path,duration_s,source,speaker_or_type,license"]
    rng = np.random.default_rng(7)
    for kind in ("siren", "keyboard"):
        for i in range(2):
            path = heldout / kind / f"{kind}{i}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, (0.1 * rng.standard_normal(24000)).astype(np.float32), 16000)
            rows.append(f"heldout,noise,{path.relative_to(tmp_path)},1.5,test,{kind},CC0")
    (tmp_path / "heldout.csv").write_text("\n".join(rows) + "\n")
    unseen_speech = tmp_path / "voices"
    unseen_speech.mkdir()
    for i in range(2):
        sf.write(unseen_speech / f"v{i}.flac", speech_like(1.5, seed=50 + i), 16000)
    config = _write_config(corpus, tmp_path)
    config.write_text(
        config.read_text().replace("[data]\n", f'[data]\nextra_manifests = ["{tmp_path / "heldout.csv"}"]\n')
    )
    out = tmp_path / "unseen"
    result = CliRunner().invoke(
        app,
        ["val-pairs", "--config", str(config), "--out", str(out), "--count", "12", "--seconds", "1.0",
         "--speech", str(unseen_speech), "--noise", str(heldout), "--real-noise-only", "--snr", "-5", "5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = [line.split(",") for line in (out / "mixtures.csv").read_text().splitlines()[1:]]
    assert len(table) == 12
    assert {row[2] for row in table} <= {"siren0", "siren1", "keyboard0", "keyboard1"}
    assert {row[3] for row in table} == {"siren", "keyboard"}
    assert all(-5.0 <= float(row[1]) <= 5.0 for row in table)


@pytest.mark.parametrize("name", ["gru", "dnn"])
def test_each_shipped_config_trains_in_one_command(name, corpus, tmp_path):
    """configs/<name>.toml itself, every phase and setting as shipped, on a tiny generated
    corpus and a few steps per phase: one `hush train` from a random init to an export that
    loads and enhances, with the shipped model's architecture and features."""
    import tomllib
    from pathlib import Path

    shipped = Path(__file__).resolve().parent.parent / "configs" / f"{name}.toml"
    raw = tomllib.loads(shipped.read_text())
    assert raw.get("init_weights") is None and len(raw["phases"]) >= 2  # from scratch, phased
    config = tmp_path / f"{name}.toml"
    config.write_text(shipped.read_text())
    tiny = {
        "output_dir": str(tmp_path / "run"),
        "max_steps": 2,
        "val_every": 2,
        "batch_size": 2,
        "num_workers": 0,
        "data": {
            "speech_train": [str(corpus / "speech/train")],
            "speech_val": [str(corpus / "speech/val")],
            "noise_train": [str(corpus / "noise/train")],
            "noise_val": [str(corpus / "noise/val")],
            "manifest": str(corpus / "manifest.csv"),
            "extra_manifests": [],
            "allowed_licences": ["CC-BY-4.0", "CC0"],
            "segment_s": 1.0,
            "val_mixtures": 2,
        },
    }
    started = time.monotonic()
    from hush.trainer.train import run

    cfg = load_config(config, tiny)
    result = run(cfg, progress=False, config_file=str(shipped))
    assert time.monotonic() - started < 60
    model, meta = load_weights(result.export_json)
    _, shipped_meta = ModelRegistry().load(name)
    assert meta.architecture == shipped_meta.architecture and meta.features == shipped_meta.features
    assert result.steps == 2 * len(raw["phases"])
    out = Enhancer(model).enhance(speech_like(0.5))
    assert out.shape == (8000,) and np.isfinite(out).all()

"""The training loop: BPTT over whole segments (or truncated), AdamW, clipping, early
stopping on validation loss, resumable checkpoints, CSV log, mixed precision and
``torchrun`` data parallelism on GPUs."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from hush.models import GainModel, Provenance, build_model, load_weights, save_weights
from hush.models.config import ArchitectureConfig, RecurrentConfig
from hush.models.features import (
    analysis,
    analysis_window,
    frame_signal,
    overlap_add,
    synthesis,
    synthesis_window,
)

from .config import LossConfig, TrainConfig
from .data import (
    MixtureMaker,
    MixtureStream,
    licence_summary,
    list_audio,
    load_audio_files,
    load_speech,
    load_validation_audio,
    noise_groups,
    validation_set,
)
from .loss import band_level_error, compressed_spectral_loss, negative_si_sdr, weight_penalty
from .pesq_loss import PesqDisturbanceLoss


@dataclass
class TrainResult:
    best_val_loss: float
    best_step: int
    steps: int
    minutes: float
    export_json: Path
    stopped_early: bool


class _Distributed:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; without them this is a single process."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world > 1
        if self.enabled and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def broadcast_value(self, value: float, device: torch.device) -> float:
        if not self.enabled:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        dist.broadcast(tensor, src=0)
        return float(tensor.item())

    def broadcast_flag(self, flag: bool, device: torch.device) -> bool:
        if not self.enabled:
            return flag
        tensor = torch.tensor([int(flag)], device=device)
        dist.broadcast(tensor, src=0)
        return bool(tensor.item())


def pick_device(cfg: TrainConfig, ddp: _Distributed) -> torch.device:
    if cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", ddp.local_rank)


def spectra(audio: torch.Tensor, cfg: TrainConfig, window: torch.Tensor) -> torch.Tensor:
    """``[B, S]`` audio -> ``[B, T, F]`` complex spectra with the engine's framing."""
    hop = cfg.features.hop_length
    usable = audio.shape[-1] // hop * hop
    return analysis(frame_signal(audio[..., :usable], cfg.features), window)


def sequence_loss(
    model: GainModel, noisy: torch.Tensor, clean: torch.Tensor, cfg: TrainConfig, window: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectral loss of one batch with whole-sequence BPTT; returns (loss, enhanced spectra)."""
    noisy_spec, clean_spec = spectra(noisy, cfg, window), spectra(clean, cfg, window)
    estimate = enhance_spectra(model, noisy_spec)
    clean_spec = clean_spec[:, : estimate.shape[1]]
    loss = compressed_spectral_loss(estimate, clean_spec, cfg.loss, cfg.features.sample_rate)
    if cfg.loss.band_level_weight > 0:
        # float32: band powers span many decades, beyond bfloat16's 8-bit mantissa to compare
        loss = loss + cfg.loss.band_level_weight * band_level_error(
            estimate.to(torch.complex64), clean_spec.to(torch.complex64), cfg.features.sample_rate
        )
    if cfg.loss.pesq_weight > 0 or cfg.loss.si_sdr_weight > 0:
        # both signals through the engine's synthesis, so they are aligned sample for sample
        synth = synthesis_window(cfg.features).to(estimate.device)
        hop = cfg.features.hop_length
        enhanced = overlap_add(synthesis(estimate, synth), hop)
        reference = overlap_add(synthesis(clean_spec, synth), hop)
        if cfg.loss.pesq_weight > 0:
            loss = loss + cfg.loss.pesq_weight * _pesq_loss(estimate.device)(reference, enhanced).mean()
        if cfg.loss.si_sdr_weight > 0:
            loss = loss + cfg.loss.si_sdr_weight * negative_si_sdr(reference, enhanced)
    return loss, estimate


_PESQ_LOSSES: dict[torch.device, PesqDisturbanceLoss] = {}


def _pesq_loss(device: torch.device) -> PesqDisturbanceLoss:
    """One PESQ model per device (its buffers are constants)."""
    if device not in _PESQ_LOSSES:
        _PESQ_LOSSES[device] = PesqDisturbanceLoss().to(device)
    return _PESQ_LOSSES[device]


def enhance_spectra(model: GainModel, noisy_spec: torch.Tensor) -> torch.Tensor:
    """``[B, T, F]`` noisy spectra of signals from their start -> ``[B, T - L, F]`` enhanced
    spectra of frames ``0 .. T - L - 1`` (``L`` = lookahead frames), one whole-sequence pass
    from the initial state: the engine's offline rule."""
    base = model.module if isinstance(model, DistributedDataParallel) else model
    state = base.initial_state(noisy_spec.shape[0]).to(noisy_spec.device)
    padded_spec = base.with_filter_history(noisy_spec)
    output, _ = model(base.input_features(padded_spec), state)
    lookahead = base.lookahead_frames
    frames = noisy_spec.shape[1] - lookahead
    return base.apply_output(padded_spec[:, : base.filter_history_frames + frames], output[:, lookahead:])


def _same_but_deep_filter(source: ArchitectureConfig, target: ArchitectureConfig) -> bool:
    """True when ``target`` is ``source``, or ``source`` (without a deep filter) plus one."""
    if source == target:
        return True
    return (
        isinstance(source, RecurrentConfig)
        and isinstance(target, RecurrentConfig)
        and source.deep_filter_frames == 0
        and source.model_copy(
            update={
                "deep_filter_frames": target.deep_filter_frames,
                "deep_filter_bins": target.deep_filter_bins,
                "phase_features": target.phase_features,
            }
        )
        == target
    )


def _load_init_weights(model: GainModel, cfg: TrainConfig) -> dict:
    """Copy a weight file's parameters into ``model``; refuse one built differently, since a
    silently partial load would train something other than what the config says.

    Returns what the exported provenance records about the starting point."""
    source, meta = load_weights(cfg.init_weights)
    other_fft = meta.features.model_copy(update={"analysis_length": cfg.features.analysis_length})
    if meta.features != cfg.features and other_fft == cfg.features and hasattr(model, "load_resampled_bins"):
        # The other allowed partial load: the same model at another FFT size (an asymmetric
        # analysis window), its per-bin weights interpolated over frequency.
        model.load_resampled_bins(source)
    elif meta.features != cfg.features or not _same_but_deep_filter(meta.architecture, cfg.architecture):
        raise ValueError(
            f"init_weights {cfg.init_weights} has other features or architecture than this config"
        )
    elif meta.architecture == cfg.architecture:
        model.load_state_dict(source.state_dict())
    else:
        # The last partial load allowed: a deep filter added to a model without one. Its
        # head and any new input columns start at zero, so it still reproduces the source.
        model.load_plain_weights(source.state_dict())
    return {
        "path": str(cfg.init_weights),
        "weights_sha256": meta.weights_sha256,
        "steps": meta.provenance.steps,
        "val_loss": meta.provenance.val_loss,
        # whether that figure is a base loss or the whole objective (extra terms included)
        "val_loss_kind": meta.provenance.val_loss_kind,
        "train_minutes": meta.provenance.extra.get("train_minutes"),
        "config_file": meta.provenance.extra.get("config_file"),
        "run_history": meta.provenance.extra.get("run_history"),
        "selection_note": meta.provenance.extra.get("selection_note"),
        # the project's own name for that run, when its export was given one by hand
        "stage": meta.provenance.extra.get("stage"),
        "licences": meta.provenance.licences,
        "val_speech_licences": meta.provenance.extra.get("data", {}).get("val_speech_licences"),
        # the starting point's own starting point, so a card can list every stage of a chain
        "init_from": meta.provenance.extra.get("init_from"),
    }


def _git_commit() -> str:
    """The commit the code came from, ``+dirty`` if tracked files differed from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+dirty" if changes else commit


def _lr_at(step: int, cfg: TrainConfig, minutes: float = 0.0) -> float:
    """Learning rate for ``step``: linear warm-up, then a cosine down to ``min_lr_ratio``.

    ``minutes`` (time trained so far) only counts with ``optim.time_schedule``: the cosine
    then follows whichever budget, steps or minutes, is nearer its end.
    """
    opt = cfg.optim
    if step < opt.warmup_steps:
        return opt.lr * (step + 1) / opt.warmup_steps
    progress = (step - opt.warmup_steps) / max(1, cfg.max_steps - opt.warmup_steps)
    if opt.time_schedule and cfg.max_minutes:
        progress = max(progress, minutes / cfg.max_minutes)
    progress = min(1.0, progress)
    return opt.lr * (opt.min_lr_ratio + (1 - opt.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def evaluate(
    model: GainModel, clean: torch.Tensor, noisy: torch.Tensor, cfg: TrainConfig, device: torch.device
) -> float:
    """Mean validation loss over the fixed validation set.

    By default the base loss (compressed-magnitude MSE, no extra terms), so that runs trained
    with different loss terms are compared and selected on the same yardstick; with
    ``select_on = "objective"`` the whole training loss (weight penalties aside).
    """
    model.eval()
    if cfg.select_on == "objective":
        val_cfg = cfg
    else:
        val_cfg = cfg.model_copy(update={"loss": LossConfig(compression=cfg.loss.compression)})
    window = analysis_window(cfg.features).to(device)
    total, count = 0.0, 0
    for start in range(0, clean.shape[0], cfg.batch_size):
        c = clean[start : start + cfg.batch_size].to(device)
        n = noisy[start : start + cfg.batch_size].to(device)
        loss, _ = sequence_loss(model, n, c, val_cfg, window)
        total += loss.item() * c.shape[0]
        count += c.shape[0]
    model.train()
    return total / count


def _data_summary(cfg: TrainConfig, speech_files: list[Path], noise_files: list[Path], speech, noise) -> dict:
    rate = cfg.features.sample_rate
    return {
        "speech_dirs": [str(p) for p in cfg.data.speech_train],
        "noise_dirs": [str(p) for p in cfg.data.noise_train],
        "speech_files": len(speech_files),
        "speech_hours": round(sum(x.shape[0] for x in speech) / rate / 3600, 3),
        "noise_files": len(noise_files),
        "noise_hours": round(sum(x.shape[0] for x in noise) / rate / 3600, 3),
        "speech_licences": licence_summary(speech_files, cfg.data.manifests),
        "noise_licences": licence_summary(noise_files, cfg.data.manifests),
        "allowed_licences": cfg.data.allowed_licences,
    }


def run(
    cfg: TrainConfig, resume: bool = False, progress: bool = True, config_file: str | None = None
) -> TrainResult:
    """What ``hush train`` runs: ``train`` for a plain config; each phase in turn for a
    phased one, the last phase's export then copied to ``<output_dir>/export``.

    With ``resume``, phases that finished (their ``done.json`` exists) are skipped and the
    first unfinished one continues from its ``last.pt``.
    """
    if not cfg.phases:
        return train(cfg, resume=resume, progress=progress, config_file=config_file)
    ddp = _Distributed()
    results: list[TrainResult] = []
    for phase, phase_cfg in zip(cfg.phases, cfg.phase_configs(), strict=True):
        done = Path(phase_cfg.output_dir) / "done.json"
        if resume and done.is_file():
            recorded = json.loads(done.read_text())
            results.append(TrainResult(**{**recorded, "export_json": Path(recorded["export_json"])}))
            continue
        result = train(phase_cfg, resume=resume, progress=progress, config_file=config_file, phase=phase.name)
        if ddp.main:
            done.write_text(json.dumps({**result.__dict__, "export_json": str(result.export_json)}) + "\n")
        results.append(result)
    last = results[-1]
    if ddp.main:
        cfg.export_json.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".json", ".safetensors"):
            shutil.copyfile(last.export_json.with_suffix(suffix), cfg.export_json.with_suffix(suffix))
    return TrainResult(
        last.best_val_loss,
        last.best_step,
        sum(r.steps for r in results),
        sum(r.minutes for r in results),
        cfg.export_json,
        last.stopped_early,
    )


def train(
    cfg: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    config_file: str | None = None,
    phase: str | None = None,
) -> TrainResult:
    """Train, validate, early-stop, and export the best checkpoint as ``<output_dir>/export/<name>``.

    ``config_file`` and ``phase`` (the name of the phase of a phased config this run is)
    are only recorded in the export's provenance (the model card names them)."""
    ddp = _Distributed()
    device = pick_device(cfg, ddp)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + ddp.rank)
    out_dir = Path(cfg.output_dir)
    if ddp.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=2))

    rate = cfg.features.sample_rate
    d = cfg.data
    speech_files = list_audio(d.speech_train, d.manifests, d.allowed_licences, d.max_files)
    noise_files = list_audio(d.noise_train, d.manifests, d.allowed_licences, d.max_files)
    (speech, speech_groups), noise = load_speech(speech_files, rate, d), load_audio_files(noise_files, rate)
    val_audio = load_validation_audio(d, rate)
    summary = _data_summary(cfg, speech_files, noise_files, speech, noise)
    summary["val_speech_licences"] = licence_summary(val_audio.speech_files, d.manifests)
    summary["val_noise_licences"] = licence_summary(val_audio.noise_files, d.manifests)
    val_clean, val_noisy, _ = validation_set(val_audio.maker(d, rate), d.val_mixtures, d.val_seed)

    # read now, not at export: the checkout may move on during a long run
    git_commit = _git_commit()
    model = build_model(cfg.features, cfg.architecture).to(device)
    init_from = _load_init_weights(model, cfg) if cfg.init_weights is not None else None
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas, weight_decay=cfg.optim.weight_decay
    )
    step, best_val, best_step, bad_evals, elapsed_before = 0, math.inf, 0, 0, 0.0
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if resume and last_path.is_file():
        ckpt = torch.load(last_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step, best_val, best_step = ckpt["step"], ckpt["best_val"], ckpt["best_step"]
        bad_evals, elapsed_before = ckpt["bad_evals"], ckpt.get("elapsed_s", 0.0)
    train_model: torch.nn.Module = model
    if ddp.enabled:
        train_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    maker = MixtureMaker(
        d, rate, speech, noise, speech_groups=speech_groups, noise_groups=noise_groups(noise_files, d)
    )
    loader = DataLoader(
        MixtureStream(maker, seed=cfg.seed + step, rank=ddp.rank),
        batch_size=max(1, cfg.batch_size // ddp.world),  # batch_size is the global batch
        num_workers=cfg.num_workers,
        prefetch_factor=cfg.prefetch_factor if cfg.num_workers else None,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.num_workers > 0,
    )
    window = analysis_window(cfg.features).to(device)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and cfg.amp else nullcontext()
    )
    log_path = out_dir / "log.csv"
    new_log = not (resume and log_path.is_file())
    if not new_log and ddp.main:
        # forget rows logged after the checkpoint we resume from: they will be redone
        rows = list(csv.reader(log_path.open(newline="")))
        kept = [rows[0]] + [row for row in rows[1:] if row and int(row[0]) <= step]
        with log_path.open("w", newline="") as handle:
            csv.writer(handle).writerows(kept)
    log_file = log_path.open("w" if new_log else "a", newline="") if ddp.main else None
    writer = csv.writer(log_file) if log_file else None
    if writer and new_log:
        writer.writerow(["step", "minutes", "lr", "train_loss", "grad_norm", "val_loss", "best_val_loss"])

    start_time = time.monotonic()
    minutes = elapsed_before / 60  # time trained so far; rank 0's under torchrun (see below)
    bar = tqdm(total=cfg.max_steps, initial=step, disable=not (progress and ddp.main), desc=cfg.name)
    running, stopped_early = [], False
    model.train()
    for clean, noisy in loader:
        if step >= cfg.max_steps:
            break
        clean, noisy = clean.to(device, non_blocking=True), noisy.to(device, non_blocking=True)
        lr = _lr_at(step, cfg, minutes)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            if cfg.tbptt_frames:
                loss_value = _tbptt_backward(train_model, model, noisy, clean, cfg, window)
            else:
                loss, _ = sequence_loss(train_model, noisy, clean, cfg, window)
                loss = loss + weight_penalty(model, cfg.optim.l1, cfg.optim.l2)
                loss.backward()
                loss_value = loss.item()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip).item()
        if math.isfinite(grad_norm):
            optimizer.step()
        step += 1
        running.append(loss_value)
        bar.update(1)
        minutes = (elapsed_before + time.monotonic() - start_time) / 60
        if cfg.max_minutes is not None:
            # every process must stop at the same step and (with optim.time_schedule) take the
            # same rate, so under torchrun the clock is rank 0's
            minutes = ddp.broadcast_value(minutes, device)

        if step % cfg.log_every == 0 and writer:
            writer.writerow(
                [step, f"{minutes:.2f}", f"{lr:.3g}", f"{np.mean(running):.5f}", f"{grad_norm:.3f}", "", ""]
            )
            log_file.flush()
            bar.set_postfix(loss=f"{np.mean(running):.4f}", best=f"{best_val:.4f}")
            running = []

        out_of_time = cfg.max_minutes is not None and minutes >= cfg.max_minutes
        if step % cfg.val_every == 0 or step >= cfg.max_steps or out_of_time:
            stop = False
            if ddp.main:
                val = evaluate(model, val_clean, val_noisy, cfg, device)
                if val < best_val:
                    best_val, best_step, bad_evals = val, step, 0
                    torch.save({"model": model.state_dict(), "step": step, "val_loss": val}, best_path)
                else:
                    bad_evals += 1
                writer.writerow(
                    [step, f"{minutes:.2f}", f"{lr:.3g}", "", "", f"{val:.5f}", f"{best_val:.5f}"]
                )
                log_file.flush()
                torch.save(
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "step": step,
                        "best_val": best_val,
                        "best_step": best_step,
                        "bad_evals": bad_evals,
                        "elapsed_s": minutes * 60,
                    },
                    last_path,
                )
                stopped_early = bad_evals >= cfg.patience
                stop = stopped_early or out_of_time
            if ddp.broadcast_flag(stop, device):
                break
    bar.close()
    minutes = (elapsed_before + time.monotonic() - start_time) / 60
    if log_file:
        log_file.close()

    export_json = cfg.export_json
    if ddp.main:
        best = torch.load(best_path, map_location="cpu", weights_only=False)
        export_model = build_model(cfg.features, cfg.architecture)
        export_model.load_state_dict(best["model"])
        licences = sorted(set(summary["speech_licences"]) | set(summary["noise_licences"]))
        provenance = Provenance(
            data=(
                f"{summary['speech_hours']} h speech ({summary['speech_files']} files) from "
                f"{', '.join(summary['speech_dirs'])}; {summary['noise_hours']} h noise "
                f"({summary['noise_files']} files) from {', '.join(summary['noise_dirs'])}; "
                "plus synthesised coloured noise, hum and babble"
            ),
            steps=best["step"],
            val_loss=best["val_loss"],
            licences=licences,
            extra={
                "data": summary,
                "train_config": cfg.model_dump(mode="json"),
                "train_minutes": round(minutes, 1),
                "total_steps": step,
                "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
                "world_size": ddp.world,
                "git_commit": git_commit,
                "init_from": init_from,
                "config_file": config_file,
                "phase": phase,
            },
        )
        save_weights(
            export_model, export_json.parent, cfg.name, description=cfg.description, provenance=provenance
        )
    if ddp.enabled:
        dist.barrier()
    return TrainResult(best_val, best_step, step, minutes, export_json, stopped_early)


def _tbptt_backward(
    train_model: torch.nn.Module,
    model: GainModel,
    noisy: torch.Tensor,
    clean: torch.Tensor,
    cfg: TrainConfig,
    window: torch.Tensor,
) -> float:
    """Truncated BPTT: run the sequence in chunks of ``tbptt_frames``, carrying the state
    forward but cutting the gradient at chunk borders; gradients of all chunks add up."""
    noisy_spec, clean_spec = spectra(noisy, cfg, window), spectra(clean, cfg, window)
    padded_spec = model.with_filter_history(noisy_spec)
    features = model.input_features(padded_spec)
    lookahead = model.lookahead_frames
    state = model.initial_state(noisy.shape[0]).to(noisy.device)
    history = model.filter_history_frames
    total_frames = noisy_spec.shape[1]
    chunk = cfg.tbptt_frames
    n_chunks = math.ceil(total_frames / chunk)
    value = 0.0
    for start in range(0, total_frames, chunk):
        output, state = train_model(features[:, start : start + chunk], state.detach())
        # output index t is the gain of frame t - lookahead
        first = start - lookahead
        lo = max(first, 0)
        hi = first + output.shape[1]
        if hi <= lo:
            continue
        # frame j sits at padded index j + history; the filter reads the history before lo
        estimate = model.apply_output(padded_spec[:, lo : hi + history], output[:, lo - first :])
        loss = (
            compressed_spectral_loss(estimate, clean_spec[:, lo:hi], cfg.loss, cfg.features.sample_rate)
            / n_chunks
        )
        loss = loss + weight_penalty(model, cfg.optim.l1, cfg.optim.l2) / n_chunks
        loss.backward()
        value += loss.item()
    return value

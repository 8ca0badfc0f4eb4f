"""The ``hush`` command. Each subcommand imports its layer lazily, so ``hush --help`` is instant."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="hush",
    help="Real-time speech enhancement: enhance files, benchmark, train, evaluate, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Registered model name (see `hush models`). Default: gru.")
]
WeightsOption = Annotated[
    Path | None,
    typer.Option(
        "--weights", help="A weight file (name.json or name.safetensors) instead of a registered name."
    ),
]


class Precision(StrEnum):
    """The weights' precision (``streaming.engine.Enhancer``)."""

    int8 = "int8"
    float32 = "float32"


PrecisionOption = Annotated[
    Precision,
    typer.Option(
        "--precision",
        help="int8: weights rounded to 8 bits per channel, the fast default (validation PESQ and STOI "
        "unchanged, docs/bench/README.md); float32: the weight file's own numbers.",
    ),
]
ModelsDirOption = Annotated[
    list[Path] | None,
    typer.Option("--models-dir", help="Extra folder of weight files (repeatable; also $HUSH_MODELS_DIR)."),
]


def _err(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)


def load_enhancer(
    model: str | None,
    weights: Path | None,
    models_dir: list[Path] | None,
    precision: Precision = Precision.int8,
):
    """Resolve ``--model`` / ``--weights`` to an ``Enhancer``, or exit with a clear message."""
    from hush.models import (
        DEFAULT_MODEL,
        ModelRegistry,
        UnknownModelError,
        WeightFileError,
        load_weights,
        model_load_message,
    )
    from hush.streaming import Enhancer

    if model and weights:
        _err("give either --model or --weights, not both")
        raise typer.Exit(2)
    try:
        if weights is not None:
            loaded, meta = load_weights(weights)
        else:
            registry = ModelRegistry(extra_dirs=models_dir)
            name = model or DEFAULT_MODEL
            loaded, meta = registry.load(name)
    except (UnknownModelError, WeightFileError) as err:
        _err(model_load_message(err))
        raise typer.Exit(2) from None
    return Enhancer(loaded, meta.name, precision=precision.value), meta


@app.command()
def enhance(
    inputs: Annotated[list[Path], typer.Argument(help="Audio files (wav, flac, ogg) or folders of them.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help=(
                "Output file (one input file) or folder: DIR -o OUT writes OUT/<path inside DIR>, "
                "a file input OUT/<its name>."
            ),
        ),
    ],
    model: ModelOption = None,
    weights: WeightsOption = None,
    models_dir: ModelsDirOption = None,
    attenuation_limit: Annotated[
        float | None, typer.Option("--attenuation-limit", help="Cap noise attenuation at this many dB.")
    ] = None,
    precision: PrecisionOption = Precision.int8,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Enhance files: any rate, any channel count (each channel enhanced on its own);
    the output keeps the input's rate, format and length, time-aligned with the input."""
    from tqdm import tqdm

    from hush.streaming.files import enhance_files

    enhancer, meta = load_enhancer(model, weights, models_dir, precision)
    report = enhance_files(
        enhancer,
        inputs,
        output,
        attenuation_limit_db=attenuation_limit,
        progress=None if quiet else (lambda jobs: tqdm(jobs, desc=f"hush {meta.name}", unit="file")),
    )
    if report.ignored and not quiet:
        typer.echo(f"ignored {len(report.ignored)} non-audio file(s)", err=True)
    if not quiet:
        typer.echo(f"enhanced {len(report.done)} file(s) with {meta.name} -> {output}", err=True)
    if report.failed:
        _err(f"{len(report.failed)} file(s) failed:")
        for path, reason in report.failed:
            _err(f"  {path}: {reason}")
        raise typer.Exit(1)


@app.command("models")
def list_models(
    models_dir: ModelsDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the registered models: shipped weights plus any --models-dir folders."""
    from rich.console import Console
    from rich.table import Table

    from hush.models import ModelRegistry

    registry = ModelRegistry(extra_dirs=models_dir)
    rows = []
    for name in registry.names():
        meta = registry.entries[name].metadata
        rows.append(
            {
                "name": name,
                "family": meta.architecture.family,
                "cell": getattr(meta.architecture, "cell", None),
                "params": meta.num_parameters,
                "latency_ms": meta.latency_ms,
                "val_loss": meta.provenance.val_loss,
                "val_loss_kind": meta.provenance.val_loss_kind,
                "test_scores": meta.provenance.test_scores,
                "path": str(registry.entries[name].json_path),
            }
        )
    if as_json:
        typer.echo(
            json.dumps({"models": rows, "problems": {str(k): v for k, v in registry.problems.items()}})
        )
        return
    table = Table("name", "family", "params", "latency ms", "val loss", "PESQ (VB test)", "path")
    for row in rows:
        kind = row["family"] + (f"/{row['cell']}" if row["cell"] else "")
        pesq = row["test_scores"].get("pesq")
        val = row["val_loss"]
        table.add_row(
            row["name"],
            kind,
            f"{row['params']:,}",
            f"{row['latency_ms']:.1f}",
            "-"
            if val is None
            else f"{val:.4f}" + (" (objective)" if row["val_loss_kind"] == "objective" else ""),
            "-" if pesq is None else f"{pesq:.2f}",
            row["path"],
        )
    Console().print(table)
    for path, problem in registry.problems.items():
        _err(f"skipped {path}: {problem}")


@app.command()
def bench(
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Model(s) to measure (default: all).")
    ] = None,
    weights: Annotated[
        list[Path] | None, typer.Option("--weights", help="Weight file(s) to measure.")
    ] = None,
    models_dir: ModelsDirOption = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results here as JSON.")] = None,
    seconds: Annotated[float, typer.Option(help="Seconds of audio streamed per model.")] = 60.0,
    peers: Annotated[
        str | None,
        typer.Option(
            help="Also stream these published denoisers in the same run, e.g. rnnoise,gtcrn,dtln,dfn3 "
            "(a peer that is not installed is skipped); ratios to RNNoise are added."
        ),
    ] = None,
    peers_dir: Annotated[
        Path | None, typer.Option(help="Folder of the DTLN and GTCRN ONNX files (default: ../shared/peers).")
    ] = None,
    repeats: Annotated[
        int, typer.Option(min=1, help="Interleaved rounds over all models and peers; medians reported.")
    ] = 1,
    float32: Annotated[
        bool,
        typer.Option("--float32", help="Also measure each model with its float32 weights (NAME+float32)."),
    ] = False,
    reference: Annotated[
        bool,
        typer.Option("--reference", help="Also measure each model on the torch reference path (NAME+torch)."),
    ] = False,
    rate: Annotated[
        int | None,
        typer.Option(
            help="Stream rate in Hz (default: the model's, 16000); at 44100 or 48000 the models "
            "run full band."
        ),
    ] = None,
) -> None:
    """Params, MACs/s, latency, one-thread streaming RTF (10 ms chunks) and peak memory; with
    --peers, the same RTF for published denoisers and each model's ratio to RNNoise."""
    from rich.console import Console
    from rich.table import Table

    from hush.bench.speed import run_bench
    from hush.models import ModelRegistry, UnknownModelError, WeightFileError, read_metadata

    targets: dict[str, str] = {}
    registry = ModelRegistry(extra_dirs=models_dir)
    try:
        for name in model or ([] if weights else registry.names()):
            targets[name] = str(registry.entry(name).json_path)
        for path in weights or []:
            json_file = path.with_suffix(".json")
            targets[read_metadata(json_file).name] = str(json_file)
    except (UnknownModelError, WeightFileError) as err:
        _err(str(err))
        raise typer.Exit(2) from None
    if not targets:
        _err("no models to benchmark: none are registered; pass --weights PATH")
        raise typer.Exit(2)
    from hush.evaluation.peers import parse_peers

    try:
        peer_names = parse_peers(peers)
    except ValueError as err:
        _err(str(err))
        raise typer.Exit(2) from None
    result = run_bench(
        targets,
        seconds=seconds,
        peers=peer_names,
        peers_dir=peers_dir,
        repeats=repeats,
        log=_err,
        float32=float32,
        reference=reference,
        rate=rate,
    )
    table = Table(
        "model",
        "params",
        "MMAC/s",
        "latency ms",
        "RTF (1 thread)",
        "x RNNoise",
        "ms/frame",
        "peak MB",
        title=f"models' streams at {rate} Hz" if rate else None,
    )
    for name, row in result["models"].items():
        ratio = row.get("ratio_to_rnnoise")
        table.add_row(
            name,
            f"{row['params']:,}",
            f"{row['macs_per_s'] / 1e6:.1f}",
            f"{row['latency_ms']:.1f}",
            f"{row['rtf']:.4f}",
            f"{ratio:.2f}" if ratio is not None else "-",
            f"{row['ms_per_frame']:.3f}",
            f"{row['peak_mb']:.0f}",
        )
    rnnoise = result.get("peers", {}).get("rnnoise")
    for name, row in result.get("peers", {}).items():
        ratio = row["rtf"] / rnnoise["rtf"] if rnnoise else None
        table.add_row(
            f"{name} (peer, {row['sample_rate'] // 1000} kHz)",
            "",
            "",
            "",
            f"{row['rtf']:.4f}",
            f"{ratio:.2f}" if ratio is not None else "-",
            f"{row['ms_per_10ms']:.3f}",
            f"{row['peak_mb']:.0f}",
        )
    Console().print(table)
    typer.echo(f"cpu: {result['machine']['cpu']}, torch {result['machine']['torch']}")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n")
        typer.echo(f"wrote {json_path}")


@app.command("export-onnx")
def export_onnx_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the .onnx file.")],
    model: ModelOption = None,
    weights: WeightsOption = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """Export a model's one-frame step to ONNX (state as explicit inputs/outputs) and
    check it against torch with onnxruntime. The graph holds the weight file's float32
    numbers."""
    from hush.models.onnx_export import export_onnx, verify_onnx

    enhancer, meta = load_enhancer(model, weights, models_dir, Precision.float32)
    path = export_onnx(enhancer.model, output, meta)
    error = verify_onnx(enhancer.model, path)
    typer.echo(f"wrote {path}; max |onnxruntime - torch| over 200 frames = {error:.2e}")
    if error > 1e-4:
        _err("ONNX output differs from torch by more than 1e-4")
        raise typer.Exit(1)


@app.command()
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML training config (see configs/).")],
    resume: Annotated[
        bool, typer.Option(help="Continue from <output_dir>/last.pt (phased: skip finished phases).")
    ] = False,
    output_dir: Annotated[Path | None, typer.Option(help="Override the config's output_dir.")] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Override the config's max_steps (and every phase's).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
) -> None:
    """Train a model from a config and export the best checkpoint as a weight file."""
    try:
        from hush.trainer.config import load_config
        from hush.trainer.train import run as run_training
    except ImportError as err:
        _err(f"the trainer needs its extras: pip install 'hush[train]' ({err})")
        raise typer.Exit(2) from None
    overrides: dict = {}
    if output_dir is not None:
        overrides["output_dir"] = str(output_dir)
    if max_steps is not None:
        overrides["max_steps"] = max_steps
    if device is not None:
        overrides["device"] = device
    cfg = load_config(config, overrides)
    result = run_training(cfg, resume=resume, config_file=str(config))
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun only rank 0 validates, exports and reports
    typer.echo(
        f"best val loss {result.best_val_loss:.5f} at step {result.best_step} "
        f"({result.steps} steps, {result.minutes:.1f} min); exported {result.export_json}"
    )


@app.command("val-pairs")
def val_pairs(
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML training config (see configs/).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write clean/ and noisy/ into.")],
    count: Annotated[int, typer.Option(min=1, help="Number of mixtures.")] = 60,
    seconds: Annotated[float, typer.Option(min=0.5, help="Length of each mixture.")] = 6.0,
    seed: Annotated[int, typer.Option(help="Mixing seed (not the config's val_seed).")] = 99,
    speech: Annotated[
        list[Path] | None, typer.Option(help="Speech folder(s) instead of the config's validation speech.")
    ] = None,
    noise: Annotated[
        list[Path] | None, typer.Option(help="Noise folder(s) instead of the config's validation noise.")
    ] = None,
    real_noise_only: Annotated[
        bool, typer.Option(help="One recorded noise per mixture; nothing synthesised.")
    ] = False,
    snr: Annotated[
        tuple[float, float] | None, typer.Option(help="SNR range in dB instead of the config's, e.g. -5 15.")
    ] = None,
) -> None:
    """Write validation mixtures as a pairs folder for `hush eval --pairs`: score models and
    peers on validation data, which, unlike the test set, may guide choices. With --speech
    and --noise, the mixtures measure generalisation: speakers and noise types training
    never saw."""
    try:
        from hush.trainer.config import load_config
        from hush.trainer.val_pairs import write_validation_pairs
    except ImportError as err:
        _err(f"the trainer needs its extras: pip install 'hush[train]' ({err})")
        raise typer.Exit(2) from None
    try:
        write_validation_pairs(
            load_config(config), out, count, seconds, seed, speech, noise, real_noise_only, snr
        )
    except (OSError, ValueError) as err:
        _err(str(err))
        raise typer.Exit(2) from None
    typer.echo(f"wrote {count} validation mixtures to {out} (clean/, noisy/, mixtures.csv)")


@app.command("val-loss")
def val_loss(
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML training config (see configs/).")],
    weights: Annotated[
        list[Path], typer.Option("--weights", "-w", help="Weight file(s) (name.json) to score; repeatable.")
    ],
) -> None:
    """Base validation loss of each model on the config's validation set, measured on the
    default 20 ms STFT of its output audio: one yardstick for models whose own STFTs differ."""
    try:
        from hush.models import WeightFileError
        from hush.trainer.config import load_config
        from hush.trainer.val_loss import audio_validation_loss
    except ImportError as err:
        _err(f"the trainer needs its extras: pip install 'hush[train]' ({err})")
        raise typer.Exit(2) from None
    try:
        results = audio_validation_loss(load_config(config), weights)
    except (OSError, ValueError, WeightFileError) as err:
        _err(str(err))
        raise typer.Exit(2) from None
    for path, loss in results.items():
        typer.echo(f"{loss:.5f}  {path}")


@app.command()
def publish(
    export_json: Annotated[
        Path, typer.Argument(help="An exported weight file (runs/<name>/export/<name>.json).")
    ],
    destination: Annotated[
        Path, typer.Option("--to", help="Models folder to publish into (default: the shipped weights).")
    ] = Path("models/weights"),
    scores: Annotated[
        Path | None, typer.Option("--scores", help="`hush eval --json` output to record as test scores.")
    ] = None,
    system: Annotated[
        str | None, typer.Option(help="Which system of --scores (default: the model name).")
    ] = None,
    command: Annotated[str, typer.Option(help="The command that produced --scores, for the card.")] = "",
) -> None:
    """Copy a trained model into a models folder, record its test scores, write its model card."""
    from hush.models import WeightFileError, read_metadata
    from hush.trainer.publish import publish as publish_model
    from hush.trainer.publish import record_test_scores, write_card

    try:
        meta = read_metadata(export_json)
    except WeightFileError as err:
        _err(str(err))
        raise typer.Exit(2) from None
    card = publish_model(export_json, destination)
    if scores is not None:
        report = json.loads(scores.read_text())
        name = system or meta.name
        if name not in report.get("systems", {}):
            _err(f"{scores} has no system {name!r}")
            raise typer.Exit(2)
        metrics = {
            k: v
            for k, v in report["systems"][name].items()
            if isinstance(v, int | float) and k != "latency_ms"  # a property of the design, not a score
        }
        evaluation = {"command": command, "date": report.get("date", ""), "files": report.get("files")}
        record_test_scores(destination / f"{meta.name}.json", metrics, evaluation)
        card = write_card(destination / f"{meta.name}.json")
    typer.echo(f"published {meta.name} to {destination} (card: {card})")


@app.command("eval")
def eval_cmd(
    pairs: Annotated[
        list[Path],
        typer.Option(
            "--pairs",
            help=(
                "Folder with clean/ and noisy/ files of the same names; repeat it to score several "
                "sets in one run (e.g. in-domain validation and held-out noise types)."
            ),
        ),
    ],
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Registered model(s) to score (repeatable). Default: gru."),
    ] = None,
    weights: Annotated[
        list[Path] | None, typer.Option("--weights", help="Weight file(s) to score (repeatable).")
    ] = None,
    models_dir: ModelsDirOption = None,
    peers: Annotated[
        str | None,
        typer.Option(
            "--peers",
            help="Published denoisers to run too: all, or some of rnnoise,dfn3,dtln,gtcrn,noisereduce.",
        ),
    ] = None,
    peers_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder of peer ONNX weights (dtln/, gtcrn/). Default: $HUSH_PEERS_DIR or ../shared/peers."
        ),
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the full result as JSON.")] = None,
    markdown_path: Annotated[
        Path | None, typer.Option("--markdown", help="Write the README-ready Markdown tables here.")
    ] = None,
    plots: Annotated[
        Path | None, typer.Option("--plots", help="Write spectrogram PNGs (and before_after.png) here.")
    ] = None,
    plot_files: Annotated[int, typer.Option(help="How many files --plots draws.")] = 3,
    plot_names: Annotated[
        str | None,
        typer.Option(help="Comma-separated pair names to draw instead; the first gets before_after.png."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Score at most N pairs (after --every).", min=1)] = None,
    every: Annotated[int | None, typer.Option(help="Score every K-th pair (0, K, 2K, ...).", min=1)] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: CPU count).", min=1)] = None,
    attenuation_limit: Annotated[
        float | None,
        typer.Option(
            "--attenuation-limit",
            help="Score hush models with noise attenuation capped at this many dB.",
            min=0,
        ),
    ] = None,
    precision: PrecisionOption = Precision.int8,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Score hush models and published peers on clean/noisy pairs: PESQ-wb, STOI, SI-SDR and
    DNSMOS, mean with 95% interval and by input-SNR band."""
    try:
        from hush.evaluation.cli import run_eval_command
    except ImportError as err:
        _err(f"the evaluation needs its extras: pip install 'hush[eval]' ({err})")
        raise typer.Exit(2) from None
    run_eval_command(
        pairs=pairs,
        models=model or [],
        weights=weights or [],
        models_dir=models_dir or [],
        peers=peers,
        peers_dir=peers_dir,
        json_path=json_path,
        markdown_path=markdown_path,
        plots=plots,
        plot_files=plot_files,
        plot_names=plot_names,
        limit=limit,
        every=every,
        workers=workers,
        quiet=quiet,
        attenuation_limit_db=attenuation_limit,
        precision=precision.value,
    )


@app.command()
def compare(
    result_a: Annotated[Path, typer.Argument(help="A `hush eval --json` file.")],
    result_b: Annotated[Path, typer.Argument(help="Another (or the same) `hush eval --json` file.")],
    system_a: Annotated[str, typer.Option("--a", help="System in RESULT_A (a model or peer name).")] = "gru",
    system_b: Annotated[
        str | None, typer.Option("--b", help="System in RESULT_B (default: the same name as --a).")
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the differences as JSON.")] = None,
    by_type: Annotated[
        bool, typer.Option("--by-type", help="Also one row per noise type in sets that record it.")
    ] = False,
) -> None:
    """Paired per-file differences A - B with 95% intervals, for every set both files scored."""
    from rich.console import Console
    from rich.table import Table

    from hush.evaluation.compare import compare_files
    from hush.evaluation.metrics import METRICS
    from hush.evaluation.run import json_safe

    system_b = system_b or system_a
    try:
        result = compare_files(result_a, system_a, result_b, system_b, by_type=by_type)
    except (OSError, ValueError, KeyError) as err:
        _err(f"cannot compare: {err}")
        raise typer.Exit(2) from None
    title = f"{system_a} ({result_a}) - {system_b} ({result_b}), paired over files"
    # a metric no set scored (the high-band distance of 16 kHz pairs) would be a column of NaN
    shown = [m for m in METRICS if any(diffs[m]["n"] for diffs in result.values())]
    table = Table(title=title)
    table.add_column("set", no_wrap=True)
    for column in ("files", *shown):
        table.add_column(column, no_wrap=True)
    widest = 0
    for name, diffs in result.items():
        cells = [f"{diffs[m]['mean']:+.3f} ± {diffs[m]['ci95_half']:.3f}" for m in shown]
        set_name, _, kind = name.partition(" [")  # "<set> [<noise type>]" with --by-type
        label = (Path(set_name).name or "(one set)") + (f" · {kind[:-1]}" if kind else "")
        widest = max(widest, len(label))
        table.add_row(label, str(diffs["files"]), *cells)
    Console(width=max(100, widest + 17 + 19 * len(shown))).print(table)
    if json_path:
        payload = {"a": [str(result_a), system_a], "b": [str(result_b), system_b], "sets": result}
        json_path.write_text(json.dumps(json_safe(payload), indent=1) + "\n")


@app.command()
def demo(
    list_devices: Annotated[
        bool, typer.Option("--list-devices", help="List the audio devices and exit.")
    ] = False,
    input_device: Annotated[
        str | None, typer.Option("--input", "-i", help="Input device: index or name fragment.")
    ] = None,
    output_device: Annotated[
        str | None, typer.Option("--output", "-o", help="Output device: index or name fragment.")
    ] = None,
    model: ModelOption = None,
    weights: WeightsOption = None,
    models_dir: ModelsDirOption = None,
    record: Annotated[
        Path | None,
        typer.Option("--record", help="Save raw (left) and enhanced (right) side by side to this file."),
    ] = None,
    rate: Annotated[
        int | None,
        typer.Option(
            "--rate", help="Device sample rate in Hz (default: 48000, full band, if the devices take it)."
        ),
    ] = None,
    attenuation_limit: Annotated[
        float | None, typer.Option("--attenuation-limit", help="Cap noise attenuation at this many dB.")
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Start with raw playback.")] = False,
    seconds: Annotated[float | None, typer.Option("--seconds", help="Stop after this many seconds.")] = None,
    precision: PrecisionOption = Precision.int8,
) -> None:
    """Microphone to speakers through the enhancer, live. Keys: space toggles raw/enhanced,
    q quits. Use headphones: speakers feed back into the microphone."""
    from rich.console import Console

    from hush.demo import DemoError, import_sounddevice, print_devices, run_demo

    console = Console()
    try:
        sd = import_sounddevice()  # first: a missing PortAudio is the likeliest problem
        if list_devices:
            print_devices(console, sd)
            return
        enhancer, meta = load_enhancer(model, weights, models_dir, precision)
        import torch

        torch.set_num_threads(1)  # one frame per callback: threads only add hand-off jitter
        run_demo(
            enhancer,
            f"{meta.name} ({meta.latency_ms:.0f} ms algorithmic latency)",
            input_device=input_device,
            output_device=output_device,
            sample_rate=rate,
            record=record,
            attenuation_limit_db=attenuation_limit,
            start_raw=raw,
            seconds=seconds,
            console=console,
            sd=sd,
        )
    except DemoError as err:
        _err(f"hush demo: {err}")
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    models_dir: ModelsDirOption = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Default model (else $HUSH_DEFAULT_MODEL or gru).")
    ] = None,
) -> None:
    """Serve REST and WebSocket enhancement (settings: HUSH_* environment variables or .env)."""
    from pydantic import ValidationError

    from hush.service.server import serve as run_server
    from hush.service.settings import Settings

    overrides: dict = {}
    if models_dir:
        overrides["models_dir"] = models_dir
    if model:
        overrides["default_model"] = model
    try:
        settings = Settings(**overrides)
    except ValidationError as err:
        _err(f"invalid settings: {err}")
        raise typer.Exit(2) from None
    run_server(settings, host=host, port=port)


@app.command()
def loadtest(
    streams: Annotated[int, typer.Option("--streams", "-n", help="Concurrent WebSocket streams.")] = 100,
    seconds: Annotated[
        float, typer.Option(help="Seconds of audio each stream sends, at real-time pace.")
    ] = 20.0,
    url: Annotated[
        str | None,
        typer.Option(help="ws://host:port of a running server; default: start `hush serve` on a free port."),
    ] = None,
    audio: Annotated[
        Path | None,
        typer.Option(help="Audio to stream (mono-mixed, resampled); default: shared speech + noise."),
    ] = None,
    rate: Annotated[int, typer.Option(help="Sample rate of the streams, Hz.")] = 16000,
    chunk_ms: Annotated[float, typer.Option(help="Audio per message, ms.")] = 10.0,
    encoding: Annotated[str, typer.Option(help="pcm_s16le or pcm_f32le.")] = "pcm_s16le",
    model: ModelOption = None,
    models_dir: ModelsDirOption = None,
    api_key: Annotated[str | None, typer.Option(envvar="HUSH_LOADTEST_API_KEY", help="API key.")] = None,
    ramp_s: Annotated[float, typer.Option(help="Spread the stream starts over this many seconds.")] = 2.0,
    deadline_ms: Annotated[
        float, typer.Option(help="Output later than this after its input counts as late.")
    ] = 20.0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report here as JSON.")] = None,
    find_capacity: Annotated[
        bool,
        typer.Option(
            "--find-capacity",
            help="Search for the most streams that hold p99 server latency <= --deadline-ms with "
            "nothing dropped, starting at --streams; report it per core.",
        ),
    ] = False,
    repeats: Annotated[
        int,
        typer.Option(
            min=1,
            help="With --find-capacity: a stream count holds only if this many load tests in a row "
            "at it hold (near the limit one run's p99 is noisy).",
        ),
    ] = 1,
) -> None:
    """Stream real speech over N concurrent WebSocket connections at real-time pace; report
    added latency (server and client side), dropped/late audio and CPU use."""
    from hush.bench.loadtest import LoadtestConfig, print_capacity, print_report, run_loadtest
    from hush.bench.loadtest import find_capacity as search_capacity

    config = LoadtestConfig(
        streams=streams,
        seconds=seconds,
        url=url,
        audio=audio,
        sample_rate=rate,
        chunk_ms=chunk_ms,
        encoding=encoding,
        model=model,
        models_dir=models_dir or [],
        api_key=api_key,
        ramp_s=ramp_s,
        deadline_ms=deadline_ms,
    )
    try:
        if find_capacity:
            report = search_capacity(config, start=streams, repeats=repeats, log=typer.echo)
        else:
            report = run_loadtest(config)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        _err(str(err))
        raise typer.Exit(2) from None
    (print_capacity if find_capacity else print_report)(report)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        typer.echo(f"wrote {json_path}")
    if not find_capacity and not report["ok"]:
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

"""``hush eval``: argument checks, the run, and its outputs (table, JSON, Markdown, plots)."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import typer

from .pairs import PairsError, find_pairs, noise_types, select
from .peers import default_peers_dir, parse_peers, peer_problem
from .report import markdown, print_tables
from .run import DEFAULT_PRECISION, EvalConfig, ModelSpec, json_safe, load_model_spec, run_eval


def _err(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)


def _note(message: str) -> None:
    typer.secho(message, fg=typer.colors.YELLOW, err=True)


def resolve_models(
    models: list[str],
    weights: list[Path],
    models_dir: list[Path],
    attenuation_limit_db: float | None = None,
    precision: str = DEFAULT_PRECISION,
) -> list[ModelSpec]:
    """Load each requested model once here, so a bad name or file fails before any work,
    and learn its name and latency. With no --model/--weights: the default model if it is
    registered, else none (peers only)."""
    from hush.models import (
        DEFAULT_MODEL,
        ModelRegistry,
        UnknownModelError,
        WeightFileError,
        model_load_message,
    )

    dirs = tuple(str(d) for d in models_dir)
    specs = [ModelSpec(label="", name=name, models_dirs=dirs, precision=precision) for name in models]
    specs += [ModelSpec(label="", weights=str(path), precision=precision) for path in weights]
    if not specs:
        if DEFAULT_MODEL in ModelRegistry(extra_dirs=list(models_dir)).names():
            specs = [ModelSpec(label="", name=DEFAULT_MODEL, models_dirs=dirs, precision=precision)]
        else:
            _note(f"no --model/--weights and no '{DEFAULT_MODEL}' model registered: scoring peers only")
    resolved = []
    for spec in specs:
        try:
            _, meta = load_model_spec(spec)
        except (UnknownModelError, WeightFileError) as err:
            _err(model_load_message(err))
            raise typer.Exit(2) from None
        resolved.append(
            dataclasses.replace(
                spec, label=meta.name, latency_ms=meta.latency_ms, attenuation_limit_db=attenuation_limit_db
            )
        )
    labels = [s.label for s in resolved]
    duplicates = sorted({name for name in labels if labels.count(name) > 1})
    if duplicates:
        _err(f"model name(s) given twice: {', '.join(duplicates)}")
        raise typer.Exit(2)
    return resolved


def resolve_peers(text: str | None, peers_dir: Path) -> tuple[list[str], dict[str, str]]:
    """Peers to run, and the skipped ones with the reason (printed)."""
    try:
        names = parse_peers(text)
    except ValueError as err:
        _err(str(err))
        raise typer.Exit(2) from None
    ready, skipped = [], {}
    for name in names:
        problem = peer_problem(name, peers_dir)
        if problem:
            skipped[name] = problem
            _note(f"skipping peer {name}: {problem}")
        else:
            ready.append(name)
    return ready, skipped


def _files_to_draw(selected: list, count: int, names: str | None) -> tuple[str, ...]:
    """The named pairs (which must be in the selection), else ``count`` spread over it."""
    if names:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        known = {p.name for p in selected}
        missing = [n for n in wanted if n not in known]
        if missing:
            _err(f"--plot-names not among the selected pairs: {', '.join(missing)}")
            raise typer.Exit(2)
        return tuple(wanted)
    count = min(count, len(selected))
    picks = sorted({round(i * (len(selected) - 1) / max(count - 1, 1)) for i in range(count)})
    return tuple(selected[i].name for i in picks)


def command_line(**options) -> str:
    """The canonical ``hush eval`` command for these options (recorded with the results)."""
    parts = ["hush", "eval"]
    for key, value in options.items():
        if value in (None, False, [], ()):
            continue
        flag = "--" + key.replace("_", "-")
        for item in value if isinstance(value, list | tuple) else [value]:
            parts += [flag] if item is True else [flag, str(item)]
    return shlex.join(parts)


def run_eval_command(
    pairs: Path | list[Path],
    models: list[str],
    weights: list[Path],
    models_dir: list[Path],
    peers: str | None,
    peers_dir: Path | None,
    json_path: Path | None,
    markdown_path: Path | None,
    plots: Path | None,
    plot_files: int,
    plot_names: str | None,
    limit: int | None,
    every: int | None,
    workers: int | None,
    quiet: bool,
    attenuation_limit_db: float | None = None,
    precision: str = DEFAULT_PRECISION,
) -> dict:
    """Score every system on one pairs folder, or on several one after the other (each
    printed under its own name: in-domain validation beside held-out noise types, say).

    The JSON of one folder is its result; of several, ``{"sets": {folder: result}, "command"}``.
    """
    folders = [Path(pairs)] if isinstance(pairs, str | Path) else [Path(p) for p in pairs]
    selections = {}
    for folder in folders:
        try:
            selections[folder] = select(find_pairs(folder), limit=limit, every=every)
        except (PairsError, ValueError) as err:
            _err(str(err))
            raise typer.Exit(2) from None
    if len(set(folders)) != len(folders):
        _err("a pairs folder is given twice")
        raise typer.Exit(2)
    if plots and len(folders) > 1:
        _err("--plots draws one pairs folder; give a single --pairs")
        raise typer.Exit(2)
    specs = resolve_models(models, weights, models_dir, attenuation_limit_db, precision)
    peers_folder = peers_dir or default_peers_dir()
    peer_names, skipped = resolve_peers(peers, peers_folder)
    if not specs and not peer_names:
        _err("nothing to evaluate: give --model/--weights, or --peers that are available")
        raise typer.Exit(2)
    command = command_line(
        pairs=folders,
        model=models,
        weights=weights,
        models_dir=models_dir,
        peers=peers,
        peers_dir=peers_dir,
        limit=limit,
        every=every,
        workers=workers,
        attenuation_limit=attenuation_limit_db,
        precision=precision,
    )

    def progress(records, total):
        if quiet:
            return records
        from tqdm import tqdm

        return tqdm(records, total=total, desc="hush eval", unit="file")

    results: dict[str, dict] = {}
    for folder, selected in selections.items():
        drawn = _files_to_draw(selected, plot_files, plot_names) if plots else ()
        config = EvalConfig(
            models=tuple(specs),
            peers=tuple(peer_names),
            peers_dir=str(peers_folder),
            plots_dir=str(plots) if plots else None,
            plot_files=drawn,
        )
        result = run_eval(
            config, selected, workers=workers, progress=progress, noise_types=noise_types(folder)
        )
        result["pairs"] = str(folder)
        result["command"] = command
        result["attenuation_limit_db"] = attenuation_limit_db
        result["precision"] = precision
        result["skipped_peers"] = skipped
        print_tables(result, title=str(folder) if len(folders) > 1 else "")
        for failure in result["failures"]:
            who = "reading" if failure["system"] == "*" else failure["system"]
            _err(f"{who} failed on {failure['file']}: {failure['error']}")
        typer.echo(
            f"{folder}: {result['files']} files, {len(config.systems)} systems, "
            f"{result['run_seconds']:.1f} s with {result['workers']} worker(s)",
            err=True,
        )
        results[str(folder)] = result
    single = len(results) == 1
    output = next(iter(results.values())) if single else {"sets": results, "command": command}
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(json_safe(output), indent=1) + "\n")
        typer.echo(f"wrote {json_path}", err=True)
    if markdown_path:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        if single:
            text = markdown(output, command)
        else:
            text = "\n".join(f"### {name}\n\n{markdown(result, command)}" for name, result in results.items())
        markdown_path.write_text(text)
        typer.echo(f"wrote {markdown_path}", err=True)
    if plots:
        typer.echo(f"wrote {len(list(Path(plots).glob('*.png')))} picture(s) to {plots}", err=True)
    failures = sum(len(result["failures"]) for result in results.values())
    if failures:
        _err(f"{failures} failure(s): the means above leave those files out")
        raise typer.Exit(1)
    return output

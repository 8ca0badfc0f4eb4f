"""Tables of an evaluation result: a rich table for the terminal and Markdown for the README."""

from __future__ import annotations

import math

from .metrics import METRICS
from .plots import label
from .stats import SNR_BANDS

COLUMNS = {
    "pesq": ("PESQ-wb", 2),
    "stoi": ("STOI", 3),
    "si_sdr": ("SI-SDR (dB)", 1),
    "dnsmos_sig": ("DNSMOS SIG", 2),
    "dnsmos_bak": ("DNSMOS BAK", 2),
    "dnsmos_ovrl": ("DNSMOS OVRL", 2),
    "lsd_hb": ("HB LSD 8-20 kHz (dB)", 2),
}
BAND_METRICS = ("pesq", "stoi", "si_sdr", "dnsmos_ovrl")


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _cell(entry: dict, metric: str, ci: bool) -> str:
    digits = COLUMNS[metric][1]
    mean = entry.get(metric)
    text = _num(mean, digits)
    low, high = entry.get("ci95", {}).get(metric, [math.nan, math.nan])
    if ci and text != "-" and low is not None and math.isfinite(low):
        text += f" ± {_num((high - low) / 2, digits)}"
    return text


def _latency(entry: dict) -> str:
    value = entry.get("latency_ms")
    if value is None:
        return "offline" if entry.get("kind") == "peer" else "-"
    return "0" if entry.get("kind") == "input" else f"{value:.0f}"


def _metrics_present(result: dict) -> list[str]:
    """The metrics to show; the high-band distance only where some file has one (48 kHz pairs)."""
    return [
        m
        for m in METRICS
        if any(m in e for e in result["systems"].values())
        and (m != "lsd_hb" or any(e.get("n", {}).get(m) for e in result["systems"].values()))
    ]


def main_rows(result: dict, ci: bool = True) -> tuple[list[str], list[list[str]]]:
    metrics = _metrics_present(result)
    header = ["system", "latency (ms)", *(COLUMNS[m][0] for m in metrics)]
    rows = [
        [label(name), _latency(entry), *(_cell(entry, m, ci) for m in metrics)]
        for name, entry in result["systems"].items()
    ]
    return header, rows


def band_rows(result: dict, metric: str) -> tuple[list[str], list[list[str]]]:
    digits = COLUMNS[metric][1]
    bands = [b for b, _, _ in SNR_BANDS]
    counts = {}
    for entry in result["systems"].values():
        for band in bands:
            if band in entry.get("by_snr", {}):
                counts[band] = entry["by_snr"][band]["files"]
    present = [b for b in bands if b in counts]
    header = ["system", *(f"{b} dB (n={counts[b]})" for b in present)]
    rows = []
    for name, entry in result["systems"].items():
        by = entry.get("by_snr", {})
        rows.append([label(name), *(_num(by.get(b, {}).get(metric), digits) for b in present)])
    return header, rows


def noise_type_rows(result: dict, metric: str) -> tuple[list[str], list[list[str]]]:
    """One column per noise type (pairs written with ``hush val-pairs``), one row per system."""
    digits = COLUMNS[metric][1]
    counts: dict[str, int] = {}
    for entry in result["systems"].values():
        for kind, stats in entry.get("by_noise_type", {}).items():
            counts[kind] = stats["files"]
    header = ["system", *(f"{kind} (n={counts[kind]})" for kind in sorted(counts))]
    rows = [
        [
            label(name),
            *(_num(entry.get("by_noise_type", {}).get(k, {}).get(metric), digits) for k in sorted(counts)),
        ]
        for name, entry in result["systems"].items()
    ]
    return header, rows


def _has_noise_types(result: dict) -> bool:
    return any(entry.get("by_noise_type") for entry in result["systems"].values())


def print_tables(result: dict, console=None, title: str = "") -> None:
    """Print the main table (mean ± 95% CI), PESQ by input SNR and, when the pairs name their
    noise types, PESQ and DNSMOS BAK by noise type, with rich; ``title`` names the pairs set."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
            console = Console(width=160)
    header, rows = main_rows(result)
    prefix = f"{title}: " if title else ""
    table = Table(
        *header, title=f"{prefix}{result['files']} files; mean ± 95% CI ({result.get('ci_method', '')})"
    )
    for row in rows:
        table.add_row(*row)
    console.print(table)
    header, rows = band_rows(result, "pesq")
    table = Table(*header, title=f"{prefix}PESQ-wb by input SNR")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if _has_noise_types(result):
        for metric in ("pesq", "dnsmos_bak"):
            if metric in _metrics_present(result):
                header, rows = noise_type_rows(result, metric)
                table = Table(*header, title=f"{prefix}{COLUMNS[metric][0]} by noise type")
                for row in rows:
                    table.add_row(*row)
                console.print(table)


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(result: dict, command: str) -> str:
    """README-ready Markdown: the main table, then per-band tables, with date and command."""
    minutes = result.get("run_seconds", math.nan) / 60
    parts = [
        f"Measured {result['date']} on {result['files']} files "
        f"({result.get('audio_seconds', math.nan) / 60:.1f} min of audio) with:",
        "",
        f"```\n{command}\n```",
        "",
        f"Mean ± 95% confidence interval ({result.get('ci_method', '')}). "
        f"Run time {minutes:.1f} min with {result.get('workers')} worker(s). "
        "Latency is each design's algorithmic latency (window + look-ahead).",
        "",
        _markdown_table(*main_rows(result)),
    ]
    for metric in BAND_METRICS:
        if metric in _metrics_present(result):
            parts += [
                "",
                f"{COLUMNS[metric][0]} by input SNR:",
                "",
                _markdown_table(*band_rows(result, metric)),
            ]
    if _has_noise_types(result):
        for metric in BAND_METRICS:
            if metric in _metrics_present(result):
                parts += [
                    "",
                    f"{COLUMNS[metric][0]} by noise type:",
                    "",
                    _markdown_table(*noise_type_rows(result, metric)),
                ]
    if result.get("failures"):
        parts += ["", f"{len(result['failures'])} system/file failure(s); see the JSON output."]
    return "\n".join(parts) + "\n"

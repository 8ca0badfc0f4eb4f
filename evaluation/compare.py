"""``hush compare``: one system against another, paired over the files both were scored on.

Two ``hush eval`` JSON files (or one file twice) may hold the same pairs scored at different
times, e.g. a retrained model in one run and the shipped model in an earlier one. Pairing
per file removes the spread between files, which dominates an unpaired comparison of two
means: the interval is that of the per-file differences, ``a - b``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .metrics import METRICS
from .stats import mean_ci


def load_sets(path: Path) -> dict[str, dict]:
    """A ``hush eval`` JSON as ``{set name: result}`` (a one-folder run is one set, named "")."""
    data = json.loads(Path(path).read_text())
    return data.get("sets", {"": data})


def _value(scores: dict, metric: str) -> float:
    """A metric's score, NaN where it is missing or was written as null (not finite)."""
    value = scores.get(metric)
    return math.nan if value is None else float(value)


def paired_differences(result_a: dict, system_a: str, result_b: dict, system_b: str) -> dict:
    """Per metric: mean of ``a - b`` over the files both results scored, with its 95 %
    t-interval half-width and the number of files with a finite value on both sides.

    Returns ``{metric: {"mean", "ci95_half", "n"}, "files": int}``.
    """
    scores_a = {r["name"]: r["scores"].get(system_a) for r in result_a["per_file"]}
    scores_b = {r["name"]: r["scores"].get(system_b) for r in result_b["per_file"]}
    common = sorted(n for n in scores_a.keys() & scores_b.keys() if scores_a[n] and scores_b[n])
    out: dict = {"files": len(common)}
    for metric in METRICS:
        diffs = [_value(scores_a[n], metric) - _value(scores_b[n], metric) for n in common]
        mean, half, n = mean_ci(np.asarray(diffs, dtype=np.float64))
        out[metric] = {"mean": mean, "ci95_half": half, "n": n}
    return out


def by_noise_type(result: dict) -> dict[str, dict]:
    """A set's result split by its files' ``noise_type`` (the leave-types-out sets record
    it per file): ``{type: result holding only that type's files}``; empty if none has one."""
    types = sorted({r["noise_type"] for r in result["per_file"] if r.get("noise_type")})
    return {
        kind: {**result, "per_file": [r for r in result["per_file"] if r.get("noise_type") == kind]}
        for kind in types
    }


def compare_files(
    path_a: Path, system_a: str, path_b: Path, system_b: str, by_type: bool = False
) -> dict[str, dict]:
    """``paired_differences`` for every set present in both files, keyed by set name; with
    ``by_type``, each set is followed by one entry per noise type of its files, keyed
    ``"<set> [<type>]"``."""
    sets_a, sets_b = load_sets(path_a), load_sets(path_b)
    missing = [
        f"{system} not in {path}"
        for path, sets, system in ((path_a, sets_a, system_a), (path_b, sets_b, system_b))
        if not any(system in r["systems"] for r in sets.values())
    ]
    if missing:
        raise ValueError("; ".join(missing))
    common = [name for name in sets_a if name in sets_b]
    if not common:
        raise ValueError(f"{path_a} and {path_b} share no set of pairs")
    out: dict[str, dict] = {}
    for name in common:
        out[name] = paired_differences(sets_a[name], system_a, sets_b[name], system_b)
        if by_type:
            types_b = by_noise_type(sets_b[name])
            for kind, part_a in by_noise_type(sets_a[name]).items():
                if kind in types_b:
                    out[f"{name} [{kind}]"] = paired_differences(part_a, system_a, types_b[kind], system_b)
    return out

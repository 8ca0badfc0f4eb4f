"""Weights rounded to int8: the numbers the streaming engine's ``precision="int8"`` runs.

Each weight matrix's rows (one per output channel: a Linear layer's outputs, an RNN gate's
units) are rounded to a symmetric 8-bit grid with one float32 scale per row,
``w ~ q * scale`` with ``q`` in [-127, 127] and ``scale = max|w_row| / 127``. Biases and
everything outside the weight matrices stay float32. The rounded model is an ordinary torch
model: offline enhancement with it gives the same numbers as the int8 streaming kernel
(``streaming/int8_dense.py``), so streaming still equals offline at int8.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .base import GainModel

#: What ``weights_precision`` can be: the weight file's own numbers, or rounded to int8.
PRECISIONS = ("int8", "float32")
#: The precision the engine, the service and the CLI use unless told otherwise: validation
#: PESQ and STOI within 0.001 of float32 (``bench/int8_quality.py``), and one stream's step
#: reads a quarter of the weight bytes.
DEFAULT_PRECISION = "int8"


def check_precision(precision: str) -> None:
    """Raise ``ValueError`` unless ``precision`` is one of ``PRECISIONS``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``weight [N, K]`` -> (``q [N, K]`` int8, ``scale [N]`` float32), ``q * scale ~ weight``
    within half a grid step per row; an all-zero row gets a tiny scale and stays zero."""
    weight = weight.detach().to(torch.float32)
    scale = (weight.abs().amax(dim=1) / 127.0).clamp_min(1e-12)
    q = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def _weight_matrices(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, parameter name) of every float32 weight matrix the int8 rounding covers."""
    found = []
    for module in model.modules():
        if isinstance(module, nn.Linear):
            names = ["weight"]
        elif isinstance(module, nn.RNNBase):
            names = [n for n, _ in module.named_parameters(recurse=False) if n.startswith("weight_")]
        else:
            continue
        found += [(module, n) for n in names if getattr(module, n).dtype == torch.float32]
    return found


def round_weights_to_int8(model: GainModel) -> GainModel:
    """A copy of ``model`` (in eval mode) with every Linear and RNN weight matrix rounded to
    its per-row int8 grid (``quantize_rows``), marked ``weights_precision = "int8"``.

    A model already rounded is returned as it is; one with no float32 weight matrix (say one
    ``torch.ao.quantization`` already converted) is returned as it is, still float32."""
    if getattr(model, "weights_precision", "float32") == "int8":
        return model
    matrices = _weight_matrices(model)
    if not matrices:
        return model
    rounded = copy.deepcopy(model).eval()
    with torch.no_grad():
        for module, name in _weight_matrices(rounded):
            weight = getattr(module, name)
            q, scale = quantize_rows(weight)
            weight.copy_(q.to(torch.float32) * scale[:, None])
    rounded.weights_precision = "int8"
    return rounded

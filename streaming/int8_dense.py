"""Weight-only int8 matrix products: the fast frame step at ``precision="int8"`` (the default).

Why: at one stream the float32 step reads all 4.8 MB of the shipped ``gru``'s weights every
10 ms frame, which does not fit a core's L2 cache (2 MB on the development machine), so its
seven products stream from L3 (about 210 us a frame). Stored as int8 with one float32 scale
per output channel, the same weights take 1.2 MB and stay in L2. The arithmetic stays float32:
each weight is converted as it is read, ``y[n] = scale[n] * sum_k x[k] * q[n, k] + b[n]``, so
activations are never quantised (torch's dynamic int8, used here before, quantised them per
call and cost ~17 us a product in call overhead alone). The only difference from the float
model is each weight's rounding to 8 bits (at most half a step of ``max|w_n| / 127``).

One row (one stream) runs a compiled GEMV (numba); batches run torch's BLAS on the
dequantised weights ``q * scale``, which are the same numbers, so a stream gets the same
output alone or in a batch (within float32 summation order, ~1e-6).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from hush.models.quantize import quantize_rows

# From this many rows a batch goes to BLAS on the dequantised weights: measured on the
# development machine for the shipped gru's seven products, BLAS took 60 us a row at 4 rows
# and 27 at 17, the compiled GEMV 70-100 us a row at any batch size (it reads each weight
# once per row).
_BLAS_MIN_ROWS = 3


def _compiled(function):
    """numba-compile ``function``, caching the machine code on disk where numba finds a
    writable place (next to this file, else the user's cache folder) and compiling at
    first use in each process where it finds none (a read-only install, no home)."""
    options = {"fastmath": True, "boundscheck": False, "nogil": True}
    try:
        return njit(cache=True, **options)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return njit(**options)(function)


@_compiled
def _gemv_rows(x: np.ndarray, q: np.ndarray, scale: np.ndarray, bias: np.ndarray, out: np.ndarray) -> None:
    """``out[b] = (x[b] @ q.T) * scale + bias`` for each row ``b``.

    ``x [B, K]`` float32, ``q [N, K]`` int8, ``scale``/``bias [N]`` float32, ``out [B, N]``.
    Four output channels at a time share each load of ``x``; ``fastmath`` lets LLVM split
    each sum over SIMD lanes (a different summation order from BLAS: ~1e-6 relative)."""
    n_out, k_in = q.shape
    n_blocked = n_out - n_out % 4
    for b in range(x.shape[0]):
        row = x[b]
        for n in range(0, n_blocked, 4):
            a0 = np.float32(0.0)
            a1 = np.float32(0.0)
            a2 = np.float32(0.0)
            a3 = np.float32(0.0)
            for k in range(k_in):
                xk = row[k]
                a0 += xk * np.float32(q[n, k])
                a1 += xk * np.float32(q[n + 1, k])
                a2 += xk * np.float32(q[n + 2, k])
                a3 += xk * np.float32(q[n + 3, k])
            out[b, n] = a0 * scale[n] + bias[n]
            out[b, n + 1] = a1 * scale[n + 1] + bias[n + 1]
            out[b, n + 2] = a2 * scale[n + 2] + bias[n + 2]
            out[b, n + 3] = a3 * scale[n + 3] + bias[n + 3]
        for n in range(n_blocked, n_out):
            acc = np.float32(0.0)
            for k in range(k_in):
                acc += row[k] * np.float32(q[n, k])
            out[b, n] = acc * scale[n] + bias[n]


class Int8Dense:
    """``x [B, in] @ W^T + b`` with ``W`` stored as per-channel int8; float32 in and out.

    Args:
        weight_t: ``[in, out]`` float weights (the layout ``fast_step._Dense`` reads); each
            output channel is rounded as ``models.quantize.quantize_rows`` rounds it, so an
            already rounded model's weights come back as they are.
        bias: ``[out]``.
    """

    def __init__(self, weight_t: torch.Tensor, bias: torch.Tensor) -> None:
        q, scale = quantize_rows(weight_t.T)  # [out, in], [out]
        self.q, self.scale = np.ascontiguousarray(q.numpy()), scale.numpy()
        self.bias = np.ascontiguousarray(bias.detach().to(torch.float32).numpy())
        self.n_in = self.q.shape[1]
        # the dequantised weights for batches: the numbers the GEMV multiplies by
        dequantized = self.q.astype(np.float32) * self.scale[:, None]
        self.weight_t = torch.from_numpy(np.ascontiguousarray(dequantized.T))
        self.bias_t = torch.from_numpy(self.bias)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] >= _BLAS_MIN_ROWS:
            return torch.addmm(self.bias_t, torch.from_numpy(np.ascontiguousarray(x)), self.weight_t).numpy()
        out = np.empty((x.shape[0], self.q.shape[0]), dtype=np.float32)
        _gemv_rows(np.ascontiguousarray(x, dtype=np.float32), self.q, self.scale, self.bias, out)
        return out

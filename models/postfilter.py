"""An inference-time post-filter that deepens attenuation where the model is unsure.

The form is PercepNet's envelope post-filter (Valin et al., 2020), the one DeepFilterNet
also applies at inference. Each bin's effective gain ``g`` (enhanced over noisy magnitude,
in [0, 1]) is multiplied by

    pf(g) = (1 + beta) / (1 + beta / sin^2(pi * g / 2))

which is 1 at ``g = 1`` and falls towards 0 as ``g`` does: bins the model already judged
mostly noise lose a little more, bins it judged speech keep their level. ``beta = 0`` is
the identity. It is pointwise per bin and frame, so it adds no latency and streaming and
offline stay identical; training never applies it (the trainer calls ``apply_output``
with the default ``post_filter_beta = 0``).
"""

from __future__ import annotations

import math

import torch

# Effective gains are clamped here before the sine: sin(pi/2 * 1e-6)^2 ~ 2.5e-12, so the
# divisor stays finite in float32 and the factor is ~0 where the gain is already ~0.
_MIN_GAIN = 1e-6


def post_filter_factor(gains: torch.Tensor, beta: float) -> torch.Tensor:
    """Multiplier for each bin's output.

    Args:
        gains: ``[..., F]`` effective gains (output magnitude over input magnitude); values
            outside [0, 1] are clamped, so a bin a deep filter lifted above its input keeps
            its level.
        beta: strength, >= 0; 0 returns ones.
    Returns:
        ``[..., F]`` real factors in (0, 1].
    """
    if beta < 0:
        raise ValueError(f"post-filter beta must be >= 0, got {beta}")
    if beta == 0:
        return torch.ones_like(gains)
    sine = torch.sin(gains.clamp(_MIN_GAIN, 1.0) * (math.pi / 2))
    return (1.0 + beta) / (1.0 + beta / sine.square())

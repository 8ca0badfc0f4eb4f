"""Gains for the band above the model's: what a 16 kHz model cannot see at 32, 44.1 or 48 kHz.

At a native rate above the model's, the engine's STFT has the model's bins (0 to 8 kHz,
33.3 Hz apart) and more above them. The model enhances its own bins as at 16 kHz; this
module gives every bin above a real gain derived from the model's own output, the way
WebRTC's noise suppressor treats its upper band (it has no model of its own there).

The model's mean gain over a reference band at the top of its range (4-8 kHz) is its
verdict on the frame: near 1 where speech dominates, near 0 where noise does. Every high
bin gets that gain raised to the power 0.75 (a little gentler than the gain itself):
stateless, no latency, nothing kept per stream, so streaming equals offline by
construction. A per-band noise tracker with a power-subtraction gain scored worse on the
48 kHz validation set (it removes more of the speech's own high band) and was removed;
its numbers and the commit that held it: ``docs/fullband.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class HighBandRule:
    """How the bins above the model's band get their gains.

    Attributes:
        ref_hz: the band of the model's gains whose mean is the reference gain (Hz).
        floor: lowest gain (the attenuation limit may raise it further).
        exponent: the reference gain is raised to this power (below 1: gentler).
    """

    ref_hz: tuple[float, float] = (4000.0, 8000.0)
    floor: float = 0.0
    exponent: float = 0.75

    def __post_init__(self) -> None:
        if not 0.0 <= self.floor <= 1.0 or self.exponent <= 0:
            raise ValueError("high-band floor must be in [0, 1] and exponent > 0")


class HighBand:
    """The high-band gains of one native rate (constants only).

    Args:
        rule: the gain rule.
        model_bins: bins the model covers; the first high bin is this index.
        n_bins: bins of the native STFT.
        bin_hz: spacing of the bins in Hz (the same at every rate).
    """

    def __init__(self, rule: HighBandRule, model_bins: int, n_bins: int, bin_hz: float) -> None:
        if n_bins <= model_bins:
            raise ValueError("no bins above the model's band")
        self.rule = rule
        self.n_high = n_bins - model_bins
        low_freqs = torch.arange(model_bins, dtype=torch.float64) * bin_hz
        ref = ((low_freqs >= rule.ref_hz[0]) & (low_freqs <= rule.ref_hz[1])).nonzero().flatten()
        if ref.numel() == 0:
            raise ValueError(f"no model bin in the reference band {rule.ref_hz}")
        self.ref = slice(int(ref[0]), int(ref[-1]) + 1)

    def gains(self, model_gains: torch.Tensor) -> torch.Tensor:
        """``[..., F_model]`` the model's gains for some frames -> ``[..., F_high]`` gains in
        [0, 1] for the bins above its band (before the attenuation limit)."""
        ref = model_gains[..., self.ref].float().mean(dim=-1, keepdim=True)  # [..., 1]
        if self.rule.exponent != 1.0:
            ref = ref.pow(self.rule.exponent)
        return torch.clamp(ref, min=self.rule.floor).expand(*ref.shape[:-1], self.n_high)

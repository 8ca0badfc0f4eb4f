"""Gains for the band above the model's: what a 16 kHz model cannot see at 32, 44.1 or 48 kHz.

At a native rate above the model's, the engine's STFT has the model's bins (0 to 8 kHz,
33.3 Hz apart) and more above them. The model enhances its own bins as at 16 kHz; this
module gives every bin above a real gain derived from the model's own output, the way
WebRTC's noise suppressor treats its upper band (it has no model of its own there).

The model's mean gain over a reference band at the top of its range (4-8 kHz) is its
verdict on the frame: near 1 where speech dominates, near 0 where noise does. The shipped
rule (``kind="ref"``) gives every high bin that gain raised to the power 0.75 (a little
gentler than the gain itself): stateless, no latency, no state. The alternative, a noise
tracker per high band (a few bands between 8 kHz and Nyquist) that follows the band's
power while the verdict says noise and applies the power-subtraction gain
``sqrt(max(1 - noise / power, 0))`` (``kind="track"``, or averaged with the reference gain,
``"mix"``), keeps one small state row per stream; it scored worse on the 48 kHz validation
set (it removes more of the speech's own high band, which the log-spectral distance
punishes), so it is kept as an option, not the default. Numbers: ``docs/fullband.md``.

Everything is per frame and causal, and the offline path runs the very same step frame by
frame (``run``), so streaming equals offline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class HighBandRule:
    """How the bins above the model's band get their gains.

    Attributes:
        kind: ``"ref"``: every high bin gets the reference gain (stateless); ``"track"``:
            the per-band noise tracker's power-subtraction gain; ``"mix"``: the mean of the two.
        ref_hz: the band of the model's gains whose mean is the reference gain.
        noise_tau_s: time constant of the noise tracker while the model hears only noise.
        floor: lowest gain (the attenuation limit may raise it further).
        exponent: the reference gain is raised to this power (below 1: gentler).
        edges_hz: band edges above the model's band; Nyquist closes the last band.
    """

    kind: str = "ref"
    ref_hz: tuple[float, float] = (4000.0, 8000.0)
    noise_tau_s: float = 0.5
    floor: float = 0.0
    exponent: float = 0.75
    edges_hz: tuple[float, ...] = (8000.0, 9500.0, 11000.0, 13000.0, 15500.0, 18500.0, 22000.0)

    def __post_init__(self) -> None:
        if self.kind not in ("ref", "track", "mix"):
            raise ValueError(f"high-band rule kind must be ref, track or mix, not {self.kind!r}")
        if not 0.0 <= self.floor <= 1.0 or self.noise_tau_s <= 0 or self.exponent <= 0:
            raise ValueError("high-band floor must be in [0, 1], noise_tau_s and exponent > 0")


class HighBand:
    """The high-band gains of one native rate (constants only; each stream owns its state).

    Args:
        rule: the gain rule.
        model_bins: bins the model covers; the first high bin is this index.
        n_bins: bins of the native STFT.
        bin_hz: spacing of the bins in Hz (the same at every rate).
        hop_s: seconds between frames.
    """

    def __init__(self, rule: HighBandRule, model_bins: int, n_bins: int, bin_hz: float, hop_s: float) -> None:
        if n_bins <= model_bins:
            raise ValueError("no bins above the model's band")
        self.rule = rule
        self.first = model_bins
        self.n_high = n_bins - model_bins
        freqs = torch.arange(model_bins, n_bins, dtype=torch.float64) * bin_hz
        nyquist = float(freqs[-1])
        inner = sorted(e for e in rule.edges_hz if freqs[0] < e < nyquist)
        edges = [float(freqs[0]), *inner, nyquist + bin_hz]
        band = torch.bucketize(freqs, torch.tensor(edges[1:-1], dtype=torch.float64), right=True)
        self.n_bands = len(edges) - 1
        # [F_high, bands]: mean power of each band's bins
        member = torch.nn.functional.one_hot(band, self.n_bands).to(torch.float64)
        self.pool = (member / member.sum(0, keepdim=True)).to(torch.float32)
        # [bands, F_high]: linear interpolation of band gains between band centres
        centres = torch.stack([freqs[band == b].mean() for b in range(self.n_bands)])
        interp = torch.zeros(self.n_bands, self.n_high, dtype=torch.float64)
        for k, f in enumerate(freqs):
            j = int(torch.searchsorted(centres, f))
            if j == 0:
                interp[0, k] = 1.0
            elif j == self.n_bands:
                interp[-1, k] = 1.0
            else:
                w = (f - centres[j - 1]) / (centres[j] - centres[j - 1])
                interp[j - 1, k], interp[j, k] = 1.0 - w, w
        self.spread = interp.to(torch.float32)
        low_freqs = torch.arange(model_bins, dtype=torch.float64) * bin_hz
        ref = ((low_freqs >= rule.ref_hz[0]) & (low_freqs <= rule.ref_hz[1])).nonzero().flatten()
        if ref.numel() == 0:
            raise ValueError(f"no model bin in the reference band {rule.ref_hz}")
        self.ref = slice(int(ref[0]), int(ref[-1]) + 1)
        self.alpha = math.exp(-hop_s / rule.noise_tau_s)

    @property
    def state_size(self) -> int:
        """One noise power per band (negative: not yet seen a frame)."""
        return self.n_bands if self.rule.kind != "ref" else 0

    def initial_state(self, batch_size: int = 1) -> torch.Tensor:
        return torch.full((batch_size, self.state_size), -1.0)

    def step(
        self, high: torch.Tensor, gains: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame of ``B`` streams.

        Args:
            high: ``[B, F_high]`` complex spectrum of the bins above the model's band (a
                stateless rule also takes ``[B, T, F_high]``).
            gains: ``[B, F_model]`` the model's gains for the same frame (or frames).
            state: ``[B, state_size]``.
        Returns:
            ``[B, F_high]`` gains in [0, 1] (before the attenuation limit), new state.
        """
        ref = gains[..., self.ref].float().mean(dim=-1, keepdim=True)  # [B, 1]
        if self.rule.exponent != 1.0:
            ref = ref.pow(self.rule.exponent)
        if self.rule.kind == "ref":
            return torch.clamp(ref, min=self.rule.floor).expand(*ref.shape[:-1], self.n_high), state
        power = torch.matmul(high.real.square() + high.imag.square(), self.pool)  # [B, bands]
        noise = torch.where(state < 0, power, state)
        noise = noise + (1.0 - ref) * (1.0 - self.alpha) * (power - noise)
        band_gain = torch.sqrt(torch.clamp(1.0 - noise / (power + 1e-20), min=0.0))
        band_gain = torch.clamp(band_gain, min=self.rule.floor)
        if self.rule.kind == "mix":
            band_gain = 0.5 * (band_gain + ref)
        return torch.matmul(band_gain, self.spread), noise

    def run(
        self, high: torch.Tensor, gains: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``step`` over ``T`` frames in order: ``[B, T, F_high]``, ``[B, T, F_model]`` ->
        ``[B, T, F_high]`` gains, state after the last frame (the offline path; a stateless
        rule takes all frames at once)."""
        if self.state_size == 0:
            return self.step(high, gains, state)
        out = []
        for t in range(high.shape[1]):
            g, state = self.step(high[:, t], gains[:, t], state)
            out.append(g)
        if not out:
            return high.new_zeros(high.shape, dtype=torch.float32), state
        return torch.stack(out, dim=1), state

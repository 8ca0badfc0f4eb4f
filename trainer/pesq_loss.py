"""A differentiable model of wide-band PESQ's disturbance, as a training loss.

Adapted from torch-pesq 0.1.2 (https://github.com/audiolabs/torch-pesq, MIT licence,
copyright Lorenz Schmidt / International AudioLabs Erlangen; notice below). We do not
depend on the package itself: it needs torchaudio, whose wheels pin one torch version each
(the newest on PyPI is older than the torch we run), and torchtyping. What changed here:

- 16 kHz input only (our engine's rate), so no resampler;
- the two IIR filters (level alignment band, pre-emphasis) are applied through their
  frequency response on a zero-padded FFT instead of torchaudio's ``lfilter``: the filters
  decay within a few hundred samples, so the difference is negligible for a loss;
- the STFT is ``torch.stft``; masks are ``torch.where`` rather than in-place writes;
- items whose reference is silent (noise-only training mixtures) are left out, since PESQ's
  level alignment is undefined for them.

Like torch-pesq, it has no time alignment (our estimate and reference are aligned by
construction) and returns ``0.1 * d_symm + 0.0309 * d_asymm``, the part of P.862's MOS
mapping that depends on the signals, so lowering it raises the modelled PESQ.

MIT licence of torch-pesq: Permission is hereby granted, free of charge, to any person
obtaining a copy of this software and associated documentation files (the "Software"), to
deal in the Software without restriction, including without limitation the rights to use,
copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software,
and to permit persons to whom the Software is furnished to do so, subject to the following
conditions: The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT
WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.signal import butter, freqz

from .loss import audible_items

# P.862 tables for 16 kHz, 49 Bark bands (from the reference implementation via torch-pesq).
# fmt: off
_BINS_PER_BAND = [
    1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4,
    3, 4, 5, 4, 5, 6, 6, 7, 8, 9, 9, 12, 12, 15, 16, 18, 21, 25, 20]
_CENTRE_BARK = [
    0.078672, 0.316341, 0.636559, 0.961246, 1.290450, 1.624217, 1.962597, 2.305636, 2.653383,
    3.005889, 3.363201, 3.725371, 4.092449, 4.464486, 4.841533, 5.223642, 5.610866, 6.003256,
    6.400869, 6.803755, 7.211971, 7.625571, 8.044611, 8.469146, 8.899232, 9.334927, 9.776288,
    10.223374, 10.676242, 11.134952, 11.599563, 12.070135, 12.546731, 13.029408, 13.518232,
    14.013264, 14.514566, 15.022202, 15.536238, 16.056736, 16.583761, 17.117382, 17.657663,
    18.204674, 18.758478, 19.319147, 19.886751, 20.461355, 21.043034]
_WIDTH_BARK = [
    0.157344, 0.317994, 0.322441, 0.326934, 0.331474, 0.336061, 0.340697, 0.345381, 0.350114,
    0.354897, 0.359729, 0.364611, 0.369544, 0.374529, 0.379565, 0.384653, 0.389794, 0.394989,
    0.400236, 0.405538, 0.410894, 0.416306, 0.421773, 0.427297, 0.432877, 0.438514, 0.444209,
    0.449962, 0.455774, 0.461645, 0.467577, 0.473569, 0.479621, 0.485736, 0.491912, 0.498151,
    0.504454, 0.510819, 0.517250, 0.523745, 0.530308, 0.536934, 0.543629, 0.550390, 0.557220,
    0.564119, 0.571085, 0.578125, 0.585232]
_POW_DENS_CORRECTION = [
    100.000000, 99.999992, 100.000000, 100.000008, 100.000008, 100.000015, 99.999992, 99.999969,
    50.000027, 100.000000, 99.999969, 100.000015, 99.999947, 100.000061, 53.047077, 110.000046,
    117.991989, 65.000000, 68.760147, 69.999931, 71.428818, 75.000038, 76.843384, 80.968781,
    88.646126, 63.864388, 68.155350, 72.547775, 75.584831, 58.379192, 80.950836, 64.135651,
    54.384785, 73.821884, 64.437073, 59.176456, 65.521278, 61.399822, 58.144047, 57.004543,
    64.126297, 54.311001, 61.114979, 55.077751, 56.849335, 55.628868, 53.137054, 54.985844,
    79.546974]
_ABS_THRESH_POWER = [
    51286152.0, 2454709.5, 70794.59375, 4897.788574, 1174.897705, 389.045166, 104.71286,
    45.70882, 17.782795, 9.772372, 4.897789, 3.090296, 1.905461, 1.258925, 0.977237, 0.724436,
    0.562341, 0.457088, 0.389045, 0.331131, 0.295121, 0.269153, 0.25704, 0.251189, 0.251189,
    0.251189, 0.251189, 0.263027, 0.288403, 0.30903, 0.338844, 0.371535, 0.398107, 0.436516,
    0.467735, 0.489779, 0.501187, 0.501187, 0.512861, 0.524807, 0.524807, 0.524807, 0.512861,
    0.47863, 0.42658, 0.371535, 0.363078, 0.416869, 0.537032]
# fmt: on
_SP = 6.910853e-006  # power density scaling of the 16 kHz tables
_SL = 1.866055e-001  # loudness scaling
_ZWICKER_POWER = 0.23
_N_FFT, _HOP = 512, 256  # PESQ's 32 ms frames, half overlapping, at 16 kHz
_FILTER_TAIL = 2048  # zero padding that holds the IIR filters' decay (samples)
_PRE_EMPHASIS = ([2.740826, -5.4816519, 2.740826], [1.0, -1.9444777, 0.94597794])


def _iir_response(b, a, n_fft: int) -> torch.Tensor:
    """``[n_fft // 2 + 1]`` complex frequency response of the IIR filter ``b / a``."""
    _, h = freqz(b, a, worN=n_fft // 2 + 1, include_nyquist=True)
    return torch.as_tensor(h, dtype=torch.complex64)


class PesqDisturbanceLoss(torch.nn.Module):
    """``0.1 * d_symm + 0.0309 * d_asymm`` of wide-band PESQ, per item, differentiable.

    Lower is better; with a perfect estimate it is 0. It is subtracted from 4.5 before
    P.862's mapping to MOS-LQO (see ``mos``), whose slope is at most 1.37 MOS per unit.
    """

    def __init__(self) -> None:
        super().__init__()
        n_bins = _N_FFT // 2
        fbank = torch.zeros(len(_BINS_PER_BAND), n_bins)
        start = 0
        for band, width in enumerate(_BINS_PER_BAND):
            fbank[band, start : start + width] = 1.0
            start += width
        self.register_buffer("fbank", fbank)
        self.register_buffer("pow_dens_correction", torch.tensor(_POW_DENS_CORRECTION) * _SP)
        width_bark = torch.tensor(_WIDTH_BARK)
        self.register_buffer("width_bark", width_bark)
        self.total_width = float(width_bark[1:].sum())
        self.register_buffer("threshs", torch.tensor(_ABS_THRESH_POWER).view(1, 1, -1))
        exponent = (6 / (torch.tensor(_CENTRE_BARK) + 2.0)).clamp(1.0, 2.0) ** 0.15 * _ZWICKER_POWER
        self.register_buffer("exponent", exponent)
        self.register_buffer("window", torch.hann_window(_N_FFT))
        self._responses: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def _filter_responses(self, n_fft: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The two filters' responses on an ``n_fft`` grid, made once per length and device."""
        key = (n_fft, device)
        if key not in self._responses:
            band = butter(5, [325, 3250], fs=16000, btype="band")
            self._responses[key] = (
                _iir_response(band[0], band[1], n_fft).to(device),
                _iir_response(*_PRE_EMPHASIS, n_fft).to(device),
            )
        return self._responses[key]

    @staticmethod
    def _filter(signal: torch.Tensor, response: torch.Tensor, n_fft: int) -> torch.Tensor:
        spectrum = torch.fft.rfft(signal, n=n_fft) * response
        return torch.fft.irfft(spectrum, n=n_fft)[..., : signal.shape[-1]]

    def _prepare(self, signal: torch.Tensor, level: torch.Tensor, emphasis: torch.Tensor, n_fft: int):
        # level alignment: power in the 325 Hz - 3.25 kHz band to 1e7 (P.862's constants)
        band = self._filter(signal, level, n_fft)
        power = band.square().sum(-1, keepdim=True) / (signal.shape[-1] + 5120) / 1.04684
        signal = signal * (1e7 / power.clamp_min(1e-20)).sqrt()
        # fade the first and last 15 samples, then the pre-emphasis filter
        ramp = torch.arange(1, 16, device=signal.device, dtype=signal.dtype) / 16.0
        fade = torch.ones(signal.shape[-1], device=signal.device, dtype=signal.dtype)
        fade[:15] = ramp
        fade[-15:] = ramp.flip(0)
        return self._filter(signal * fade, emphasis, n_fft)

    def _bark_power(self, signal: torch.Tensor) -> torch.Tensor:
        """``[B, S]`` -> ``[B, frames, 49]`` Bark power densities."""
        spec = torch.stft(signal, _N_FFT, _HOP, window=self.window, center=False, return_complex=True)
        power = (spec.real.square() + spec.imag.square()).transpose(1, 2)[..., :-1]
        power = power.clone()
        power[..., 0] = 0.0  # P.862 ignores the DC bin
        return torch.einsum("bj,ftj->ftb", self.fbank, power) * self.pow_dens_correction

    def _audible_total(self, bark: torch.Tensor, factor: float) -> torch.Tensor:
        return torch.where(bark > self.threshs * factor, bark, 0.0).sum(-1)

    def _loudness(self, bark: torch.Tensor) -> torch.Tensor:
        relative = 0.5 + 0.5 * bark / self.threshs
        loud = (2.0 * self.threshs) ** self.exponent * (relative**self.exponent - 1)
        return torch.where(bark > self.threshs, loud, 0.0) * _SL

    def _weighted_norm(self, x: torch.Tensor, p: float) -> torch.Tensor:
        scaled = (self.width_bark * x / self.total_width ** (1 / p))[..., 1:]
        # a norm whose gradient stays finite at zero
        return self.total_width * (scaled.abs().pow(p).sum(-1) + 1e-20).pow(1 / p)

    def forward(self, reference: torch.Tensor, degraded: torch.Tensor) -> torch.Tensor:
        """Args:
            reference, degraded: ``[B, S]`` 16 kHz audio, time-aligned, ``S >= 512``.
        Returns:
            ``[B]`` disturbance per item; 0 for items whose reference is silent.
        """
        reference, degraded = reference.float(), degraded.float()
        audible = audible_items(reference)
        result = reference.new_zeros(reference.shape[0])
        if not audible.any():
            return result
        # silent items are left out by indexing, not masked: a mask would still pass their
        # non-finite gradients (level alignment of silence) through as NaN
        # fp32 even under mixed precision: the level alignment scales power to 1e7
        with torch.autocast(device_type=reference.device.type, enabled=False):
            result[audible] = self._disturbance(reference[audible], degraded[audible])
        return result

    def _disturbance(self, reference: torch.Tensor, degraded: torch.Tensor) -> torch.Tensor:
        peak = torch.maximum(degraded.abs().amax(-1, keepdim=True), reference.abs().amax(-1, keepdim=True))
        peak = peak.clamp_min(1e-8)
        reference, degraded = reference / peak, degraded / peak
        n_fft = 1 << int(np.ceil(np.log2(reference.shape[-1] + _FILTER_TAIL)))
        level, emphasis = self._filter_responses(n_fft, reference.device)
        ref = self._bark_power(self._prepare(reference, level, emphasis, n_fft))
        deg = self._bark_power(self._prepare(degraded, level, emphasis, n_fft))

        # per-band equalisation of the reference to the degraded signal over speech frames
        speech = (self._audible_total(ref, 1e2) >= 1e7).unsqueeze(-1)
        loud_enough = self.threshs * 100.0

        def time_average(x: torch.Tensor) -> torch.Tensor:
            return torch.where((x > loud_enough) & speech, x, 0.0).mean(1)

        ratio = ((time_average(deg) + 1000) / (time_average(ref) + 1000)).unsqueeze(1).clamp(0.01, 100.0)
        equ_ref = ratio * ref
        # per-frame gain equalisation of the degraded signal, smoothed over time
        frame_ratio = (self._audible_total(equ_ref, 1) + 5e3) / (self._audible_total(deg, 1) + 5e3)
        frame_ratio = torch.cat([frame_ratio[:, :1], frame_ratio[:, 1:] * 0.8 + frame_ratio[:, :-1] * 0.2], 1)
        equ_deg = frame_ratio.clamp(3e-4, 5.0).unsqueeze(-1) * deg

        deg_loud, ref_loud = self._loudness(equ_deg), self._loudness(equ_ref)
        difference = deg_loud - ref_loud
        deadzone = 0.25 * torch.minimum(deg_loud, ref_loud)
        disturbance = difference.sign() * (difference.abs() - deadzone).clamp_min(0)
        symmetric = self._weighted_norm(disturbance, 2).clamp_min(1e-20)
        asym_factor = ((equ_deg + 50.0) / (equ_ref + 50.0)) ** 1.2
        asym_factor = torch.where(asym_factor < 3.0, 0.0, asym_factor.clamp(max=12.0))
        asymmetric = self._weighted_norm(disturbance * asym_factor, 1).clamp_min(1e-20)
        weight = ((self._audible_total(equ_ref, 1) + 1e5) / 1e7) ** 0.04
        symmetric = (symmetric / weight).clamp(max=45.0)
        asymmetric = (asymmetric / weight).clamp(max=45.0)

        def aggregate(per_frame: torch.Tensor) -> torch.Tensor:
            # L6 over 20-frame windows half overlapping, then L2 over the windows
            windows = per_frame.unfold(1, 20, 10) if per_frame.shape[1] >= 20 else per_frame.unsqueeze(1)
            # clamped so that the roots' gradients stay finite where the disturbance underflows
            return (
                windows.pow(6).mean(-1).clamp_min(1e-30).pow(1 / 6).square().mean(-1).clamp_min(1e-30).sqrt()
            )

        return 0.1 * aggregate(symmetric) + 0.0309 * aggregate(asymmetric)

    def mos(self, reference: torch.Tensor, degraded: torch.Tensor) -> torch.Tensor:
        """``[B]`` P.862 raw MOS mapped to the MOS-LQO range, for checking against ``pesq``."""
        raw = 4.5 - self.forward(reference, degraded)
        return 0.999 + 4 / (1 + torch.exp(-1.3669 * raw + 3.8224))

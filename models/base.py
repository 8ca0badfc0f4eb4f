"""The interface every gain model implements, whatever its family."""

from __future__ import annotations

import torch
from torch import nn

from .config import RecurrentConfig, SplicedConfig
from .features import FeatureConfig, log_power
from .postfilter import post_filter_factor


class GainModel(nn.Module):
    """Predicts a spectral gain in [0, 1] per frequency bin and frame from log-power features.

    Two APIs that must agree (``tests/test_models.py`` checks it):

    * ``forward(log_pow [B, T, F], state [B, S]) -> (gains [B, T, F], state [B, S])``:
      the sequence API, used for training and whole files.
    * ``step(log_pow [B, F], state [B, S]) -> (gains [B, F], state [B, S])``: one frame for
      each of ``B`` independent streams.

    The whole per-stream state is ONE float tensor row of ``state_size`` values, so a
    server can gather the rows of many streams with ``torch.stack`` and scatter them back
    with ``unbind``; the model itself is shared and read-only.

    Output index ``t`` is the gain for input frame ``t - lookahead_frames``: a model that
    looks ahead emits its first gains for frames that precede the signal, and callers drop
    them (the streaming engine delays the spectrum to match).

    A model may emit more than one gain per bin: ``output_size`` columns per frame, of which
    the first ``F`` are always the gains. Callers turn an output into an enhanced spectrum
    with ``apply_output``, which may also read the ``filter_history_frames`` spectra before
    the frame (a deep filter does); for a plain gain model it is ``spectrum * gains``.
    """

    features: FeatureConfig
    arch: RecurrentConfig | SplicedConfig
    #: Strength of the inference post-filter (``models/postfilter.py``) the weight file
    #: asks for; 0 = off. Set by ``load_weights``; callers pass it to ``apply_output``.
    post_filter_beta: float = 0.0

    def __init__(self, features: FeatureConfig) -> None:
        super().__init__()
        self.features = features
        self.n_bins = features.n_bins

    @property
    def lookahead_frames(self) -> int:
        return 0

    @property
    def state_size(self) -> int:
        raise NotImplementedError

    @property
    def input_size(self) -> int:
        """Columns of one frame's input: ``F`` log powers, then whatever else the model reads."""
        return self.n_bins

    def input_features(self, spectra: torch.Tensor) -> torch.Tensor:
        """The model's input for ``T`` frames.

        Args:
            spectra: ``[B, H + T, F]`` complex, laid out as for ``apply_output``: the
                ``H = filter_history_frames`` spectra before the first frame, then the frames.
        Returns:
            ``[B, T, input_size]`` real; here the log power of each frame.
        """
        return log_power(spectra[:, self.filter_history_frames :], self.features)

    @property
    def output_size(self) -> int:
        """Columns of one frame's output: ``F`` gains, then whatever else the model emits."""
        return self.n_bins

    @property
    def input_layout(self) -> str:
        """The input's columns in words, for exported graphs' metadata."""
        return f"log_power[{self.n_bins}]"

    @property
    def output_layout(self) -> str:
        """The output's columns in words, for exported graphs' metadata."""
        return f"gains[{self.n_bins}]"

    @property
    def filter_history_frames(self) -> int:
        """Past spectra ``apply_output`` reads besides the frame itself (0: gains only)."""
        return 0

    def with_filter_history(self, spectra: torch.Tensor) -> torch.Tensor:
        """``[B, T, F]`` spectra of a signal from its start -> ``[B, H + T, F]`` with the
        ``H = filter_history_frames`` zero spectra before the signal in front, the layout
        ``input_features`` and ``apply_output`` read."""
        history = spectra.new_zeros(spectra.shape[0], self.filter_history_frames, spectra.shape[2])
        return torch.cat([history, spectra], dim=1)

    def apply_output(
        self,
        spectra: torch.Tensor,
        output: torch.Tensor,
        min_gain: torch.Tensor | float = 0.0,
        post_filter_beta: float = 0.0,
    ) -> torch.Tensor:
        """Enhance ``T`` frames with the model's output for them.

        Args:
            spectra: ``[B, H + T, F]`` complex: the ``H = filter_history_frames`` spectra
                before the first frame (zeros before the signal starts), then the ``T`` frames.
            output: ``[B, T, output_size]`` the model's output for those frames.
            min_gain: floor on each bin's gain, a float or ``[B, 1, 1]`` (attenuation limit).
            post_filter_beta: inference post-filter strength (0 = off), applied before the
                floor so an attenuation limit still holds.
        Returns:
            ``[B, T, F]`` complex enhanced spectra.
        """
        gains = output.float()
        if post_filter_beta > 0:
            gains = gains * post_filter_factor(gains, post_filter_beta)
        if not isinstance(min_gain, float) or min_gain > 0:
            gains = torch.clamp(gains, min=min_gain)
        return spectra * gains

    def initial_state(self, batch_size: int = 1) -> torch.Tensor:
        """``[batch_size, state_size]`` state of a stream that has seen nothing yet."""
        raise NotImplementedError

    def step(self, log_pow: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gains, state = self.forward(log_pow.unsqueeze(1), state)
        return gains.squeeze(1), state

    @property
    def latency_samples(self) -> int:
        """Algorithmic latency: one window plus one hop per frame of lookahead."""
        return self.features.win_length + self.lookahead_frames * self.features.hop_length

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def macs_per_frame(self) -> int:
        """Multiply-accumulates of one ``step`` for one stream (matrix products only)."""
        raise NotImplementedError

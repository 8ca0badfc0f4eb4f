"""The private half of the streaming engine: everything one audio stream owns.

``Stream.feed`` takes any number of samples and returns the enhanced samples that are
ready; ``flush`` returns the rest, so that samples out == samples in; ``reset`` starts
over. A stream holds no model: it borrows its ``Enhancer``'s, and its own state is a few
small arrays (about 2 KB for the default GRU). ``step_streams`` advances many streams with
one batched model call, which is how the service serves many of them at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .engine import Enhancer, min_gain_from_db


class StreamFinishedError(RuntimeError):
    """``feed`` or ``flush`` was called after ``flush``; call ``reset`` to reuse the stream."""


class Stream:
    """One stream's state over a shared ``Enhancer``.

    Args:
        enhancer: the shared model and DSP constants.
        attenuation_limit_db: cap on noise attenuation in dB (``None``: unlimited);
            change it mid-stream with ``set_attenuation_limit``.
    """

    def __init__(self, enhancer: Enhancer, attenuation_limit_db: float | None = None) -> None:
        self.enhancer = enhancer
        self.set_attenuation_limit(attenuation_limit_db)
        self.reset()

    # ------------------------------------------------------------------ public API
    @property
    def latency_samples(self) -> int:
        """Worst-case algorithmic latency in samples (one window plus lookahead hops)."""
        return self.enhancer.latency_samples

    @property
    def latency_ms(self) -> float:
        return self.enhancer.latency_ms

    @property
    def sample_rate(self) -> int:
        return self.enhancer.sample_rate

    def reset(self) -> None:
        """Forget everything: the stream behaves as if just created."""
        hop, win = self.enhancer.hop, self.enhancer.win
        self.model_state, self.spec_queue = self.enhancer.initial_state(1)
        # the newest input samples of the previous analysis frame
        self._history = np.zeros(self.enhancer.frame_length - hop, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)  # input not yet framed (< hop after a step)
        self._ola = np.zeros(win - hop, dtype=np.float32)  # second halves awaiting overlap-add
        self._ready: list[np.ndarray] = []
        self._to_discard = self.enhancer.output_delay
        self.samples_in = 0
        self.samples_out = 0
        self.frames_processed = 0
        self.finished = False

    def set_attenuation_limit(self, attenuation_limit_db: float | None) -> None:
        self.min_gain = min_gain_from_db(attenuation_limit_db)
        self.attenuation_limit_db = attenuation_limit_db

    def feed(self, samples: np.ndarray | Sequence[float]) -> np.ndarray:
        """Push any number of samples (mono, float, at ``sample_rate``); get what is ready.

        Returns:
            ``[n]`` float32 enhanced samples, continuing exactly where the last call stopped.
        """
        self.push(samples)
        while self.frames_ready:
            step_streams([self])
        return self.pop_output()

    def flush(self) -> np.ndarray:
        """End of input: return the remaining enhanced samples (zero-padding the last frames)."""
        if self.finished:
            raise StreamFinishedError("stream already flushed; call reset() to start a new one")
        enhancer = self.enhancer
        if self.samples_in:
            target_frames = enhancer.total_frames(self.samples_in)
            consumed = self.frames_processed * enhancer.hop + self._pending.shape[0]
            padding = target_frames * enhancer.hop - consumed
            self._pending = np.concatenate([self._pending, np.zeros(padding, dtype=np.float32)])
            while self.frames_ready:
                step_streams([self])
        out = self.pop_output(limit=self.samples_in - self.samples_out)
        self.finished = True
        return out

    # ------------------------------------------------------------------ batching hooks
    def push(self, samples: np.ndarray | Sequence[float]) -> None:
        """Queue input without processing it (the service batches the processing)."""
        if self.finished:
            raise StreamFinishedError("stream already flushed; call reset() to start a new one")
        chunk = np.asarray(samples, dtype=np.float32)
        if chunk.ndim != 1:
            raise ValueError(f"expected a 1-D chunk of mono samples, got shape {chunk.shape}")
        if chunk.size and not np.isfinite(chunk).all():
            raise ValueError("audio contains NaN or infinite samples")
        if chunk.size:
            self._pending = np.concatenate([self._pending, chunk]) if self._pending.size else chunk.copy()
            self.samples_in += chunk.size

    @property
    def frames_ready(self) -> int:
        """Whole hops of input waiting for the model."""
        return self._pending.shape[0] // self.enhancer.hop

    def pop_output(self, limit: int | None = None) -> np.ndarray:
        """Everything enhanced so far and not yet returned (at most ``limit`` samples)."""
        out = np.concatenate(self._ready) if self._ready else np.zeros(0, dtype=np.float32)
        self._ready = []
        if limit is not None:
            out = out[: max(limit, 0)]
        self.samples_out += out.shape[0]
        return out

    def pop_blocks(self) -> list[np.ndarray]:
        """``pop_output`` as the list of blocks it would join (each ``[n]`` float32, in
        order), for a caller that joins many streams' output in one call (the service)."""
        blocks, self._ready = self._ready, []
        self.samples_out += sum(block.shape[0] for block in blocks)
        return blocks

    def _take_frame(self) -> np.ndarray:
        hop = self.enhancer.hop
        frame = np.concatenate([self._history, self._pending[:hop]])
        self._history = frame[hop:]
        self._pending = self._pending[hop:]
        return frame

    def _take_frame_into(self, row: np.ndarray) -> None:
        """``_take_frame`` writing into ``row`` (a row of the batch array) instead of a new array."""
        hop = self.enhancer.hop
        keep = row.shape[0] - hop
        row[:keep] = self._history
        row[keep:] = self._pending[:hop]
        self._history = row[hop:]
        self._pending = self._pending[hop:]

    def _put_frame(self, out_frame: np.ndarray) -> None:
        hop = self.enhancer.hop
        block = self._ola + out_frame[:hop]
        self._ola = out_frame[hop:].copy()
        self.frames_processed += 1
        if self._to_discard:
            drop = min(self._to_discard, hop)
            self._to_discard -= drop
            block = block[drop:]
        if block.size:
            self._ready.append(block)


def step_streams(streams: Sequence[Stream]) -> int:
    """Advance every stream that has a whole hop of input by one frame, in ONE model call.

    All streams must share one ``Enhancer``. Each stream's state row is gathered into a
    batch, stepped, and scattered back. Returns the number of streams advanced.
    """
    active = [s for s in streams if s.frames_ready]
    if not active:
        return 0
    enhancer = active[0].enhancer
    for stream in active:
        if stream.enhancer is not enhancer:
            raise ValueError("step_streams needs streams that share one Enhancer")
    # The NumPy step (fast_step.py) takes and returns NumPy arrays, the torch path tensors;
    # a stream's state is whichever its enhancer's step returned.
    fast = enhancer.fast_step is not None
    if len(active) == 1:
        stream = active[0]
        frame = stream._take_frame()[None]
        out, stream.model_state, stream.spec_queue = enhancer.process_frames(
            frame if fast else torch.from_numpy(frame), stream.model_state, stream.spec_queue, stream.min_gain
        )
        stream._put_frame(np.asarray(out[0]))
        return 1
    # The per-stream Python below runs for every stream every 10 ms, so it is kept to the
    # minimum: frames are written straight into one batch array, states are scattered back
    # with one split() (views, no copies), and the gain floor and the empty lookahead queue
    # are only built when some stream needs them. The numbers are the same as stepping the
    # streams one by one (tests/test_streaming.py checks it).
    n = len(active)
    frames_np = np.empty((n, enhancer.frame_length), dtype=np.float32)
    for i, stream in enumerate(active):
        stream._take_frame_into(frames_np[i])
    queued = enhancer.queue_frames > 0
    floors = [s.min_gain for s in active]
    if fast:
        # NumPy rows: gathered with one concatenate, scattered as slices (0.2 us a row
        # against about 1 us for a torch view)
        model_state = np.concatenate([s.model_state for s in active])
        spec_queue = np.concatenate([s.spec_queue for s in active]) if queued else active[0].spec_queue
        min_gain: torch.Tensor | np.ndarray | float = (
            np.array(floors, dtype=np.float32)[:, None] if any(floors) else 0.0
        )
        out, model_state, spec_queue = enhancer.process_frames(frames_np, model_state, spec_queue, min_gain)
        for i, stream in enumerate(active):
            stream.model_state = model_state[i : i + 1]
            if queued:
                stream.spec_queue = spec_queue[i : i + 1]
            stream._put_frame(out[i])
        return n
    model_state = torch.cat([s.model_state for s in active])
    if queued:
        spec_queue = torch.cat([s.spec_queue for s in active])
    else:
        spec_queue = active[0].spec_queue.expand(n, -1, -1)  # [n, 0, F]: nothing to gather
    min_gain = torch.tensor(floors, dtype=torch.float32).unsqueeze(1) if any(floors) else 0.0
    out, model_state, spec_queue = enhancer.process_frames(
        torch.from_numpy(frames_np), model_state, spec_queue, min_gain
    )
    out_np = out.numpy()
    states = model_state.split(1)
    queues = spec_queue.split(1) if queued else None
    for i, stream in enumerate(active):
        stream.model_state = states[i]
        if queues is not None:
            stream.spec_queue = queues[i]
        stream._put_frame(out_np[i])
    return n

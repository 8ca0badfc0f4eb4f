"""Peer wrappers: same length as the input, finite, and time-aligned with it.

A peer whose package is not installed, or whose ONNX files are not in the peers folder
(../shared/peers, absent in CI), is skipped.
"""

import numpy as np
import pytest

pytest.importorskip("pesq")
from test_eval import add_noise, voiced

from hush.evaluation.metrics import si_sdr
from hush.evaluation.peers import PEERS, default_peers_dir, load_peer, peer_problem


def lag_samples(reference: np.ndarray, estimate: np.ndarray, max_lag: int = 2000) -> int:
    """Delay of ``estimate`` relative to ``reference`` (positive: late), by cross-correlation."""
    size = 1 << int(np.ceil(np.log2(2 * reference.shape[0])))
    corr = np.fft.irfft(np.fft.rfft(estimate, size) * np.conj(np.fft.rfft(reference, size)), size)
    corr = np.concatenate([corr[-max_lag:], corr[: max_lag + 1]])
    return int(np.argmax(corr)) - max_lag


@pytest.mark.parametrize("name", list(PEERS))
def test_peer_output_is_aligned(name):
    peers_dir = default_peers_dir()
    problem = peer_problem(name, peers_dir)
    if problem:
        pytest.skip(f"{name}: {problem}")
    peer = load_peer(name, peers_dir)
    clean = voiced(2.0, seed=5)
    noisy = add_noise(clean, 20.0, seed=6)
    out = peer.enhance(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert lag_samples(clean, out) == 0
    # aligned output resembles the clean signal far better than a 1 ms shifted copy would
    assert si_sdr(clean, out) > si_sdr(clean, np.roll(clean, 16)) + 3
    # a second file gets fresh state: same input, same output
    np.testing.assert_allclose(peer.enhance(noisy), out, atol=1e-5)

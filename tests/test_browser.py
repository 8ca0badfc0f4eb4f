"""The browser demo, end to end: Debian's chromium (headless, via Playwright) against the
real app under uvicorn (``hush serve``), with a fake microphone fed from a noisy wav.

Which model, and why: the page must play *enhanced* audio, so the test checks that what
comes back has much less energy in the speech pauses than what went out. A randomly
initialised tiny model cannot pass that check honestly, and the shipped weights may not
exist yet (nor should a unit test depend on them). So the test trains a tiny GRU for about
two seconds on the same kind of synthetic speech (harmonic vowels with pauses) in white
noise, saves it as a weight file and serves it. What this proves is the plumbing, not the
model's quality: capture, the WebSocket protocol, the server's streaming, playback
buffers and recording all carry the model's output, sample for sample (the received audio
must also equal offline enhancement of the sent audio with the same weights).

Also covered: the API-key error (1008), the overloaded error (1013), a denied microphone,
a lost connection, file mode (upload, both spectrograms, players, download link), and
that every request the page makes goes to hush itself (no CDN).
A screenshot is saved to ``out/browser-test/demo-page.png`` (the README's copy lives in
``docs/img/demo-page.png``).
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import speech_like
from hush.models import FeatureConfig, RecurrentConfig, build_model, load_weights, save_weights
from hush.models.features import analysis, frame_signal, log_power, sqrt_hann_window
from hush.streaming import Enhancer
from hush.streaming.audio_io import enhance_signal

playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("HUSH_TEST_ARTIFACTS", REPO / "out" / "browser-test"))
API_KEY = "browser-test-key"
CHROMIUM_FLAGS = [
    "--use-fake-device-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    for candidate in (os.environ.get("HUSH_CHROMIUM"), "chromium", "chromium-browser"):
        path = candidate and shutil.which(candidate)
        if path:
            return path
    pytest.skip("chromium is not installed (Debian: apt-get install -y chromium); .ci/run installs it")


# ---------------------------------------------------------------------------- the model
def train_tiny_denoiser(folder: Path, name: str = "tiny-trained", steps: int = 60) -> Path:
    """A tiny GRU trained for ~2 s on synthetic speech in white noise; returns its JSON path.

    Data: random 1 s crops of the clean speech-like signal and of white noise, each with a
    random gain (so the model cannot rely on one level). Loss: the trainer's kind of
    compressed-magnitude spectral MSE. Seeded: the same weights every run.
    """
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_model(
        FeatureConfig(), RecurrentConfig(cell="gru", hidden_size=32, num_layers=1, dropout=0.0)
    ).train()
    cfg = model.features
    window = sqrt_hann_window(cfg.win_length)
    clean = speech_like(20.0, rate=16000, noise=0.0)
    noise = 0.02 * np.random.default_rng(1).standard_normal(clean.size).astype(np.float32)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    batch, length = 8, 16000
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            starts = rng.integers(0, clean.size - length, size=(batch, 2))
            c = np.stack([clean[a : a + length] for a, _ in starts]) * rng.uniform(0.3, 2.0, (batch, 1))
            n = np.stack([noise[b : b + length] for _, b in starts]) * rng.uniform(0.3, 2.0, (batch, 1))
            c = torch.tensor(c, dtype=torch.float32)
            noisy = c + torch.tensor(n, dtype=torch.float32)
            clean_spec = analysis(frame_signal(c, cfg), window)
            noisy_spec = analysis(frame_signal(noisy, cfg), window)
            gains, _ = model(log_power(noisy_spec, cfg), model.initial_state(batch))
            estimate = noisy_spec * gains
            loss = (estimate.abs().add(1e-12).pow(0.3) - clean_spec.abs().add(1e-12).pow(0.3)).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return save_weights(model.eval(), folder, name, description="browser-test denoiser (2 s of training)")


# ---------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``hush serve`` in a subprocess: the real app under uvicorn."""

    def __init__(self, models_dir: Path, model: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "HUSH_LOG_LEVEL": "warning", **env}
        self.log = (ARTIFACTS / "server.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "hush.cli", "serve", "--port", str(self.port)),
                *("--models-dir", str(models_dir), "--model", model),
            ],
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hush serve exited with {self.process.returncode}; see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"hush serve not ready after {timeout} s; see {self.log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# ---------------------------------------------------------------------------- helpers
# Base64 of a typed array's bytes (page.evaluate returns JSON; this keeps floats exact).
B64 = """const b64 = (a) => {
    const u = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    let s = "";
    for (let i = 0; i < u.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
    }
    return btoa(s);
  };"""

READ_RECORDING = f"""() => {{
  {B64}
  const r = window.hushApp.live.recording();
  return {{ rate: r.sampleRate, start: r.start, raw: b64(r.raw), enhanced: b64(r.enhanced) }};
}}"""

READ_DOWNLOAD = f"""async () => {{
  {B64}
  const a = document.getElementById("download");
  const bytes = new Uint8Array(await (await fetch(a.href)).arrayBuffer());
  return {{ name: a.download, data: b64(bytes) }};
}}"""


def floats(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f4")


def frame_energy(x: np.ndarray, frame: int) -> np.ndarray:
    usable = x.size // frame * frame
    return np.square(x[:usable].astype(np.float64)).reshape(-1, frame).mean(axis=1)


def pause_and_speech_db(sent: np.ndarray, received: np.ndarray, rate: int) -> tuple[float, float]:
    """Energy of received relative to sent, in dB, over the sent signal's quietest 30 % of
    20 ms frames (the pauses: noise only) and its loudest 20 % (speech)."""
    e_sent, e_recv = frame_energy(sent, rate // 50), frame_energy(received, rate // 50)
    pauses = e_sent <= np.percentile(e_sent, 30)
    speech = e_sent >= np.percentile(e_sent, 80)

    def ratio(mask: np.ndarray) -> float:
        return float(10 * np.log10(e_recv[mask].sum() / e_sent[mask].sum()))

    return ratio(pauses), ratio(speech)


def wait_for(page, js: str, timeout_s: float, what: str) -> None:
    try:
        page.wait_for_function(js, timeout=timeout_s * 1000)
    except playwright_api.TimeoutError:
        status = page.inner_text("#live-status")
        error = page.inner_text("#live-error")
        pytest.fail(f"timed out waiting for {what} (status {status!r}, error {error!r})")


# ---------------------------------------------------------------------------- the test
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    chromium = chromium_path()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    folder = tmp_path_factory.mktemp("browser")
    weights = train_tiny_denoiser(folder / "weights")
    # The fake microphone: speech-like vowels with pauses in white noise, 8 s, looped by chromium.
    mic = folder / "noisy-mic.wav"
    sf.write(mic, speech_like(8.0, rate=48000, seed=3), 48000, subtype="PCM_16")
    server = Server(folder / "weights", "tiny-trained", HUSH_API_KEYS=API_KEY, HUSH_MAX_SESSIONS="1")
    try:
        yield {"chromium": chromium, "weights": weights, "mic": mic, "server": server, "folder": folder}
    finally:
        server.stop()


def test_browser_demo_end_to_end(served):
    server, mic = served["server"], served["mic"]
    model, _ = load_weights(served["weights"])
    enhancer = Enhancer(model, "tiny-trained")
    flags = [*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={mic}"]
    with playwright_api.sync_playwright() as p:
        # 0. A denied microphone: without the fake UI to accept the prompt, headless chromium denies.
        browser = p.chromium.launch(executable_path=served["chromium"], headless=True, args=flags)
        page = browser.new_page()
        page.goto(server.url)
        page.click("#start")
        wait_for(page, "document.getElementById('live-error').dataset.kind === 'mic-denied'", 20, "denial")
        assert "denied" in page.inner_text("#live-error")
        assert page.inner_text("#live-status") == "stopped"
        browser.close()

        browser = p.chromium.launch(
            executable_path=served["chromium"], headless=True, args=[*flags, "--use-fake-ui-for-media-stream"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda err: page_errors.append(str(err)))
        requests: list[str] = []
        context.on("request", lambda request: requests.append(request.url))
        page.goto(server.url)
        assert page.title().startswith("hush")

        # 1. No API key: the server closes with 1008 and the page says what to do.
        page.click("#start")
        wait_for(page, "document.getElementById('live-error').dataset.kind === 'auth'", 20, "the auth error")
        assert "API key" in page.inner_text("#live-error")
        page.fill("#api-key", API_KEY)
        page.dispatch_event("#api-key", "change")
        wait_for(page, "document.getElementById('model').value === 'tiny-trained'", 10, "the model list")

        # 2. File mode: upload, both spectrograms and players, a download of the same length.
        page.set_input_files("#file-input", str(mic))
        wait_for(page, "document.getElementById('file-status').dataset.state === 'done'", 30, "file mode")
        assert page.is_visible("#spec-noisy") and page.is_visible("#spec-enhanced")
        assert page.get_attribute("#player-noisy", "src").startswith("blob:")
        assert page.get_attribute("#player-enhanced", "src").startswith("blob:")
        download = page.evaluate(READ_DOWNLOAD)
        assert download["name"] == "noisy-mic-enhanced.wav"
        enhanced_file, rate = sf.read(io.BytesIO(base64.b64decode(download["data"])))
        noisy_file, _ = sf.read(mic)
        assert rate == 48000 and enhanced_file.shape == noisy_file.shape
        pause_db, _ = pause_and_speech_db(noisy_file, enhanced_file, rate)
        assert pause_db < -10, pause_db

        # 3. Live: connect, stream, receive enhanced audio, show the measured round trip.
        page.click("#start")
        wait_for(
            page, "document.getElementById('live-status').dataset.state === 'streaming'", 20, "streaming"
        )
        assert page.is_hidden("#live-error")
        wait_for(
            page, "window.hushApp.live.received >= 6 * window.hushApp.live.rate", 40, "6 s of audio back"
        )
        wait_for(page, "document.getElementById('rtt').dataset.ms !== ''", 5, "a round-trip figure")
        rtt_ms = float(page.get_attribute("#rtt", "data-ms"))
        assert 0 < rtt_ms < 5000 and "median" in page.inner_text("#rtt")

        # 4. A second stream while the server is at its limit of one: 1013, said plainly.
        second = context.new_page()
        second.goto(server.url)
        second.click("#start")
        wait_for(second, "document.getElementById('live-error').dataset.kind === 'overloaded'", 20, "1013")
        assert "busy" in second.inner_text("#live-error")
        second.close()

        # 5. The raw/enhanced toggle reaches the session; then back to enhanced.
        page.check("input[name=mode][value=raw]")
        assert page.evaluate("window.hushApp.live.enhanced") is False
        page.check("input[name=mode][value=enhanced]")
        assert page.evaluate("window.hushApp.live.enhanced") is True

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-page.png"), full_page=True)

        # 6. Stop: the server flushes; nothing lost, nothing duplicated.
        page.click("#stop")
        wait_for(page, "document.getElementById('live-status').dataset.state === 'stopped'", 10, "stop")
        done = page.evaluate("window.hushApp.live.done")
        recording = page.evaluate(READ_RECORDING)
        sent, received = floats(recording["raw"]), floats(recording["enhanced"])
        assert recording["start"] == 0 and done["samples_in"] == done["samples_out"] == sent.size
        assert received.size == sent.size and sent.size >= 6 * recording["rate"]
        assert np.sqrt(np.mean(sent**2)) > 0.01, "the fake microphone delivered silence"

        # The page received exactly what the model makes of what the page sent...
        expected = enhance_signal(enhancer, sent, recording["rate"])
        np.testing.assert_allclose(received, expected, atol=2e-5)
        # ...which is much quieter than the input in the pauses, but not in the speech.
        pause_db, speech_db = pause_and_speech_db(sent, received, recording["rate"])
        print(f"live: pauses {pause_db:.1f} dB, speech {speech_db:.1f} dB, round trip {rtt_ms:.0f} ms")
        assert pause_db < -10, f"pauses only {pause_db:.1f} dB below the input"
        assert speech_db > pause_db + 6, f"speech {speech_db:.1f} dB vs pauses {pause_db:.1f} dB"

        # 7. Lost connection: the server goes away mid-stream.
        page.click("#start")
        wait_for(page, "document.getElementById('live-status').dataset.state === 'streaming'", 20, "restart")
        server.stop()
        wait_for(page, "document.getElementById('live-error').dataset.kind === 'connection'", 20, "lost link")
        assert page.inner_text("#live-status") == "stopped"
        assert not page_errors, page_errors
        # Everything came from hush itself: no CDN (users run this offline).
        origins = (server.url, server.url.replace("http", "ws", 1), "blob:", "data:")
        assert requests and all(url.startswith(origins) for url in requests), set(requests)
        # (Playwright does not report the AudioWorklet module or the WebSocket as requests.)
        for name in ("app.js", "live.js", "spectrogram.js", "files.js", "wav.js", "style.css"):
            assert f"{server.url}/static/{name}" in requests
        browser.close()

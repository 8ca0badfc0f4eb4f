"""``hush demo`` without audio hardware: the callback path driven by a fake duplex stream.

A fake sounddevice module stands in for PortAudio (CI has neither a sound card nor, often,
libportaudio); it calls ``DemoLoop.callback`` exactly as PortAudio would, one block of
``blocksize`` frames at a time with ``indata``/``outdata`` arrays.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import io
import os
import sys
import threading

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console
from typer.testing import CliRunner

from conftest import speech_like, tiny_model
from hush.cli import app
from hush.demo import DemoError, DemoLoop, block_size, measure_delay
from hush.demo.devices import choose_sample_rate, list_devices, resolve_device
from hush.demo.loop import level_db
from hush.demo.terminal import handle_key
from hush.models import save_weights
from hush.streaming import Enhancer
from hush.streaming.audio_io import enhance_signal

RATES = [16000, 48000, 44100, 22050]


@pytest.fixture(scope="module")
def enhancer() -> Enhancer:
    return Enhancer(tiny_model("gru"), "tiny-gru")


def drive(loop: DemoLoop, signal: np.ndarray, out_channels: int = 2, on_block=None) -> np.ndarray:
    """Call the loop's callback block by block, as PortAudio does; returns what was played
    (channel 0), checking every output channel carries the same mono signal."""
    played = []
    n = loop.blocksize
    for i, start in enumerate(range(0, signal.shape[0] - n + 1, n)):
        if on_block is not None:
            on_block(i)
        indata = signal[start : start + n, None].astype(np.float32)
        outdata = np.full((n, out_channels), np.nan, dtype=np.float32)
        loop.callback(indata, outdata, n, None, None)
        assert np.array_equal(outdata[:, 0], outdata[:, -1])
        played.append(outdata[:, 0].copy())
    return np.concatenate(played)


def whole_blocks(x: np.ndarray, n: int) -> np.ndarray:
    return x[: x.shape[0] // n * n]


@pytest.mark.parametrize("rate", RATES)
def test_played_audio_is_the_offline_enhancement_delayed(enhancer, rate):
    loop = DemoLoop(enhancer, rate)
    assert loop.blocksize == block_size(enhancer, rate) == round(160 * rate / 16000)
    x = whole_blocks(speech_like(2.0, rate=rate, seed=1), loop.blocksize)
    played = drive(loop, x)
    assert (
        loop.error is None and loop.stats.late_samples == 0 and loop.stats.blocks == x.size // loop.blocksize
    )
    expected = enhance_signal(enhancer, x, rate)
    d = loop.delay
    assert np.all(played[:d] == 0)  # the loop's fixed delay: silence before the first sample
    np.testing.assert_allclose(played[d:], expected[: x.size - d], atol=1e-5)
    # The engine alone adds one hop at 16 kHz and at the full-band rates it runs natively
    # (44.1, 48 kHz); the resamplers add their lag at other rates.
    if enhancer.processing_rate(rate) == rate:
        assert d == enhancer.at_rate(rate).hop == rate // 100
    else:
        # soxr HQ streams emit in bursts: up to ~70 ms at 48 kHz, ~120 ms at 44.1 kHz (measured).
        assert enhancer.hop * rate / 16000 < d < 0.15 * rate
    assert loop.latency_ms == pytest.approx(1000 * (d + loop.blocksize) / rate)


def test_delay_probe_matches_the_real_lag(enhancer):
    # The lag depends on block sizes only: a probe with silence predicts the lag with speech.
    rate = 22050
    n = block_size(enhancer, rate)
    loop = DemoLoop(enhancer, rate)
    assert loop.delay == measure_delay(enhancer, rate, n)
    drive(loop, whole_blocks(speech_like(3.0, rate=rate, seed=2), n))
    assert loop.stats.late_samples == 0


def test_toggle_switches_between_aligned_raw_and_enhanced(enhancer):
    rate = 16000
    loop = DemoLoop(enhancer, rate)
    x = whole_blocks(speech_like(1.0, rate=rate, seed=3), loop.blocksize)
    switch_block = 40

    def on_block(i):
        if i == switch_block:
            assert handle_key(loop, " ") and loop.mode == "raw"

    played = drive(loop, x, on_block=on_block)
    d, cut = loop.delay, switch_block * loop.blocksize
    expected = enhance_signal(enhancer, x, rate)
    np.testing.assert_allclose(played[d:cut], expected[: cut - d], atol=1e-5)
    # After the switch the very next sample of the SAME timeline plays, raw this time.
    np.testing.assert_array_equal(played[cut:], x[cut - d : x.size - d])
    assert not np.allclose(expected[cut - d : x.size - d], x[cut - d : x.size - d], atol=1e-3)
    for key, enhanced in (("e", True), ("r", False), ("t", True), ("x", True)):
        assert handle_key(loop, key)
        assert loop.enhanced is enhanced
    assert handle_key(loop, "q") is False


def test_meters_follow_the_signal(enhancer):
    rate = 16000
    loop = DemoLoop(enhancer, rate, enhanced=False)
    t = np.arange(rate // 2) / rate
    tone = (0.5 * np.sin(2 * np.pi * 400 * t)).astype(np.float32)  # RMS 0.5/sqrt(2): -9.03 dBFS
    drive(loop, tone)
    assert loop.input_meter.last == pytest.approx(-9.03, abs=0.05)
    assert loop.output_meter.last == pytest.approx(-9.03, abs=0.05)  # raw playback, one hop later
    assert loop.input_meter.reset_peak() == pytest.approx(0.5, abs=1e-3)
    # Silence: the meter falls at 30 dB/s from the tone's level, not at once.
    drive(loop, np.zeros(rate // 10, dtype=np.float32))  # 0.1 s
    assert loop.input_meter.last == -100.0
    assert loop.input_meter.level == pytest.approx(-9.03 - 3.0, abs=0.1)
    # Enhanced playback: the output meter reads what is played, not the input.
    loop.enhanced = True
    played = drive(loop, tone[:1600])
    assert loop.output_meter.last == pytest.approx(level_db(played[-loop.blocksize :]), abs=1e-6)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_recording_holds_raw_and_enhanced_side_by_side(enhancer, rate, tmp_path):
    path = tmp_path / "take.wav"
    loop = DemoLoop(enhancer, rate, record=path)
    x = whole_blocks(speech_like(1.5, rate=rate, seed=4), loop.blocksize)
    # The UI thread drains the recorder now and then while the audio thread runs.
    drive(loop, x, on_block=lambda i: loop.recorder.drain() if i % 7 == 0 else None)
    loop.close()
    loop.close()  # idempotent
    audio, file_rate = sf.read(path, dtype="float32")
    assert file_rate == rate and audio.shape == (x.size, 2)
    np.testing.assert_array_equal(audio[:, 0], x)
    np.testing.assert_allclose(audio[:, 1], enhance_signal(enhancer, x, rate), atol=1e-5)
    assert sf.info(path).subtype == "FLOAT"


def test_callback_errors_do_not_escape(enhancer):
    loop = DemoLoop(enhancer, 16000)
    bad = np.full((loop.blocksize, 1), np.nan, dtype=np.float32)
    out = np.ones((loop.blocksize, 1), dtype=np.float32)
    loop.callback(bad, out, loop.blocksize, None, None)  # NaN input: the stream refuses it
    assert isinstance(loop.error, ValueError) and np.all(out == 0)
    loop.callback(bad, out, loop.blocksize, None, "input overflow")
    assert loop.stats.xruns == 1


# ---------------------------------------------------------------------- fake sounddevice
class FakeStream:
    """sounddevice.Stream stand-in: on start, a thread calls the callback for each block of
    ``signal`` (as fast as it can), then stops calling."""

    def __init__(self, sd, *, device, samplerate, blocksize, channels, dtype, latency, callback):
        assert dtype == "float32" and latency == "low"
        self.sd, self.device, self.samplerate, self.blocksize = sd, device, samplerate, blocksize
        self.channels, self.callback = channels, callback
        self.latency = (0.005, 0.010)
        self.closed = False
        self.done = threading.Event()
        self.blocks_done = 0
        self.played: list[np.ndarray] = []
        self.paused = threading.Event()  # set while the audio waits at block `pause_at`
        self.resume = threading.Event()
        sd.streams.append(self)

    def _run(self):
        x = self.sd.signal
        n = self.blocksize
        for start in range(0, x.size - n + 1, n):
            if self.blocks_done == self.sd.pause_at:
                self.paused.set()
                self.resume.wait(10)
            outdata = np.zeros((n, self.channels[1]), dtype=np.float32)
            self.callback(x[start : start + n, None], outdata, n, None, None)
            self.played.append(outdata[:, 0].copy())
            self.blocks_done += 1
        self.done.set()

    def __enter__(self):
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.thread.join()
        self.close()

    def close(self):
        self.closed = True


class FakeSoundDevice:
    """The parts of the sounddevice module that ``hush demo`` uses."""

    def __init__(self, devices, default=(0, 1), rates=(48000,), signal=None):
        self._devices = devices
        self.default = type("Default", (), {"device": default})()
        self.rates = rates
        self.signal = signal
        self.pause_at = 100
        self.streams: list[FakeStream] = []

    def query_devices(self):
        return self._devices

    def query_hostapis(self):
        return [{"name": "FakeAPI"}]

    def check_input_settings(self, device, channels, samplerate, dtype):
        if samplerate not in self.rates:
            raise ValueError("Invalid sample rate")

    check_output_settings = check_input_settings

    def Stream(self, **kwargs):
        return FakeStream(self, **kwargs)


def device(name, ins, outs, rate=48000.0):
    return {
        "name": name,
        "hostapi": 0,
        "max_input_channels": ins,
        "max_output_channels": outs,
        "default_samplerate": rate,
    }


DEVICES = [device("USB Mic", 1, 0), device("Speakers", 0, 2), device("Headset", 1, 2, 44100.0)]


class ScriptedKeys:
    """Presses space while the fake audio waits at block 100, then q when it is all done."""

    available = True

    def __init__(self, sd):
        self.sd, self.toggled = sd, False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def read(self, timeout):
        stream = self.sd.streams[-1]
        if not self.toggled and stream.paused.wait(timeout):
            self.toggled = True
            stream.resume.set()
            return " "
        return "q" if stream.done.wait(timeout) else None


def test_run_demo_with_a_fake_sound_card(enhancer, tmp_path):
    from hush.demo import run_demo

    x = speech_like(3.0, rate=48000, seed=5)
    sd = FakeSoundDevice(DEVICES, signal=x)  # 16 kHz refused: the input's 48 kHz is used
    out = io.StringIO()
    loop = run_demo(
        enhancer,
        "tiny-gru",
        record=tmp_path / "take.wav",
        console=Console(file=out, width=160, force_terminal=False),
        sd=sd,
        keys=ScriptedKeys(sd),
    )
    stream = sd.streams[-1]
    assert stream.device == (0, 1) and stream.samplerate == 48000 and stream.blocksize == 480
    assert stream.channels == (1, 2) and stream.closed
    assert loop.error is None and loop.stats.blocks == x.size // 480 and not loop.enhanced
    audio, _ = sf.read(tmp_path / "take.wav", dtype="float32")
    assert audio.shape == (x.size // 480 * 480, 2)
    # Played: enhanced up to the toggle, then raw, on one timeline delayed by loop.delay.
    played, d, cut = np.concatenate(stream.played), loop.delay, 100 * 480
    np.testing.assert_allclose(played[d:cut], audio[: cut - d, 1], atol=1e-6)
    np.testing.assert_array_equal(played[cut:], x[cut - d : x.size - d])
    text = out.getvalue()
    assert "hush demo · tiny-gru" in text and "recorded 3.0 s to" in text


def test_device_selection_and_rates():
    sd = FakeSoundDevice(DEVICES, rates=(16000, 48000))
    devices = list_devices(sd)
    assert [d.hostapi for d in devices] == ["FakeAPI"] * 3
    assert resolve_device(sd, devices, None, "input").name == "USB Mic"
    assert resolve_device(sd, devices, None, "output").name == "Speakers"
    assert resolve_device(sd, devices, "2", "input").name == "Headset"
    assert resolve_device(sd, devices, "head", "output").name == "Headset"
    for spec, kind, words in [
        ("7", "input", "no device with index 7"),
        ("1", "input", "has no input channels"),
        ("nothing", "output", "no output device whose name contains"),
    ]:
        with pytest.raises(DemoError, match=words) as err:
            resolve_device(sd, devices, spec, kind)
        assert "--list-devices" in str(err.value)
    assert choose_sample_rate(sd, devices[0], devices[1], None) == 48000  # full band first
    sd.rates = (44100,)
    assert choose_sample_rate(sd, devices[2], devices[2], None) == 44100  # the device's own
    sd.rates = (16000,)
    assert choose_sample_rate(sd, devices[2], devices[2], None) == 16000
    with pytest.raises(DemoError, match="none of the sample rates"):
        choose_sample_rate(sd, devices[0], devices[1], 22050)


# ---------------------------------------------------------------------- the CLI's messages
runner = CliRunner()


@pytest.fixture
def weights_file(tmp_path):
    return save_weights(tiny_model("gru"), tmp_path / "w", "tiny-gru")


class _NoPortAudio(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``import sounddevice`` fail the way it does without libportaudio."""

    def find_spec(self, name, path=None, target=None):
        if name == "sounddevice":
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise OSError("PortAudio library not found")


def test_cli_without_portaudio_says_what_to_install(monkeypatch, weights_file):
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    for args in (["demo", "--weights", str(weights_file)], ["demo", "--list-devices"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "PortAudio library is not installed" in result.output
        assert "apt-get install libportaudio2" in result.output
        assert "Traceback" not in result.output


def test_cli_without_sounddevice_says_what_to_install(monkeypatch, weights_file):
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    result = runner.invoke(app, ["demo", "--weights", str(weights_file)])
    assert result.exit_code == 2 and "pip install 'hush[demo]'" in result.output


def test_cli_without_devices_says_how_to_pick_one(monkeypatch, weights_file):
    import hush.demo

    sd = FakeSoundDevice([device("HDMI out", 0, 2)], default=(-1, 0))
    monkeypatch.setattr(hush.demo, "import_sounddevice", lambda: sd)
    result = runner.invoke(app, ["demo", "--weights", str(weights_file)])
    assert result.exit_code == 2
    assert "no audio input device found" in result.output and "--list-devices" in result.output
    result = runner.invoke(app, ["demo", "--list-devices"])
    assert result.exit_code == 0 and "HDMI out" in result.output and "output" in result.output


def test_native_stderr_is_kept_off_the_live_panel():
    from hush.demo.terminal import native_stderr_captured, summarise_lines

    lines: list[str] = []
    with native_stderr_captured(lines):
        # What ALSA does: write to file descriptor 2 directly, not through sys.stderr.
        for _ in range(3):
            os.write(2, b"ALSA lib pcm.c:8570:(snd_pcm_recover) underrun occurred\n")
    assert lines == ["ALSA lib pcm.c:8570:(snd_pcm_recover) underrun occurred"] * 3
    assert summarise_lines(lines) == ["ALSA lib pcm.c:8570:(snd_pcm_recover) underrun occurred  (x3)"]
    untouched: list[str] = []
    with native_stderr_captured(untouched, enabled=False):
        pass
    assert untouched == []

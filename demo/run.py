"""``hush demo``: open the devices, run the duplex stream, drive the terminal UI."""

from __future__ import annotations

import time
from pathlib import Path
from types import ModuleType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from hush.streaming import Enhancer

from .devices import (
    DemoError,
    choose_sample_rate,
    import_sounddevice,
    list_devices,
    output_channels,
    resolve_device,
)
from .loop import DemoLoop
from .terminal import DeviceLine, KeyReader, handle_key, native_stderr_captured, render, summarise_lines

UI_PERIOD_S = 0.05  # terminal refresh and key poll period; the audio runs in PortAudio's thread


def print_devices(console: Console, sd: ModuleType | None = None) -> None:
    """The ``--list-devices`` table, with the defaults marked."""
    sd = sd or import_sounddevice()
    devices = list_devices(sd)
    try:
        default_in, default_out = sd.default.device
    except Exception:
        default_in = default_out = -1
    table = Table("index", "name", "host API", "in ch", "out ch", "default rate", "default")
    for d in devices:
        marks = [m for m, i in (("input", default_in), ("output", default_out)) if i == d.index]
        table.add_row(
            str(d.index),
            d.name,
            d.hostapi,
            str(d.max_input_channels),
            str(d.max_output_channels),
            f"{d.default_samplerate:.0f}",
            ", ".join(marks),
        )
    console.print(table)
    if not devices:
        console.print("PortAudio found no audio devices.")


def run_demo(
    enhancer: Enhancer,
    model_line: str,
    *,
    input_device: str | None = None,
    output_device: str | None = None,
    sample_rate: int | None = None,
    record: Path | None = None,
    attenuation_limit_db: float | None = None,
    start_raw: bool = False,
    seconds: float | None = None,
    console: Console | None = None,
    sd: ModuleType | None = None,
    keys: KeyReader | None = None,
) -> DemoLoop:
    """Run the microphone-to-speaker loop until ``q``, Ctrl-C or ``seconds``; returns the
    finished loop (stats, meters). ``sd`` and ``keys`` replace sounddevice and the
    terminal in tests. Raises ``DemoError`` with an actionable message on any setup failure.
    """
    console = console or Console()
    sd = sd or import_sounddevice()
    devices = list_devices(sd)
    device_in = resolve_device(sd, devices, input_device, "input")
    device_out = resolve_device(sd, devices, output_device, "output")
    rate = choose_sample_rate(sd, device_in, device_out, sample_rate)
    loop = DemoLoop(
        enhancer, rate, enhanced=not start_raw, attenuation_limit_db=attenuation_limit_db, record=record
    )
    try:
        stream = sd.Stream(
            device=(device_in.index, device_out.index),
            samplerate=rate,
            blocksize=loop.blocksize,
            channels=(1, output_channels(device_out)),
            dtype="float32",
            latency="low",
            callback=loop.callback,
        )
    except Exception as err:  # PortAudioError, ValueError for bad settings
        loop.close()
        raise DemoError(
            f"cannot open {device_in.name} -> {device_out.name} at {rate} Hz: {err}. "
            "Pick other devices (`hush demo --list-devices`) or another --rate."
        ) from None
    native_lines: list[str] = []
    try:
        latency_in, latency_out = stream.latency
        device_line = DeviceLine(
            device_in.name, device_out.name, rate, loop.blocksize, 1000.0 * (latency_in + latency_out)
        )
        with (
            native_stderr_captured(native_lines, console.is_terminal),
            stream,
            keys or KeyReader() as key_reader,
            Live(
                render(loop, device_line, model_line, key_reader.available),
                console=console,
                auto_refresh=False,
                transient=False,
            ) as live,
        ):
            started = time.monotonic()
            while True:
                if not handle_key(loop, key_reader.read(UI_PERIOD_S)):
                    break
                if loop.error is not None:
                    raise DemoError(f"the audio callback failed: {loop.error!r}")
                if seconds is not None and time.monotonic() - started >= seconds:
                    break
                if loop.recorder is not None:
                    loop.recorder.drain()
                live.update(render(loop, device_line, model_line, key_reader.available), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        if not getattr(stream, "closed", False):
            stream.close()
        loop.close()
    if native_lines:
        console.print("the audio system said, while the demo ran:", style="dim")
        for line in summarise_lines(native_lines):
            console.print(f"  {line}", style="dim", markup=False, highlight=False)
    if loop.recorder is not None:
        console.print(
            f"recorded {loop.recorder.seconds:.1f} s to {loop.recorder.path} "
            "(left: raw microphone, right: enhanced)"
        )
    return loop

"""Terminal side of ``hush demo``: single keypresses in, a live status panel out."""

from __future__ import annotations

import os
import select
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .loop import DemoLoop

KEYS_HELP = "space/t toggle raw/enhanced · e enhanced · r raw · q quit"


class KeyReader:
    """Reads single keypresses from a terminal without waiting for Enter.

    On a TTY (POSIX) it switches stdin to cbreak mode for its lifetime and restores it on
    exit; elsewhere (a pipe, Windows without a console) ``available`` is False and ``read``
    only sleeps, so the demo still runs, just without keys.
    """

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdin
        self._saved = None
        self.available = False

    def __enter__(self) -> KeyReader:
        try:
            import termios
            import tty

            fd = self.stream.fileno()
            if os.isatty(fd):
                self._saved = termios.tcgetattr(fd)
                tty.setcbreak(fd)
                self.available = True
        except (ImportError, OSError, ValueError, AttributeError):
            self.available = False
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None

    def read(self, timeout: float) -> str | None:
        """The next key pressed within ``timeout`` seconds, or None."""
        if not self.available:
            time.sleep(timeout)
            return None
        ready, _, _ = select.select([self.stream], [], [], timeout)
        if not ready:
            return None
        return os.read(self.stream.fileno(), 1).decode(errors="ignore") or None


@contextmanager
def native_stderr_captured(captured: list[str], enabled: bool = True) -> Iterator[None]:
    """Park file descriptor 2 in a temporary file; its lines land in ``captured`` on exit.

    PortAudio and ALSA write straight to fd 2 ("ALSA lib pcm.c: underrun occurred"),
    bypassing Python, and each such line scrambles the live panel. The lines are kept and
    shown after the panel closes instead. ``enabled=False`` changes nothing.
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as parked:
        os.dup2(parked.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            parked.seek(0)
            captured.extend(parked.read().decode(errors="replace").splitlines())


def summarise_lines(lines: list[str], limit: int = 5) -> list[str]:
    """Distinct non-empty lines with their counts, most frequent first."""
    counts = Counter(line.strip() for line in lines if line.strip())
    return [f"{line}" + (f"  (x{n})" if n > 1 else "") for line, n in counts.most_common(limit)]


def handle_key(loop: DemoLoop, key: str | None) -> bool:
    """Apply one keypress to the loop; returns False when the user asked to quit."""
    if key is None:
        return True
    key = key.lower()
    if key in ("q", "\x1b", "\x03"):
        return False
    if key in (" ", "t"):
        loop.toggle()
    elif key == "e":
        loop.enhanced = True
    elif key == "r":
        loop.enhanced = False
    return True


@dataclass
class DeviceLine:
    """What the status panel says about the devices and the stream."""

    input_name: str
    output_name: str
    sample_rate: int
    blocksize: int
    device_latency_ms: float  # PortAudio's input + output latency of the open stream


def meter_bar(db: float, width: int = 36, floor_db: float = -60.0) -> Text:
    """``db`` (dBFS) as a bar from ``floor_db`` to 0 dB: green, yellow above -12, red above -3."""
    fill = 0 if db <= floor_db else min(width, round(width * (db - floor_db) / -floor_db))
    bar = Text()
    for i in range(width):
        cell_db = floor_db + (i + 1) * (-floor_db) / width
        style = "red" if cell_db > -3 else "yellow" if cell_db > -12 else "green"
        bar.append("█" if i < fill else "·", style=style if i < fill else "grey37")
    bar.append(f" {db:6.1f} dBFS" if db > -100 else "   -inf dBFS")
    return bar


def render(loop: DemoLoop, devices: DeviceLine, model_line: str, keys: bool, note: str = "") -> Panel:
    """The live status panel: mode, meters, latency, load and recording."""
    mode = (
        Text("ENHANCED", style="bold black on green")
        if loop.enhanced
        else Text("RAW", style="bold black on yellow")
    )
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="bold")
    table.add_column()
    table.add_row("playing", mode)
    table.add_row("input", meter_bar(loop.input_meter.level))
    table.add_row("output", meter_bar(loop.output_meter.level))
    total = loop.latency_ms + devices.device_latency_ms
    table.add_row(
        "latency",
        f"{total:.0f} ms mic to speaker = hush {loop.latency_ms:.1f} ms "
        f"(engine + resampling + one {1000 * loop.blocksize / loop.sample_rate:.0f} ms block)"
        f" + devices {devices.device_latency_ms:.1f} ms",
    )
    stats = loop.stats
    table.add_row(
        "load",
        f"{100 * loop.callback_load:.1f} % of real time (worst block "
        f"{1000 * stats.callback_s_max:.1f} ms) · xruns {stats.xruns} · late samples {stats.late_samples}",
    )
    table.add_row(
        "stream",
        f"{devices.sample_rate} Hz, {devices.blocksize} frames/block · in: {devices.input_name} · "
        f"out: {devices.output_name}",
    )
    if loop.recorder is not None:
        table.add_row("recording", f"{loop.recorder.path} ({loop.recorder.seconds:.1f} s, raw | enhanced)")
    footer = Text(KEYS_HELP if keys else "no terminal for keys: Ctrl-C quits", style="dim")
    parts = [table, footer] + ([Text(note, style="red")] if note else [])
    return Panel(Group(*parts), title=f"hush demo · {model_line}", border_style="cyan", expand=False)

"""``hush demo``: microphone to speakers through the enhancer, with a live raw/enhanced
toggle, level meters and optional side-by-side recording. Depends on ``hush.streaming``.

The browser demo lives in ``service/static/`` and is served by the service.
"""

from .devices import DemoError, import_sounddevice, list_devices
from .loop import DemoLoop, LevelMeter, Recorder, block_size, measure_delay
from .run import print_devices, run_demo

__all__ = [
    "DemoError",
    "DemoLoop",
    "LevelMeter",
    "Recorder",
    "block_size",
    "import_sounddevice",
    "list_devices",
    "measure_delay",
    "print_devices",
    "run_demo",
]

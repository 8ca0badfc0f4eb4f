"""Finding PortAudio and the audio devices, with messages a person can act on.

sounddevice is imported lazily and only here: on Linux it needs the PortAudio shared
library from the system, which servers and CI machines usually lack. Every failure becomes
a ``DemoError`` whose text says what to install or which option to use.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from types import ModuleType


class DemoError(RuntimeError):
    """The demo cannot run; the message tells the user what to do about it."""


def portaudio_hint() -> str:
    """The install command for the PortAudio library on this system."""
    system = platform.system()
    if system == "Darwin":
        return "brew install portaudio"
    if system == "Windows":
        return "pip install --force-reinstall sounddevice  (its wheel bundles PortAudio)"
    return (
        "sudo apt-get install libportaudio2  (Debian/Ubuntu), sudo dnf install portaudio  (Fedora), "
        "sudo pacman -S portaudio  (Arch)"
    )


def import_sounddevice() -> ModuleType:
    """``import sounddevice``, or a ``DemoError`` naming the missing piece."""
    try:
        import sounddevice
    except ImportError as err:
        raise DemoError(
            f"the demo needs the sounddevice package ({err}).\n  Install it with: pip install 'hush[demo]'"
        ) from None
    except OSError as err:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise DemoError(
            f"the PortAudio library is not installed ({err}).\n  Install it with: {portaudio_hint()}"
        ) from None
    return sounddevice


@dataclass(frozen=True)
class Device:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float


def list_devices(sd: ModuleType) -> list[Device]:
    """Every device PortAudio knows, or a ``DemoError`` if PortAudio cannot enumerate them."""
    try:
        raw = sd.query_devices()
        hostapis = sd.query_hostapis()
    except Exception as err:  # PortAudioError: e.g. no sound server and no ALSA devices
        raise DemoError(f"PortAudio cannot list the audio devices: {err}") from None
    devices = []
    for index, info in enumerate(raw):
        api = hostapis[info["hostapi"]]["name"] if info.get("hostapi", -1) < len(hostapis) else "?"
        devices.append(
            Device(
                index=index,
                name=info["name"],
                hostapi=api,
                max_input_channels=int(info["max_input_channels"]),
                max_output_channels=int(info["max_output_channels"]),
                default_samplerate=float(info["default_samplerate"]),
            )
        )
    return devices


def _default_index(sd: ModuleType, kind: str) -> int | None:
    """PortAudio's default input (kind='input') or output device, or None if it has none."""
    try:
        pair = sd.default.device
        index = pair[0] if kind == "input" else pair[1]
    except Exception:
        return None
    return None if index is None or index < 0 else int(index)


def resolve_device(sd: ModuleType, devices: list[Device], spec: str | None, kind: str) -> Device:
    """The device for ``--input``/``--output`` ``spec``: an index, a name fragment, or
    ``None`` for the system default. Raises ``DemoError`` saying how to pick one."""
    channels = (lambda d: d.max_input_channels) if kind == "input" else (lambda d: d.max_output_channels)
    usable = [d for d in devices if channels(d) > 0]
    how = f"list them with `hush demo --list-devices` and pick one with --{kind} INDEX or --{kind} NAME"
    if not usable:
        raise DemoError(f"no audio {kind} device found. Plug one in (or start the sound server), then {how}.")
    if spec is None:
        index = _default_index(sd, kind)
        if index is not None and index < len(devices) and channels(devices[index]) > 0:
            return devices[index]
        raise DemoError(f"there is no default {kind} device; {how}.")
    if spec.strip().lstrip("-").isdigit():
        index = int(spec)
        if not 0 <= index < len(devices):
            raise DemoError(f"no device with index {index}; {how}.")
        if channels(devices[index]) == 0:
            raise DemoError(f"device {index} ({devices[index].name}) has no {kind} channels; {how}.")
        return devices[index]
    matches = [d for d in usable if spec.lower() in d.name.lower()]
    if not matches:
        raise DemoError(f"no {kind} device whose name contains {spec!r}; {how}.")
    if len(matches) > 1 and len({d.name for d in matches}) > 1:
        names = ", ".join(f"{d.index}: {d.name}" for d in matches)
        raise DemoError(f"{spec!r} matches several {kind} devices ({names}); pick one by index.")
    return matches[0]


def output_channels(device: Device) -> int:
    """Play the mono signal on both speakers of a stereo device (one if it is mono)."""
    return max(1, min(2, device.max_output_channels))


def choose_sample_rate(sd: ModuleType, device_in: Device, device_out: Device, requested: int | None) -> int:
    """The duplex stream's rate: ``requested`` if given, else 48 kHz if both devices take it
    (full band, run natively: the loop adds only the engine's latency), else the input
    device's default rate, else 16 kHz. Raises ``DemoError`` if none is accepted."""
    candidates = [requested] if requested else [48000, int(device_in.default_samplerate), 16000]
    problems = []
    for rate in candidates:
        try:
            sd.check_input_settings(device=device_in.index, channels=1, samplerate=rate, dtype="float32")
            sd.check_output_settings(
                device=device_out.index,
                channels=output_channels(device_out),
                samplerate=rate,
                dtype="float32",
            )
        except Exception as err:
            problems.append(f"{rate} Hz: {err}")
            continue
        return rate
    raise DemoError(
        "the devices accept none of the sample rates tried ("
        + "; ".join(problems)
        + "). Try another --rate, or other devices (`hush demo --list-devices`)."
    )

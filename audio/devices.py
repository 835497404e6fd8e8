"""Sound devices through PortAudio (``sounddevice``): listing, resolution and error conversion.

``sounddevice`` is imported lazily, on the first call that needs it, so that importing
:mod:`audio` never requires PortAudio. Failures are converted at this boundary:

- ``sounddevice`` not installed -> :class:`~audio.exceptions.PortAudioMissing` naming the
  ``realtime-voice[audio]`` extra;
- the PortAudio C library missing (``sounddevice`` raises ``OSError`` on import) ->
  :class:`~audio.exceptions.PortAudioMissing` naming the system package to install;
- a device that does not exist -> :class:`~audio.exceptions.NoDeviceError` listing the devices
  that do exist;
- any other PortAudio error -> :class:`~audio.exceptions.DeviceError`.

PortAudio enumerates devices once, when it is initialised (on ``import sounddevice``). A
device that appears later (a sound server started afterwards, a headset plugged in) is only
seen after :func:`refresh`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from .exceptions import DeviceError, NoDeviceError, PortAudioMissing

__all__ = [
    "DeviceInfo",
    "Direction",
    "close_stream",
    "device_error",
    "devices",
    "refresh",
    "resolve_device",
    "sounddevice_module",
]

Direction = Literal["input", "output"]

_INSTALL_EXTRA = "pip install 'realtime-voice[audio]'"
_INSTALL_LIB = (
    "install the PortAudio library: Debian/Ubuntu `apt-get install libportaudio2`, "
    "Fedora `dnf install portaudio`, macOS `brew install portaudio`"
)

_module: ModuleType | None = None


def sounddevice_module() -> ModuleType:
    """Import and return ``sounddevice`` (once).

    Call this instead of ``import sounddevice`` anywhere in :mod:`audio`. Raises
    :class:`PortAudioMissing` when the package or the PortAudio library is missing.
    """
    global _module
    if _module is not None:
        return _module
    try:
        module = importlib.import_module("sounddevice")
    except ImportError as exc:
        raise PortAudioMissing(
            f"the sounddevice package is not installed ({exc}); {_INSTALL_EXTRA}"
        ) from exc
    except OSError as exc:
        raise PortAudioMissing(
            f"sounddevice cannot load the PortAudio library ({exc}); {_INSTALL_LIB}"
        ) from exc
    _module = module
    return module


def device_error(exc: BaseException, what: str) -> DeviceError:
    """Convert a ``sounddevice``/PortAudio exception into a :class:`DeviceError`.

    *what* says what was being done ("opening the output stream"). Returns the new
    exception (raise it ``from exc``).
    """
    return DeviceError(f"{what} failed: {exc}")


def close_stream(stream: Any, what: str) -> None:
    """Abort and close a ``sounddevice`` stream; a PortAudio error becomes a :class:`DeviceError`.

    The stream is closed even when aborting fails. *what* names the device for the message.
    """
    error: BaseException | None = None
    try:
        stream.abort()
    except Exception as exc:
        error = exc
    try:
        stream.close()
    except Exception as exc:
        error = error or exc
    if error is not None:
        raise device_error(error, f"closing {what}") from error


@dataclass(frozen=True)
class DeviceInfo:
    """One PortAudio device as :func:`devices` reports it."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    is_default_input: bool
    is_default_output: bool

    def describe(self) -> str:
        """A one-line human description (used in error messages and device listings)."""
        marks = []
        if self.is_default_input:
            marks.append("default input")
        if self.is_default_output:
            marks.append("default output")
        tail = f" [{', '.join(marks)}]" if marks else ""
        return (
            f"{self.index}: {self.name} ({self.hostapi}; {self.max_input_channels} in, "
            f"{self.max_output_channels} out, {self.default_samplerate:g} Hz){tail}"
        )


def _default_indices(sd: ModuleType) -> tuple[int, int]:
    default = sd.default.device
    try:
        inp, out = int(default[0]), int(default[1])
    except (TypeError, IndexError, ValueError):
        return -1, -1
    return inp, out


def devices() -> list[DeviceInfo]:
    """List the devices PortAudio knows, with their channels and default sample rates.

    Raises :class:`PortAudioMissing` when PortAudio is unavailable and :class:`DeviceError`
    when PortAudio fails to answer.
    """
    sd = sounddevice_module()
    try:
        raw: Any = sd.query_devices()
        apis: Any = sd.query_hostapis()
    except Exception as exc:
        raise device_error(exc, "listing sound devices") from exc
    default_in, default_out = _default_indices(sd)
    result = []
    for index, dev in enumerate(raw):
        api_index = int(dev.get("hostapi", -1))
        api_name = str(apis[api_index]["name"]) if 0 <= api_index < len(apis) else "?"
        result.append(
            DeviceInfo(
                index=index,
                name=str(dev["name"]),
                hostapi=api_name,
                max_input_channels=int(dev["max_input_channels"]),
                max_output_channels=int(dev["max_output_channels"]),
                default_samplerate=float(dev["default_samplerate"]),
                is_default_input=index == default_in,
                is_default_output=index == default_out,
            )
        )
    return result


def _channels(info: DeviceInfo, direction: Direction) -> int:
    return info.max_input_channels if direction == "input" else info.max_output_channels


def _listing(infos: list[DeviceInfo]) -> str:
    if not infos:
        return "PortAudio reports no devices at all"
    return "devices: " + "; ".join(info.describe() for info in infos)


def resolve_device(
    device: int | str | None, direction: Direction, infos: list[DeviceInfo] | None = None
) -> DeviceInfo:
    """Find the device to open for *direction* ("input" or "output").

    *device* is ``None`` (the default device, else the first device with channels in that
    direction), an index, or a case-insensitive substring of a device name (an exact name wins
    over substrings; among several substring matches the first wins). Pass *infos* to resolve
    against a given listing instead of asking PortAudio.

    Raises :class:`NoDeviceError` (listing the devices that exist) when nothing matches, the
    match has no channels in that direction, or there is no such device at all.
    """
    if direction not in ("input", "output"):
        raise ValueError(f"direction must be 'input' or 'output', got {direction!r}")
    infos = devices() if infos is None else infos
    capable = [info for info in infos if _channels(info, direction) > 0]
    if device is None:
        if not capable:
            raise NoDeviceError(f"there is no {direction} device; {_listing(infos)}")
        for info in capable:
            if (direction == "input" and info.is_default_input) or (
                direction == "output" and info.is_default_output
            ):
                return info
        return capable[0]
    if isinstance(device, bool) or not isinstance(device, (int, str)):
        raise NoDeviceError(f"device must be an index or a name, got {device!r}")
    if isinstance(device, int):
        matches = [info for info in infos if info.index == device]
        if not matches:
            raise NoDeviceError(f"no device with index {device}; {_listing(infos)}")
    else:
        wanted = device.casefold()
        exact = [info for info in infos if info.name.casefold() == wanted]
        matches = exact or [info for info in infos if wanted in info.name.casefold()]
        if not matches:
            raise NoDeviceError(f"no device named like {device!r}; {_listing(infos)}")
        matches = [info for info in matches if _channels(info, direction) > 0] or matches
    info = matches[0]
    if _channels(info, direction) <= 0:
        if not capable:
            raise NoDeviceError(f"there is no {direction} device; {_listing(infos)}")
        raise NoDeviceError(
            f"device {info.describe()} has no {direction} channels; {_listing(infos)}"
        )
    return info


def refresh() -> None:
    """Make PortAudio enumerate the devices again (re-initialise it).

    Needed when devices (or a sound server such as PulseAudio) appeared after
    ``sounddevice`` was imported. Close every open stream first: re-initialising PortAudio
    invalidates them. Raises :class:`PortAudioMissing` or :class:`DeviceError`.
    """
    sd = sounddevice_module()
    try:
        sd._terminate()
        sd._initialize()
    except Exception as exc:
        raise device_error(exc, "re-initialising PortAudio") from exc

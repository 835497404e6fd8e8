"""Exceptions raised by :mod:`audio`.

.. code-block:: text

    AudioError
    ├── AudioFormatError     samples or a format description are not what was expected
    ├── WavError             a file is not a readable PCM WAV (names the file and the problem)
    ├── EchoCancellerUnavailable  the echo canceller's library is missing (names the extra)
    └── DeviceError          a sound device cannot be used
        ├── PortAudioMissing the PortAudio library (or sounddevice) is not installed
        └── NoDeviceError    no such device; the message lists the devices that exist

``sounddevice`` errors are converted into these at the boundary.
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "AudioFormatError",
    "DeviceError",
    "EchoCancellerUnavailable",
    "NoDeviceError",
    "PortAudioMissing",
    "WavError",
]


class AudioError(Exception):
    """Base class of every error raised by :mod:`audio`."""


class AudioFormatError(AudioError, ValueError):
    """Samples, a rate or a format name are not valid for the operation."""


class WavError(AudioError):
    """A WAV file cannot be read or written; the message names the file and the problem."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class EchoCancellerUnavailable(AudioError):
    """The echo canceller cannot load (its library is missing); says which extra to install."""


class DeviceError(AudioError):
    """A sound device cannot be opened or used."""


class PortAudioMissing(DeviceError):
    """PortAudio or the ``sounddevice`` package is missing; says what to install."""


class NoDeviceError(DeviceError):
    """The requested device does not exist (or there is no input/output device at all)."""

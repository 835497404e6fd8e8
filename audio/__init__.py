"""PCM formats and G.711, resampling, WAV files, microphone and speaker, file and null devices.

This package never imports :mod:`realtime`. The sound-device classes
(:class:`~audio.microphone.Microphone`, :class:`~audio.speaker.Speaker`) load PortAudio lazily:
``import audio`` works on a machine without it; opening a device then raises
:class:`~audio.exceptions.PortAudioMissing` saying what to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .devices import DeviceInfo
from .exceptions import (
    AudioError,
    AudioFormatError,
    DeviceError,
    EchoCancellerUnavailable,
    NoDeviceError,
    PortAudioMissing,
    WavError,
)
from .pcm import (
    FORMATS,
    SAMPLE_RATES,
    AudioFormat,
    StreamDecoder,
    StreamEncoder,
    b64decode,
    b64encode,
    decode,
    duration_ms,
    encode,
    float32_from_pcm16,
    float32_to_int16,
    int16_from_pcm16,
    n_bytes_for_ms,
    pcm16_from_float32,
    pcm16_from_int16,
    to_mono,
)
from .playback import AudioSink, AudioSource, HeardPosition, PlaybackTracker
from .resample import StreamResampler, resample
from .wav import WavInfo, WavWriter, read_wav, read_wav_array, wav_info, write_wav

if TYPE_CHECKING:
    from .aec import EchoCanceller
    from .echo import EchoGate
    from .files import FileMicrophone, FileSpeaker, NullSpeaker
    from .microphone import Microphone
    from .speaker import Speaker

__all__ = [
    "FORMATS",
    "SAMPLE_RATES",
    "AudioError",
    "AudioFormat",
    "AudioFormatError",
    "AudioSink",
    "AudioSource",
    "DeviceError",
    "DeviceInfo",
    "EchoCanceller",
    "EchoCancellerUnavailable",
    "EchoGate",
    "FileMicrophone",
    "FileSpeaker",
    "HeardPosition",
    "Microphone",
    "NoDeviceError",
    "NullSpeaker",
    "PlaybackTracker",
    "PortAudioMissing",
    "Speaker",
    "StreamDecoder",
    "StreamEncoder",
    "StreamResampler",
    "WavError",
    "WavInfo",
    "WavWriter",
    "b64decode",
    "b64encode",
    "decode",
    "devices",
    "duration_ms",
    "encode",
    "float32_from_pcm16",
    "float32_to_int16",
    "int16_from_pcm16",
    "n_bytes_for_ms",
    "pcm16_from_float32",
    "pcm16_from_int16",
    "read_wav",
    "read_wav_array",
    "resample",
    "to_mono",
    "wav_info",
    "write_wav",
]


# ``audio.devices()`` is the listing function; the module stays importable as
# ``from audio.devices import ...`` (sys.modules), which is how the package uses it.
def devices() -> list[DeviceInfo]:
    """The sound devices PortAudio sees, with their default rates (input and output)."""
    from .devices import devices as _devices

    return _devices()


# The device classes (asyncio-based) load on first use, so that the pure parts of the
# package (formats, resampling, WAV, the playback protocols) import no event loop machinery.
_LAZY = {
    "EchoCanceller": "audio.aec",
    "EchoGate": "audio.echo",
    "FileMicrophone": "audio.files",
    "FileSpeaker": "audio.files",
    "NullSpeaker": "audio.files",
    "Microphone": "audio.microphone",
    "Speaker": "audio.speaker",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'audio' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

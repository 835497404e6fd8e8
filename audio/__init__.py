"""PCM formats and G.711, resampling, WAV files, microphone and speaker, file and null devices, VAD.

This package never imports :mod:`realtime`.
"""

from __future__ import annotations

__all__: list[str] = []

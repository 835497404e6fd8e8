"""Fixtures for the real-device tests: a private PulseAudio daemon with virtual devices.

The daemon is started once per test session, before ``sounddevice`` is used (PortAudio
enumerates devices when it initialises; if ``sounddevice`` was already imported by another
test module, :meth:`VirtualPulse.start` re-initialises PortAudio). When PulseAudio cannot
start here the tests skip with the reason, unless ``REALTIME_REQUIRE_AUDIO=1`` (set by
``.ci/run``), in which case they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from virtual_pulse import PulseUnavailable, VirtualPulse

from audio.exceptions import DeviceError


def _unavailable(reason: str) -> None:
    if os.environ.get("REALTIME_REQUIRE_AUDIO") == "1":
        pytest.fail(f"REALTIME_REQUIRE_AUDIO=1 but the audio devices are unusable: {reason}")
    pytest.skip(f"real-device audio tests need PulseAudio: {reason}")


@pytest.fixture(scope="session")
def pulse() -> Iterator[VirtualPulse]:
    """A running private PulseAudio daemon (sinks ``spk``, ``micsink``; source ``mic``)."""
    vp = VirtualPulse()
    try:
        vp.start()
    except PulseUnavailable as exc:
        vp.stop()
        _unavailable(str(exc))
    try:
        from audio.devices import resolve_device

        resolve_device(None, "output")
        resolve_device(None, "input")
    except DeviceError as exc:
        vp.stop()
        _unavailable(f"PortAudio does not see the PulseAudio devices: {exc}")
    yield vp
    vp.stop()

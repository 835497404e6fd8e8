"""A private PulseAudio daemon with virtual devices, for real-device tests and benchmarks.

Devices (all 48 kHz null sinks):

- ``spk``: the default sink. What a :class:`~audio.speaker.Speaker` plays can be recorded
  from ``spk.monitor``.
- ``micsink`` + ``mic``: the default source ``mic`` is a remap of ``micsink.monitor``; a file
  played into ``micsink`` (``paplay -d micsink``) is what a :class:`~audio.microphone.Microphone`
  captures.

The daemon runs in user mode with a private ``XDG_RUNTIME_DIR`` (mode 0700) so it never
touches another sound server. PortAudio only sees it if ``XDG_RUNTIME_DIR``/``PULSE_SERVER``
are set before it enumerates devices, so :meth:`VirtualPulse.start` exports them in
``os.environ`` and, if ``sounddevice`` was already imported, re-initialises PortAudio
(:func:`audio.devices.refresh`). Keep-alive ``parec`` readers on both monitors keep the null
sinks ticking in small blocks (an idle null sink runs in ~2 s blocks, so a new stream's first
callback would take seconds), and one short warm-up playback absorbs the daemon's slow first
stream.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["PulseUnavailable", "Recorder", "VirtualPulse", "read_wav_mono", "write_wav_mono"]

RATE = 48000
_TOOLS = ("pulseaudio", "pactl", "parec", "paplay")


class PulseUnavailable(RuntimeError):
    """PulseAudio cannot be started here; the message says why."""


def write_wav_mono(path: Path, samples: npt.NDArray[np.float32], rate: int) -> None:
    """Write float samples as a 16-bit mono WAV (test material)."""
    pcm = np.clip(np.rint(samples * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def read_wav_mono(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    """Read a 16-bit mono WAV written by :func:`write_wav_mono`."""
    with wave.open(str(path), "rb") as w:
        data = w.readframes(w.getnframes())
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0, w.getframerate()


class Recorder:
    """A ``parec`` process recording a source to raw 16-bit mono at 48 kHz."""

    def __init__(self, pulse: VirtualPulse, source: str, path: Path) -> None:
        self.path = path
        self._file = path.open("wb")
        self._proc = subprocess.Popen(
            [
                "parec",
                "-d",
                source,
                "--raw",
                "--format=s16le",
                f"--rate={RATE}",
                "--channels=1",
                "--latency-msec=10",
            ],
            stdout=self._file,
            stderr=subprocess.DEVNULL,
            env=pulse.env,
        )

    def stop(self) -> npt.NDArray[np.float32]:
        """Stop recording and return the samples (float32 at 48 kHz)."""
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._file.close()
        data = self.path.read_bytes()
        return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0


class VirtualPulse:
    """Start/stop a private PulseAudio daemon with the null sinks described above."""

    def __init__(self) -> None:
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="rv-pulse-"))
        os.chmod(self.runtime_dir, 0o700)
        self.env = dict(os.environ)
        self.env["XDG_RUNTIME_DIR"] = str(self.runtime_dir)
        self.env["PULSE_SERVER"] = f"unix:{self.runtime_dir / 'pulse' / 'native'}"
        self.env.pop("PULSE_SINK", None)
        self.env.pop("PULSE_SOURCE", None)
        self._keepalive: list[subprocess.Popen[bytes]] = []
        self._saved_env: dict[str, str | None] = {}
        self._started = False

    def _run(
        self, *args: str, timeout: float = 10.0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            env=self.env if env is None else env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> None:
        """Start the daemon, set the defaults, start keep-alive readers, export the env.

        Raises :class:`PulseUnavailable` with the reason when something is missing or fails.
        """
        missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
        if missing:
            raise PulseUnavailable(
                f"missing {', '.join(missing)} (apt-get install pulseaudio pulseaudio-utils)"
            )
        try:
            proc = self._run(
                "pulseaudio",
                "-D",
                "-n",
                "--exit-idle-time=-1",
                "--system=false",
                "--log-target=stderr",
                # the socket lives in the private 0700 directory: no cookie needed
                "--load=module-native-protocol-unix auth-anonymous=1",
                f"--load=module-null-sink sink_name=spk rate={RATE}",
                f"--load=module-null-sink sink_name=micsink rate={RATE}",
                "--load=module-remap-source source_name=mic master=micsink.monitor",
                # its state (cookie, config) goes to the private directory, not ~/.config
                env={**self.env, "HOME": str(self.runtime_dir)},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PulseUnavailable(f"pulseaudio did not start: {exc}") from exc
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.strip().splitlines()[-3:])
            raise PulseUnavailable(f"pulseaudio exited with {proc.returncode}: {tail}")
        self._started = True
        deadline = time.monotonic() + 5.0
        while True:
            info = self._run("pactl", "info", timeout=5.0)
            if info.returncode == 0:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise PulseUnavailable(f"pulseaudio does not answer: {info.stderr.strip()}")
            time.sleep(0.05)
        for cmd in (("set-default-sink", "spk"), ("set-default-source", "mic")):
            done = self._run("pactl", *cmd)
            if done.returncode != 0:
                self.stop()
                raise PulseUnavailable(f"pactl {' '.join(cmd)} failed: {done.stderr.strip()}")
        for monitor in ("spk.monitor", "micsink.monitor"):
            self._keepalive.append(
                subprocess.Popen(
                    ["parec", "-d", monitor, "--latency-msec=20", "--raw"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=self.env,
                )
            )
        self._warm_up()
        for key in ("XDG_RUNTIME_DIR", "PULSE_SERVER", "PULSE_SINK", "PULSE_SOURCE"):
            self._saved_env[key] = os.environ.get(key)
        os.environ["XDG_RUNTIME_DIR"] = self.env["XDG_RUNTIME_DIR"]
        os.environ["PULSE_SERVER"] = self.env["PULSE_SERVER"]
        os.environ.pop("PULSE_SINK", None)
        os.environ.pop("PULSE_SOURCE", None)
        if "sounddevice" in sys.modules:
            # PortAudio enumerated devices when sounddevice was imported, before this daemon
            # existed: make it enumerate again so that "default"/"pulse" reach the daemon.
            from audio.devices import refresh

            refresh()

    def _warm_up(self) -> None:
        """Play 0.1 s of silence into each sink: the daemon's first stream stalls ~2 s."""
        path = self.runtime_dir / "warmup.wav"
        write_wav_mono(path, np.zeros(RATE // 10, dtype=np.float32), RATE)
        procs = [
            subprocess.Popen(
                ["paplay", "-d", sink, str(path)],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for sink in ("spk", "micsink")
        ]
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def play_into_mic(self, path: Path) -> subprocess.Popen[bytes]:
        """Start playing a WAV into the virtual microphone (returns the ``paplay`` process)."""
        return subprocess.Popen(
            ["paplay", "-d", "micsink", str(path)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def add_echo_path(self, latency_ms: int, volume_percent: int = 100) -> int:
        """Feed the speaker back into the microphone: ``module-loopback`` from ``spk.monitor``
        into ``micsink`` with *latency_ms* of added delay, at *volume_percent*.

        Returns the module id for :meth:`remove_echo_path`. Raises :class:`PulseUnavailable`.
        """
        done = self._run(
            "pactl",
            "load-module",
            "module-loopback",
            "source=spk.monitor",
            "sink=micsink",
            f"latency_msec={int(latency_ms)}",
            "source_dont_move=true",
            "sink_dont_move=true",
        )
        if done.returncode != 0:
            raise PulseUnavailable(f"module-loopback did not load: {done.stderr.strip()}")
        module = int(done.stdout.strip())
        if volume_percent != 100:
            listing = self._run("pactl", "list", "sink-inputs").stdout
            current = None
            for line in listing.splitlines():
                line = line.strip()
                if line.startswith("Sink Input #"):
                    current = line.split("#", 1)[1]
                elif line == f"Owner Module: {module}" and current is not None:
                    self._run("pactl", "set-sink-input-volume", current, f"{volume_percent}%")
        return module

    def remove_echo_path(self, module: int) -> None:
        """Unload a module loaded by :meth:`add_echo_path`."""
        self._run("pactl", "unload-module", str(module))

    def record(self, source: str, path: Path) -> Recorder:
        """Start recording *source* (e.g. ``spk.monitor``) into *path*."""
        return Recorder(self, source, path)

    def stop(self) -> None:
        """Stop keep-alive readers and the daemon, restore the environment, remove the dir."""
        for proc in self._keepalive:
            proc.terminate()
        for proc in self._keepalive:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._keepalive.clear()
        if self._started:
            pid_file = self.runtime_dir / "pulse" / "pid"
            pid = None
            try:
                pid = int(pid_file.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pid = None
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self._run("pactl", "exit", timeout=5.0)
            if pid is not None:
                deadline = time.monotonic() + 3.0
                while time.monotonic() < deadline:
                    try:
                        os.kill(pid, 0)
                    except OSError:
                        break
                    time.sleep(0.05)
                else:
                    with contextlib.suppress(OSError):
                        os.kill(pid, 9)
            self._started = False
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

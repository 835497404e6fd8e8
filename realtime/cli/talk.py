"""``realtime talk``: a live voice conversation (microphone -> session -> speaker).

Server VAD takes turns by default (``--ptt`` for push-to-talk with Enter); barge-in truncates
the assistant's reply at what was actually heard. On open speakers the echo canceller (WebRTC
AEC3, the ``aec`` extra) keeps the assistant's voice out of the microphone so you can talk over
it; without it the echo gate mutes the microphone while the assistant speaks. ``--echo``
chooses, ``--headphones`` turns both off. ``--tools module.py`` registers that file's functions.

``--input WAV --output WAV`` runs the same conversation headless: the WAV is the user's speech
(streamed in real time, then silence), the assistant's audio is written to the output WAV.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import inspect
import math
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from audio.files import FileMicrophone, FileSpeaker
from audio.playback import AudioSink, AudioSource

from ..events import ServerEvent
from ..events.common import InputAudioTranscription, ServerVad
from ..events.config import SessionConfig
from ..session import Session, connect
from .backend import add_backend_arguments, open_backend
from .common import CommandError, err_console, out_console

__all__ = ["IDLE_S", "REPLY_S", "TalkState", "add_parser", "handle", "load_tools", "ptt_talk_over"]

IDLE_S = 3.0
"""Headless: seconds without speech or reply after the input WAV that end the conversation."""
REPLY_S = 120.0
"""Headless: the longest a single turn (speech, reply, playback) may take."""
_WAV_HEADER_BYTES = 44

_AUDIO = ("response.output_audio.delta", "response.audio.delta")
_TRANSCRIPT = (
    "response.output_audio_transcript.delta",
    "response.audio_transcript.delta",
    "response.output_text.delta",
    "response.text.delta",
)


def add_parser(sub: Any) -> None:
    """Register the command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "talk",
        help="have a voice conversation (microphone and speaker, or WAV files)",
        description=__doc__,
    )
    p.add_argument("--input", help="a WAV file to use as the user's speech (headless)")
    p.add_argument("--output", help="write the assistant's audio to this WAV file")
    p.add_argument("--ptt", action="store_true", help="push-to-talk (Enter starts/stops)")
    p.add_argument(
        "--echo",
        choices=("auto", "aec", "gate", "off"),
        default="auto",
        help="echo handling on open speakers: aec (cancel the echo: talk over the assistant), "
        "gate (mute the mic while it speaks), off; auto (default): aec if it loads, else gate",
    )
    p.add_argument(
        "--headphones", action="store_true", help="no echo handling (same as --echo off)"
    )
    p.add_argument(
        "--double-talk",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with the echo canceller: SpeexDSP takes over from AEC3 while you talk over the "
        "reply, so your words survive (needs libspeexdsp1; see the README for its trade-off); "
        "--no-double-talk (the default): AEC3 alone",
    )
    p.add_argument("--tools", help="a Python file whose functions become tools")
    p.add_argument("--voice", default=None, help="assistant voice (e.g. alloy, marin)")
    p.add_argument("--instructions", default=None, help="system instructions")
    p.add_argument("--input-device", default=None, help="microphone (index or name part)")
    p.add_argument("--output-device", default=None, help="speaker (index or name part)")
    p.add_argument("--record", default=None, help="record every event to this JSONL file")
    p.add_argument(
        "--turns",
        type=int,
        default=None,
        help="headless: stop after this many assistant replies (default 1; fewer when the "
        "input runs out first)",
    )
    add_backend_arguments(p)
    p.set_defaults(handler=handle)


def load_tools(path: str) -> list[Callable[..., Any]]:
    """The public functions defined in a Python file, to register as tools."""
    file = Path(path)
    if not file.exists():
        raise CommandError(f"no such tools file: {file}")
    spec = importlib.util.spec_from_file_location(f"realtime_user_tools_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise CommandError(f"cannot import tools from {file}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise CommandError(f"{file}: {type(exc).__name__}: {exc}") from exc
    funcs: list[Callable[..., Any]] = [
        obj
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and inspect.isfunction(obj)
        and obj.__module__ == module.__name__
    ]
    if not funcs:
        raise CommandError(f"{file} defines no public functions to use as tools")
    return funcs


class TalkState:
    """What the conversation view shows, updated from events (also used headless)."""

    def __init__(
        self,
        speaker: AudioSink,
        *,
        ptt: bool = False,
        on_line: Callable[[str, str], None] | None = None,
    ) -> None:
        self.speaker = speaker
        self.ptt = ptt
        self.state = "press Enter to talk" if ptt else "listening"
        self.on_line = on_line
        self.user = ""
        self.assistant = ""
        self.history: list[tuple[str, str]] = []
        self.latency_ms: float | None = None
        self.stopped_at: float | None = None
        self.replies = 0
        self.usage_tokens = 0
        self.level_dbfs = -math.inf
        self.errors: list[str] = []
        self.echo = ""
        self.done = asyncio.Event()

    def on_event(self, event: ServerEvent) -> None:
        kind = event.type
        if kind == "input_audio_buffer.speech_started":
            self.state = "hearing you"
        elif kind in ("input_audio_buffer.speech_stopped", "input_audio_buffer.committed"):
            self.state = "thinking"
            if self.stopped_at is None:
                self.stopped_at = time.monotonic()
        elif kind == "conversation.item.input_audio_transcription.completed":
            self.user = str(getattr(event, "transcript", "")).strip()
            usage = getattr(event, "usage", None)  # GA: transcription usage counts too
            self.usage_tokens += int(getattr(usage, "total_tokens", 0) or 0)
            self._line("you", self.user)
        elif kind in _AUDIO or kind in _TRANSCRIPT:
            if self.stopped_at is not None:
                self.latency_ms = (time.monotonic() - self.stopped_at) * 1000
                self.stopped_at = None
            if kind in _TRANSCRIPT:
                self.assistant += str(getattr(event, "delta", ""))
            self.state = "speaking"
        elif kind == "response.done":
            response = getattr(event, "response", None)
            usage = getattr(response, "usage", None)
            self.usage_tokens += int(getattr(usage, "total_tokens", 0) or 0)
            if self.assistant:
                self._line("assistant", self.assistant.strip())
            self.assistant = ""
            # the view shows "speaking" while the reply still plays
            self.state = "press Enter to talk" if self.ptt else "listening"
            outputs = getattr(response, "output", None) or []
            if not any(getattr(o, "type", None) == "function_call" for o in outputs):
                self.replies += 1  # a tool call is not a reply: the answer follows it
                self.done.set()
        elif kind == "error":
            err = getattr(event, "error", None)
            self.errors.append(str(getattr(err, "message", event)))

    def _line(self, who: str, words: str) -> None:
        self.history.append((who, words))
        if self.on_line is not None:
            self.on_line(who, words)

    @property
    def busy(self) -> bool:
        """True while the user speaks, a reply is awaited or produced, or audio still plays."""
        waiting = self.state in ("hearing you", "thinking", "speaking")
        return waiting or self.speaker.is_playing

    def render(self) -> Panel:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", width=10)
        table.add_column()
        for who, words in self.history[-6:]:
            table.add_row(who, words)
        if self.assistant:
            table.add_row("assistant", Text(self.assistant, style="cyan"))
        level = 0 if self.level_dbfs == -math.inf else max(0, int((self.level_dbfs + 60) / 3))
        meter = "█" * min(level, 20) + "·" * (20 - min(level, 20))
        state = "speaking" if self.speaker.is_playing else self.state
        latency = f"{self.latency_ms:.0f} ms" if self.latency_ms is not None else "-"
        footer = f"[{state}]  mic {meter}  turn latency {latency}  tokens {self.usage_tokens}"
        if self.echo:
            footer += f"  {self.echo}"
        if self.errors:
            footer += f"  last error: {self.errors[-1]}"
        table.add_row("", Text(footer, style="dim"))
        if self.ptt:
            hint = (
                "press Enter to send"
                if self.state == "hearing you"
                else "press Enter, speak, press Enter again"
            )
            table.add_row("", Text(hint, style="bold"))
        return Panel(table, title="realtime talk (Ctrl-C to quit)")


async def _pump_file(
    session: Session, source: AudioSource, state: TalkState, ptt: bool, turns: int
) -> None:
    """Headless: stream the WAV, then silence, until the replies are done or nothing is coming.

    The input is used up when, after the WAV, nothing happens for :data:`IDLE_S` seconds (no
    speech, no reply in progress, nothing playing); a reply in progress gets :data:`REPLY_S`.
    """
    async for chunk in source:
        await session.append_audio(chunk)
    if ptt:
        await session.commit_audio()
        await session.create_response()
        state.state = "thinking"
    silence = bytes(960 * 2)  # 40 ms
    idle_since: float | None = None
    busy_since: float | None = None
    while state.replies < turns:
        if not ptt:
            await session.append_audio(silence)
        await asyncio.sleep(0.04)
        now = time.monotonic()
        if state.busy:
            idle_since = None
            busy_since = busy_since or now
            if now - busy_since > REPLY_S:
                raise CommandError(
                    f"no reply within {REPLY_S:.0f} s (got {state.replies} of {turns} replies)"
                )
        else:
            busy_since = None
            idle_since = idle_since or now
            if now - idle_since > IDLE_S:
                break
    if state.replies < turns:
        plural = "reply" if turns == 1 else "replies"
        raise CommandError(f"got {state.replies} of {turns} {plural}: the input ran out")


async def _pump_mic(
    session: Session, source: AsyncIterator[bytes], state: TalkState, mic: Any, ptt: bool
) -> None:
    """Live: stream microphone chunks (push-to-talk: only while talking)."""
    talking = asyncio.Event()
    loop = asyncio.get_running_loop()
    releases: set[asyncio.Task[Any]] = set()

    if ptt:

        def on_enter() -> None:
            sys.stdin.readline()
            if talking.is_set():
                talking.clear()
                state.state = "thinking"
                task = asyncio.ensure_future(_ptt_release(session))
                releases.add(task)
                task.add_done_callback(releases.discard)
            else:
                talking.set()
                state.state = "hearing you"
                barge = ptt_talk_over(session, state.speaker)
                if barge is not None:
                    releases.add(barge)
                    barge.add_done_callback(releases.discard)

        loop.add_reader(sys.stdin.fileno(), on_enter)
    async for chunk in source:
        state.level_dbfs = float(getattr(mic, "level_dbfs", -math.inf))
        mode = getattr(mic, "echo_mode", "")
        canceller = getattr(mic, "echo_canceller", None)
        if mode == "aec" and canceller is not None:
            both = " + double talk" if getattr(canceller, "double_talk", False) else ""
            state.echo = f"echo: aec{both} {canceller.delay_ms:.0f} ms"
        elif mode:
            state.echo = f"echo: {mode}"
        if not ptt or talking.is_set():
            await session.append_audio(chunk)


def ptt_talk_over(session: Session, speaker: Any) -> asyncio.Task[Any] | None:
    """Push-to-talk pressed while the assistant speaks: barge in (``Session.interrupt``:
    the speaker fades out, the reply is cancelled and truncated at what was heard)."""
    if not (speaker.is_playing or session.responses.active_response is not None):
        return None
    return asyncio.ensure_future(session.interrupt(speaker))


async def _ptt_release(session: Session) -> None:
    await session.commit_audio()
    await session.create_response()


async def handle(args: argparse.Namespace) -> int:
    """Run the conversation."""
    if args.input and not Path(args.input).exists():
        raise CommandError(f"no such input WAV: {args.input}")
    headless = args.input is not None
    if headless and not args.output:
        raise CommandError("--input needs --output (the WAV file the reply is written to)")
    if not headless and args.output:
        raise CommandError("--output needs --input (a live conversation plays the reply)")
    if not headless and args.turns is not None:
        raise CommandError("--turns needs --input (a live conversation ends with Ctrl-C)")
    tools = load_tools(args.tools) if args.tools else []
    try:
        return await _converse(args, headless, tools)
    except Exception:
        _remove_empty(args.output if headless else None, args.record)
        raise


def _remove_empty(wav: str | None, record: str | None) -> None:
    """After a failure: no header-only WAV or empty recording is left behind."""
    for path, empty in ((wav, _WAV_HEADER_BYTES), (record, 0)):
        if path is not None:
            file = Path(path)
            if file.is_file() and file.stat().st_size <= empty:
                file.unlink()


def _print_line(who: str, words: str) -> None:
    out_console.print(Text.assemble((f"{who}:", "bold"), " ", words))


async def _converse(
    args: argparse.Namespace, headless: bool, tools: list[Callable[..., Any]]
) -> int:
    fields: dict[str, Any] = {
        "output_modalities": ["audio"],
        "transcription": InputAudioTranscription(model="whisper-1"),
        "turn_detection": None
        if args.ptt
        else ServerVad(
            type="server_vad",
            threshold=0.5,
            prefix_padding_ms=300,
            silence_duration_ms=500,
            create_response=True,
            interrupt_response=True,
        ),
    }
    if args.voice:
        fields["voice"] = args.voice
    if args.instructions:
        fields["instructions"] = args.instructions
    config = SessionConfig(**fields)

    async with contextlib.AsyncExitStack() as stack:
        if headless:
            source: Any = FileMicrophone(args.input, rate=24000, chunk_ms=40, realtime=True)
            speaker: Any = FileSpeaker(args.output, rate=24000, clock="realtime")
            mic = None
        else:
            from audio.exceptions import EchoCancellerUnavailable
            from audio.microphone import EchoMode, Microphone
            from audio.speaker import Speaker

            speaker = await stack.enter_async_context(Speaker(device=args.output_device))
            echo: EchoMode = "off" if args.headphones else args.echo
            if args.double_talk and echo in ("gate", "off"):
                raise CommandError(f"--double-talk needs the echo canceller, not --echo {echo}")
            try:
                microphone = Microphone(
                    device=args.input_device, speaker=speaker, echo=_echo(echo, args.double_talk)
                )
            except EchoCancellerUnavailable as exc:
                raise CommandError(f"--echo aec: {exc}") from exc
            mic = await stack.enter_async_context(microphone)
            source = mic
            err_console.print(f"echo: {mic.echo_description}", markup=False)
            if args.output:
                err_console.print("note: --output records only in headless mode (--input)")
        stack.callback(speaker.close)
        backend = await stack.enter_async_context(open_backend(args))
        err_console.print(backend.description)
        state = TalkState(speaker, ptt=args.ptt, on_line=_print_line if headless else None)
        ctx = connect(
            **backend.connect_kwargs,
            api_key=backend.api_key,
            config=config,
            tracker=speaker,
            tools=tools,
        )
        if args.record:  # subscribed before connecting: the handshake is recorded too
            from ..recording import Recorder

            recorder = stack.enter_context(Recorder(args.record))
            ctx.session.add_send_listener(recorder.client)
            ctx.session.add_receive_listener(recorder.server)  # causal order, replayable
        ctx.session.on("*", state.on_event)
        session = await stack.enter_async_context(ctx)

        def on_audio(event: ServerEvent) -> None:
            import base64

            speaker.enqueue(
                base64.b64decode(event.delta),  # type: ignore[attr-defined]
                str(getattr(event, "item_id", "")),
                int(getattr(event, "content_index", 0)),
            )

        for kind in _AUDIO:
            session.on(kind, on_audio)
        if headless:
            await _pump_file(session, source, state, args.ptt, args.turns or 1)
            await asyncio.wait_for(speaker.drained(), 60)
            if state.latency_ms is not None:
                err_console.print(
                    f"turn latency (end of speech -> first audio): "
                    f"{state.latency_ms:.0f} ms; reply written to {args.output}"
                )
            return 0
        with (
            _no_echo(args.ptt),
            Live(state.render(), console=err_console, refresh_per_second=10) as live,
        ):
            pump = asyncio.ensure_future(_pump_mic(session, source, state, mic, args.ptt))
            try:
                while not pump.done():
                    live.update(state.render())
                    await asyncio.sleep(0.1)
                pump.result()
            finally:
                pump.cancel()
    return 0


def _echo(mode: str, double_talk: bool | None) -> Any:
    """The microphone's ``echo``: the mode, or a double-talk canceller when asked for (with
    ``auto``, the gate still takes over when the canceller cannot load)."""
    if not double_talk or mode in ("gate", "off"):
        return mode
    from audio.aec import EchoCanceller
    from audio.exceptions import EchoCancellerUnavailable

    try:
        return EchoCanceller(double_talk=True)
    except EchoCancellerUnavailable:
        if mode == "aec":
            raise
        return mode


@contextlib.contextmanager
def _no_echo(active: bool) -> Iterator[None]:
    """Push-to-talk: the terminal does not echo Enter (which would break the live panel)."""
    if not active or not sys.stdin.isatty():
        yield
        return
    import termios

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    quiet = list(saved)
    quiet[3] = quiet[3] & ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSADRAIN, quiet)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)

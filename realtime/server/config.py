"""The local server's view of a session's configuration.

The server keeps each session's configuration as the client's own
:class:`realtime.events.SessionConfig` (fully filled with the service's defaults), merges
``session.update`` payloads of either dialect into it through ``SessionConfig.from_wire``, and
writes ``session.created`` / ``session.updated`` through ``SessionConfig.to_wire``: the server
and the client agree on the wire shapes by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..events.common import InputAudioTranscription, ServerVad
from ..events.config import SessionConfig
from .wire import ServerDialect

__all__ = ["DEFAULT_INSTRUCTIONS", "FORMAT_OBJECTS", "ServerConfig"]

DEFAULT_INSTRUCTIONS = "You are the local echo assistant of realtime-voice."

FORMAT_OBJECTS: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}

# Fields one dialect cannot carry (left out when writing the session in that dialect).
_NOT_IN = {
    "beta": frozenset(
        {"tracing", "truncation", "prompt", "reasoning", "parallel_tool_calls", "speed"}
    ),
    "ga": frozenset({"temperature"}),
}
_TRANSCRIPTION_FIELDS = frozenset(
    {"kind", "input_format", "transcription", "noise_reduction", "turn_detection", "include"}
)


def _defaults(kind: str) -> SessionConfig:
    if kind == "transcription":
        return SessionConfig(
            kind="transcription",
            input_format="pcm16",
            transcription=InputAudioTranscription(model="gpt-4o-transcribe"),
            turn_detection=ServerVad(
                type="server_vad", threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500
            ),
            noise_reduction=None,
        )
    return SessionConfig(
        kind="realtime",
        instructions=DEFAULT_INSTRUCTIONS,
        output_modalities=["audio"],
        voice="alloy",
        speed=1.0,
        input_format="pcm16",
        output_format="pcm16",
        turn_detection=ServerVad(
            type="server_vad",
            threshold=0.5,
            prefix_padding_ms=300,
            silence_duration_ms=500,
            create_response=True,
            interrupt_response=True,
        ),
        transcription=None,
        noise_reduction=None,
        tools=[],
        tool_choice="auto",
        temperature=0.8,
        max_output_tokens="inf",
    )


class ServerConfig:
    """One session's configuration (a filled-in :class:`SessionConfig`) plus its model name."""

    def __init__(self, session: SessionConfig | None = None, *, model: str = "gpt-realtime"):
        self.session = session if session is not None else _defaults("realtime")
        self.model = model

    @classmethod
    def for_transcription(cls) -> ServerConfig:
        """Defaults of a transcription-only session."""
        return cls(_defaults("transcription"))

    def copy(self) -> ServerConfig:
        """An independent copy."""
        return ServerConfig(self.session.model_copy(deep=True), model=self.model)

    def apply(self, update: SessionConfig) -> None:
        """Merge the fields an update sets (partial updates leave the rest unchanged).

        Changing the session kind resets the configuration to that kind's defaults first.
        """
        fields = {name: getattr(update, name) for name in update.model_fields_set}
        base = self.session
        if update.kind != base.kind and "kind" in update.model_fields_set:
            base = _defaults(update.kind)
        given = {name: getattr(base, name) for name in base.model_fields_set}
        given.update(fields)
        if given.get("kind") == "transcription":
            given = {k: v for k, v in given.items() if k in _TRANSCRIPTION_FIELDS}
        self.session = SessionConfig(**given)

    def session_object(
        self, dialect: ServerDialect, *, session_id: str, expires_at: int
    ) -> dict[str, Any]:
        """The ``session`` object of ``session.created`` / ``session.updated``."""
        s = self.session
        given = {k: getattr(s, k) for k in s.model_fields_set if k not in _NOT_IN[dialect]}
        given.pop("model", None)
        wire = SessionConfig(**given).to_wire(dialect)
        transcription = s.kind == "transcription"
        out: dict[str, Any] = {"id": session_id}
        if dialect == "beta" and transcription:
            out["object"] = "realtime.transcription_session"
        else:
            out["object"] = "realtime.session"
        if not transcription:
            out["model"] = self.model
        out.update(wire)
        out["expires_at"] = expires_at
        return out

    # -- what the server acts on --------------------------------------------------------
    @property
    def type(self) -> str:
        """``"realtime"`` or ``"transcription"``."""
        return self.session.kind

    @property
    def output_modalities(self) -> list[str]:
        """``["audio"]`` or ``["text"]``."""
        return list(self.session.output_modalities or ["audio"])

    @property
    def instructions(self) -> str:
        """The session's instructions."""
        return self.session.instructions or DEFAULT_INSTRUCTIONS

    @property
    def voice(self) -> str:
        """The voice name (a custom voice object counts as ``alloy``)."""
        v = self.session.voice
        return v if isinstance(v, str) else "alloy"

    @property
    def speed(self) -> float:
        """Speech speed (1.0 normal)."""
        return float(self.session.speed or 1.0)

    @property
    def input_format(self) -> str:
        """``pcm16``, ``g711_ulaw`` or ``g711_alaw``."""
        return self.session.input_format or "pcm16"

    @property
    def output_format(self) -> str:
        """``pcm16``, ``g711_ulaw`` or ``g711_alaw``."""
        return self.session.output_format or "pcm16"

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        """The turn detection settings (``semantic_vad`` behaves as ``server_vad`` here)."""
        td = self.session.turn_detection
        return None if td is None else td.model_dump(exclude_none=True)

    @property
    def transcription(self) -> dict[str, Any] | None:
        """Input transcription settings, ``None`` when off."""
        tr = self.session.transcription
        return None if tr is None else tr.model_dump(exclude_none=True)

    @transcription.setter
    def transcription(self, value: Mapping[str, Any] | None) -> None:
        tr = None if value is None else InputAudioTranscription(**dict(value))
        given = {k: getattr(self.session, k) for k in self.session.model_fields_set}
        given["transcription"] = tr
        self.session = SessionConfig(**given)

    @property
    def tools(self) -> list[dict[str, Any]]:
        """Function tools as wire dicts."""
        return [t.model_dump(exclude_none=True) for t in self.session.tools or []]

    @property
    def tool_choice(self) -> Any:
        """The tool choice (``"auto"`` by default)."""
        tc = self.session.tool_choice
        if tc is None:
            return "auto"
        return tc if isinstance(tc, str) else tc.model_dump(exclude_none=True)

    def format_object(self, which: str) -> Mapping[str, Any]:
        """The GA format object of the input (``"input"``) or output format."""
        return FORMAT_OBJECTS[self.input_format if which == "input" else self.output_format]

"""Translators: what turns the recognized text of a translation session into the target language.

The local server's translation sessions recognize speech with the server's speech-to-text
engine, hand each phrase to a translator, and speak the translation. Two translators ship:

- :class:`ApertiumTranslator` (the offline default): Apertium, a rule-based machine translation
  engine, run as the ``apertium`` command with the language pairs installed on the machine
  (Debian packages ``apertium`` and ``apertium-eng-spa`` give English to Spanish; each other
  ``apertium-*`` pair package adds its pairs). No model is downloaded at run time.
- :class:`ChatTranslator` (``openai-compatible:URL``): any chat-completions endpoint (a local
  Ollama, vLLM, …) asked to translate, through the responders' streaming client
  (:class:`~realtime.server.responders.OpenAICompatibleResponder`).

``load_translator(spec)`` builds one from the ``--translator`` option; ``None`` means no
translator is available, and the server then refuses translation sessions with an error that
names the option.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import subprocess
from collections.abc import AsyncIterator
from typing import Protocol

from ..exceptions import ConfigError
from .responders import OpenAICompatibleResponder, ResponderContext, TextDelta

__all__ = [
    "ApertiumTranslator",
    "ChatTranslator",
    "TRANSLATOR_HELP",
    "Translator",
    "apertium_pairs",
    "load_translator",
]

TRANSLATOR_HELP = (
    "start the server with --translator openai-compatible:URL (a chat-completions endpoint), "
    "or install Apertium and language pairs (apt-get install apertium apertium-eng-spa "
    "apertium-fr-es) for --translator apertium"
)
"""How to get a translator, for error messages."""

# ISO 639-1 -> the ISO 639-3 code Apertium pairs use.
_ISO3 = {
    "af": "afr", "an": "arg", "be": "bel", "br": "bre", "ca": "cat", "da": "dan", "de": "deu",
    "en": "eng", "eo": "epo", "es": "spa", "eu": "eus", "fr": "fra", "gl": "glg", "hi": "hin",
    "id": "ind", "is": "isl", "it": "ita", "kk": "kaz", "mk": "mkd", "ms": "zlm", "nb": "nob",
    "nl": "nld", "nn": "nno", "oc": "oci", "pt": "por", "ro": "ron", "ru": "rus", "sc": "srd",
    "sl": "slv", "sv": "swe", "tt": "tat", "uk": "ukr", "ur": "urd",
}  # fmt: skip


def _codes(language: str) -> set[str]:
    base = language.strip().lower().replace("_", "-").split("-")[0]
    codes = {base}
    if base in _ISO3:
        codes.add(_ISO3[base])
    codes.update(k for k, v in _ISO3.items() if v == base)
    return codes


class Translator(Protocol):
    """Translates recognized text; ``check`` says why a language pair cannot be served."""

    name: str

    def check(self, source: str, target: str) -> str | None:
        """``None`` when ``source`` -> ``target`` can be translated, else the reason."""
        ...

    def translate(self, text: str, *, source: str, target: str) -> AsyncIterator[str]:
        """Stream the translation of ``text`` as text deltas."""
        ...


@functools.lru_cache(maxsize=1)
def _apertium_modes(command: str) -> tuple[str, ...]:
    try:
        out = subprocess.run(
            [command, "-l"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line.strip() for line in out.splitlines() if line.strip())


def apertium_pairs() -> tuple[str, ...]:
    """The translation modes of the installed Apertium (``eng-spa``, …); empty without it."""
    command = shutil.which("apertium")
    return _apertium_modes(command) if command else ()


class ApertiumTranslator:
    """Offline rule-based translation with the ``apertium`` command (see the module docstring).

    Raises :class:`ConfigError` when Apertium or any language pair is missing. Each
    translation runs ``apertium -u MODE`` (about 0.2 s a phrase) with a ``timeout``.
    """

    name = "apertium"

    def __init__(self, *, timeout: float = 30.0) -> None:
        command = shutil.which("apertium")
        if command is None:
            raise ConfigError(f"Apertium is not installed: {TRANSLATOR_HELP}")
        self.command = command
        self.modes = _apertium_modes(command)
        if not self.modes:
            raise ConfigError(f"Apertium has no language pair installed: {TRANSLATOR_HELP}")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ApertiumTranslator(modes={list(self.modes)!r})"

    def modes_for(self, source: str, target: str) -> tuple[str, ...] | None:
        """The installed modes translating ``source`` into ``target`` (ISO 639-1 or -3): one
        direct pair, else two through a pivot language (Spanish first); ``None`` if neither."""
        src, dst = _codes(source), _codes(target)
        pairs = [mode.partition("-")[::2] for mode in self.modes]
        for mode, (a, b) in zip(self.modes, pairs, strict=True):
            if a in src and b in dst:
                return (mode,)
        chains = []
        for first, (a, pivot) in zip(self.modes, pairs, strict=True):
            if a not in src:
                continue
            via = _codes(pivot)
            for second, (c, d) in zip(self.modes, pairs, strict=True):
                if c in via and d in dst:
                    chains.append((0 if "spa" in via else 1, first, second))
        if not chains:
            return None
        _, first, second = min(chains)
        return (first, second)

    def check(self, source: str, target: str) -> str | None:
        if self.modes_for(source, target) is not None:
            return None
        return (
            f"no Apertium pair translates {source!r} into {target!r} (installed: "
            f"{', '.join(self.modes)}); install the apertium-* package of that pair or use "
            "--translator openai-compatible:URL"
        )

    async def _run(self, mode: str, text: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            self.command,
            "-u",
            mode,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(text.encode("utf-8")), self.timeout)
        except asyncio.TimeoutError:
            raise ConfigError(f"apertium {mode} took over {self.timeout:g} s") from None
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if proc.returncode:
            detail = err.decode("utf-8", "replace").strip()[:200]
            raise ConfigError(f"apertium {mode} failed ({proc.returncode}): {detail}")
        return " ".join(out.decode("utf-8", "replace").split())  # pairs leave double spaces

    async def translate(self, text: str, *, source: str, target: str) -> AsyncIterator[str]:
        modes = self.modes_for(source, target)
        if modes is None:
            raise ConfigError(self.check(source, target) or "unsupported pair")
        for mode in modes:  # through the pivot language when there is no direct pair
            text = await self._run(mode, text)
        if text:
            yield text


class ChatTranslator:
    """Translation by a chat-completions endpoint (streamed, through the responder client)."""

    name = "openai-compatible"

    def __init__(self, responder: OpenAICompatibleResponder) -> None:
        self.responder = responder

    def __repr__(self) -> str:
        return f"ChatTranslator({self.responder!r})"

    def check(self, source: str, target: str) -> str | None:
        return None if target.strip() else "no target language"

    @staticmethod
    def instructions(source: str, target: str) -> str:
        """The system prompt sent with each phrase."""
        return (
            f"You are an interpreter. Translate the user's words from the language {source!r} "
            f"into the language {target!r}. Answer with the translation only, without quotes, "
            "notes or explanations."
        )

    async def translate(self, text: str, *, source: str, target: str) -> AsyncIterator[str]:
        ctx = ResponderContext(
            items=[
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                }
            ],
            instructions=self.instructions(source, target),
        )
        async for out in self.responder.respond(ctx):
            if isinstance(out, TextDelta) and out.text:
                yield out.text


def load_translator(spec: str | None) -> Translator | None:
    """Build the translator of a ``--translator`` spec.

    ``None`` or ``"auto"``: Apertium when it is installed with a pair, else ``None`` (the
    server then refuses translation sessions). ``"apertium"``: Apertium or ConfigError.
    ``"openai-compatible:URL"`` (optionally ``…#model=NAME``): a chat endpoint. ``"none"``:
    no translator.
    """
    if spec is None or spec == "auto":
        try:
            return ApertiumTranslator()
        except ConfigError:
            return None
    if spec == "none":
        return None
    if spec == "apertium":
        return ApertiumTranslator()
    kind, _, arg = spec.partition(":")
    if kind == "openai-compatible" and arg:
        url, _, frag = arg.partition("#")
        model = frag.removeprefix("model=") if frag.startswith("model=") else "llama3.2"
        return ChatTranslator(OpenAICompatibleResponder(url, model=model))
    raise ConfigError(
        f"unknown translator {spec!r}: use 'auto', 'apertium', 'openai-compatible:URL' or 'none'"
    )

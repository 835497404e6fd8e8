"""``realtime serve``: run the local realtime server (WebSocket + REST audio)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from .common import err_console

__all__ = ["add_parser", "handle"]


def add_parser(sub: Any) -> None:
    """Register the command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="run the local offline realtime server",
        description="Run the local realtime server: the realtime WebSocket at /v1/realtime and "
        "the REST audio endpoints, with offline VAD, speech-to-text and text-to-speech.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free)")
    p.add_argument(
        "--responder",
        default="echo",
        help="echo (default) | script:FILE | openai-compatible:URL[#model=NAME]",
    )
    p.add_argument(
        "--translator",
        default="auto",
        help="translation sessions: auto (Apertium if installed) | apertium | "
        "openai-compatible:URL[#model=NAME] | none",
    )
    p.add_argument("--api-key", default=None, help="require this key from clients")
    p.add_argument("--stt", default="auto", choices=["auto", "faster-whisper", "pocketsphinx"])
    p.add_argument("--stt-model", default=None, help="a CTranslate2 Whisper model folder")
    p.add_argument("--tts", default="auto", choices=["auto", "piper", "espeak"])
    p.add_argument(
        "--pace-audio",
        action="store_true",
        help="send reply audio in real time instead of as fast as synthesized",
    )
    p.add_argument("--session-minutes", type=float, default=60.0, help="session time limit")
    p.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from ..server import LocalServer

    server = LocalServer(
        args.host,
        args.port,
        responder=args.responder,
        api_key=args.api_key,
        stt=args.stt,
        tts=args.tts,
        stt_model=args.stt_model,
        pace_audio=args.pace_audio,
        session_seconds=args.session_minutes * 60,
        warm=True,
        translator=args.translator,
    )
    err_console.print("loading engines (VAD, speech-to-text, text-to-speech)...")
    await server.start()
    err_console.print(f"realtime server: {server.url}/realtime   REST: {server.http_url}")
    translator = server.state.translator
    err_console.print(
        f"translation sessions: {server.url}/realtime/translations ({translator!r})"
        if translator is not None
        else "translation sessions: refused (no translator; see --translator)"
    )
    err_console.print("press Ctrl-C to stop")
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
    return 0

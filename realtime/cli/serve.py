"""``realtime serve``: run the local realtime server (WebSocket + REST audio)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigError
from .common import CommandError, err_console

if TYPE_CHECKING:
    from ..server import Limits

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
    p.add_argument(
        "--upstream",
        default=None,
        metavar="openai|URL",
        help="the browser console at / talks to this service instead (its key is read from "
        "OPENAI_API_KEY and stays on the server; the page gets ephemeral secrets)",
    )
    p.add_argument("--tls-cert", default=None, help="TLS certificate (PEM): serve HTTPS/WSS")
    p.add_argument("--tls-key", default=None, help="TLS private key (PEM) for --tls-cert")
    lim = p.add_argument_group("limits (see README: The local server)")
    lim.add_argument(
        "--max-sessions", type=int, default=None, help="realtime sessions at once (default 200)"
    )
    lim.add_argument(
        "--max-connections", type=int, default=None, help="open connections (default 1000)"
    )
    lim.add_argument(
        "--max-upload-mb", type=float, default=None, help="REST upload size in MiB (default 25)"
    )
    lim.add_argument(
        "--max-upload-minutes",
        type=float,
        default=None,
        help="duration of an uploaded file (default 25)",
    )
    lim.add_argument(
        "--max-audio-minutes",
        type=float,
        default=None,
        help="input audio held by all sessions together (default 120)",
    )
    lim.add_argument(
        "--handshake-timeout",
        type=float,
        default=None,
        help="seconds to send the request headers (default 10)",
    )
    lim.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        help="seconds an idle keep-alive connection stays open (default 5)",
    )
    p.add_argument(
        "--log-level",
        default=None,
        choices=["debug", "info", "warning", "error"],
        help="server log level (credentials are redacted at every level)",
    )
    p.set_defaults(handler=handle)


def limits_from(args: argparse.Namespace) -> Limits:
    """The server's limits from the command line options (defaults where not given)."""
    from ..server import Limits

    def scaled(value: float | None, factor: float) -> int | None:
        return None if value is None else int(value * factor)

    try:
        return Limits().with_(
            max_sessions=args.max_sessions,
            max_connections=args.max_connections,
            max_upload_bytes=scaled(args.max_upload_mb, 1024 * 1024),
            max_upload_seconds=None
            if args.max_upload_minutes is None
            else args.max_upload_minutes * 60,
            max_server_audio_ms=scaled(args.max_audio_minutes, 60_000),
            handshake_timeout=args.handshake_timeout,
            idle_timeout=args.idle_timeout,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _check_port(host: str, port: int) -> None:
    """A one-line error, before any engine loads, when the address cannot be bound."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}: {exc.strerror or exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind(address)
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                "(another server running? pick another --port)"
            ) from None


async def handle(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    _check_port(args.host, args.port)
    from ..exceptions import ConfigError
    from ..server import LocalServer
    from ..server.console import Upstream

    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together")
    upstream = None
    if args.upstream:
        try:
            upstream = Upstream.from_option(args.upstream)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if args.log_level is not None:  # the server's loggers print to stderr, redacted
        logging.basicConfig(
            level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )
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
        limits=limits_from(args),
        warm=True,
        upstream=upstream,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
        translator=args.translator,
        log_level=args.log_level,
    )
    err_console.print("loading engines (VAD, speech-to-text, text-to-speech)...")
    await server.start()
    err_console.print(f"realtime server: {server.url}/realtime   REST: {server.http_url}")
    console_url = server.http_url.removesuffix("/v1") + "/"
    via = f" (talking to {upstream.base_url})" if upstream else ""
    err_console.print(f"browser console: {console_url}{via}")
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

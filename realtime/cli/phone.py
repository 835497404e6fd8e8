"""``realtime phone``: serve the phone media-stream bridge.

Point your telephony provider's voice webhook at ``POST /incoming-call``: it answers with
TwiML connecting the call's audio to ``/media-stream``, where each call is bridged to a
realtime session (mu-law passes straight through; barge-in from mark acknowledgements).
The backend is chosen as in every command (local offline server by default).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from .backend import add_backend_arguments, open_backend
from .common import err_console
from .talk import load_tools

__all__ = ["APOLOGY", "add_parser", "handle"]

APOLOGY = "Sorry, something went wrong on our side. Please call again later. Goodbye."

logger = logging.getLogger("realtime.cli")


def add_parser(sub: Any) -> None:
    """Register the command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "phone",
        help="serve the phone bridge (Twilio-style media streams) for phone calls",
        description=__doc__,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5050, help="port (default 5050; 0 = any free)")
    p.add_argument(
        "--public-url",
        default=None,
        help="this server's address as the provider reaches it (https://...); default: "
        "taken from the webhook request",
    )
    p.add_argument("--tools", help="a Python file whose functions become tools")
    p.add_argument("--instructions", default=None, help="system instructions")
    p.add_argument("--voice", default=None, help="assistant voice (e.g. alloy, marin)")
    p.add_argument(
        "--record", default=None, help="a folder: each call's events go to <call id>.jsonl"
    )
    p.add_argument(
        "--dtmf-text",
        default="The caller pressed {digit} on the keypad.",
        help="message sent to the session for each key press ('' to send none)",
    )
    p.add_argument(
        "--no-apology",
        action="store_true",
        help="end a failed call in silence instead of a spoken apology",
    )
    add_backend_arguments(p)
    p.set_defaults(handler=handle)


def _apology() -> bytes | None:
    """The apology as PCM16 24 kHz, spoken by the offline synthesizer (None when unavailable)."""
    try:
        from ..server.tts import load_tts

        return load_tts("espeak").synthesize(APOLOGY)
    except Exception as exc:  # no synthesizer here: calls still end, silently
        logger.warning("no apology audio (%s)", exc)
        return None


async def handle(args: argparse.Namespace) -> int:
    """Serve calls until interrupted."""
    from ..events.config import SessionConfig
    from ..telephony.app import PhoneServer, create_phone_app
    from ..telephony.bridge import MediaStreamBridge

    tools = load_tools(args.tools) if args.tools else []
    config = SessionConfig(voice=args.voice) if args.voice else None
    apology = None if args.no_apology else await asyncio.to_thread(_apology)
    async with open_backend(args) as backend:
        err_console.print(backend.description)
        bridge = MediaStreamBridge(
            connect={**backend.connect_kwargs, "api_key": backend.api_key},
            config=config,
            instructions=args.instructions,
            tools=tools,
            dtmf_text=args.dtmf_text or None,
            apology=apology,
            record=args.record,
        )
        app = create_phone_app(bridge, public_url=args.public_url)
        async with PhoneServer(app, args.host, args.port) as server:
            err_console.print(f"voice webhook: POST {server.url}/incoming-call")
            err_console.print(f"media stream:  {server.stream_url}")
            err_console.print("press Ctrl-C to stop")
            await asyncio.Event().wait()
    return 0

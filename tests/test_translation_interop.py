"""openai-python's translation client (``client.realtime.translations``) against the local
server: the server speaks the protocol as the official SDK expects it."""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import openai

from realtime.server.local import LocalServer
from tests.server_kit import shared_engines
from tests.test_translation_session import SECOND, needs_apertium, speech


async def test_openai_sdk_translation_session() -> None:
    needs_apertium()
    pcm = await speech("Good morning, my friend.")
    async with (
        contextlib.AsyncExitStack() as stack,
        LocalServer(engines=shared_engines()) as server,
    ):
        client = openai.AsyncOpenAI(
            api_key="sk-local", base_url=server.http_url, websocket_base_url=server.url
        )
        stack.push_async_callback(client.close)  # its HTTP pool, before the loop ends
        secret = await client.realtime.translations.client_secrets.create(
            session={"model": "gpt-realtime-translate", "audio": {"output": {"language": "es"}}}
        )
        assert secret.value.startswith("ek_") and secret.session.type == "translation"
        events: list[Any] = []
        async with client.realtime.translations.connect(model="gpt-realtime-translate") as conn:
            created = await conn.recv()
            assert created.type == "session.created"
            await conn.session.update(
                session={
                    "audio": {
                        "input": {"transcription": {"model": "gpt-realtime-whisper"}},
                        "output": {"language": "es"},
                    }
                }
            )
            updated = await conn.recv()
            assert updated.type == "session.updated"
            audio = pcm + bytes(SECOND)
            for i in range(0, len(audio), 9600):  # 200 ms chunks, sent at once
                chunk = base64.b64encode(audio[i : i + 9600]).decode()
                await conn.session.input_audio_buffer.append(audio=chunk)
            await conn.session.close()
            while True:
                event = await conn.recv()
                events.append(event)
                if event.type == "session.closed":
                    break
        await client.close()
    kinds = {e.type for e in events}
    assert {"session.input_transcript.delta", "session.output_audio.delta"} <= kinds
    text = "".join(e.delta for e in events if e.type == "session.output_transcript.delta")
    assert "amigo" in text.lower()

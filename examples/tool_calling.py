"""Function calling: the model calls your Python functions; the session runs them and answers.

    python examples/tool_calling.py "What is the weather in Paris?" "What time is it in Tokyo?"

Decorate plain functions with ``@realtime.tool`` (the JSON schema comes from the type hints
and the docstring) and pass them to ``connect(tools=...)``: when the model calls one, the
session validates the arguments, runs the function, sends its result back and asks for the
follow-up answer. Without ``OPENAI_API_KEY`` or ``--url`` the offline local server plays the
model with a few rules (below) that call these tools.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import realtime
from realtime.server import LocalServer, ScriptResponder


@realtime.tool
def get_weather(city: str) -> dict[str, Any]:
    """Current weather for a city.

    city: the city name, e.g. Paris
    """
    print(f"  [tool] get_weather(city={city!r})")
    return {"city": city, "temperature_c": 21, "sky": "clear"}


@realtime.tool
def get_time(city: str) -> str:
    """The local time in a city (HH:MM)."""
    print(f"  [tool] get_time(city={city!r})")
    offsets = {"tokyo": 9, "paris": 1, "new york": -5}
    now = datetime.now(timezone.utc) + timedelta(hours=offsets.get(city.lower(), 0))
    return now.strftime("%H:%M")


# What the local server's stand-in model does (a real model decides by itself).
LOCAL_RULES = """
rules:
  - when: weather
    call: {name: get_weather, arguments: {city: Paris}}
    then: "It is {output[temperature_c]} degrees and {output[sky]} in {output[city]}."
  - when: time
    call: {name: get_time, arguments: {city: Tokyo}}
    then: "It is {output} in {args[city]}."
"""


@asynccontextmanager
async def server_url(url: str | None) -> AsyncIterator[str | None]:
    """The URL to use: --url, else OpenAI (None) when a key is set, else a local server."""
    if url or os.environ.get("OPENAI_API_KEY"):
        yield url
        return
    async with LocalServer(port=0, responder=ScriptResponder.from_yaml(LOCAL_RULES)) as server:
        print(f"(no OPENAI_API_KEY: using the local server at {server.url})")
        yield server.url


def spoken_text(response: Any) -> str:
    """The text a finished response said (empty for a response that only called a tool)."""
    return " ".join(
        part.text
        for item in response.output or []
        if item.type == "message"
        for part in item.content or []
        if getattr(part, "text", None)
    )


async def main(args: argparse.Namespace) -> None:
    config = realtime.SessionConfig(
        instructions="Use the tools to answer questions about weather and time.",
        output_modalities=["text"],
    )
    async with (
        server_url(args.url) as url,
        realtime.connect(url=url, config=config, tools=[get_weather, get_time]) as session,
    ):

        def answered(event: realtime.ServerEvent) -> bool:
            # a tool call ends one response; the spoken answer comes in the next one
            return event.type == "response.done" and bool(spoken_text(event.response))  # type: ignore[attr-defined]

        for question in args.questions:
            print(f"you: {question}")
            # expect() starts waiting before the question goes out: a fast reply is not missed
            async with session.expect(answered, timeout=60) as reply:
                await session.send_text(question)
            assert reply.event is not None
            print(f"assistant: {spoken_text(reply.event.response)}")  # type: ignore[attr-defined]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "questions",
        nargs="*",
        default=["What is the weather like in Paris?", "What time is it in Tokyo?"],
    )
    parser.add_argument("--url", help="realtime server URL (default: OpenAI or a local server)")
    asyncio.run(main(parser.parse_args()))

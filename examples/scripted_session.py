"""Run a scripted realtime session (YAML) from Python and check its expectations.

    python examples/scripted_session.py           # runs share/scripts/weather_tool.yaml
    python examples/scripted_session.py share/scripts/barge_in.yaml --out run-output

The same runner backs ``realtime run``; it returns a result you can assert on in pytest.
``--out`` keeps ``events.jsonl``, one ``turn-N.wav`` per reply and ``summary.json``. Without
``OPENAI_API_KEY`` or ``--url`` the offline local server plays the model, with the script's
``local_responder`` rules when it names some. The exit status is 0 only if every expect passed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from realtime.script import RunResult, load_script, run_script
from realtime.server import LocalServer

DEFAULT_SCRIPT = Path(__file__).resolve().parents[1] / "share" / "scripts" / "weather_tool.yaml"


async def main(args: argparse.Namespace) -> RunResult:
    script = load_script(args.script)  # ScriptError (with the line) for a bad script
    if args.url or os.environ.get("OPENAI_API_KEY"):
        return await run_script(script, url=args.url, out_dir=args.out)
    responder = f"script:{script.local_responder}" if script.local_responder else "echo"
    async with LocalServer(port=0, responder=responder) as server:
        print(f"(no OPENAI_API_KEY: using the local server, responder {responder})")
        return await run_script(
            script, url=server.url, out_dir=args.out, on_progress=lambda step: print(" ", step)
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", nargs="?", default=str(DEFAULT_SCRIPT), help="a YAML script")
    parser.add_argument("--url", help="realtime server URL (default: OpenAI or a local server)")
    parser.add_argument("--out", default=None, help="folder for events, turn WAVs and summary")
    result = asyncio.run(main(parser.parse_args()))
    print(result.report())
    for turn in result.turns:
        tokens = turn.usage.get("total_tokens")
        print(f"turn {turn.index}: {turn.status}, tool calls {turn.tool_calls}, {tokens} tokens")
    sys.exit(0 if result.passed else 1)

"""``realtime run SCRIPT.yaml``: run a scripted session (or many) and check its expectations.

Exit status 0 only when every ``expect`` of every run passed, so a script serves as a CI
regression test for a voice agent. ``--repeat N`` and ``--concurrency K`` run batches with a
progress bar; each run writes ``events.jsonl``, ``turn-N.wav`` and ``summary.json`` to its
folder under ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..script.format import load_script
from ..script.runner import RunResult, run_script
from .backend import add_backend_arguments, open_backend
from .common import CommandError, err_console, out_console

__all__ = ["add_parser", "handle"]


def add_parser(sub: Any) -> None:
    """Register the command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "run",
        help="run a scripted realtime session and check its expectations",
        description=__doc__,
    )
    p.add_argument("script", help="a YAML script (see README: 'Scripted sessions')")
    p.add_argument(
        "--out", default=None, help="output folder (default realtime-runs/NAME-TIMESTAMP)"
    )
    p.add_argument("--repeat", type=int, default=1, help="run the script N times")
    p.add_argument("--concurrency", type=int, default=1, help="at most K runs at once")
    p.add_argument(
        "--record", default=None, help="also write the (first run's) events to this JSONL file"
    )
    add_backend_arguments(p)
    p.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    """Run the script; returns 0 when every expectation passed."""
    if args.repeat < 1 or args.concurrency < 1:
        raise CommandError("--repeat and --concurrency must be at least 1")
    script = load_script(args.script)
    if args.responder is None and script.local_responder is not None:
        args.responder = f"script:{script.local_responder}"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("realtime-runs") / f"{script.name}-{stamp}"
    async with open_backend(args) as backend:
        err_console.print(backend.description)
        kwargs = dict(backend.connect_kwargs)
        url = kwargs.pop("url", None)
        kwargs.pop("dialect", None)
        dialect = args.dialect  # None: the script's own `dialect:` (else ga)
        model = kwargs.pop("model", None)
        sem = asyncio.Semaphore(args.concurrency)

        async def one(i: int) -> RunResult:
            folder = out if args.repeat == 1 else out / f"run-{i + 1:03d}"
            async with sem:
                return await run_script(
                    script,
                    url=url,
                    api_key=backend.api_key,
                    dialect=dialect,
                    model=model,
                    out_dir=folder,
                    connect_options=kwargs,
                )

        if args.repeat == 1:
            results = [await one(0)]
        else:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err_console,
            ) as progress:
                task = progress.add_task(script.name, total=args.repeat)
                results = []
                for fut in asyncio.as_completed([one(i) for i in range(args.repeat)]):
                    results.append(await fut)
                    progress.advance(task)
    if args.record:
        first = Path(results[0].out_dir or out) / "events.jsonl"
        shutil.copyfile(first, args.record)
    failed = [r for r in results if not r.passed]
    if args.repeat == 1:
        out_console.print(results[0].report())
    else:
        for r in failed[:5]:
            out_console.print(r.report())
        out_console.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    err_console.print(f"output: {out}")
    return 0 if not failed else 1

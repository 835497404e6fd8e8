"""``realtime run SCRIPT.yaml [...]``: run scripted sessions and check their expectations.

Exit status 0 only when every ``expect`` of every run passed, so scripts serve as CI
regression tests for a voice agent (``realtime run share/scripts/*.yaml``). ``--repeat N`` and
``--concurrency K`` run batches with a progress bar; each run writes ``events.jsonl``,
``turn-N.wav`` and ``summary.json`` to its folder under ``--out`` (one sub-folder per script
when there are several, ``run-NNN`` per repetition).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..script.format import Script, load_script
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
    p.add_argument(
        "scripts",
        nargs="+",
        metavar="SCRIPT",
        help="YAML scripts (see README: 'Scripted sessions')",
    )
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
    """Run the scripts; returns 0 when every expectation of every run passed."""
    if args.repeat < 1 or args.concurrency < 1:
        raise CommandError("--repeat and --concurrency must be at least 1")
    scripts = [load_script(path) for path in args.scripts]  # every script parses before any run
    if args.record and len(scripts) > 1:
        raise CommandError("--record takes a single script")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if args.out:
        base = Path(args.out)
    elif len(scripts) == 1:
        base = Path("realtime-runs") / f"{scripts[0].name}-{stamp}"
    else:
        base = Path("realtime-runs") / f"batch-{stamp}"
    used: set[str] = set()
    failed = 0
    existed = base.exists()
    for script in scripts:
        out = base
        if len(scripts) > 1:
            name = script.path.stem if script.path is not None else script.name
            while name in used:
                name += "-2"
            used.add(name)
            out = base / name
        try:
            passed = await _run_one(args, script, out)
        except Exception:
            _remove_leftovers(base, keep_base=existed)
            raise
        if not passed:
            failed += 1
    if len(scripts) > 1:
        out_console.print(
            f"{len(scripts)} scripts: {len(scripts) - failed} passed, {failed} failed"
        )
    err_console.print(f"output: {base}")
    return 0 if not failed else 1


def _remove_leftovers(base: Path, *, keep_base: bool) -> None:
    """After a failed run: no empty ``events.jsonl``, header-only WAV or empty folder stays."""
    if not base.is_dir():
        return
    for file in sorted(base.rglob("*")):
        if file.is_file() and (
            (file.suffix == ".jsonl" and file.stat().st_size == 0)
            or (file.suffix == ".wav" and file.stat().st_size <= 44)
        ):
            file.unlink()
    for folder in sorted(base.rglob("*"), key=lambda f: len(f.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    if not keep_base and not any(base.iterdir()):
        base.rmdir()


async def _run_one(args: argparse.Namespace, script: Script, out: Path) -> bool:
    """Run one script (``--repeat`` times); prints its report; True when every run passed."""
    options = argparse.Namespace(**vars(args))
    if script.local_responder is not None:  # used only when the backend is the local server
        options.script_responder = f"script:{script.local_responder}"
    async with open_backend(options) as backend:
        err_console.print(backend.description)
        kwargs = dict(backend.connect_kwargs)
        url = kwargs.pop("url", None)
        kwargs.pop("dialect", None)
        dialect = args.dialect  # None: the script's own `dialect:` (else ga)
        model = kwargs.pop("model", None)
        sem = asyncio.Semaphore(args.concurrency)

        def folder(i: int) -> Path:
            return out if args.repeat == 1 else out / f"run-{i + 1:03d}"

        async def one(i: int) -> RunResult:
            async with sem:
                return await run_script(
                    script,
                    url=url,
                    api_key=backend.api_key,
                    dialect=dialect,
                    model=model,
                    out_dir=folder(i),
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
        shutil.copyfile(folder(0) / "events.jsonl", args.record)
    failed = [r for r in results if not r.passed]
    if args.repeat == 1:
        out_console.print(results[0].report())
    else:
        for r in failed[:5]:
            out_console.print(r.report())
        out_console.print(
            f"{script.name}: {len(results) - len(failed)} passed, {len(failed)} failed"
        )
    return not failed

"""Scripted realtime sessions: a YAML file of steps run against a server, with expectations.

.. code-block:: python

    from realtime.script import load_script, run_script

    result = await run_script(load_script("share/scripts/hello_text.yaml"), url=server.url)
    assert result.passed, result.report()

:mod:`realtime.script.format` documents the file format; :mod:`realtime.script.runner` the
outputs (``events.jsonl``, ``turn-N.wav``, ``summary.json``). The runner's names load lazily,
so that importing the pure :mod:`realtime.script.format` pulls in no network code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .format import Script, load_script, parse_script

if TYPE_CHECKING:
    from .runner import ExpectOutcome, RunResult, TurnRecord, run_script

__all__ = [
    "ExpectOutcome",
    "RunResult",
    "Script",
    "TurnRecord",
    "load_script",
    "parse_script",
    "run_script",
]

_RUNNER = {"ExpectOutcome", "RunResult", "TurnRecord", "run_script"}


def __getattr__(name: str) -> Any:
    if name in _RUNNER:
        return getattr(importlib.import_module(".runner", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

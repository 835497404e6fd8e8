"""The sans-I/O core imports no I/O library (in its source, and once loaded).

``realtime.protocol`` and the pure state modules it drives must not import asyncio,
websockets, httpx, sounddevice, numpy, threading or socket: they are fed events and
return what to send, and run without sockets, clocks or an event loop.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE_PURE = [
    "realtime.protocol",
    "realtime.conversation",
    "realtime.response_state",
    "realtime.interruption",
    "realtime.reconnect",
]
FORBIDDEN = {"asyncio", "websockets", "httpx", "sounddevice", "numpy", "threading", "socket"}
# threading and socket are loaded by the standard library's logging and by pydantic; what
# must not be loaded at all by importing the core is the I/O stack itself.
NOT_LOADED = {"asyncio", "websockets", "httpx", "sounddevice", "numpy"}


@pytest.mark.parametrize("module", SOURCE_PURE)
def test_core_source_imports_no_io_library(module: str) -> None:
    """No import statement of the module (anywhere in it) names an I/O library."""
    path = REPO / (module.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN, sorted(imported & FORBIDDEN)


def test_importing_the_protocol_loads_no_io_library() -> None:
    """A clean interpreter importing realtime.protocol loads none of the I/O stack."""
    code = (
        "import sys\n"
        f"for m in {SOURCE_PURE!r}: __import__(m)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(NOT_LOADED)!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.strip() == "[]"


def test_core_has_no_untyped_field_access_helper() -> None:
    """The protocol reads typed events: no ``_get(obj, name)`` helper on ``Any``."""
    source = (REPO / "realtime" / "protocol.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert "_get" not in names

"""The server package's shape (issue 11, item 7): typed exceptions, no import cycles, no
swallowed cancellation, every limit configurable."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
from pathlib import Path

import pytest

from realtime.exceptions import RealtimeError
from realtime.server import Limits
from realtime.server import exceptions as server_exceptions

PACKAGE = Path(__file__).resolve().parents[1] / "realtime" / "server"
MODULES = sorted(p for p in PACKAGE.glob("*.py"))


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def test_exception_tree_matches_its_docstring():
    """Every class drawn in the docstring exists, derives from what the drawing says, and
    every exception class of the module is drawn."""
    doc = server_exceptions.__doc__ or ""
    drawn = re.findall(r"^[ │├└─]*([A-Z][A-Za-z]+)(?: {2,}|$)", doc, re.M)
    assert "LocalServerError" in drawn
    for name in drawn:
        if name == "RealtimeError":
            continue
        cls = getattr(server_exceptions, name)
        assert issubclass(cls, server_exceptions.LocalServerError) or cls is RealtimeError
    defined = {
        n
        for n, obj in vars(server_exceptions).items()
        if inspect.isclass(obj)
        and issubclass(obj, Exception)
        and obj.__module__ == server_exceptions.__name__
    }
    assert defined <= set(drawn)
    assert issubclass(server_exceptions.LocalServerError, RealtimeError)
    assert not issubclass(server_exceptions.StartupError, OSError)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_bare_base_class_or_oserror_raised(path):
    """Nothing raises the base class, OSError or RealtimeError itself."""
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            assert name not in ("LocalServerError", "OSError", "RealtimeError", "Exception"), (
                f"{path.name}:{node.lineno} raises {name}"
            )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_cancellation_is_never_swallowed(path):
    """No suppress(BaseException) and no bare/BaseException handler that does not re-raise."""
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "suppress":
            names = [getattr(a, "id", getattr(a, "attr", "")) for a in node.args]
            assert "BaseException" not in names, f"{path.name}:{node.lineno}"
        if isinstance(node, ast.ExceptHandler):
            caught = node.type
            names = []
            if caught is None:
                names = ["<bare>"]
            elif isinstance(caught, ast.Tuple):
                names = [getattr(e, "id", "") for e in caught.elts]
            else:
                names = [getattr(caught, "id", "")]
            if "BaseException" in names or "<bare>" in names:
                assert any(isinstance(n, ast.Raise) for n in ast.walk(node)), (
                    f"{path.name}:{node.lineno} swallows BaseException"
                )
            assert "RuntimeError" not in names or not all(
                isinstance(s, ast.Pass) for s in node.body
            ), f"{path.name}:{node.lineno} silently swallows RuntimeError"


def _imports(path: Path) -> set[str]:
    """Sibling modules a module imports (TYPE_CHECKING imports included)."""
    out: set[str] = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(a.name for a in node.names)
    return out


def test_no_import_cycles_in_the_server_package():
    """The sibling-import graph is acyclic (app <-> rest and generation <-> session are gone)."""
    graph = {p.stem: _imports(p) for p in MODULES}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, node, nxt]))
            if nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_every_limit_is_documented_and_validated():
    """Every Limits field is described in its docstring, in the README, and checked."""
    readme = (PACKAGE.parents[1] / "README.md").read_text()
    doc = Limits.__doc__ or ""
    for f in dataclasses.fields(Limits):
        assert f"``{f.name}``" in doc, f.name
        assert f"`{f.name}`" in readme, f.name
        if f.name != "pace_audio":
            with pytest.raises(ValueError):
                Limits(**{f.name: -1})


def test_server_modules_import_cleanly():
    """Each module imports on its own (no hidden dependence on import order)."""
    for path in MODULES:
        importlib.import_module(f"realtime.server.{path.stem}")


def test_realtime_serve_sets_the_limits():
    """`realtime serve` options reach Limits; a bad value is a one-line ConfigError."""
    from realtime.cli import build_parser
    from realtime.cli.serve import limits_from
    from realtime.exceptions import ConfigError

    args = build_parser().parse_args(
        [
            "serve",
            "--max-sessions", "3",
            "--max-connections", "50",
            "--max-upload-mb", "2",
            "--max-upload-minutes", "1.5",
            "--max-audio-minutes", "10",
            "--handshake-timeout", "2.5",
            "--idle-timeout", "1",
        ]
    )  # fmt: skip
    limits = limits_from(args)
    assert (limits.max_sessions, limits.max_connections) == (3, 50)
    assert limits.max_upload_bytes == 2 * 1024 * 1024
    assert limits.max_upload_seconds == 90
    assert limits.max_server_audio_ms == 600_000
    assert (limits.handshake_timeout, limits.idle_timeout) == (2.5, 1)
    defaults = limits_from(build_parser().parse_args(["serve"]))
    assert defaults == Limits()
    with pytest.raises(ConfigError, match="max_sessions"):
        limits_from(build_parser().parse_args(["serve", "--max-sessions", "0"]))

"""realtime.events is pure and its public API is what the contract lists.

Importing the package in a clean interpreter must not pull in asyncio, websockets,
httpx or sounddevice; every module declares ``__all__``; the package exports what its
submodules list; event classes follow the naming rule of the contract.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import realtime.events as events

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = ("asyncio", "websockets", "httpx", "sounddevice")

# Names the architecture contract says are importable from realtime.events.
CONTRACT_NAMES = [
    "Dialect",
    "Event",
    "ServerEvent",
    "ClientEvent",
    "UnknownServerEvent",
    "parse_server_event",
    "parse_client_event",
    "encode_client_event",
    "encode_server_event",
    "server_event_types",
    "client_event_types",
    "InputAudioBufferAppendEvent",
    "ResponseOutputAudioDeltaEvent",
    "SessionUpdateEvent",
    "BetaSessionUpdateEvent",
    "counterpart",
    "equivalent_types",
    "SessionConfig",
    "ServerVad",
    "SemanticVad",
    "InputAudioTranscription",
    "NoiseReduction",
    "FunctionTool",
]


def _submodules() -> list[ModuleType]:
    """Every module under realtime.events (recursively)."""
    mods = []
    for info in pkgutil.walk_packages(events.__path__, prefix="realtime.events."):
        mods.append(importlib.import_module(info.name))
    return mods


def test_import_is_pure() -> None:
    """A fresh interpreter importing realtime.events loads none of the I/O libraries."""
    code = (
        "import sys, json\n"
        "import realtime.events\n"
        "import realtime.events.dialect\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(json.dumps(bad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_parsing_stays_pure() -> None:
    """Parsing and encoding events (both dialects) imports nothing forbidden either."""
    code = (
        "import sys, json\n"
        "import realtime.events as ev\n"
        "for d in ('beta', 'ga'):\n"
        '    ev.parse_server_event(b\'{"type":"error","event_id":"e","error":'
        '{"type":"t","message":"m"}}\', dialect=d)\n'
        '    ev.parse_server_event(b\'{"type":"x.y"}\', dialect=d)\n'
        "ev.encode_client_event(ev.InputAudioBufferAppendEvent.from_pcm(bytes(960)))\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(json.dumps(bad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_every_module_has_all_and_docstring() -> None:
    """Each module of realtime.events declares __all__ (names that exist) and a docstring."""
    for mod in [events, *_submodules()]:
        assert isinstance(getattr(mod, "__all__", None), (list, tuple)), mod.__name__
        assert mod.__doc__ and mod.__doc__.strip(), mod.__name__
        for name in mod.__all__:
            assert hasattr(mod, name), f"{mod.__name__}.__all__ lists missing {name!r}"


def test_package_exports_what_submodules_list() -> None:
    """Every name a public submodule lists is exported by realtime.events, as the same object."""
    exported = set(events.__all__)
    for mod in _submodules():
        if any(part.startswith("_") for part in mod.__name__.split(".")):
            continue
        for name in mod.__all__:
            assert name in exported, f"{mod.__name__}.{name} is not in realtime.events.__all__"
            assert getattr(events, name) is getattr(mod, name), f"{name} differs"


def test_package_exports_only_submodule_names() -> None:
    """realtime.events.__all__ holds nothing that no submodule lists."""
    listed: set[str] = set()
    for mod in _submodules():
        listed.update(mod.__all__)
    assert set(events.__all__) <= listed


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_contract_names_are_exported(name: str) -> None:
    """The names of the architecture contract are importable from realtime.events."""
    assert name in events.__all__
    assert getattr(events, name) is not None


def _camel(wire_type: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[._]", wire_type))


@pytest.mark.parametrize("dialect", ["beta", "ga"])
def test_class_naming_rule(dialect: str) -> None:
    """Event classes are CamelCase(wire type) + 'Event'; beta-only shapes may carry 'Beta'."""
    tables = (events.server_event_types(dialect), events.client_event_types(dialect))  # type: ignore[arg-type]
    for table in tables:
        for wire_type, cls in table.items():
            expected = _camel(wire_type) + "Event"
            allowed = {expected.lower()}
            if dialect == "beta":
                allowed.add("beta" + expected.lower())
            assert cls.__name__.lower() in allowed, (wire_type, cls.__name__)
            assert getattr(events, cls.__name__) is cls, f"{cls.__name__} is not exported"


@pytest.mark.parametrize("dialect", ["beta", "ga"])
def test_type_tables_hold_the_right_bases(dialect: str) -> None:
    """server_event_types gives ServerEvent subclasses, client_event_types ClientEvent ones."""
    servers = events.server_event_types(dialect)  # type: ignore[arg-type]
    clients = events.client_event_types(dialect)  # type: ignore[arg-type]
    assert servers and clients
    assert all(issubclass(c, events.ServerEvent) for c in servers.values())
    assert all(issubclass(c, events.ClientEvent) for c in clients.values())
    assert issubclass(events.UnknownServerEvent, events.ServerEvent)
    assert events.UnknownServerEvent not in servers.values()


def test_shared_shapes_share_a_class() -> None:
    """Where both dialects use the same type string and shape, one class serves both."""
    beta = events.client_event_types("beta")
    ga = events.client_event_types("ga")
    assert beta["input_audio_buffer.append"] is ga["input_audio_buffer.append"]
    assert beta["input_audio_buffer.append"] is events.InputAudioBufferAppendEvent
    assert ga["session.update"] is events.SessionUpdateEvent
    assert beta["session.update"] is events.BetaSessionUpdateEvent

"""Scripted realtime sessions: a YAML file of steps run against a server."""

from __future__ import annotations

__all__: list[str] = []

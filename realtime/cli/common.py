"""Shared helpers of the CLI commands."""

from __future__ import annotations

from rich.console import Console

__all__ = ["CommandError", "err_console", "out_console"]

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
"""Status lines, progress and the live view go to stderr."""

out_console = Console(highlight=False, soft_wrap=True)
"""Results (transcripts, reports) go to stdout, never wrapped (so they pipe cleanly)."""


class CommandError(Exception):
    """A problem with the command line itself (a missing file, a bad combination)."""

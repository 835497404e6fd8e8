"""Shared test fixtures."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.spec_kit import SPEC_DIR, SPEC_FILES, load_spec

__all__ = ["SPEC_DIR", "SPEC_FILES", "load_spec"]


@pytest.fixture(scope="session")
def spec_beta() -> dict[str, Any]:
    """The beta-dialect spec (openapi-2025-04.yaml)."""
    return load_spec("beta")


@pytest.fixture(scope="session")
def spec_ga() -> dict[str, Any]:
    """The GA-dialect spec (openapi-2026-08.yaml)."""
    return load_spec("ga")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """With ``REALTIME_NO_SKIPS=1`` (CI sets it) a skipped test is a failure: every skip site
    names a resource CI installs, so a skip there means something is missing."""
    outcome = yield
    _fail_if_skipped(outcome.get_result(), "test")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """The same for a whole module skipped at import (``importorskip`` at module level)."""
    outcome = yield
    _fail_if_skipped(outcome.get_result(), "module")


def _fail_if_skipped(report: pytest.TestReport | pytest.CollectReport, what: str) -> None:
    if report.skipped and os.environ.get("REALTIME_NO_SKIPS") == "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"REALTIME_NO_SKIPS=1 but the {what} was skipped: {reason}"

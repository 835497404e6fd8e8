"""Shared test fixtures."""

from __future__ import annotations

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

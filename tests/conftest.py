"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC_DIR = REPO.parent / "shared" / "spec"
SPEC_FILES = {"beta": SPEC_DIR / "openapi-2025-04.yaml", "ga": SPEC_DIR / "openapi-2026-08.yaml"}

_spec_cache: dict[str, dict] = {}


def load_spec(dialect: str) -> dict:
    """The parsed OpenAPI spec of a dialect ("beta" or "ga"); skips when the file is absent."""
    path = SPEC_FILES[dialect]
    if not path.exists():
        pytest.skip(f"spec file {path} is absent (it lives in ../shared/spec beside the repo)")
    if dialect not in _spec_cache:
        import yaml

        with path.open("rb") as f:
            _spec_cache[dialect] = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return _spec_cache[dialect]


@pytest.fixture(scope="session")
def spec_beta() -> dict:
    """The beta-dialect spec (openapi-2025-04.yaml)."""
    return load_spec("beta")


@pytest.fixture(scope="session")
def spec_ga() -> dict:
    """The GA-dialect spec (openapi-2026-08.yaml)."""
    return load_spec("ga")

"""Reading the OpenAPI specs the conformance tests are derived from (../shared/spec)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
# REALTIME_SPEC_DIR points elsewhere when the checkout does not sit beside shared/.
SPEC_DIR = Path(os.environ.get("REALTIME_SPEC_DIR") or REPO.parent / "shared" / "spec")
SPEC_FILES = {"beta": SPEC_DIR / "openapi-2025-04.yaml", "ga": SPEC_DIR / "openapi-2026-08.yaml"}

_cache: dict[str, dict[str, Any]] = {}


def load_spec(dialect: str) -> dict[str, Any]:
    """The parsed OpenAPI spec of a dialect ("beta" or "ga"); skips when the file is absent.

    Under ``REALTIME_REQUIRE_SPEC=1`` (set by CI, like ``REALTIME_REQUIRE_AUDIO``) an absent
    spec fails the test instead: the conformance tests must not skip silently there.
    """
    path = SPEC_FILES[dialect]
    if not path.exists():
        reason = f"spec file {path} is absent (it lives in ../shared/spec beside the repo)"
        if os.environ.get("REALTIME_REQUIRE_SPEC") == "1":
            pytest.fail(f"REALTIME_REQUIRE_SPEC=1 but the {reason}")
        pytest.skip(reason)
    if dialect not in _cache:
        import yaml

        with path.open("rb") as f:
            _cache[dialect] = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return _cache[dialect]

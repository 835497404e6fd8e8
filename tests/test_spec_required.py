"""Without ../shared/spec the conformance tests skip, except under REALTIME_REQUIRE_SPEC=1 (CI)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from cli_kit import REPO, cli_env

_TEST = textwrap.dedent(
    """
    import spec_kit

    def test_reads_spec(tmp_path):
        spec_kit.SPEC_FILES["ga"] = tmp_path / "absent.yaml"
        spec_kit.load_spec("ga")
    """
)


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    test = tmp_path / "test_absent_spec.py"
    test.write_text(_TEST)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(test)],
        cwd=tmp_path,
        env=cli_env(PYTHONPATH=f"{REPO / 'tests'}:{REPO}", **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_absent_spec_skips_locally_and_fails_in_ci(tmp_path: Path) -> None:
    """An absent spec: a skip naming ../shared/spec; with REALTIME_REQUIRE_SPEC=1, a failure."""
    local = _run(tmp_path, REALTIME_REQUIRE_SPEC="0")
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    assert "../shared/spec" in local.stdout
    ci = _run(tmp_path, REALTIME_REQUIRE_SPEC="1")
    assert ci.returncode == 1 and "1 failed" in ci.stdout, ci.stdout
    assert "REALTIME_REQUIRE_SPEC=1 but the spec file" in ci.stdout

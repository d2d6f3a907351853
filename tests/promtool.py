"""Prometheus's own ``promtool``, for the tests of the rendered alert and recording rules.

``promtool`` comes with Debian's ``prometheus`` package, which ``make test`` installs. Without it a test
that needs it is skipped with the reason, and fails when ``$CI`` is set.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from schemas import _in_ci

MISSING = "promtool missing: install Debian's prometheus package (apt-get install prometheus) to run it"


def require_promtool() -> str:
    """The promtool executable; skips (fails under $CI) when it is not installed."""
    found = shutil.which("promtool")
    if found is None:
        if _in_ci():
            pytest.fail(MISSING, pytrace=False)
        pytest.skip(MISSING)
    return found


def run_promtool(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``promtool ARGS`` in ``cwd``, bounded in time, its output captured."""
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)

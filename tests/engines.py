"""What the engine tests share: the engines' own packages, required where CI installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest
from schemas import _in_ci


def require_module(name: str, install: str) -> ModuleType:
    """Import ``name`` (an engine's own parser or schema); skips the test when missing, fails it under ``$CI``.

    ``install`` is the command that installs it (``make install-test`` does, in CI).
    """
    try:
        return importlib.import_module(name)
    except ImportError as error:
        reason = f"engine package missing: {name} ({error}); install it with: {install}"
        if _in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)

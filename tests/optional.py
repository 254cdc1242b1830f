"""Optional test dependencies (statsmodels): missing under ``CI=true`` fails, elsewhere skips that test.

A module-level ``pytest.importorskip`` would silently drop every test of a module, including the ones
that do not need the package; call :func:`require` inside each test that does.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def optional_import(name: str) -> ModuleType | None:
    """The module, or None when it is not installed (no skip at import time)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def require(name: str) -> ModuleType:
    """Import ``name`` for this test: fail under ``CI=true`` when missing, skip otherwise."""
    module = optional_import(name)
    if module is None:
        msg = f"{name} is not installed: pip install -e '.[test]'"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return module

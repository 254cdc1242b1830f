"""Shared fixtures.  Real-data tests read the store named by ``REGIMECAST_DATA``.

When ``CI=true`` and the store is missing, real-data tests fail loudly instead of skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_store() -> Path | None:
    env = os.environ.get("REGIMECAST_DATA")
    candidates = [Path(env)] if env else [REPO.parent / "shared" / "data"]
    for c in candidates:
        if (c / "fred").is_dir():
            return c.resolve()
    return None


@pytest.fixture(scope="session")
def data_store() -> Path:
    """The real data store (``REGIMECAST_DATA``, else ``../shared/data``)."""
    store = _data_store()
    if store is None:
        msg = (
            "real-data store not found: set REGIMECAST_DATA to a folder with fred/ and yahoo/ "
            f"(looked at {os.environ.get('REGIMECAST_DATA') or REPO.parent / 'shared' / 'data'})"
        )
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(msg)
        pytest.skip(msg)
    return store

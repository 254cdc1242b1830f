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


# ----------------------------------------------------------------------------- shared real-data fits
# Real-data fits take 2-5 minutes each on 2 cores; slow tests that need a run at the same as-of share
# it through these session fixtures (CI's budget: see the README's "Development").


@pytest.fixture(scope="session")
def runs_2023(data_store, tmp_path_factory):
    """A ``fit`` run as of 2023-09, a ``forecast`` run as of 2023-12 (inside the 2022-25 QT episode,
    rates on hold) and the reweighted update of the first to 2023-12."""
    from regimecast.config import load_config
    from regimecast.update import update_run
    from regimecast.workflow import fit_run, forecast_run

    root = tmp_path_factory.mktemp("runs-2023")
    cfg = load_config()
    parent = fit_run(cfg, out=root / "fit-2023-09", data=data_store, as_of="2023-09", seed=1,
                     progressbar=False)
    assert not parent.problems, parent.problems
    full = forecast_run(config=cfg, out=root / "full-2023-12", data=data_store, as_of="2023-12", seed=1,
                        progressbar=False)
    upd = update_run(root / "fit-2023-09", data=data_store, as_of="2023-12", out=root / "upd-2023-12",
                     refit="never", seed=1)
    return parent.run_dir, full.run_dir, upd


@pytest.fixture(scope="session")
def fit_2008_06(data_store, tmp_path_factory):
    """A ``fit`` run as of 2008-06 with the default config (the update across Lehman starts from it,
    and it is one of the hardest as-of months)."""
    from regimecast.config import load_config
    from regimecast.workflow import fit_run

    root = tmp_path_factory.mktemp("fit-2008-06")
    fit_run(load_config(), out=root / "run", data=data_store, as_of="2008-06", seed=1, progressbar=False)
    return root / "run"


@pytest.fixture(scope="session")
def run_2018_12(data_store, tmp_path_factory):
    """A ``forecast`` run (12 months ahead) as of 2018-12, inside the 2017-19 QT episode (the QT
    forecast test's fit; its first try fails the gate on the 27-state model, the retry is what ships)."""
    from regimecast.config import load_config
    from regimecast.workflow import forecast_run

    root = tmp_path_factory.mktemp("run-2018-12")
    out = forecast_run(config=load_config(), out=root / "run", data=data_store, as_of="2018-12", seed=1,
                       horizon=12, progressbar=False, allow_unconverged=True)
    return out.run_dir

"""``regimecast update`` on the real panel (slow: real fits; they are shared through session fixtures).

* 2023-09 -> 2023-12: the reweighted update agrees with a full fit as of 2023-12 within Monte-Carlo error,
  and k-hat stays below the threshold.
* 2008-06 -> 2008-12 (Lehman, the balance sheet doubles): the weights collapse and ``--refit auto``
  refits by itself.

Monte-Carlo tolerance.  For P(state starts within 12 months), computed exactly per draw (no path noise),
the only error is posterior sampling: ``sd_i(p_i) / sqrt(n_eff)`` for each side.  The update's effective
sample is the weights' ESS times the parent chains' relative efficiency (MCMC draws are correlated; the
parent's minimum bulk ESS / draws is a conservative floor), the full fit's is its minimum bulk ESS.  The
check is ``|p_update - p_full| < 4 sd sqrt(1 / (ESS_w r_parent) + 1 / ESS_full)``.  For the simulated
event summaries (one path per draw, 1000 draws) the binomial path noise dominates:
``4 sqrt(p (1 - p) / 1000 + p (1 - p) / min(1000, ESS_w r_parent))``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from regimecast.attribution import TRACKED
from regimecast.hmm import hmm_filter
from regimecast.reweight import p_start_within
from regimecast.update import load_parent, update_run

pytestmark = pytest.mark.slow


def _exact_full(run_dir, chain: str, z: int) -> np.ndarray:
    fit, _ = load_parent(run_dir, allow_unconverged=False)
    target = np.asarray(fit.config.model.state_components()[chain]) == z
    out = []
    for p in fit.points(1000, random_seed=1):
        li, lt, le = fit.matrices(p)
        alpha = hmm_filter(li, lt, le).filtered[-1]
        out.append(p_start_within(alpha[None], lt[None], target, 12)[0])
    return np.array(out)


def test_update_2023_09_to_12_matches_a_full_fit(runs_2023):
    parent_dir, full_dir, upd = runs_2023
    assert upd.method == "reweighted" and upd.khat < 0.7
    diag = json.loads((parent_dir / "diagnostics.json").read_text())
    r_parent = diag["ess_bulk_min"] / (diag["draws"] * diag["chains"])
    n_upd = upd.ess * r_parent
    ess_full = json.loads((full_dir / "diagnostics.json").read_text())["ess_bulk_min"]
    for key, chain, z in TRACKED:
        p_full = _exact_full(full_dir, chain, z)
        p_upd = float(upd.attribution[f"p_{key}"].iloc[-1])
        tol = 4 * p_full.std() * np.sqrt(1 / n_upd + 1 / ess_full)
        assert abs(p_upd - p_full.mean()) < tol, (key, p_upd, p_full.mean(), tol)
    a = pd.read_csv(upd.run_dir / "event_summary.csv").set_index("event")
    b = pd.read_csv(full_dir / "event_summary.csv").set_index("event")
    for event in ("qe_start", "first_cut"):
        for col in ("p_within_6m", "p_within_12m", "p_within_24m"):
            pa, pb = a.loc[event, col], b.loc[event, col]
            tol = 4 * np.sqrt(pb * (1 - pb) / 1000 + pa * (1 - pa) / min(1000, n_upd)) + 1e-3
            assert abs(pa - pb) < tol, (event, col, pa, pb, tol)


def test_update_across_lehman_refits_by_itself(data_store, fit_2008_06, tmp_path_factory):
    root = tmp_path_factory.mktemp("update-2008")
    upd = update_run(fit_2008_06, data=data_store, as_of="2008-12", out=root / "upd-2008-12",
                     refit="auto", seed=1, allow_unconverged=True)
    lineage = json.loads((upd.run_dir / "manifest.json").read_text())["lineage"]
    assert lineage["method"] == "refitted" and lineage["refit_reasons"], lineage

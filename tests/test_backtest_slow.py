"""A short real-data backtest on a 2-worker LocalCluster with the default model (slow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regimecast.backtest.run import run_backtest
from regimecast.config import load_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def crisis(data_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("bt-real") / "2007-2009"
    return run_backtest(load_config(), store=data_store, out=out, start="2007-01", end="2009-10",
                        every=3, refit="auto", scheduler="local", workers=2, seed=1)


def test_every_origin_is_forecast_and_reweighting_is_used(crisis):
    o = crisis.origins.set_index("origin")
    assert len(o) == 12
    assert (o["method"] != "failed").all(), o.loc[o["method"] == "failed", "problems"]
    rw = o[o["method"] == "reweighted"]
    assert len(rw) >= 1
    assert np.isfinite(rw["khat"]).all() and (rw["khat"] <= 0.7).all()
    assert (rw["ess"] >= 100).all()


def test_the_model_sees_the_2008_bust_coming(crisis):
    o = crisis.origins.set_index("origin")
    before, during = o.loc["2007-01", "p_qe_start_12m"], o.loc["2008-07", "p_qe_start_12m"]
    assert during > before
    # realised outcomes from the chronology: QE1 announced 2008-11, first cut 2007-09
    assert o.loc["2008-07", "y_qe_start_12m"] == 1.0 and o.loc["2007-01", "y_qe_start_12m"] == 0.0
    assert o.loc["2007-01", "y_first_cut_12m"] == 1.0


def test_scores_cover_every_target_with_baselines(crisis):
    s = crisis.scores
    assert set(s["target"]) >= {"qe_start_12m", "first_cut_12m", "cpi_yoy_12m", "policy_rate_12m"}
    model = s[(s.forecaster == "model") & (s.target == "cpi_yoy_12m")]
    assert np.isfinite(model["skill_vs_random_walk"]).all()
    assert (crisis.out / "report.html").stat().st_size > 10_000
    assert pd.read_csv(crisis.out / "origins.csv").shape[0] == 12

"""Run round trip: what comes back from a run directory is what went in, checked against the inputs
(not against the stored copy), and a forecast from a loaded run equals one from the fit in memory."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
from pinned import CONFIG, N_CHAINS, N_DRAWS, qe_prone_point, save_pinned_run

from regimecast.data import columns as C
from regimecast.forecast import forecast
from regimecast.models.macro_sim import simulate_panel
from regimecast.results import MacroFit
from regimecast.runs import load_run


@pytest.fixture(scope="module")
def fit() -> MacroFit:
    """A pinned fit whose posterior varies from draw to draw (so a mix-up of draws shows)."""
    point = qe_prone_point()
    panel, _ = simulate_panel(point, CONFIG.model, start="1995-01", end="2023-12", random_seed=11)
    panel.iloc[-1, panel.columns.get_loc(C.CPI_MOM_ANN)] = np.nan  # a gap, to survive the trip
    rng = np.random.default_rng(5)
    post = {k: np.broadcast_to(np.asarray(v), (N_CHAINS, N_DRAWS, *np.shape(v))).copy()
            for k, v in point.items()}
    post["cpi_ref"] = post["cpi_ref"] + rng.normal(0, 0.3, (N_CHAINS, N_DRAWS))
    post["vol_level"] = post["vol_level"] + rng.normal(0, 0.05, (N_CHAINS, N_DRAWS))
    post["bs_tau"] = post["bs_tau"] * np.exp(rng.normal(0, 0.5, (N_CHAINS, N_DRAWS)))
    return MacroFit(config=CONFIG, panel=panel, idata=az.from_dict(posterior=post), random_seed=11)


@pytest.fixture(scope="module")
def loaded(fit, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "run"
    save_pinned_run(fit, run)
    got, manifest = load_run(run)
    return got, {**manifest, "_dir": run}


def test_panel_comes_back_intact(fit, loaded):
    got, _ = loaded
    pd.testing.assert_frame_equal(got.panel, fit.panel, check_freq=False, check_exact=True,
                                  check_dtype=False, check_index_type=False)
    assert got.panel.index.equals(fit.panel.index)
    assert np.isnan(got.panel[C.CPI_MOM_ANN].iloc[-1])


def test_posterior_comes_back_intact(fit, loaded):
    got, manifest = loaded
    assert set(got.idata.posterior.data_vars) == set(fit.idata.posterior.data_vars)
    for name, var in fit.idata.posterior.data_vars.items():
        np.testing.assert_array_equal(got.idata.posterior[name].values, var.values, err_msg=name)
        assert got.idata.posterior[name].dims == var.dims
    assert got.random_seed == fit.random_seed == manifest["seed"]
    assert got.config.to_dict() == fit.config.to_dict()


def test_stored_regime_probabilities_match_a_fresh_computation(loaded):
    """The stored group against the forward-backward recomputed from the loaded panel and posterior."""
    got, manifest = loaded
    run_dir = manifest["_dir"]
    assert "regime_probabilities" in got.idata.groups()
    fresh = MacroFit(config=got.config, panel=got.panel, idata=az.InferenceData(
        posterior=got.idata.posterior), random_seed=got.random_seed).regime_probabilities()
    stored = got.regime_probabilities()
    for name in ("smoothed_macro", "smoothed_rate", "smoothed_bs", "filtered_macro", "filtered_rate",
                 "filtered_bs"):
        np.testing.assert_allclose(stored[name].values, fresh[name].values, rtol=0, atol=1e-9,
                                   err_msg=name)
    for chain in ("rate", "bs"):
        smoothed = stored[f"smoothed_{chain}"].sel(stat="mean").values
        assert smoothed.min() < 0.05 and smoothed.max() > 0.95  # informative, not flat
    regimes = pd.read_csv(run_dir / "regimes.csv")
    for chain in ("rate", "bs"):
        for j, lab in enumerate(getattr(got.config.model, f"{chain}_labels")):
            np.testing.assert_allclose(regimes[f"p_{lab}"],
                                       fresh[f"smoothed_{chain}"].sel(stat="mean").values[:, j], atol=1e-6)
    for j, lab in enumerate(got.config.model.macro_labels):
        np.testing.assert_allclose(regimes[f"p_{lab}"], fresh["smoothed_macro"].sel(stat="mean").values[:, j],
                                   atol=1e-6)


def test_forecast_from_loaded_run_equals_forecast_from_memory(fit, loaded):
    got, _ = loaded
    kw = {"horizon": 9, "max_draws": 15, "paths_per_draw": 4, "random_seed": 21}
    a, b = forecast(fit, **kw), forecast(got, **kw)
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    np.testing.assert_array_equal(a.date.values, b.date.values)
    assert a.attrs == b.attrs

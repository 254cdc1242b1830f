"""Expensive checks of the macro model: simulation recovery and the real panel's known history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regimecast.config import load_config
from regimecast.models.macro import derive
from regimecast.models.macro_sim import reference_point, simulate_panel
from regimecast.results import MacroRegimeModel

pytestmark = pytest.mark.slow
BASE = load_config()


def test_recovers_parameters_and_regime_paths_from_simulated_data():
    cfg = BASE.replace(model={"start": "1975-01", "rate_volatile_era": [], "volume_start": "1990-01"},
                       sampler={"draws": 400, "tune": 400, "chains": 2})
    truth_point = reference_point(cfg.model)
    panel, truth = simulate_panel(truth_point, cfg.model, start="1975-01", end="2019-12",
                                  random_seed=42, volume_from="1990-01", proxy_until=None)
    fit = MacroRegimeModel(cfg).fit(panel, random_seed=7, progressbar=False)
    post = fit.idata.posterior
    true = derive(np, {k: np.asarray(v) for k, v in truth_point.items()}, cfg.model)
    # ~25 scalar components: with 94% intervals a few misses are expected by chance, so require the
    # nominal coverage (at least 80% inside) and every component inside its 99.8% interval
    # states the simulated sample shows too rarely are pinned to their priors by design (issue 13:
    # models.macro.prior_sds); their components recover the prior, not the truth, so they are left out
    pinned = _pinned_components(fit.data, cfg.model)
    inside, total = 0, 0
    for name in ("cpi_mean", "cpi_sigma", "cpi_ar", "rate_mean", "rate_scale", "bs_mean", "bs_scale",
                 "vol_ar", "vol_sigma"):
        keep = ~pinned.get(name, np.zeros(np.shape(true[name]), dtype=bool))
        draws = post[name].values.reshape(-1, *np.shape(true[name]))
        lo, hi = np.quantile(draws, [0.03, 0.97], axis=0)
        inside += int(np.sum(((lo <= true[name]) & (true[name] <= hi))[keep]))
        total += int(np.sum(keep))
        lo, hi = np.quantile(draws, [0.001, 0.999], axis=0)
        assert ((lo <= true[name]) & (true[name] <= hi))[keep].all(), (name, lo, true[name], hi, keep)
    assert total >= 15 and inside / total >= 0.8, (inside, total)
    reg = fit.regime_probabilities().sel(stat="mean")
    pm_ = reg["smoothed_macro"].values
    pp = reg["smoothed_policy"].values
    t_macro = truth.loc[fit.data.dates, "macro"].to_numpy()
    t_policy = truth.loc[fit.data.dates, "policy"].to_numpy()
    acc_macro = np.mean(pm_.argmax(1) == t_macro)
    acc_policy = np.mean(pp.argmax(1) == t_policy)
    mass_macro = np.mean(pm_[np.arange(len(t_macro)), t_macro])
    mass_policy = np.mean(pp[np.arange(len(t_policy)), t_policy])
    assert acc_macro > 0.8 and acc_policy > 0.8, (acc_macro, acc_policy)
    assert mass_macro > 0.7 and mass_policy > 0.7, (mass_macro, mass_policy)
    assert not fit.convergence_problems() or fit.diagnostics.r_hat_max < 1.05


def _pinned_components(d, model_cfg) -> dict[str, np.ndarray]:
    """Which checked components sit on a pinned prior (prior sd shrunk by ``PIN_FACTOR``)."""
    from regimecast.models.macro import prior_sds

    sds, pr = prior_sds(d, model_cfg), model_cfg.priors
    gap = sds["cpi_gap"] < pr.cpi_gap_sd  # gap i separates regime i and i + 1 (3 regimes)
    return {
        "cpi_sigma": sds["cpi_sigma"] < pr.scale_sd,
        "cpi_mean": np.array([gap[0], False, gap[1]]),
        "rate_scale": sds["rate_scale"] < pr.scale_sd,
        "bs_scale": sds["bs_scale"] < pr.scale_sd,
        "bs_mean": np.array([False, False, sds["bs_gap"][1] < pr.gap_sd]),
    }


@pytest.fixture(scope="module")
def real_fit(data_store):
    from regimecast.data import load_panel

    panel = load_panel(data_store)
    fit = MacroRegimeModel(BASE).fit(panel, random_seed=1, progressbar=False)
    return fit


def test_real_panel_fit_passes_the_gate(real_fit):
    assert real_fit.convergence_problems() == [], real_fit.diagnostics


def _mean(fit, chain, label, start, end):
    reg = fit.regime_probabilities()
    da = reg[f"smoothed_{chain}"].sel({chain: label, "stat": "mean"})
    return float(da.sel(time=slice(pd.Timestamp(start), pd.Timestamp(end))).mean())


@pytest.mark.parametrize(
    ("chain", "label", "start", "end", "at_least"),
    [
        ("policy", "tightening", "1979-10", "1981-06", 0.5),
        ("policy", "tightening", "2004-07", "2006-06", 0.7),
        ("policy", "tightening", "2022-04", "2023-07", 0.7),
        ("policy", "QE", "2008-11", "2009-12", 0.7),
        ("policy", "QE", "2020-04", "2021-06", 0.7),
        ("macro", "inflationary", "1973-06", "1981-06", 0.6),
        ("macro", "inflationary", "2021-04", "2022-06", 0.6),
    ],
)
def test_real_panel_tells_the_known_history(real_fit, chain, label, start, end, at_least):
    assert _mean(real_fit, chain, label, start, end) >= at_least


def test_no_qe_in_the_2024_25_cuts(real_fit):
    """The users' thesis: 2024-25 brought cuts and continued QT, and no QE."""
    assert _mean(real_fit, "policy", "QE", "2024-09", "2025-06") < 0.2


def test_same_seed_same_numbers():
    cfg = BASE.replace(model={"start": "1995-01", "rate_volatile_era": []},
                       sampler={"draws": 60, "tune": 60, "chains": 2})
    panel, _ = simulate_panel(reference_point(cfg.model), cfg.model, start="1995-01", end="2012-12",
                              random_seed=4, volume_from=None, proxy_until=None)
    a = MacroRegimeModel(cfg).fit(panel, random_seed=3, progressbar=False).idata.posterior
    b = MacroRegimeModel(cfg).fit(panel, random_seed=3, progressbar=False).idata.posterior
    c = MacroRegimeModel(cfg).fit(panel, random_seed=4, progressbar=False).idata.posterior
    np.testing.assert_array_equal(a["cpi_mean"].values, b["cpi_mean"].values)
    assert not np.array_equal(a["cpi_mean"].values, c["cpi_mean"].values)

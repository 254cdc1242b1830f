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
    for chain in ("macro", "rate", "bs"):
        probs = reg[f"smoothed_{chain}"].values
        true_path = truth.loc[fit.data.dates, chain].to_numpy()
        acc = np.mean(probs.argmax(1) == true_path)
        mass = np.mean(probs[np.arange(len(true_path)), true_path])
        assert acc > 0.8 and mass > 0.7, (chain, acc, mass)
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
        "bs_mean": np.array([sds["bs_gap"][0] < pr.gap_sd, False, sds["bs_gap"][1] < pr.gap_sd]),
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
        ("rate", "hiking", "1979-10", "1981-06", 0.5),
        ("rate", "hiking", "2004-07", "2006-06", 0.7),
        ("rate", "hiking", "2022-04", "2023-07", 0.7),
        ("bs", "QE", "2008-12", "2010-03", 0.7),
        ("bs", "QE", "2012-09", "2014-10", 0.7),
        ("bs", "QE", "2020-04", "2021-06", 0.7),
        ("bs", "QT", "2017-10", "2019-07", 0.6),
        ("bs", "QT", "2022-06", "2025-11", 0.7),
        ("macro", "inflationary", "1973-06", "1981-06", 0.6),
        ("macro", "inflationary", "2021-04", "2022-06", 0.6),
    ],
)
def test_real_panel_tells_the_known_history(real_fit, chain, label, start, end, at_least):
    assert _mean(real_fit, chain, label, start, end) >= at_least


def test_no_qe_in_the_2024_25_cuts(real_fit):
    """The users' thesis: 2024-25 brought cuts and continued QT, and no QE."""
    assert _mean(real_fit, "bs", "QE", "2024-09", "2025-06") < 0.2


def _joint_mean(fit, rate: str, bs: str, start: str, end: str) -> float:
    """Mean smoothed probability of the (rate, bs) combination over the months (posterior mean of
    the joint state marginalised over the macro regime)."""
    from regimecast.hmm import hmm_smoother

    m = fit.config.model
    comps = m.state_components()
    mask = ((np.asarray(comps["rate"]) == list(m.rate_labels).index(rate))
            & (np.asarray(comps["bs"]) == list(m.bs_labels).index(bs)))
    idx = (fit.data.dates >= pd.Timestamp(start)) & (fit.data.dates <= pd.Timestamp(end))
    vals = [hmm_smoother(*fit.matrices(p)).smoothed[idx][:, mask].sum(1).mean()
            for p in fit.points(200, random_seed=0)]
    return float(np.mean(vals))


@pytest.mark.parametrize(
    ("rate", "bs", "start", "end", "at_least"),
    [
        ("hiking", "QT", "2022-06", "2023-07", 0.6),
        ("hold", "QT", "2023-08", "2024-08", 0.6),
        ("cutting", "QT", "2024-09", "2024-12", 0.6),
        ("hold", "QT", "2025-02", "2025-07", 0.5),  # the 2025 pause between the cuts
        ("hold", "QE", "2012-09", "2014-10", 0.6),
        ("hold", "QE", "2010-11", "2011-06", 0.7),  # QE2, rates at the floor
        ("cutting", "QE", "2020-03", "2020-03", 0.7),
    ],
)
def test_real_panel_tells_the_two_instruments_apart(real_fit, rate, bs, start, end, at_least):
    """Issue 9's history: the combinations the 4-state chain could not say."""
    assert _joint_mean(real_fit, rate, bs, start, end) >= at_least


@pytest.mark.parametrize("as_of", ["2018-12", "2023-12"])
def test_forecast_inside_qt_projects_a_shrinking_balance_sheet(data_store, as_of, request):
    """A forecast made inside a QT episode (2018-12: the last hike of 2015-18; 2023-12: rates on hold)
    projects a shrinking balance sheet (median 6- and 12-month changes negative), and along the paths
    that stay in QT it shrinks at the episode's pace: the median monthly change in QT months is within
    a factor of two of the mean monthly change over the 12 months up to the as-of.  (How long QT lasts
    is the model's call: at 2018-12 it expects the episode to end within the year, as it did in
    2019-08.)  Both fits are shared through session fixtures (the update tests' 2023-12 run, the
    2018-12 run)."""
    from regimecast.data import columns as C
    from regimecast.forecast import forecast
    from regimecast.runs import load_run

    shared = {"2023-12": lambda: request.getfixturevalue("runs_2023")[1],
              "2018-12": lambda: request.getfixturevalue("run_2018_12")}
    fit, _ = load_run(shared[as_of]())
    assert fit.convergence_problems() == [], fit.diagnostics
    assert f"{fit.data.dates[-1]:%Y-%m}" == as_of
    fc = forecast(fit, horizon=12, max_draws=400, random_seed=2)
    bs = fc[C.BALANCE_SHEET].values
    qt = list(fit.config.model.bs_labels).index("QT")
    in_qt = fc["bs_state"].values[:, 1:] == qt
    pace = np.median(np.diff(np.log(bs), axis=1)[in_qt])
    level = fit.panel[C.BALANCE_SHEET].loc[: fit.data.dates[-1]].dropna()
    past = np.log(level.iloc[-1] / level.iloc[-13]) / 12
    assert past < 0 and in_qt[:, 0].mean() > 0.5, (past, in_qt[:, 0].mean())
    for h in (6, 12):
        assert np.median(np.log(bs[:, h] / bs[:, 0])) < 0, h
    assert 2.0 * past <= pace <= 0.5 * past, (pace, past)  # both negative


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


def test_a_model_compiled_once_and_refilled_samples_the_draws_of_a_fresh_compile():
    """Oracle: nutpie on a model built and compiled for the second panel alone, same seed.  A backtest
    worker fits one origin after another on one compiled model (``reuse_compiled``); the draws must not
    depend on which panel the model was compiled for."""
    from regimecast import fit as fit_module
    from regimecast.fit import sample_model
    from regimecast.models import macro

    cfg = BASE.replace(model={"start": "1990-01", "volume_start": "1990-01"},
                       sampler={"draws": 30, "tune": 30, "chains": 2, "cores": 1})
    panel, _ = simulate_panel(reference_point(cfg.model), cfg.model, start="1990-01", end="2009-12",
                              random_seed=3)
    first, second = (macro.prepare_data(p, cfg.model) for p in (panel.loc[:"2006-12"], panel))
    assert macro.model_structure(first, cfg.model) == macro.model_structure(second, cfg.model)
    spec = MacroRegimeModel(cfg)
    spec.fit(panel.loc[:"2006-12"], random_seed=1, progressbar=False, reuse_compiled=True)
    model = macro.reusable_model(first, cfg.model)
    compiled = fit_module._COMPILED[id(model)][1]
    reused = spec.fit(panel, random_seed=2, progressbar=False, reuse_compiled=True)
    assert macro.reusable_model(second, cfg.model) is model  # the same model and compiled code
    assert fit_module._COMPILED[id(model)][1] is compiled
    fresh_model, _ = macro.build_macro_model(second, cfg.model, shared_data=True)
    fresh = sample_model(fresh_model, cfg.sampler, random_seed=2, progressbar=False)
    names = [v for v in fresh.posterior.data_vars]
    assert set(names) == set(reused.idata.posterior.data_vars) and len(names) > 20
    for name in names:
        np.testing.assert_array_equal(reused.idata.posterior[name].values, fresh.posterior[name].values,
                                      err_msg=name)
    # the refilled model is the second panel's: its draws differ from the first panel's fit
    again = spec.fit(panel.loc[:"2006-12"], random_seed=2, progressbar=False, reuse_compiled=True)
    assert not np.array_equal(again.idata.posterior["cpi_ref"].values, fresh.posterior["cpi_ref"].values)

"""Forecast, events, runs and report on a small model whose posterior is pinned at known parameters.

The posterior here is the reference parameter point repeated (no sampling), so regime uncertainty is
the only uncertainty and every number can be checked against the model's own transition matrix.
"""

from __future__ import annotations

import json
from dataclasses import replace

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pinned import BASE, CONFIG, pinned_fit, qe_prone_point, save_pinned_run

from regimecast import __version__
from regimecast.data import columns as C
from regimecast.errors import ConfigError, RunExistsError, RunMismatchError
from regimecast.events import evaluate_events, load_events
from regimecast.forecast import forecast, history_dataset, parse_scenario
from regimecast.models.macro import joint_log_transition, numpy_params
from regimecast.results import MacroFit
from regimecast.runs import load_run


@pytest.fixture(scope="module")
def fit():
    return pinned_fit(qe_prone_point())


@pytest.fixture(scope="module")
def fc(fit):
    return forecast(fit, horizon=24, max_draws=40, paths_per_draw=50, random_seed=3)


def test_forecast_shape_labels_and_dates(fit, fc):
    assert fc.sizes == {"sample": 40 * 50, "horizon": 25}
    assert list(pd.DatetimeIndex(fc.date.values)[:2]) == [pd.Timestamp("2023-12-01"), pd.Timestamp("2024-01-01")]
    assert fc.attrs["chains"] == ["macro", "rate", "bs"]
    assert fc.attrs["rate_labels"] == list(CONFIG.model.rate_labels)
    assert fc.attrs["bs_labels"] == list(CONFIG.model.bs_labels)
    for chain in ("macro", "rate", "bs"):
        assert fc[f"{chain}_state"].min() >= 0 and fc[f"{chain}_state"].max() <= 2
    # horizon 0 carries the last observed values
    assert float(fc.policy_rate[0, 0]) == pytest.approx(float(fit.panel[C.POLICY_RATE].iloc[-1]))
    assert np.isfinite(fc[C.CPI_YOY].values[:, 1:]).all()


def test_one_step_state_frequencies_follow_the_transition_matrix(fit, fc):
    """Oracle: the filtered state at the as-of month times the transition matrix."""
    from regimecast.hmm import hmm_filter

    li, lt, le = fit.matrices(fit.points(1)[0])
    filt = hmm_filter(li, lt, le).filtered[-1]
    want = filt @ np.exp(lt)
    def joint_at(h):  # k = (s * 3 + r) * 3 + b
        return (fc.macro_state.values[:, h] * 3 + fc.rate_state.values[:, h]) * 3 + fc.bs_state.values[:, h]

    joint = joint_at(1)
    got = np.bincount(joint, minlength=27) / joint.size
    se = np.sqrt(want * (1 - want) / joint.size)
    assert (np.abs(got - want) < 5 * se + 1e-9).all(), (got, want)
    start = np.bincount(joint_at(0), minlength=27) / joint.size
    assert (np.abs(start - filt) < 5 * np.sqrt(filt * (1 - filt) / joint.size) + 1e-9).all()


def test_event_probabilities_are_probabilities(fit, fc):
    res = evaluate_events(fc, history_dataset(fit), load_events(BASE.events))
    prob, cum = res["probability"].values, res["cumulative"].values
    assert ((prob >= 0) & (prob <= 1)).all() and ((cum >= 0) & (cum <= 1 + 1e-12)).all()
    assert (np.diff(cum, axis=1) >= -1e-12).all()
    # QE start probability by month equals the share of paths whose first QE entry is that month
    pol = fc.bs_state.values  # QE is the balance-sheet chain's state 2
    enter = (pol[:, 1:] == 2) & (pol[:, :-1] != 2)
    first = np.where(enter.any(1), enter.argmax(1) + 1, -1)
    qe = res.sel(event="qe_start")
    for h in (1, 6, 12):
        assert float(qe["probability"].sel(horizon=h)) == pytest.approx(np.mean(first == h))


def test_deflationary_scenario_raises_qe_odds(fit):
    base = forecast(fit, horizon=12, max_draws=20, paths_per_draw=100, random_seed=5)
    scen = forecast(fit, horizon=12, max_draws=20, paths_per_draw=100, random_seed=5,
                    scenario="cpi_mom_ann:2024-01=-6,2024-02=-8,2024-03=-7")
    assert scen.attrs["scenario"].startswith("cpi_mom_ann")
    np.testing.assert_array_equal(scen[C.CPI_MOM_ANN].values[:, 1], -6.0)

    def p_qe(ds):
        return float((ds.bs_state.values[:, 12] == 2).mean())  # in QE a year ahead

    def p_defl(ds):
        return float((ds.macro_state.values[:, 3] == 0).mean())

    assert p_defl(scen) > p_defl(base) + 0.3
    assert p_qe(scen) > p_qe(base) + 0.1, (p_qe(scen), p_qe(base))


def test_scenario_parse_errors():
    as_of = pd.Timestamp("2023-12-01")
    with pytest.raises(ConfigError, match="not modelled"):
        parse_scenario("gdp:2024-01=1", as_of, 24)
    with pytest.raises(ConfigError, match="outside the forecast window"):
        parse_scenario("cpi_mom_ann:2023-06=1", as_of, 24)
    with pytest.raises(ConfigError, match="YYYY-MM=number"):
        parse_scenario("cpi_mom_ann:2024-01=abc", as_of, 24)
    got = parse_scenario("cpi_mom_ann:2024-01=1.5,2024-03=-2;balance_sheet_growth:2024-02=3", as_of, 6)
    assert got[C.CPI_MOM_ANN][1] == 1.5 and got[C.CPI_MOM_ANN][3] == -2 and np.isnan(got[C.CPI_MOM_ANN][2])
    assert got[C.BALANCE_SHEET_GROWTH][2] == 3


def test_scenario_on_either_instrument(fit):
    """A scenario fixing a chain's state holds on every path in those months and nowhere else."""
    scen = forecast(fit, horizon=8, max_draws=10, paths_per_draw=20, random_seed=4,
                    scenario="bs:2024-01..2024-06=QT;rate:2024-03=hiking")
    bs, rate = scen.bs_state.values, scen.rate_state.values
    assert (bs[:, 1:7] == 0).all() and (rate[:, 3] == 2).all()
    base = forecast(fit, horizon=8, max_draws=10, paths_per_draw=20, random_seed=4)
    assert not (base.bs_state.values[:, 1:7] == 0).all()
    # QT fixed: the simulated balance sheet shrinks over those six months on most paths
    assert np.mean(scen[C.BALANCE_SHEET].values[:, 6] < scen[C.BALANCE_SHEET].values[:, 0]) > 0.9
    as_of = pd.Timestamp("2023-12-01")
    with pytest.raises(ConfigError, match="not a bs state"):
        parse_scenario("bs:2024-01=tapering", as_of, 6)
    with pytest.raises(ConfigError, match="YYYY-MM..YYYY-MM=label"):
        parse_scenario("rate:2024/01=hold", as_of, 6)
    got = parse_scenario("rate:2024-02..2024-03=cutting", as_of, 6)
    np.testing.assert_array_equal(got["rate"], [np.nan, np.nan, 0, 0, np.nan, np.nan, np.nan])


def test_rate_and_balance_sheet_prints_are_imposed_on_every_path(fit):
    """Oracle: the printed change applied by hand to the as-of values."""
    fc = forecast(fit, horizon=3, max_draws=5, paths_per_draw=10, random_seed=6,
                  scenario="policy_rate_change:2024-01=-0.5;balance_sheet_growth:2024-02=3")
    rate, bs = fc[C.POLICY_RATE].values, fc[C.BALANCE_SHEET].values
    r0 = float(fit.panel[C.POLICY_RATE].iloc[-1])
    np.testing.assert_allclose(rate[:, 1], max(r0 - 0.5, 0.05), rtol=1e-12)
    np.testing.assert_allclose(bs[:, 2] / bs[:, 1], np.exp(0.03), rtol=1e-12)
    assert np.ptp(bs[:, 3] / bs[:, 2]) > 0  # unprinted months stay random


def test_same_seed_same_numbers(fit):
    a = forecast(fit, horizon=6, max_draws=10, paths_per_draw=5, random_seed=9)
    b = forecast(fit, horizon=6, max_draws=10, paths_per_draw=5, random_seed=9)
    c = forecast(fit, horizon=6, max_draws=10, paths_per_draw=5, random_seed=10)
    np.testing.assert_array_equal(a[C.CPI_MOM_ANN].values, b[C.CPI_MOM_ANN].values)
    assert not np.array_equal(a[C.CPI_MOM_ANN].values, c[C.CPI_MOM_ANN].values)


def test_run_round_trip_and_identity_checks(fit, tmp_path):
    run = tmp_path / "run"
    save_pinned_run(fit, run)
    for name in ("posterior.nc", "regimes.csv", "diagnostics.json", "config.json", "manifest.json"):
        assert (run / name).stat().st_size > 0
    regimes = pd.read_csv(run / "regimes.csv")
    m = CONFIG.model
    assert list(regimes.columns) == ["date"] + [f"p_{x}" for x in (*m.macro_labels, *m.rate_labels,
                                                                   *m.bs_labels)]
    for cols in (slice(0, 3), slice(3, 6), slice(6, 9)):
        np.testing.assert_allclose(regimes.filter(like="p_").iloc[:, cols].sum(axis=1), 1.0, atol=1e-6)
    loaded, manifest = load_run(run)
    assert manifest["package_version"] == __version__
    assert loaded.config.to_dict() == fit.config.to_dict()
    assert "regime_probabilities" in loaded.idata.groups()
    xr.testing.assert_allclose(loaded.regime_probabilities(), fit.regime_probabilities())
    with pytest.raises(RunExistsError, match="--force"):
        save_pinned_run(fit, run)
    # a different expected config is refused, naming what differs
    with pytest.raises(RunMismatchError, match="forecast.horizon"):
        load_run(run, expected_config=CONFIG.replace(forecast={"horizon": 12}))
    # a run from another package version is refused
    m = json.loads((run / "manifest.json").read_text())
    m["package_version"] = "0.0.1"
    (run / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(RunMismatchError, match="0.0.1"):
        load_run(run)
    # a config that no longer matches its digest is refused
    m["package_version"] = __version__
    m["config_digest"] = "0" * 64
    (run / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(RunMismatchError, match="digest"):
        load_run(run)
    # a run of the 4-state policy model (its manifest has no model_structure) is refused, saying so
    del m["model_structure"]
    (run / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(RunMismatchError, match="4-state policy model.*refit"):
        load_run(run)


def test_forecast_run_writes_every_file(fit, tmp_path):
    from regimecast.workflow import forecast_run

    run = tmp_path / "run"
    save_pinned_run(fit, run)
    out = forecast_run(from_run=run, out=tmp_path / "fc", horizon=12, seed=2)
    names = ["forecast.nc", "events.csv", "event_summary.csv", "fan_cpi_yoy.png", "fan_policy_rate.png",
             "fan_balance_sheet.png", "fan_smallcap_volume.png", "regimes.png", "events.png",
             "report.html", "report.md"]
    for name in names:
        assert (out.run_dir / name).stat().st_size > 0, name
    for name in names:
        if name.endswith(".png"):
            img = mpimg.imread(out.run_dir / name)
            assert img.shape[0] > 200 and img.shape[1] > 300
    ev = pd.read_csv(out.run_dir / "events.csv")
    assert list(ev.columns) == ["event", "date", "probability", "cumulative"]
    html = (out.run_dir / "report.html").read_text()
    summary = pd.read_csv(out.run_dir / "event_summary.csv")
    p12 = summary.set_index("event").loc["qe_start", "p_within_12m"]
    assert f"{100 * p12:.0f}%" in html or f"{100 * p12:.1f}%" in html
    assert "SYNTHETIC" not in html
    with pytest.raises(RunExistsError):
        forecast_run(from_run=run, out=tmp_path / "fc", horizon=12, seed=2)
    # an unconverged run is refused unless asked
    bad = tmp_path / "bad"
    save_pinned_run(fit, bad, gate=False)
    from regimecast.errors import ConvergenceError

    with pytest.raises(ConvergenceError, match="--allow-unconverged"):
        forecast_run(from_run=bad, out=tmp_path / "fc2", horizon=6)
    forecast_run(from_run=bad, out=tmp_path / "fc2", horizon=6, allow_unconverged=True)


def test_transition_from_pinned_fit_is_the_reference(fit):
    p = fit.points(1)[0]
    _, lt, _ = fit.matrices(p)
    np.testing.assert_allclose(lt, joint_log_transition(np, numpy_params(qe_prone_point(), CONFIG.model),
                                                   CONFIG.model))


def test_config_replace_validates():
    with pytest.raises(ConfigError):
        CONFIG.replace(forecast={"horizon": 0})
    assert replace(CONFIG.model, start="2000-01").start == "2000-01"


def test_forecast_with_time_varying_policy_transitions():
    import arviz as az

    from regimecast.models.macro_sim import simulate_panel

    cfg = CONFIG.replace(model={"tvtp": True})
    point = dict(qe_prone_point())
    point["rate_tvtp"] = np.array([0.0, 0.0, 1.0])
    point["bs_tvtp"] = np.array([0.0, 0.0, 0.0])
    panel, _ = simulate_panel(point, cfg.model, start="1995-01", end="2023-12", random_seed=2)
    post = {k: np.broadcast_to(np.asarray(v), (1, 5, *np.shape(v))).copy() for k, v in point.items()}
    fit = MacroFit(config=cfg, panel=panel, idata=az.from_dict(posterior=post), random_seed=1)
    _, lt, le = fit.matrices(fit.points(1)[0])
    assert lt.shape == (le.shape[0] - 1, 27, 27)
    fc = forecast(fit, horizon=6, max_draws=5, paths_per_draw=20, random_seed=1)
    assert fc.sizes == {"sample": 100, "horizon": 7}
    assert fit.expected_durations(max_draws=5).sizes == {"stat": 3, "time": lt.shape[0], "state": 27}


@pytest.mark.parametrize("scenario", [None, "cpi_mom_ann:2024-01=-4.0,2024-02=-3.0; bs:2024-02=QE"])
def test_paths_from_the_stored_filter_state_match_ffbs_over_the_whole_sample(fit, scenario):
    """Oracle: forward-filter backward-sampling over the whole sample and the months ahead (the path
    the ragged edge takes).  The forecast's paths start from the run's filtered state at the as-of
    month and filter only the months ahead; both must give the same state frequencies, with and
    without scenario prints (which reach back to the as-of month's state)."""
    from regimecast.forecast import _full_paths, _future_paths
    from regimecast.reweight import fit_filter_state

    H, n, T = 6, 20000, fit.data.T
    cfg = fit.config.model
    scen = parse_scenario(scenario, fit.data.dates[-1], H, cfg.chain_labels())
    p = fit.points(1)[0]
    st = fit_filter_state(fit)
    fast = _future_paths(p, fit, st.alpha[0], st.log_a[0], scen, H, n, np.random.default_rng(1))
    full = _full_paths(p, fit, scen, H, n, np.random.default_rng(2))[:, T - 1:]
    assert fast.shape == full.shape == (n, H + 1)
    for h in (0, 1, 3, H):
        a = np.bincount(fast[:, h], minlength=27) / n
        b = np.bincount(full[:, h], minlength=27) / n
        se = np.sqrt((a * (1 - a) + b * (1 - b)) / n)
        assert (np.abs(a - b) < 5 * se + 2e-4).all(), (h, a, b)
    if scenario:  # the prints moved the paths: the fixed QE month holds on every path
        assert (full[:, 2] % 3 == 2).all() and (fast[:, 2] % 3 == 2).all()


def test_forecast_draws_line_up_with_their_filter_states(fit):
    """The points the forecast simulates and the filter states it starts them from are the same draws."""
    from regimecast.reweight import fit_filter_state, posterior_arrays

    arrays = posterior_arrays(fit.idata)
    pos = fit.draw_positions(3, random_seed=5)
    names = [k for k in arrays if k not in fit.fixed_parameters()]  # fixed: the same in every draw
    for i, p in zip(pos, fit.points(3, random_seed=5), strict=True):
        for k in names:
            np.testing.assert_array_equal(p[k], arrays[k][i])
    assert fit_filter_state(fit).alpha.shape[0] == len(next(iter(arrays.values())))


def test_ragged_edge_paths_with_batched_matrices_are_the_per_draw_ones(fit):
    """The ragged edge samples its history from matrices batched over draws; for the same seed they
    give the paths that ``fit.matrices`` per draw gives."""
    from regimecast.forecast import _full_paths

    points = fit.points(3, random_seed=4)
    for p, arrays in zip(points, fit.hmm_arrays_many(points, chunk=2), strict=True):
        a = _full_paths(p, fit, {}, 6, 50, np.random.default_rng(8), arrays)
        b = _full_paths(p, fit, {}, 6, 50, np.random.default_rng(8))
        np.testing.assert_array_equal(a, b)


def test_batched_model_matrices_are_the_per_draw_ones(fit):
    """Oracle: ``fit.matrices`` draw by draw (the regime probabilities use the batched matrices)."""
    points = fit.points(5, random_seed=6)
    got = list(fit.hmm_arrays_many(points, chunk=2))
    assert len(got) == 5
    for p, (li, lt, le) in zip(points, got, strict=True):
        want = fit.matrices(p)
        for a, b in zip((li, lt, le), want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)

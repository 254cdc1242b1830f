"""The forecast's starting point: the ragged edge, CPI y/y, and the time-varying transitions ahead.

Oracles are written here by hand: the y/y from the monthly log changes, the AR(1) moments of a series
simulated over its missing months, and the policy transition's softmax with the as-of driver.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
from pinned import CONFIG, pinned_fit, qe_prone_point, save_pinned_run
from transition_oracle import joint_index, oracle_transition

from regimecast.data import columns as C
from regimecast.forecast import forecast
from regimecast.hmm import hmm_filter
from regimecast.models.macro import numpy_params
from regimecast.models.macro_sim import simulate_panel
from regimecast.results import MacroFit


def _fit_on(panel: pd.DataFrame, point: dict, config=CONFIG) -> MacroFit:
    post = {k: np.broadcast_to(np.asarray(v), (1, 5, *np.shape(v))).copy() for k, v in point.items()}
    return MacroFit(config=config, panel=panel, idata=az.from_dict(posterior=post), random_seed=1)


def _yoy(window_mom: np.ndarray) -> np.ndarray:
    """y/y in percent from 12 annualised monthly log changes (last axis)."""
    return 100.0 * (np.exp(window_mom.sum(axis=-1) / 1200.0) - 1.0)


# --------------------------------------------------------------------------------------------------
# CPI y/y against a direct computation
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_fit():
    return pinned_fit(qe_prone_point())


def test_cpi_yoy_path_is_the_12_month_sum_of_the_monthly_prints(full_fit):
    fc = forecast(full_fit, horizon=15, max_draws=10, paths_per_draw=20, random_seed=4)
    panel = full_fit.panel
    hist = panel[C.CPI_MOM_ANN].to_numpy()[-12:-1]  # the 11 months before the as-of
    mom = fc[C.CPI_MOM_ANN].values  # (n, H+1), column 0 = as-of
    yoy = fc[C.CPI_YOY].values
    # the as-of month's own print, which the simulated panel derived from its CPI level
    assert yoy[0, 0] == pytest.approx(float(panel[C.CPI_YOY].iloc[-1]))
    assert _yoy(panel[C.CPI_MOM_ANN].to_numpy()[-12:]) == pytest.approx(yoy[0, 0], rel=1e-9)
    for h in range(1, 16):
        months = [hist[j] for j in range(h, 11)]  # history months still inside the window
        want = _yoy(np.column_stack([np.broadcast_to(np.array(months), (mom.shape[0], len(months))),
                                     mom[:, max(0, h - 11): h + 1]]))
        np.testing.assert_allclose(yoy[:, h], want, rtol=1e-10, err_msg=f"h={h}")


# --------------------------------------------------------------------------------------------------
# The ragged edge: the last months miss CPI or volume
# --------------------------------------------------------------------------------------------------

CPI_GAP, VOL_GAP = 2, 3
CPI_LAST, VOL_JUMP = 30.0, 1.5


def _sticky_point() -> dict:
    """Regimes that (almost) never move, so a path's state over the missing months is its as-of state."""
    p = {k: np.array(v, copy=True) for k, v in qe_prone_point().items()}
    p["macro_offdiag"][:] = -30.0
    for name in ("rate_base", "bs_base"):
        p[name][:] = -30.0
    for name in ("rate_dev_bs", "rate_dev_macro", "bs_dev_rate", "bs_dev_macro", "macro_rate_raw",
                 "macro_bs_raw"):
        p[name][:] = 0.0
    return p


@pytest.fixture(scope="module")
def ragged():
    point = _sticky_point()
    panel, _ = simulate_panel(point, CONFIG.model, start="1995-01", end="2023-12", random_seed=8)
    panel = panel.copy()
    # the last observed CPI print is extreme, and the volume jumps before its data stop
    panel.iloc[-CPI_GAP - 1, panel.columns.get_loc(C.CPI_MOM_ANN)] = CPI_LAST
    iv = panel.columns.get_loc(C.SMALLCAP_VOLUME_LOG)
    panel.iloc[-VOL_GAP - 1, iv] = panel.iloc[-VOL_GAP - 2, iv] + VOL_JUMP
    panel.iloc[-CPI_GAP:, [panel.columns.get_loc(c) for c in (C.CPI_MOM_ANN, C.CPI_YOY)]] = np.nan
    panel.iloc[-VOL_GAP:, [panel.columns.get_loc(c) for c in (C.SMALLCAP_VOLUME_LOG,
                                                               C.SMALLCAP_VOLUME)]] = np.nan
    fit = _fit_on(panel, point)
    fc = forecast(fit, horizon=14, max_draws=5, paths_per_draw=800, random_seed=2)
    return fit, fc, point


def test_ragged_edge_forecast_has_no_missing_values(ragged):
    _, fc, _ = ragged
    for var in (C.CPI_MOM_ANN, C.CPI_YOY, C.POLICY_RATE, C.BALANCE_SHEET, C.SMALLCAP_VOLUME):
        assert np.isfinite(fc[var].values).all(), var


def _moments_by_state(x: np.ndarray, states: np.ndarray, mean_of_state, var_of_state):
    for k in np.unique(states):
        sel = states == k
        if sel.sum() < 50:
            continue
        se = np.sqrt(var_of_state(k) / sel.sum())
        assert abs(x[sel].mean() - mean_of_state(k)) < 5 * se, (k, x[sel].mean(), mean_of_state(k))


def test_cpi_starts_from_its_last_print_carried_over_the_missing_months(ragged):
    """Oracle: AR(1) over CPI_GAP months from the last print, in the path's (unchanging) regime."""
    fit, fc, point = ragged
    p = numpy_params(point, CONFIG.model)
    nu = CONFIG.model.priors.student_nu
    a = float(p["cpi_ar"])
    s0 = fc.macro_state.values[:, 0]
    cpi0 = fc[C.CPI_MOM_ANN].values[:, 0]
    t_var = nu / (nu - 2)

    def mean(s):
        mu = p["cpi_mean"][s]
        return mu + a**CPI_GAP * (CPI_LAST - mu)

    def var(s):
        return p["cpi_sigma"][s] ** 2 * t_var * sum(a ** (2 * j) for j in range(CPI_GAP))

    _moments_by_state(cpi0, s0, mean, var)
    assert cpi0.std() > 0.5  # a nowcast distribution, not a copied value
    # the as-of y/y covers the two nowcast months: from the as-of print forward it is exact
    mom = fc[C.CPI_MOM_ANN].values
    np.testing.assert_allclose(fc[C.CPI_YOY].values[:, 11:], np.column_stack(
        [_yoy(mom[:, h - 11: h + 1]) for h in range(11, 15)]), rtol=1e-10)


def test_volume_starts_from_its_last_observation_carried_over_the_missing_months(ragged):
    """Oracle: the volume AR(1) around trend + state level, VOL_GAP steps from the last observation."""
    fit, fc, point = ragged
    cfg = CONFIG.model
    p = numpy_params(point, cfg)
    d = fit.data
    T = d.T
    k0 = joint_index(fc.macro_state.values[:, 0], fc.rate_state.values[:, 0], fc.bs_state.values[:, 0])
    v_last = float(fit.panel[C.SMALLCAP_VOLUME_LOG].iloc[-VOL_GAP - 1])
    rat = np.insert(p["vol_rate"], 1, 0.0)
    bsl = np.insert(p["vol_bs"], 1, 0.0)
    mac = np.insert(p["vol_macro"], 1, 0.0)
    a = float(p["vol_ar"])

    def level(t, k):
        return p["vol_level"] + p["vol_trend"] * d.trend[t] + mac[k // 9] + rat[(k // 3) % 3] + bsl[k % 3]

    def mean(k):
        return level(T - 1, k) + a**VOL_GAP * (v_last - level(T - 1 - VOL_GAP, k))

    def var(k):
        return p["vol_sigma"] ** 2 * sum(a ** (2 * j) for j in range(VOL_GAP))

    _moments_by_state(np.log(fc[C.SMALLCAP_VOLUME].values[:, 0]), k0, mean, var)


def test_forecast_run_reports_where_each_series_ends(ragged, tmp_path):
    from regimecast.workflow import forecast_run

    fit, _, _ = ragged
    run = tmp_path / "run"
    save_pinned_run(fit, run)
    out = forecast_run(from_run=run, out=tmp_path / "fc", horizon=3, seed=1)
    ends = out.meta["series_ends"]
    as_of = fit.panel.index[-1]

    def month(k):
        return f"{as_of - pd.DateOffset(months=k):%Y-%m}"

    assert ends[C.CPI_MOM_ANN] == month(CPI_GAP) and ends[C.CPI_YOY] == month(CPI_GAP)
    assert ends[C.SMALLCAP_VOLUME] == month(VOL_GAP)
    assert ends[C.POLICY_RATE] == month(0) and ends[C.BALANCE_SHEET] == month(0)


def test_real_panel_default_as_of_forecast_starts_from_observed_values(data_store):
    """The shared data: the default as-of is the last month with any data, where CPI is missing."""
    from regimecast.data import load_panel
    from regimecast.models.macro_sim import reference_point
    from regimecast.workflow import series_ends

    panel = load_panel(data_store)
    cfg = CONFIG.replace(model={"start": "2000-01"})
    fit = _fit_on(panel, reference_point(cfg.model), config=cfg)
    fc = forecast(fit, horizon=6, max_draws=5, paths_per_draw=20, random_seed=1)
    for var in (C.CPI_MOM_ANN, C.CPI_YOY, C.POLICY_RATE, C.BALANCE_SHEET, C.SMALLCAP_VOLUME):
        assert np.isfinite(fc[var].values).all(), var
    # series ends: the last row with a finite value, found by a plain loop over the rows
    ends = series_ends(panel)
    for col, got in ends.items():
        last = None
        for date, value in panel[col].items():
            if value == value:  # not NaN
                last = f"{date:%Y-%m}"
        assert got == last, col
    assert ends[C.SMALLCAP_VOLUME] == f"{panel.index[-1]:%Y-%m}"


# --------------------------------------------------------------------------------------------------
# Time-varying policy transitions: the driver of the first month ahead is the as-of print
# --------------------------------------------------------------------------------------------------


def test_tvtp_forecast_uses_the_as_of_inflation_print():
    cfg = CONFIG.replace(model={"tvtp": True})
    point = {k: np.array(v, copy=True) for k, v in qe_prone_point().items()}
    point["rate_tvtp"] = np.array([-1.0, -1.0, 2.0])  # inflation -> hiking
    point["bs_tvtp"] = np.array([0.5, 0.0, -1.0])  # inflation -> QT, away from QE
    panel, _ = simulate_panel(point, cfg.model, start="1995-01", end="2023-12", random_seed=2)
    panel = panel.copy()
    # the as-of print is far above the month before: the driver jumps from -1 to +3
    panel.iloc[-2, panel.columns.get_loc(C.CPI_YOY)] = 0.0
    panel.iloc[-1, panel.columns.get_loc(C.CPI_YOY)] = 12.0
    fit = _fit_on(panel, point, config=cfg)
    fc = forecast(fit, horizon=2, max_draws=5, paths_per_draw=4000, random_seed=3)
    li, lt, le = fit.matrices(fit.points(1)[0])
    filt = hmm_filter(li, lt, le).filtered[-1]
    p = numpy_params(point, cfg.model)
    want = filt @ oracle_transition(p, (12.0 - 3.0) / 3.0)
    stale = filt @ oracle_transition(p, (0.0 - 3.0) / 3.0)
    joint = joint_index(fc.macro_state.values[:, 1], fc.rate_state.values[:, 1], fc.bs_state.values[:, 1])
    got = np.bincount(joint, minlength=27) / joint.size
    se = np.sqrt(want * (1 - want) / joint.size)
    assert np.abs(got - want).max() > 0 and (np.abs(got - want) < 5 * se + 1e-9).all(), (got, want)
    assert np.abs(want - stale).max() > 10 * se.max()  # the test tells the two drivers apart


# --------------------------------------------------------------------------------------------------
# The ragged months from the run's stored window of filtered states
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ragged_moving():
    """Regimes that move (the QE-prone reference point), volume missing over the last VOL_GAP months."""
    point = qe_prone_point()
    panel, _ = simulate_panel(point, CONFIG.model, start="1995-01", end="2023-12", random_seed=8)
    panel = panel.copy()
    panel.iloc[-VOL_GAP:, [panel.columns.get_loc(c) for c in (C.SMALLCAP_VOLUME_LOG,
                                                               C.SMALLCAP_VOLUME)]] = np.nan
    return _fit_on(panel, point)


def test_ragged_months_from_the_window_match_ffbs_over_the_whole_sample(ragged_moving):
    """Oracle: forward-filter backward-sampling over the whole sample and the months ahead.  The
    forecast samples the as-of state from the stored filter state and the missing months before it
    backward from the stored last months' filtered states; the month-by-month state frequencies and
    the pairs of consecutive months must agree."""
    from regimecast.forecast import _full_paths, _future_paths, _window_tails
    from regimecast.reweight import fit_filter_state

    fit = ragged_moving
    H, n, T, lag = 4, 20000, fit.data.T, VOL_GAP
    st = fit_filter_state(fit)
    assert st.window.shape[1] > lag
    p = fit.points(1)[0]
    rng = np.random.default_rng(1)
    ahead = _future_paths(p, fit, st.alpha[0], st.log_a[0], {}, H, n, rng)
    fast = _window_tails(ahead[:, 0], st, np.zeros(n, dtype=np.int64), lag, rng)
    full = _full_paths(p, fit, {}, H, n, np.random.default_rng(2))[:, T - 1 - lag : T]
    assert fast.shape == full.shape == (n, lag + 1)
    moved = 0.0
    for j in range(lag + 1):
        cells = [(fast[:, j], full[:, j], 27)]
        if j < lag:
            cells.append((27 * fast[:, j] + fast[:, j + 1], 27 * full[:, j] + full[:, j + 1], 27 * 27))
        for a_states, b_states, m in cells:
            a = np.bincount(a_states, minlength=m) / n
            b = np.bincount(b_states, minlength=m) / n
            se = np.sqrt((a * (1 - a) + b * (1 - b)) / n)
            assert (np.abs(a - b) < 5 * se + 2e-4).all(), (j, m)
        moved = max(moved, float(np.mean(full[:, j] != full[:, -1])))
    assert moved > 0.01  # the test can fail: states do change over the missing months


def test_a_ragged_forecast_with_a_stored_window_does_not_refilter(ragged_moving):
    """With the filter state known, the forecast never asks for the whole sample's model matrices."""
    from regimecast.reweight import fit_filter_state

    fit = _fit_on(ragged_moving.panel, qe_prone_point())
    fit_filter_state(fit)

    def refilter(points):
        raise AssertionError("the ragged edge refiltered the whole sample")

    fit.__dict__["hmm_arrays_many"] = refilter
    fc = forecast(fit, horizon=6, max_draws=5, paths_per_draw=50, random_seed=3)
    assert np.isfinite(fc[C.SMALLCAP_VOLUME].values).all()
    del fit.__dict__["hmm_arrays_many"]
    fit._memo.clear()  # no stored state: the whole-sample path, the same kind of answer
    fc_full = forecast(fit, horizon=6, max_draws=5, paths_per_draw=50, random_seed=3)
    assert np.isfinite(fc_full[C.SMALLCAP_VOLUME].values).all()

"""The macro-regime x policy-state model: structure, emissions and priors against independent oracles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import stats

from regimecast.config import load_config
from regimecast.data import columns as C
from regimecast.errors import ConfigError, DataError
from regimecast.models.macro import (
    build_macro_model,
    compile_matrices,
    joint_log_emission,
    joint_log_transition,
    log_matrices_np,
    numpy_params,
    prepare_data,
)
from regimecast.models.macro_sim import reference_point, simulate_panel, simulate_states

CFG = load_config().model


@pytest.fixture(scope="module")
def sim():
    panel, truth = simulate_panel(reference_point(CFG), CFG, start="1990-01", end="2009-12", random_seed=3)
    return panel, truth


def test_transition_is_product_of_macro_and_policy_chains():
    """Oracle: the two softmaxes written as explicit loops."""
    p = numpy_params(reference_point(CFG), CFG)
    lt = joint_log_transition(np, p, 3, 4)
    P = np.exp(lt)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    b = p["macro_policy_sd"] * p["macro_policy_raw"]
    for s in range(3):
        for z in range(4):
            logits_s = np.array(
                [0.0 if s2 == s else p["macro_offdiag"][s, [j for j in range(3) if j != s].index(s2)] + b[z, s2]
                 for s2 in range(3)]
            )
            ps = np.exp(logits_s) / np.exp(logits_s).sum()
            for s2 in range(3):
                offs = [j for j in range(4) if j != z]
                logits_z = np.array(
                    [0.0 if z2 == z else p["policy_base"][z, offs.index(z2)]
                     + p["policy_tau"] * p["policy_dev_raw"][s2, z, offs.index(z2)] for z2 in range(4)]
                )
                pz = np.exp(logits_z) / np.exp(logits_z).sum()
                for z2 in range(4):
                    assert P[s * 4 + z, s2 * 4 + z2] == pytest.approx(ps[s2] * pz[z2], rel=1e-10)


def test_emission_matches_scipy_densities(sim):
    """Oracle: scipy.stats densities, month by month, state by state."""
    panel, _ = sim
    d = prepare_data(panel, _cfg(start="1990-01"))
    p = numpy_params(reference_point(CFG), CFG)
    le = joint_log_emission(np, p, d, _cfg(start="1990-01"))
    nu = CFG.priors.student_nu
    for t in [5, 100, 200]:
        for k in range(12):
            s, z = divmod(k, 4)
            mu = p["cpi_mean"][s]
            want = stats.t.logpdf(d.cpi[t], nu, mu + p["cpi_ar"] * (d.cpi_lag[t] - mu), p["cpi_sigma"][s])
            rate_loc = [p["rate_mean_qe"], *p["rate_mean"]][z]
            mult = np.sqrt(max(d.rate_lag[t], 0.25) / CFG.priors.rate_vol_level)
            if np.isfinite(d.rate_change[t]):
                want += stats.t.logpdf(d.rate_change[t], nu, rate_loc, p["rate_scale"][z] * mult)
            bs_loc = [p["bs_mean"][2], p["bs_mean"][1], p["bs_mean"][1], p["bs_mean"][0]][z]
            bs_loc += d.bs_proxy[t] * p["bs_proxy_shift"]
            bs_sc = p["bs_scale"][z] * (p["bs_proxy_scale"] if d.bs_proxy[t] else 1.0)
            want += stats.t.logpdf(d.bs_growth[t], nu, bs_loc, bs_sc)
            if np.isfinite(d.vol[t]) and np.isfinite(d.vol_lag[t]):
                lev = np.insert(p["vol_macro"], 1, 0.0)[s] + np.insert(p["vol_policy"], 2, 0.0)[z]
                m_t = p["vol_level"] + p["vol_trend"] * d.trend[t] + lev
                m_lag = m_t - p["vol_trend"] / CFG.volume_trend_per
                want += stats.norm.logpdf(d.vol[t], m_t + p["vol_ar"] * (d.vol_lag[t] - m_lag), p["vol_sigma"])
            assert le[t, k] == pytest.approx(want, rel=1e-9), (t, k)


def _cfg(**kw):
    from dataclasses import replace

    return replace(CFG, **kw)


def test_missing_months_and_zero_lower_bound_drop_out(sim):
    panel, _ = sim
    panel = panel.copy()
    t_missing = panel.index[50]
    panel.loc[t_missing, [C.CPI_MOM_ANN, C.POLICY_RATE_CHANGE, C.BALANCE_SHEET_GROWTH,
                          C.SMALLCAP_VOLUME_LOG]] = np.nan
    zlb = panel.index[80:83]
    panel.loc[zlb, C.POLICY_RATE] = 0.1
    panel.loc[panel.index[79], C.POLICY_RATE] = 0.1
    cfg = _cfg(start="1990-01", volume_start="1990-01")  # volume in the whole simulated window
    d = prepare_data(panel, cfg)
    p = numpy_params(reference_point(CFG), CFG)
    le = joint_log_emission(np, p, d, cfg)
    # a fully missing month contributes exactly nothing (the CPI lag of the next month is missing too)
    np.testing.assert_array_equal(le[50], 0.0)
    assert np.isnan(d.rate_change[80:83]).all()
    # at the zero lower bound the rate change carries no policy signal: changing it changes nothing
    panel2 = panel.copy()
    panel2.loc[zlb, C.POLICY_RATE_CHANGE] = 5.0
    le2 = joint_log_emission(np, p, prepare_data(panel2, cfg), cfg)
    np.testing.assert_array_equal(le[80:83], le2[80:83])


def test_pytensor_graph_matches_numpy(sim):
    panel, _ = sim
    cfg = _cfg(start="1990-01", volume_start="1990-01")  # volume in the whole simulated window
    d = prepare_data(panel, cfg)
    model, handles = build_macro_model(d, cfg)
    f = compile_matrices(model, handles)
    point = reference_point(CFG)
    for a, b in zip(f(point), log_matrices_np(point, d, cfg), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_priors_keep_states_ordered_and_durations_plausible(sim):
    """Prior predictive: ordered state means, regime durations and series ranges a macro user accepts."""
    panel, _ = sim
    cfg = _cfg(start="1990-01", volume_start="1990-01")  # volume in the whole simulated window
    d = prepare_data(panel, cfg)
    model, _ = build_macro_model(d, cfg)
    names = ["cpi_mean", "rate_mean", "bs_mean"]
    draws = pm.draw([model[n] for n in names], draws=400, random_seed=5)
    for arr in draws:
        assert (np.diff(arr, axis=1) > 0).all()
    free = [rv.name for rv in model.free_RVs]
    values = pm.draw([model[n] for n in free], draws=200, random_seed=6)
    durations, cpi_q = [], []
    rng = np.random.default_rng(0)
    for i in range(200):
        point = {n: v[i] for n, v in zip(free, values, strict=True)}
        lt = joint_log_transition(np, numpy_params(point, CFG), 3, 4)
        P = np.exp(lt).reshape(3, 4, 3, 4)
        stay_macro = np.array([P[s, :, s, :].sum(axis=-1).mean() for s in range(3)])
        stay_policy = np.array([P[:, z, :, z].sum(axis=-1).mean() for z in range(4)])
        durations.append(1.0 / (1.0 - np.concatenate([stay_macro, stay_policy])))
        states = simulate_states(lt, np.array([6]), 240, rng)
        from regimecast.models.macro_sim import simulate_series

        sims = simulate_series(point, CFG, states, initial={C.CPI_MOM_ANN: 2.0, C.POLICY_RATE: 3.0,
                               C.BALANCE_SHEET: 1000.0, C.SMALLCAP_VOLUME_LOG: 17.0}, trend0=3.0, rng=rng)
        cpi_q.append(np.quantile(sims[C.CPI_MOM_ANN], [0.05, 0.95]))
    # prior median durations of each macro regime and policy state against the configured ones: the
    # logit spread (sd 1 for macro, 1.5 for policy rows) shortens the median below the stated value
    # (measured: macro ~0.8x, policy ~0.57x), but it stays within a factor of two
    dur = np.median(np.array(durations), axis=0)
    stated = np.array([*CFG.durations.macro, *CFG.durations.policy()])
    ratio = dur / stated
    assert ((ratio > 0.5) & (ratio < 1.25)).all(), (dur, stated)
    cpi_q = np.median(np.array(cpi_q), axis=0)
    assert -10 < cpi_q[0] < 2 and 4 < cpi_q[1] < 20, cpi_q


def test_simulated_chain_frequencies_match_transition():
    p = numpy_params(reference_point(CFG), CFG)
    lt = joint_log_transition(np, p, 3, 4)
    rng = np.random.default_rng(1)
    start = np.full(20000, 6)
    paths = simulate_states(lt, start, 1, rng)
    freq = np.bincount(paths[:, 1], minlength=12) / len(start)
    P = np.exp(lt[6])
    se = np.sqrt(P * (1 - P) / len(start))
    assert (np.abs(freq - P) < 5 * se + 1e-12).all()


def test_bad_panel_inputs(sim):
    panel, _ = sim
    with pytest.raises(DataError, match="lacks column"):
        prepare_data(panel.drop(columns=[C.BALANCE_SHEET_GROWTH]), CFG)
    with pytest.raises(DataError, match="at least 600"):
        prepare_data(panel, _cfg(start="1990-01", min_months=600))


def test_config_errors(tmp_path):
    from regimecast.config import config_from_dict

    with pytest.raises(ConfigError, match="unknown setting"):
        config_from_dict({"model": {"nonsense": 1}})
    with pytest.raises(ConfigError, match="4 labels"):
        config_from_dict({"model": {"policy_labels": ["QE", "hold"]}})
    with pytest.raises(ConfigError, match="must strictly increase"):
        config_from_dict({"model": {"priors": {"cpi_mean": [3.0, 2.0, 5.0]}}})
    with pytest.raises(ConfigError, match="unknown section"):
        config_from_dict({"modle": {}})
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_simulated_panel_has_model_columns(sim):
    panel, truth = sim
    assert isinstance(panel.index, pd.DatetimeIndex)
    assert set(truth.columns) == {"macro", "policy"}
    d = prepare_data(panel, _cfg(start="1990-01"))
    assert d.T == len(panel)


def _tvtp_point(gamma):
    p = dict(reference_point(CFG))
    p["policy_tvtp"] = np.asarray(gamma, dtype=float)
    return p


def test_tvtp_reduces_to_constant_transitions_when_the_effect_is_zero():
    drivers = np.array([-1.0, 0.0, 2.5])
    lt3 = joint_log_transition(np, numpy_params(_tvtp_point(np.zeros(4)), CFG), 3, 4, drivers=drivers)
    lt = joint_log_transition(np, numpy_params(reference_point(CFG), CFG), 3, 4)
    assert lt3.shape == (3, 12, 12)
    for t in range(3):
        np.testing.assert_allclose(lt3[t], lt, atol=1e-12)


def test_tvtp_shifts_moves_into_a_policy_state_by_the_driver():
    """Oracle: the policy softmax of one row written out by hand, macro part unchanged."""
    gamma = np.array([0.0, 0.0, 0.0, 1.2])  # inflation raises the odds of moving into tightening
    p = numpy_params(_tvtp_point(gamma), CFG)
    drivers = np.array([0.0, 2.0])
    P = np.exp(joint_log_transition(np, p, 3, 4, drivers=drivers))
    np.testing.assert_allclose(P.sum(axis=2), 1.0, atol=1e-12)
    s, z, s2 = 1, 2, 1  # moderate|hold -> moderate|*
    offs = [j for j in range(4) if j != z]
    for t, x in enumerate(drivers):
        logits = np.array([0.0 if z2 == z else p["policy_base"][z, offs.index(z2)]
                           + p["policy_tau"] * p["policy_dev_raw"][s2, z, offs.index(z2)] + gamma[z2] * x
                           for z2 in range(4)])
        pz = np.exp(logits) / np.exp(logits).sum()
        ps = P[t, s * 4 + z, s2 * 4: s2 * 4 + 4].sum()
        np.testing.assert_allclose(P[t, s * 4 + z, s2 * 4: s2 * 4 + 4], ps * pz, rtol=1e-10)
    assert P[1, 6, 7] > 2 * P[0, 6, 7]  # hold -> tightening much likelier with inflation 6% above centre


def test_tvtp_graph_matches_numpy(sim):
    panel, _ = sim
    cfg = _cfg(start="1990-01", tvtp=True)
    d = prepare_data(panel, cfg)
    assert np.abs(d.infl_driver).max() > 0
    model, handles = build_macro_model(d, cfg)
    assert "policy_tvtp" in [rv.name for rv in model.free_RVs]
    point = _tvtp_point([0.3, -0.2, 0.0, 0.8])
    got = compile_matrices(model, handles)(point)
    want = log_matrices_np(point, d, cfg)
    assert got[1].shape == (d.T - 1, 12, 12)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def _evidence_panel(sim, n_infl: int, n_defl: int, n_qe: int) -> pd.DataFrame:
    """The simulated panel with a known number of months that point at each state."""
    panel = sim[0].copy()
    panel[C.CPI_YOY] = 2.8  # nearest the moderate prior mean
    panel[C.BALANCE_SHEET_GROWTH] = 0.5
    panel[C.BALANCE_SHEET_PROXY] = 0
    panel[C.POLICY_RATE_CHANGE] = 0.0
    later = panel.index[1:]  # the first month has no lagged volume
    panel.loc[later[:n_infl], C.CPI_YOY] = 8.0
    panel.loc[later[n_infl : n_infl + n_defl], C.CPI_YOY] = -1.0
    panel.loc[later[-n_qe:] if n_qe else [], C.BALANCE_SHEET_GROWTH] = 5.0
    return panel


@pytest.mark.parametrize("n_infl,n_defl,n_qe", [(30, 5, 13), (23, 24, 11)])
def test_states_without_enough_months_are_pinned_to_their_priors(sim, n_infl, n_defl, n_qe):
    """Oracle: the months planted in the panel; the prior sds read off prior draws of the model."""
    from regimecast.models.macro import (
        MIN_QE_MONTHS,
        MIN_REGIME_MONTHS,
        MIN_VOLUME_MONTHS,
        PIN_FACTOR,
        state_evidence,
    )

    cfg = _cfg(start="1990-01", volume_start="1990-01")  # volume in the whole simulated window
    d = prepare_data(_evidence_panel(sim, n_infl, n_defl, n_qe), cfg)
    ev = state_evidence(d, cfg)
    assert ev["vol_macro"].tolist() == [n_defl, 239 - n_infl - n_defl, n_infl]
    assert ev["cpi_macro"].tolist() == [n_defl, 240 - n_infl - n_defl, n_infl]
    assert int(ev["qe"]) == n_qe and ev["vol_policy"][0] == n_qe
    model, _ = build_macro_model(d, cfg)
    draws = pm.draw([model["vol_macro"], model["rate_mean_qe"], model["vol_policy"],
                     model["cpi_sigma"], model["cpi_gap"]], 4000, random_seed=1)
    usual = 0.3
    want = [usual if n >= MIN_VOLUME_MONTHS else usual * PIN_FACTOR for n in (n_defl, n_infl)]
    np.testing.assert_allclose(draws[0].std(0), want, rtol=0.05)
    qe_sd = 0.2 if n_qe >= MIN_QE_MONTHS else 0.2 * PIN_FACTOR
    assert draws[1].std() == pytest.approx(qe_sd, rel=0.05)
    assert draws[2].std(0)[0] == pytest.approx(usual * PIN_FACTOR, rel=0.05)  # < 24 QE volume months
    pinned = [n < MIN_REGIME_MONTHS for n in (n_defl, n_infl)]
    want_sigma = [CFG.priors.scale_sd * (PIN_FACTOR if pin else 1.0) for pin in pinned]
    np.testing.assert_allclose(np.log(draws[3]).std(0)[[0, 2]], want_sigma, rtol=0.05)
    want_gap = [CFG.priors.cpi_gap_sd * (PIN_FACTOR if pin else 1.0) for pin in pinned]
    np.testing.assert_allclose(np.log(draws[4]).std(0), want_gap, rtol=0.05)


def test_volume_splice_month_uses_last_months_proxy_level(sim):
    """Oracle: the AR(1) density written out with m_{t-1} carrying month t-1's proxy shift."""
    panel = sim[0].copy()
    panel[C.SMALLCAP_VOLUME_PROXY] = (panel.index < "2000-01-01").astype(int)
    cfg = _cfg(start="1990-01", volume_start="1990-01")  # volume in the whole simulated window
    d = prepare_data(panel, cfg)
    p = numpy_params({**reference_point(CFG), "vol_proxy_shift": np.array(0.4)}, CFG)
    le = joint_log_emission(np, p, d, cfg)
    p0 = {**p, "vol_proxy_shift": np.array(0.0)}
    base = joint_log_emission(np, p0, d, cfg)
    t = int(np.flatnonzero(d.dates == pd.Timestamp("2000-01-01"))[0])
    step = d.trend[1] - d.trend[0]
    for k in (0, 7):
        s, z = divmod(k, 4)
        lev = np.insert(p["vol_macro"], 1, 0.0)[s] + np.insert(p["vol_policy"], 2, 0.0)[z]
        m_t = p["vol_level"] + p["vol_trend"] * d.trend[t] + lev
        m_prev = p["vol_level"] + p["vol_trend"] * (d.trend[t] - step) + lev + 0.4  # proxy month
        want = stats.norm.logpdf(d.vol[t], m_t + p["vol_ar"] * (d.vol_lag[t] - m_prev), p["vol_sigma"])
        got = le[t, k] - (base[t, k] - stats.norm.logpdf(
            d.vol[t], m_t + p["vol_ar"] * (d.vol_lag[t] - (m_prev - 0.4)), p["vol_sigma"]))
        assert got == pytest.approx(want, rel=1e-10)


def test_proxy_parameters_are_fixed_unless_both_proxy_and_real_months_exist(sim):
    """A series that is all proxy cannot separate the proxy shift from its own location."""
    from regimecast.models.macro import inactive_params

    cfg = _cfg(start="1990-01", volume_start="1990-01")  # volume in the whole simulated window
    panel = sim[0].copy()
    for flags, fixed in (((1, 1), True), ((1, 0), False), ((0, 0), True)):
        panel[C.BALANCE_SHEET_PROXY] = np.where(panel.index < "2000-01-01", *flags)
        panel[C.SMALLCAP_VOLUME_PROXY] = np.where(panel.index < "2000-01-01", *flags)
        out = inactive_params(prepare_data(panel, cfg), cfg)
        assert ("bs_proxy_shift" in out) is fixed and ("bs_proxy_scale" in out) is fixed
        assert ("vol_proxy_shift" in out) is fixed


@pytest.mark.parametrize("volume_start,trend_sd", [("2006-01", 0.1), ("2004-01", 1.0)])
def test_volume_trend_is_pinned_while_volume_is_short(sim, volume_start, trend_sd):
    """Oracle: volume months counted by hand (volume_start .. the panel's last month); the prior sd
    read off prior draws of the model."""
    from regimecast.models.macro import MIN_TREND_MONTHS, state_evidence

    panel = sim[0]
    cfg = _cfg(start="1990-01", volume_start=volume_start)
    d = prepare_data(panel, cfg)
    n = int(state_evidence(d, cfg)["volume"])
    assert n == (72 if trend_sd == 1.0 else 48)
    assert (n >= MIN_TREND_MONTHS) is (trend_sd == 1.0)
    model, _ = build_macro_model(d, cfg)
    draws = pm.draw(model["vol_trend"], 4000, random_seed=2)
    assert draws.std() == pytest.approx(trend_sd, rel=0.05)


def test_volume_fixed_at_the_recent_level_when_none_is_in_the_likelihood(sim):
    """Oracle: the mean of the 36 log-volume values before the panel's last month, from the panel."""
    from regimecast.models.macro import inactive_params

    panel = sim[0]
    cfg = _cfg(start="1990-01", volume_start="2030-01")  # no volume month enters the likelihood
    d = prepare_data(panel, cfg)
    want = panel[C.SMALLCAP_VOLUME_LOG].iloc[-37:-1].mean()
    assert float(inactive_params(d, cfg)["vol_level"]) == pytest.approx(want, rel=1e-12)


def test_numpy_logsumexp_matches_scipy():
    """Oracle: scipy.special.logsumexp, including rows that are all -inf and huge magnitudes."""
    from scipy.special import logsumexp

    from regimecast.models import backend as B

    rng = np.random.default_rng(0)
    x = rng.normal(0, 300, size=(5, 7, 4))
    x[0, 0] = -np.inf
    x[1, 2, :2] = -np.inf
    for axis in (0, 1, -1):
        for keep in (False, True):
            with np.errstate(divide="ignore"):
                want = logsumexp(x, axis=axis, keepdims=keep)
            np.testing.assert_allclose(B.logsumexp(np, x, axis=axis, keepdims=keep), want, rtol=1e-12)


@pytest.mark.parametrize("months,fixed", [(23, True), (24, False)])
def test_volume_parameters_are_fixed_below_min_volume_months(sim, months, fixed):
    """Oracle: volume months counted by hand (the simulated panel ends 2009-12; volume_start sets how
    many months enter the likelihood); fixed parameters are not free variables of the PyMC model."""
    from regimecast.models.macro import MIN_VOLUME_MONTHS, free_param_names, inactive_params

    assert MIN_VOLUME_MONTHS == 24
    start = pd.Timestamp("2009-12-01") - pd.DateOffset(months=months - 1)
    cfg = _cfg(start="1990-01", volume_start=f"{start:%Y-%m}")
    d = prepare_data(sim[0], cfg)
    assert int(np.sum(np.isfinite(d.vol) & np.isfinite(d.vol_lag))) == months
    out = inactive_params(d, cfg)
    model, _ = build_macro_model(d, cfg)
    names = set(free_param_names(model))
    for name in ("vol_level", "vol_trend", "vol_ar", "vol_sigma", "vol_macro", "vol_policy"):
        assert (name in out) is fixed and (name in names) is not fixed, name

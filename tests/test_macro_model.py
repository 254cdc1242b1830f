"""The macro-regime x rate-stance x balance-sheet-stance model: structure, emissions and priors
against independent oracles."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import stats
from transition_oracle import oracle_transition

from regimecast.config import load_config
from regimecast.data import columns as C
from regimecast.errors import ConfigError, DataError
from regimecast.models.macro import (
    at_zero_lower_bound,
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


def _random_transition_point(seed: int = 0) -> dict:
    """The reference point with every transition parameter drawn at random (no zeros to hide an
    indexing error behind)."""
    rng = np.random.default_rng(seed)
    p = dict(reference_point(CFG))
    for name in ("macro_offdiag", "macro_rate_raw", "macro_bs_raw", "rate_base", "rate_dev_bs",
                 "rate_dev_macro", "bs_base", "bs_dev_rate", "bs_dev_macro"):
        p[name] = rng.normal(-1.0 if "base" in name or "offdiag" in name else 0.0, 1.0, np.shape(p[name]))
    return p


def test_transition_is_the_factorised_product_of_three_softmaxes():
    """Oracle: the three softmaxes written as explicit loops over the 27 x 27 joint states."""
    p = _random_transition_point()
    P = np.exp(joint_log_transition(np, numpy_params(p, CFG), CFG))
    assert P.shape == (27, 27)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(P, oracle_transition(p), rtol=1e-10, atol=0)


def test_every_policy_combination_is_reachable():
    """No structural zeros: every joint state (hold + QT, cutting + QT, hold + QE, cutting + QE, ...)
    can be entered from every other, even QE -> QT directly, at the prior-mean parameters."""
    from regimecast.models.macro import instrument_prior_means

    p = dict(reference_point(CFG))
    p["rate_base"] = instrument_prior_means(CFG.durations.rate, CFG.priors.rate_jump_logit)
    p["bs_base"] = instrument_prior_means(CFG.durations.bs, CFG.priors.bs_jump_logit)
    for name in ("rate_dev_bs", "rate_dev_macro", "bs_dev_rate", "bs_dev_macro", "macro_bs_raw"):
        p[name] = np.zeros_like(p[name])
    P = np.exp(joint_log_transition(np, numpy_params(p, CFG), CFG)).reshape(3, 3, 3, 3, 3, 3)
    assert (P > 1e-9).all()
    m = 1  # moderate
    for r, b in [(1, 0), (0, 0), (1, 2), (0, 2)]:  # hold+QT, cutting+QT, hold+QE, cutting+QE
        assert P[m, 2, 0, m, r, b] > 1e-6 and P[m, r, b, m, r, b] > 0.6  # reachable and sticky
    # QE -> QT directly is a prior, not a zero: exp(bs_jump_logit) times the odds of QE -> steady
    ratio = P[m, 1, 2, m, 1, 0] / P[m, 1, 2, m, 1, 1]
    assert ratio == pytest.approx(np.exp(CFG.priors.bs_jump_logit), rel=1e-9)


def test_prior_mean_logits_give_the_stated_durations():
    """Oracle: at the prior-mean logits an instrument stays with probability 1 - 1/duration."""
    from regimecast.models.macro import instrument_prior_means

    for durations, jump in ((CFG.durations.rate, CFG.priors.rate_jump_logit),
                            (CFG.durations.bs, CFG.priors.bs_jump_logit)):
        mu = instrument_prior_means(durations, jump)
        for i, dur in enumerate(durations):
            stay = 1.0 / (1.0 + np.exp(mu[i]).sum())
            assert 1.0 / (1.0 - stay) == pytest.approx(dur, rel=1e-12)
        assert mu[0, 1] - mu[0, 0] == pytest.approx(jump)  # from role 0: to role 2 is the jump
        assert mu[1, 0] == pytest.approx(mu[1, 1])  # from the middle both moves are adjacent


def test_emission_matches_scipy_densities(sim):
    """Oracle: scipy.stats densities, month by month, state by state."""
    panel, _ = sim
    d = prepare_data(panel, _cfg(start="1990-01"))
    p = numpy_params(reference_point(CFG), CFG)
    le = joint_log_emission(np, p, d, _cfg(start="1990-01"))
    nu = CFG.priors.student_nu
    for t in [5, 100, 200]:
        for k in range(27):
            s, r, b = k // 9, (k // 3) % 3, k % 3
            mu = p["cpi_mean"][s]
            want = stats.t.logpdf(d.cpi[t], nu, mu + p["cpi_ar"] * (d.cpi_lag[t] - mu), p["cpi_sigma"][s])
            rate_loc = [p["rate_hold"] - p["rate_gap"][0], p["rate_hold"], p["rate_hold"] + p["rate_gap"][1]][r]
            mult = np.sqrt(max(d.rate_lag[t], 0.25) / CFG.priors.rate_vol_level)
            if np.isfinite(d.rate_change[t]):
                want += stats.t.logpdf(d.rate_change[t], nu, rate_loc, p["rate_scale"][r] * mult)
            if d.rate[t] < CFG.zlb and d.rate_lag[t] < CFG.zlb and r != 1:  # at the floor, not hold
                want += CFG.priors.zlb_move_logit
            bs_loc = float([p["bs_mid"] - p["bs_gap"][0], p["bs_mid"], p["bs_mid"] + p["bs_gap"][1]][b])
            bs_loc += d.bs_proxy[t] * p["bs_proxy_shift"]
            bs_sc = p["bs_scale"][b] * (p["bs_proxy_scale"] if d.bs_proxy[t] else 1.0)
            want += stats.t.logpdf(d.bs_growth[t], nu, bs_loc, bs_sc)
            if np.isfinite(d.vol[t]) and np.isfinite(d.vol_lag[t]):
                m_t = p["vol_level"] + p["vol_trend"] * d.trend[t] + _lev(p, k)
                m_lag = m_t - p["vol_trend"] / CFG.volume_trend_per
                want += stats.norm.logpdf(d.vol[t], m_t + p["vol_ar"] * (d.vol_lag[t] - m_lag), p["vol_sigma"])
            assert le[t, k] == pytest.approx(want, rel=1e-9), (t, k)


def _lev(p: dict, k: int) -> float:
    """The volume level shift of joint state k: macro (moderate = 0) + rate (hold = 0) + bs (steady = 0)."""
    s, r, b = k // 9, (k // 3) % 3, k % 3
    return (np.insert(p["vol_macro"], 1, 0.0)[s] + np.insert(p["vol_rate"], 1, 0.0)[r]
            + np.insert(p["vol_bs"], 1, 0.0)[b])


def _cfg(**kw):
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
    # ... it is the observation "the rate did not move": zlb_move_logit for cutting and hiking only
    free = replace(cfg, priors=replace(cfg.priors, zlb_move_logit=0.0))
    diff = le - joint_log_emission(np, p, d, free)
    rate_of_k = (np.arange(27) // 3) % 3
    want = np.where(rate_of_k == 1, 0.0, CFG.priors.zlb_move_logit)
    np.testing.assert_allclose(diff[80:83], np.broadcast_to(want, (3, 27)), atol=1e-12)
    np.testing.assert_allclose(np.delete(diff, [80, 81, 82], axis=0), 0.0, atol=1e-12)


def test_pytensor_graph_matches_numpy(sim):
    panel, _ = sim
    cfg = _cfg(start="1990-01", volume_start="1990-01")  # volume in the whole simulated window
    d = prepare_data(panel, cfg)
    model, handles = build_macro_model(d, cfg)
    f = compile_matrices(model, handles)
    point = reference_point(CFG)
    for a, b in zip(f(point), log_matrices_np(point, d, cfg), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("tvtp", [False, True])
def test_a_model_refilled_with_another_panel_equals_the_model_built_on_it(sim, tvtp):
    """Oracle: the NumPy matrices of the longer panel.  The model is built on a shorter cut (other
    length, other volume level and evidence) and refilled with ``pm.set_data``, as a backtest worker
    reuses one compiled model across origins."""
    from regimecast.models.macro import model_data, model_structure

    cfg = _cfg(start="1990-01", volume_start="1990-01", tvtp=tvtp)
    panel = sim[0]
    short, full = prepare_data(panel.loc[:"2006-06"], cfg), prepare_data(panel, cfg)
    assert model_structure(short, cfg) == model_structure(full, cfg) and short.T < full.T
    assert not np.allclose(model_data(short, cfg)["scale_vol_mean"], model_data(full, cfg)["scale_vol_mean"])
    model, handles = build_macro_model(short, cfg, shared_data=True)
    pm.set_data(model_data(full, cfg), model=model)
    point = reference_point(CFG) | ({"rate_tvtp": np.array([0.3, -0.2, 0.8]), "bs_tvtp": np.array([0.1, 0.0, -0.4])}
                                    if tvtp else {})
    for a, b in zip(compile_matrices(model, handles)(point), log_matrices_np(point, full, cfg), strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    free = {rv.name for rv in model.free_RVs}
    lp = model.compile_logp()(model.initial_point())
    fresh = build_macro_model(full, cfg)[0]
    assert {rv.name for rv in fresh.free_RVs} == free
    assert lp == pytest.approx(fresh.compile_logp()(fresh.initial_point()), rel=1e-12)


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
        lt = joint_log_transition(np, numpy_params(point, CFG), CFG)
        P = np.exp(lt).reshape(3, 3, 3, 3, 3, 3)
        stay_macro = np.array([P[s, :, :, s].sum(axis=(-2, -1)).mean() for s in range(3)])
        stay_rate = np.array([P[:, r, :, :, r].sum(axis=-1).mean() * 3 for r in range(3)])
        stay_bs = np.array([P[:, :, b, :, :, b].mean() * 9 for b in range(3)])
        durations.append(1.0 / (1.0 - np.concatenate([stay_macro, stay_rate, stay_bs])))
        states = simulate_states(lt, np.array([13]), 240, rng)
        from regimecast.models.macro_sim import simulate_series

        sims = simulate_series(point, CFG, states, initial={C.CPI_MOM_ANN: 2.0, C.POLICY_RATE: 3.0,
                               C.BALANCE_SHEET: 1000.0, C.SMALLCAP_VOLUME_LOG: 17.0}, trend0=3.0, rng=rng)
        cpi_q.append(np.quantile(sims[C.CPI_MOM_ANN], [0.05, 0.95]))
    # prior median durations of each macro regime and instrument state against the configured ones:
    # the logit spread (sd 1 for macro, 1.5 for the instrument rows, plus the pooled deviations)
    # shortens the median below the stated value, but it stays within a factor of two
    dur = np.median(np.array(durations), axis=0)
    stated = np.array([*CFG.durations.macro, *CFG.durations.rate, *CFG.durations.bs])
    ratio = dur / stated
    assert ((ratio > 0.5) & (ratio < 1.25)).all(), (dur, stated)
    cpi_q = np.median(np.array(cpi_q), axis=0)
    assert -10 < cpi_q[0] < 2 and 4 < cpi_q[1] < 20, cpi_q


def test_simulated_chain_frequencies_match_transition():
    p = numpy_params(reference_point(CFG), CFG)
    lt = joint_log_transition(np, p, CFG)
    rng = np.random.default_rng(1)
    start = np.full(40000, 13)  # moderate | hold | steady
    paths = simulate_states(lt, start, 1, rng)
    freq = np.bincount(paths[:, 1], minlength=27) / len(start)
    P = oracle_transition(reference_point(CFG))[13]
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
    with pytest.raises(ConfigError, match="3 distinct labels"):
        config_from_dict({"model": {"bs_labels": ["QE", "hold"]}})
    with pytest.raises(ConfigError, match="old 4-state policy chain"):
        config_from_dict({"model": {"policy_labels": ["QE", "cutting", "hold", "tightening"]}})
    with pytest.raises(ConfigError, match="unique across"):
        config_from_dict({"model": {"rate_labels": ["cutting", "hold", "QE"]}})
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
    assert set(truth.columns) == {"macro", "rate", "bs"}
    d = prepare_data(panel, _cfg(start="1990-01"))
    assert d.T == len(panel)


def _tvtp_point(gamma_rate, gamma_bs):
    p = _random_transition_point(1)
    p["rate_tvtp"] = np.asarray(gamma_rate, dtype=float)
    p["bs_tvtp"] = np.asarray(gamma_bs, dtype=float)
    return p


def test_tvtp_reduces_to_constant_transitions_when_the_effect_is_zero():
    drivers = np.array([-1.0, 0.0, 2.5])
    p = _tvtp_point(np.zeros(3), np.zeros(3))
    lt3 = joint_log_transition(np, numpy_params(p, CFG), CFG, drivers=drivers)
    lt = joint_log_transition(np, numpy_params(p, CFG), CFG)
    assert lt3.shape == (3, 27, 27)
    for t in range(3):
        np.testing.assert_allclose(lt3[t], lt, atol=1e-12)


def test_tvtp_shifts_moves_into_an_instrument_state_by_the_driver():
    """Oracle: the loops of the factorised transition with the driver's extra logits."""
    p = _tvtp_point([0.0, -0.3, 1.2], [0.5, 0.0, -0.7])  # inflation raises the odds of hiking
    drivers = np.array([0.0, 2.0])
    P = np.exp(joint_log_transition(np, numpy_params(p, CFG), CFG, drivers=drivers))
    np.testing.assert_allclose(P.sum(axis=2), 1.0, atol=1e-12)
    for t, x in enumerate(drivers):
        np.testing.assert_allclose(P[t], oracle_transition(p, x), rtol=1e-10, atol=0)
    hold_to_hike = P[:, 13, 9 + 2 * 3 + 1]  # moderate|hold|steady -> moderate|hiking|steady
    assert hold_to_hike[1] > 2 * hold_to_hike[0]


def test_tvtp_graph_matches_numpy(sim):
    panel, _ = sim
    cfg = _cfg(start="1990-01", tvtp=True)
    d = prepare_data(panel, cfg)
    assert np.abs(d.infl_driver).max() > 0
    model, handles = build_macro_model(d, cfg)
    assert {"rate_tvtp", "bs_tvtp"} <= {rv.name for rv in model.free_RVs}
    point = _tvtp_point([0.3, -0.2, 0.8], [0.1, 0.0, -0.4])
    got = compile_matrices(model, handles)(point)
    want = log_matrices_np(point, d, cfg)
    assert got[1].shape == (d.T - 1, 27, 27)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def _evidence_panel(sim, n_infl: int, n_defl: int, n_qe: int, n_qt: int) -> pd.DataFrame:
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
    # a QT run of n_qt + 1 months: its first month's 3-month mean (0.5, 0.5, -1.0) = 0 is not QT-like,
    # the next n_qt months' means (-0.5, -1.0, ...) are
    panel.loc[later[100 : 101 + n_qt], C.BALANCE_SHEET_GROWTH] = -1.0
    return panel


@pytest.mark.parametrize("n_infl,n_defl,n_qe,n_qt", [(30, 5, 13, 23), (23, 24, 11, 24), (30, 5, 13, 40)])
def test_states_without_enough_months_are_pinned_to_their_priors(sim, n_infl, n_defl, n_qe, n_qt):
    """Oracle: the months planted in the panel; the prior sds read off prior draws of the model."""
    from regimecast.models.macro import (
        MIN_QE_MONTHS,
        MIN_QT_MONTHS,
        MIN_REGIME_MONTHS,
        MIN_VOLUME_MONTHS,
        PIN_FACTOR,
        state_evidence,
    )

    cfg = _cfg(start="1990-01", volume_start="1990-01")  # volume in the whole simulated window
    d = prepare_data(_evidence_panel(sim, n_infl, n_defl, n_qe, n_qt), cfg)
    ev = state_evidence(d, cfg)
    assert ev["vol_macro"].tolist() == [n_defl, 239 - n_infl - n_defl, n_infl]
    assert ev["cpi_macro"].tolist() == [n_defl, 240 - n_infl - n_defl, n_infl]
    assert int(ev["qe"]) == n_qe and int(ev["qt"]) == n_qt
    assert ev["vol_bs"].tolist() == [n_qt, 239 - n_qt - n_qe, n_qe]
    assert ev["vol_rate"].tolist() == [0, 239, 0]
    model, _ = build_macro_model(d, cfg)
    draws = pm.draw([model["vol_macro"], model["bs_gap"], model["vol_bs"], model["cpi_sigma"],
                     model["cpi_gap"], model["bs_scale"], model["vol_rate"], model["bs_base"]], 4000,
                    random_seed=1)
    usual = 0.3
    want = [usual if n >= MIN_VOLUME_MONTHS else usual * PIN_FACTOR for n in (n_defl, n_infl)]
    np.testing.assert_allclose(draws[0].std(0), want, rtol=0.05)
    qe_pin = 1.0 if n_qe >= MIN_QE_MONTHS else PIN_FACTOR
    qt_pin = 1.0 if n_qt >= MIN_QT_MONTHS else PIN_FACTOR
    gap_sd, scale_sd = CFG.priors.gap_sd, CFG.priors.scale_sd
    np.testing.assert_allclose(np.log(draws[1]).std(0), [gap_sd * qt_pin, gap_sd * qe_pin], rtol=0.05)
    np.testing.assert_allclose(np.log(draws[5]).std(0), np.array([qt_pin, 1.0, qe_pin]) * scale_sd,
                               rtol=0.05)
    # fewer than 24 QT / QE / cutting / hiking volume months: such a shift is pinned
    want_bs = [usual if n >= MIN_VOLUME_MONTHS else usual * PIN_FACTOR for n in (n_qt, n_qe)]
    np.testing.assert_allclose(draws[2].std(0), want_bs, rtol=0.05)
    np.testing.assert_allclose(draws[6].std(0), usual * PIN_FACTOR, rtol=0.05)
    pinned = [n < MIN_REGIME_MONTHS for n in (n_defl, n_infl)]
    want_sigma = [CFG.priors.scale_sd * (PIN_FACTOR if pin else 1.0) for pin in pinned]
    np.testing.assert_allclose(np.log(draws[3]).std(0)[[0, 2]], want_sigma, rtol=0.05)
    want_gap = [CFG.priors.cpi_gap_sd * (PIN_FACTOR if pin else 1.0) for pin in pinned]
    np.testing.assert_allclose(np.log(draws[4]).std(0), want_gap, rtol=0.05)
    # the balance-sheet chain's odds of moving into or out of a pinned QT / QE state are pinned too
    # (rows: from QT, steady, QE; columns: the two other states in order)
    qt, qe = n_qt < MIN_QT_MONTHS, n_qe < MIN_QE_MONTHS
    moves = [[qt, qt or qe], [qt, qe], [qt or qe, qe]]  # QT->steady, QT->QE; steady->QT, ->QE; QE->QT, ->steady
    want_base = np.where(moves, 1.5 * PIN_FACTOR, 1.5)
    np.testing.assert_allclose(draws[7].std(0), want_base, rtol=0.05)


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
    for k in (0, 7, 22):
        lev = _lev(p, k)
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
    for name in ("vol_level", "vol_trend", "vol_ar", "vol_sigma", "vol_macro", "vol_rate", "vol_bs"):
        assert (name in out) is fixed and (name in names) is not fixed, name


def test_batched_emission_equals_the_per_draw_emission(sim):
    """Oracle: ``joint_log_emission`` draw by draw, on a panel with proxy months, the zero lower bound,
    the reserve-targeting era and missing values; every emission parameter perturbed per draw."""
    from regimecast.models.macro import joint_log_emission_batch

    cfg = _cfg(start="1990-01", volume_start="1995-01")
    panel = sim[0].copy()
    panel.loc["1992-01":"1993-06", "policy_rate"] = 0.1  # months at the floor
    panel.loc["1996-03", "cpi_mom_ann"] = np.nan
    d = prepare_data(panel, cfg)
    d = replace(d, vol_proxy=(np.arange(d.T) < 100).astype(float))  # a proxy splice in the volume
    assert at_zero_lower_bound(d, cfg).any() and (d.bs_proxy > 0).any() and np.isfinite(d.vol).any()
    rng = np.random.default_rng(4)
    base = {**reference_point(cfg), "rate_era_scale": np.array(1.7), "bs_proxy_scale": np.array(1.3),
            "bs_proxy_shift": np.array(0.2), "vol_proxy_shift": np.array(-0.1)}
    ps = []
    for _ in range(5):
        q = {k: np.asarray(v, dtype=float) * rng.uniform(0.8, 1.2, np.shape(v)) for k, v in base.items()}
        ps.append(numpy_params(q, cfg))
    got = joint_log_emission_batch(ps, d, cfg)
    want = np.stack([joint_log_emission(np, q, d, cfg) for q in ps])
    assert got.shape == want.shape == (5, d.T, 27)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert len(np.unique(got[:, -1, 0])) == 5  # the draws really differ


@pytest.mark.parametrize(("as_of", "free"), [("2019-06", False), ("2022-09", False), ("2022-10", True),
                                             ("2023-12", True)])
def test_qt_state_is_freed_by_the_2022_programme_not_by_the_first(data_store, as_of, free):
    """Real panel.  Oracle for the count: QT-like months counted here in pandas (monthly growth and its
    trailing 3-month mean both below the midpoint of the QT and steady prior means, outside the proxy
    period).  The first QT episode (2017-19) leaves the QT state at its prior's pace; the 2022
    programme frees it (36 QT-like months in 2022-10, 35 in 2022-09)."""
    from regimecast.data import load_panel
    from regimecast.models.macro import MIN_QT_MONTHS, PIN_FACTOR, prior_sds, state_evidence

    panel = load_panel(data_store, as_of=as_of)
    d = prepare_data(panel, CFG)
    qt_mean, mid, _ = CFG.priors.bs_growth_mean
    g = pd.Series(d.bs_growth)
    cut = (qt_mean + mid) / 2
    counted = int(((g < cut) & (g.rolling(3).mean() < cut) & (pd.Series(d.bs_proxy) == 0)).sum())
    assert int(state_evidence(d, CFG)["qt"]) == counted
    assert (counted >= MIN_QT_MONTHS) is free, counted
    want = CFG.priors.scale_sd * (1.0 if free else PIN_FACTOR)
    np.testing.assert_allclose(prior_sds(d, CFG)["bs_scale"][0], want)

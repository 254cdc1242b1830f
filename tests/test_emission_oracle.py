"""Emission densities in the months the main oracle never reaches: the reserve-targeting era, the
balance-sheet proxy and the volume proxy, each with a non-neutral parameter, against scipy.stats."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from regimecast.config import load_config
from regimecast.data import columns as C
from regimecast.models.macro import joint_log_emission, numpy_params, prepare_data
from regimecast.models.macro_sim import reference_point, simulate_panel

CFG = replace(load_config().model, start="1975-01", volume_start="1985-01")  # volume in the oracle window


@pytest.fixture(scope="module")
def case():
    point = {k: np.array(v, copy=True) for k, v in reference_point(CFG).items()}
    point |= {"rate_era_scale": np.array(2.5), "bs_proxy_shift": np.array(0.7),
              "bs_proxy_scale": np.array(1.6), "vol_proxy_shift": np.array(0.3)}
    panel, _ = simulate_panel(point, CFG, start="1975-01", end="1990-12", random_seed=4,
                              volume_from="1987-01", proxy_until="1984-12")
    panel = panel.copy()
    panel.loc["1987-01-01":"1988-12-01", C.SMALLCAP_VOLUME_PROXY] = 1
    return panel, point


MONTHS = {
    "before the era, balance-sheet proxy": "1977-03",
    "reserve-targeting era, proxy": "1980-06",
    "era's last month": "1982-10",
    "after the era, proxy": "1983-01",
    "no proxy": "1986-05",
    "volume proxy": "1988-02",
    "volume proxy, last month": "1988-12",
    "volume, no proxy": "1990-03",
}


def _oracle(panel: pd.DataFrame, p: dict, month: str, k: int) -> float:
    """Log emission of joint state ``k`` in ``month``, from the panel's columns and scipy.stats."""
    nu = CFG.priors.student_nu
    t = panel.index.get_loc(pd.Timestamp(month + "-01"))
    row, prev = panel.iloc[t], panel.iloc[t - 1]
    s, r, b = k // 9, (k // 3) % 3, k % 3  # macro regime, rate stance, balance-sheet stance
    era = pd.Timestamp("1979-10-01") <= panel.index[t] <= pd.Timestamp("1982-10-01")
    mu = p["cpi_mean"][s]
    out = stats.t.logpdf(row[C.CPI_MOM_ANN], nu, mu + p["cpi_ar"] * (prev[C.CPI_MOM_ANN] - mu),
                         p["cpi_sigma"][s])
    rate_loc = [p["rate_hold"] - p["rate_gap"][0], p["rate_hold"], p["rate_hold"] + p["rate_gap"][1]][r]
    scale = p["rate_scale"][r] * np.sqrt(max(prev[C.POLICY_RATE], 0.25) / CFG.priors.rate_vol_level)
    scale *= p["rate_era_scale"] if era else 1.0
    if prev[C.POLICY_RATE] >= CFG.zlb or row[C.POLICY_RATE] >= CFG.zlb:
        out += stats.t.logpdf(row[C.POLICY_RATE_CHANGE], nu, rate_loc, scale)
    elif r != 1:  # at the floor the rate did not move: cutting and hiking pay zlb_move_logit
        out += CFG.priors.zlb_move_logit
    proxy = bool(row[C.BALANCE_SHEET_PROXY])
    bs_loc = float([p["bs_mid"] - p["bs_gap"][0], p["bs_mid"], p["bs_mid"] + p["bs_gap"][1]][b])
    bs_loc += p["bs_proxy_shift"] if proxy else 0.0
    bs_sc = p["bs_scale"][b] * (p["bs_proxy_scale"] if proxy else 1.0)
    out += stats.t.logpdf(row[C.BALANCE_SHEET_GROWTH], nu, bs_loc, bs_sc)
    v, vlag = row[C.SMALLCAP_VOLUME_LOG], prev[C.SMALLCAP_VOLUME_LOG]
    if np.isfinite(v) and np.isfinite(vlag):
        vol = panel[C.SMALLCAP_VOLUME_LOG].to_numpy()
        idx = np.arange(len(panel), dtype=float)
        centre = idx[np.isfinite(vol)].mean()
        trend = (t - centre) / CFG.volume_trend_per
        lev = (np.insert(p["vol_macro"], 1, 0.0)[s] + np.insert(p["vol_rate"], 1, 0.0)[r]
               + np.insert(p["vol_bs"], 1, 0.0)[b])
        shift = p["vol_proxy_shift"] if row[C.SMALLCAP_VOLUME_PROXY] else 0.0
        m_t = p["vol_level"] + p["vol_trend"] * trend + lev + shift
        m_lag = m_t - p["vol_trend"] / CFG.volume_trend_per
        out += stats.norm.logpdf(v, m_t + p["vol_ar"] * (vlag - m_lag), p["vol_sigma"])
    return float(out)


@pytest.mark.parametrize("month", list(MONTHS.values()), ids=list(MONTHS))
def test_emission_in_era_and_proxy_months_matches_scipy(case, month):
    panel, point = case
    d = prepare_data(panel, CFG)
    assert d.rate_era.sum() == 37 and 0 < d.bs_proxy.sum() < d.T and 0 < d.vol_proxy.sum()
    p = numpy_params(point, CFG)
    le = joint_log_emission(np, p, d, CFG)
    t = d.dates.get_loc(pd.Timestamp(month + "-01"))
    for k in range(27):
        assert le[t, k] == pytest.approx(_oracle(panel, p, month, k), rel=1e-10), (month, k)

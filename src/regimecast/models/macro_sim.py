"""Simulate the macro-regime x policy-state model: regime paths and every observed series.

Used three ways: the recovery tests (data from known parameters), the ``--demo`` economy, and the
forecast (series simulated along regime paths drawn for the months ahead).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from regimecast.config import ModelConfig
from regimecast.data import columns as C
from regimecast.models.macro import (
    _bs_means,
    _rate_means,
    _vol_levels,
    joint_log_transition,
    numpy_params,
    rate_vol_multiplier,
)

RATE_FLOOR = 0.05  # the simulated policy rate never goes below this (percent)


def reference_point(cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Economically plausible parameters for the default 3 x 4 model (the demo economy's truth).

    QE raises the odds of moving to the inflationary regime; deflation makes QE more likely after
    cuts; inflation makes tightening more likely after a hold.
    """
    nS = cfg.n_macro
    if nS != 3:
        raise ValueError("reference_point is defined for 3 macro regimes")
    raw = np.zeros((4, 3))
    raw[0, 2] = 2.0  # QE -> inflationary more likely
    dev = np.zeros((3, 4, 3))
    dev[0, 1, 0] = 2.0  # deflationary: cutting -> QE more likely (col 0 of row 'cutting' is QE)
    dev[2, 2, 2] = 2.0  # inflationary: hold -> tightening more likely (col 2 of row 'hold')
    return {
        "macro_offdiag": np.array([[-2.5, -4.0], [-5.0, -5.0], [-4.5, -4.5]]),
        "macro_policy_sd": np.array(0.5),
        "macro_policy_raw": raw,
        "policy_base": np.array(
            [[-4.0, -2.5, -5.0], [-3.0, -2.5, -5.0], [-6.0, -3.5, -3.5], [-6.0, -4.0, -2.7]]
        ),
        "policy_tau": np.array(0.5),
        "policy_dev_raw": dev,
        "cpi_ref": np.array(2.8),
        "cpi_gap": np.array([2.8, 4.2]),
        "cpi_ar": np.array(0.4),
        "cpi_sigma": np.array([2.5, 2.0, 3.5]),
        "rate_hold": np.array(0.0),
        "rate_gap": np.array([0.3, 0.3]),
        "rate_mean_qe": np.array(-0.05),
        "rate_era_scale": np.array(3.0),
        "rate_scale": np.array([0.05, 0.2, 0.1, 0.15]),
        "bs_mid": np.array(0.5),
        "bs_gap": np.array([1.3, 3.5]),
        "bs_scale": np.array([4.0, 0.7, 0.6, 0.8]),
        "bs_proxy_shift": np.array(0.0),
        "bs_proxy_scale": np.array(1.0),
        "vol_level": np.array(16.5),
        "vol_trend": np.array(0.3),
        "vol_policy": np.array([0.3, 0.1, -0.1]),
        "vol_macro": np.array([0.1, -0.1]),
        "vol_proxy_shift": np.array(0.0),
        "vol_ar": np.array(0.8),
        "vol_sigma": np.array(0.15),
    }


def simulate_states(log_transition: np.ndarray, start: np.ndarray, steps: int, rng) -> np.ndarray:
    """Markov chain paths: ``start`` (n,) joint states at step 0 -> (n, steps + 1)."""
    P = np.exp(log_transition)
    cum = np.cumsum(P / P.sum(axis=1, keepdims=True), axis=1)
    n = start.shape[0]
    out = np.empty((n, steps + 1), dtype=np.int64)
    out[:, 0] = start
    u = rng.random((n, steps))
    for h in range(steps):
        out[:, h + 1] = np.minimum((u[:, h, None] > cum[out[:, h]]).sum(axis=1), P.shape[0] - 1)
    return out


def simulate_series(
    point: dict,
    cfg: ModelConfig,
    states: np.ndarray,
    *,
    initial: dict[str, float],
    trend0: float,
    rng: np.random.Generator,
    fixed: dict[str, np.ndarray] | None = None,
    proxy: bool = False,
) -> dict[str, np.ndarray]:
    """Simulate the observed series along joint-state paths ``states`` (n, H+1).

    Column 0 holds the starting month: its values come from ``initial`` (keys ``cpi_mom_ann``,
    ``policy_rate``, ``balance_sheet``, ``smallcap_volume_log``).  ``fixed`` maps a series name to an
    (H+1,) array whose finite entries override the simulation (scenario prints).  Returns arrays
    (n, H+1) for ``cpi_mom_ann``, ``policy_rate_change``, ``policy_rate``, ``balance_sheet_growth``,
    ``balance_sheet``, ``smallcap_volume_log`` and ``smallcap_volume``.
    """
    p = numpy_params(point, cfg)
    nZ = cfg.n_policy
    nu = cfg.priors.student_nu
    n, H1 = states.shape
    s, z = states // nZ, states % nZ
    fixed = fixed or {}
    step = 1.0 / cfg.volume_trend_per
    rate_loc = _rate_means(np, p)
    bs_loc = _bs_means(np, p) + (p["bs_proxy_shift"] if proxy else 0.0)
    bs_scale = p["bs_scale"] * (p["bs_proxy_scale"] if proxy else 1.0)
    lev = _vol_levels(np, p, cfg)
    out = {
        k: np.full((n, H1), np.nan)
        for k in (
            C.CPI_MOM_ANN,
            C.POLICY_RATE_CHANGE,
            C.POLICY_RATE,
            C.BALANCE_SHEET_GROWTH,
            C.BALANCE_SHEET,
            C.SMALLCAP_VOLUME_LOG,
        )
    }
    out[C.CPI_MOM_ANN][:, 0] = initial.get(C.CPI_MOM_ANN, np.nan)
    out[C.POLICY_RATE][:, 0] = initial.get(C.POLICY_RATE, np.nan)
    out[C.BALANCE_SHEET][:, 0] = initial.get(C.BALANCE_SHEET, np.nan)
    out[C.SMALLCAP_VOLUME_LOG][:, 0] = initial.get(C.SMALLCAP_VOLUME_LOG, np.nan)
    cpi_prev = np.full(n, initial.get(C.CPI_MOM_ANN, np.nan))
    cpi_prev = np.where(np.isfinite(cpi_prev), cpi_prev, p["cpi_mean"][s[:, 0]])
    rate = np.full(n, initial.get(C.POLICY_RATE, 2.0))
    bs = np.full(n, initial.get(C.BALANCE_SHEET, 1000.0))
    vol_prev = np.full(n, initial.get(C.SMALLCAP_VOLUME_LOG, np.nan))
    vol_shift = p["vol_proxy_shift"] if proxy else 0.0
    m0 = p["vol_level"] + p["vol_trend"] * trend0 + lev[states[:, 0]] + vol_shift
    vol_prev = np.where(np.isfinite(vol_prev), vol_prev, m0)
    for h in range(1, H1):
        sh, zh, kh = s[:, h], z[:, h], states[:, h]
        mu = p["cpi_mean"][sh]
        cpi = mu + p["cpi_ar"] * (cpi_prev - mu) + p["cpi_sigma"][sh] * rng.standard_t(nu, n)
        fx = fixed.get(C.CPI_MOM_ANN)
        if fx is not None and np.isfinite(fx[h]):
            cpi[:] = fx[h]
        mult = rate_vol_multiplier(rate, cfg.priors.rate_vol_level)
        dr = rate_loc[zh] + p["rate_scale"][zh] * mult * rng.standard_t(nu, n)
        new_rate = np.maximum(rate + dr, RATE_FLOOR)
        g = bs_loc[zh] + bs_scale[zh] * rng.standard_t(nu, n)
        bs = bs * np.exp(g / 100.0)
        m_t = p["vol_level"] + p["vol_trend"] * (trend0 + h * step) + lev[kh] + vol_shift
        vol = m_t + p["vol_ar"] * (vol_prev - (m_t - p["vol_trend"] * step))
        vol = vol + p["vol_sigma"] * rng.standard_normal(n)
        out[C.CPI_MOM_ANN][:, h] = cpi
        out[C.POLICY_RATE_CHANGE][:, h] = new_rate - rate
        out[C.POLICY_RATE][:, h] = new_rate
        out[C.BALANCE_SHEET_GROWTH][:, h] = g
        out[C.BALANCE_SHEET][:, h] = bs
        out[C.SMALLCAP_VOLUME_LOG][:, h] = vol
        cpi_prev, rate, vol_prev = cpi, new_rate, vol
    out[C.SMALLCAP_VOLUME] = np.exp(out[C.SMALLCAP_VOLUME_LOG])
    return out


def simulate_panel(
    point: dict,
    cfg: ModelConfig,
    *,
    start: str = "1960-01",
    end: str = "2023-12",
    random_seed: int = 0,
    volume_from: str | None = "1988-01",
    proxy_until: str | None = "2002-12",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate a monthly panel (the model's columns) and its true regime paths.

    Returns ``(panel, states)``: the panel is indexed by month start like
    :func:`regimecast.data.load_panel`; ``states`` has integer columns ``macro`` and ``policy``.
    """
    rng = np.random.default_rng(random_seed)
    dates = pd.date_range(start, end, freq="MS")
    H = len(dates) - 1
    nS, nZ = cfg.n_macro, cfg.n_policy
    p = numpy_params(point, cfg)
    lt = joint_log_transition(np, p, nS, nZ)
    k0 = np.array([(nS // 2) * nZ + 2])  # moderate | hold
    states = simulate_states(lt, k0, H, rng)
    init = {C.CPI_MOM_ANN: 2.8, C.POLICY_RATE: 3.0, C.BALANCE_SHEET: 50.0, C.SMALLCAP_VOLUME_LOG: 16.0}
    sims = simulate_series(p, cfg, states, initial=init, trend0=0.0, rng=rng)
    df = pd.DataFrame({k: v[0] for k, v in sims.items()}, index=pd.DatetimeIndex(dates, name=C.DATE))
    df.loc[df.index[0], [C.POLICY_RATE_CHANGE, C.BALANCE_SHEET_GROWTH]] = np.nan
    proxy = df.index <= pd.Timestamp(proxy_until) if proxy_until else np.zeros(len(df), bool)
    df[C.BALANCE_SHEET_PROXY] = proxy.astype(int)
    df[C.SMALLCAP_VOLUME_PROXY] = 0
    if volume_from:
        early = df.index < pd.Timestamp(volume_from)
        df.loc[early, [C.SMALLCAP_VOLUME_LOG, C.SMALLCAP_VOLUME]] = np.nan
    cpi_level = 100.0 * np.exp(np.nancumsum(df[C.CPI_MOM_ANN].to_numpy()) / 1200.0)
    df[C.CPI_YOY] = 100.0 * (cpi_level / pd.Series(cpi_level).shift(12).to_numpy() - 1.0)
    truth = pd.DataFrame({"macro": states[0] // nZ, "policy": states[0] % nZ}, index=df.index)
    return df, truth

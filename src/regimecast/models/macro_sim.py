"""Simulate the macro-regime x rate-stance x balance-sheet-stance model: state paths and every series.

Used three ways: the recovery tests (data from known parameters), the ``--demo`` economy, and the
forecast (series simulated along state paths drawn for the months ahead).

The policy rate has two simulators (``rate_dynamics``):

* ``"steps"`` (the forecast's, the default): the path a user would accept over two years.  The Fed
  moves in 25 bp steps, in the direction of its stance, and not at all while on hold, so a month's move
  is ``direction(r) * 0.25 * N`` with ``N ~ Poisson(lambda)``, ``direction`` = -1 / 0 / +1 for
  cutting / hold / hiking.  The stance's fitted pace (``rate_mean[r]``, pp per month) sets the step
  rate at the target level, ``lambda_0 = |rate_mean[r]| / 0.25``, and mean reversion scales it by
  ``exp(REVERSION * gap)`` (capped at ``MAX_STEPS`` steps a month), where ``gap`` is how far the rate
  lies beyond the macro regime's target level in the stance's direction (rate - target when cutting,
  target - rate when hiking): cuts come fast from far above the target and peter out below it, hikes
  likewise.  The target is ``cpi_mean[s] + NEUTRAL_REAL_RATE`` (a Taylor-like neutral nominal rate of
  the regime's mean inflation), at least the floor.  The rate never falls below ``RATE_FLOOR`` (the
  effective funds rate at the zero lower bound).  Why not the emission: the likelihood's Student-t on
  monthly changes is a fine *measurement* model for the stance, but simulated forward it is a random
  walk whose 90% band 24 months from 5.3% spans 0.1% .. 9% (issue 9).
* ``"emission"``: rate changes drawn from the likelihood's own Student-t (stance location, CIR-like
  scale), floored; :func:`simulate_panel` uses it, so recovery tests fit data from the model's own
  likelihood.

Balance-sheet growth is the stance's emission in both: ``bs_mean[b] + bs_scale[b] * t``, so the balance
sheet shrinks at the QT pace while in QT and grows at the QE pace while in QE.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from regimecast.config import ModelConfig
from regimecast.data import columns as C
from regimecast.models.macro import (
    CUT,
    HIKE,
    HOLD,
    QE,
    STEADY,
    _vol_levels,
    joint_log_transition,
    numpy_params,
    rate_vol_multiplier,
)

RATE_FLOOR = 0.05  # the simulated policy rate never goes below this (percent)
RATE_STEP = 0.25  # the size of one Fed move (pp)
NEUTRAL_REAL_RATE = 0.5  # the target level is the regime's mean inflation plus this (pp)
# Per pp of gap beyond the target the step rate grows by a factor e: cuts from 2 pp above the target
# run at the cap, cuts 2 pp below it at 1/7 of the stance's pace.  With 0.5 the 90% band 24 months
# from 5.3% (reference transitions) was 0.8 .. 7.6%, with 1.0 1.6 .. 7.3% (0.4 .. 10.7% for the
# emission's random walk on the same state paths).
REVERSION = 1.0
MAX_STEPS = 2.0  # at most 2 steps (50 bp) a month on average; a Poisson month can still move more
DIRECTION = np.array([-1.0, 0.0, 1.0])  # cutting, hold, hiking
RATE_DYNAMICS = ("steps", "emission")


def reference_point(cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Economically plausible parameters for the default 3 x 3 x 3 model (the demo economy's truth).

    QE raises the odds of moving to the inflationary regime; deflation makes cuts and QE likelier;
    inflation makes hikes likelier after a hold; cuts make QE likelier and hikes end QE.
    """
    if cfg.n_macro != 3:
        raise ValueError("reference_point is defined for 3 macro regimes")
    macro_bs = np.zeros((3, 3))
    macro_bs[QE, 2] = 2.0  # QE -> inflationary more likely
    rate_dev_macro = np.zeros((3, 3, 2))
    rate_dev_macro[0, HOLD, 0] = 2.0  # deflationary: hold -> cutting (columns of row hold: cut, hike)
    rate_dev_macro[2, HOLD, 1] = 2.0  # inflationary: hold -> hiking
    bs_dev_rate = np.zeros((3, 3, 2))
    bs_dev_rate[CUT, STEADY, 1] = 2.0  # cutting: steady -> QE (columns of row steady: QT, QE)
    bs_dev_rate[HIKE, QE, 1] = 2.0  # hiking: QE -> steady (columns of row QE: QT, steady)
    bs_dev_rate[HIKE, STEADY, 0] = 3.0  # hiking: steady -> QT
    bs_dev_macro = np.zeros((3, 3, 2))
    bs_dev_macro[0, STEADY, 1] = 4.0  # deflationary: steady -> QE
    return {
        "macro_offdiag": np.array([[-2.5, -4.0], [-5.0, -5.0], [-4.5, -4.5]]),
        "macro_policy_sd": np.array(0.5),
        "macro_rate_raw": np.zeros((3, 3)),
        "macro_bs_raw": macro_bs,
        "rate_base": np.array([[-2.3, -5.0], [-3.5, -3.5], [-5.0, -2.5]]),
        "rate_tau": np.array(0.5),
        "rate_dev_bs": np.zeros((3, 3, 2)),
        "rate_dev_macro": rate_dev_macro,
        "bs_base": np.array([[-3.0, -6.0], [-4.0, -4.5], [-6.0, -2.5]]),
        "bs_tau": np.array(0.5),
        "bs_dev_rate": bs_dev_rate,
        "bs_dev_macro": bs_dev_macro,
        "cpi_ref": np.array(2.8),
        "cpi_gap": np.array([2.8, 4.2]),
        "cpi_ar": np.array(0.4),
        "cpi_sigma": np.array([2.5, 2.0, 3.5]),
        "rate_hold": np.array(0.0),
        "rate_gap": np.array([0.3, 0.3]),
        "rate_era_scale": np.array(3.0),
        "rate_scale": np.array([0.2, 0.1, 0.15]),
        "bs_mid": np.array(0.5),
        "bs_gap": np.array([1.1, 3.5]),
        "bs_scale": np.array([0.5, 0.6, 4.0]),
        "bs_proxy_shift": np.array(0.0),
        "bs_proxy_scale": np.array(1.0),
        "vol_level": np.array(16.5),
        "vol_trend": np.array(0.3),
        "vol_rate": np.array([0.1, -0.1]),
        "vol_bs": np.array([-0.1, 0.3]),
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


def split_states(states: np.ndarray, cfg: ModelConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint state indices -> (macro, rate, bs) indices, ``k = (s * n_rate + r) * n_bs + b``."""
    states = np.asarray(states)
    return states // cfg.n_policy, (states // cfg.n_bs) % cfg.n_rate, states % cfg.n_bs


def _take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[idx]`` for one draw's per-state array ``a`` (k,); row-wise ``a[i, idx[i]]`` for a batch of
    draws, one row per path (n, k) (see :func:`simulate_series_batch`)."""
    a = np.asarray(a)
    if a.ndim == 1:
        return a[idx]
    return np.take_along_axis(a, np.asarray(idx)[:, None], axis=1)[:, 0]


def rate_target(p: dict) -> np.ndarray:
    """(n_macro,) the level the policy rate reverts to in each macro regime (percent)."""
    return np.maximum(p["cpi_mean"] + NEUTRAL_REAL_RATE, RATE_FLOOR)


def rate_step_intensity(p: dict, rate: np.ndarray, s: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Expected number of 25 bp steps this month (Poisson mean) for rate ``rate`` in macro regime
    ``s`` and rate stance ``r``: ``|rate_mean[r]| / 0.25 * exp(REVERSION * gap)``, capped; 0 on hold."""
    gap = -DIRECTION[r] * (rate - _take(rate_target(p), s))  # > 0: the rate lies beyond the target
    lam = np.abs(_take(p["rate_mean"], r)) / RATE_STEP * np.exp(REVERSION * gap)
    return np.where(r == HOLD, 0.0, np.minimum(lam, MAX_STEPS))


def _rate_move(p, cfg, rate, s, r, rng, dynamics: str) -> np.ndarray:
    """The new policy rate after one month (see the module docstring)."""
    if dynamics == "steps":
        n_steps = rng.poisson(rate_step_intensity(p, rate, s, r))
        return np.maximum(rate + DIRECTION[r] * RATE_STEP * n_steps, RATE_FLOOR)
    mult = rate_vol_multiplier(rate, cfg.priors.rate_vol_level)
    dr = _take(p["rate_mean"], r) + _take(p["rate_scale"], r) * mult * rng.standard_t(
        cfg.priors.student_nu, len(r))
    return np.maximum(rate + dr, RATE_FLOOR)


def _start_values(p: dict, states: np.ndarray, s0: np.ndarray, initial: dict, lev, m0_extra: float,
                  trend0: float):
    n = states.shape[0]
    cpi_prev = np.full(n, initial.get(C.CPI_MOM_ANN, np.nan))
    cpi_prev = np.where(np.isfinite(cpi_prev), cpi_prev, _take(p["cpi_mean"], s0))
    vol_prev = np.full(n, initial.get(C.SMALLCAP_VOLUME_LOG, np.nan))
    m0 = p["vol_level"] + p["vol_trend"] * trend0 + _take(lev, states[:, 0]) + m0_extra
    vol_prev = np.where(np.isfinite(vol_prev), vol_prev, m0)
    rate = np.full(n, initial.get(C.POLICY_RATE, 2.0), dtype=float)
    bs = np.full(n, initial.get(C.BALANCE_SHEET, 1000.0), dtype=float)
    return cpi_prev, vol_prev, rate, bs


def _override(fixed: dict, name: str, h: int, values: np.ndarray) -> np.ndarray:
    """``values`` replaced by the scenario print ``fixed[name][h]`` where there is one."""
    fx = fixed.get(name)
    if fx is None or not np.isfinite(fx[h]):
        return values
    return np.full_like(values, fx[h])


SIM_SERIES = (C.CPI_MOM_ANN, C.POLICY_RATE_CHANGE, C.POLICY_RATE, C.BALANCE_SHEET_GROWTH,
              C.BALANCE_SHEET, C.SMALLCAP_VOLUME_LOG)


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
    rate_dynamics: str = "steps",
) -> dict[str, np.ndarray]:
    """Simulate the observed series along joint-state paths ``states`` (n, H+1).

    Column 0 holds the starting month: its values come from ``initial`` (keys ``cpi_mom_ann``,
    ``policy_rate``, ``balance_sheet``, ``smallcap_volume_log``).  ``fixed`` maps a series name
    (``cpi_mom_ann``, ``policy_rate_change``, ``balance_sheet_growth``) to an (H+1,) array whose finite
    entries override the simulation (scenario prints; the rate stays above the floor).  ``rate_dynamics``:
    ``"steps"`` (25 bp moves with mean reversion, the forecast) or ``"emission"`` (the likelihood's
    Student-t changes), see the module docstring.  Returns arrays (n, H+1) for ``cpi_mom_ann``,
    ``policy_rate_change``, ``policy_rate``, ``balance_sheet_growth``, ``balance_sheet``,
    ``smallcap_volume_log`` and ``smallcap_volume``.
    """
    p = numpy_params(point, cfg)
    p["vol_levels"] = _vol_levels(np, p, cfg)
    return _simulate(p, cfg, states, initial=initial, trend0=trend0, rng=rng, fixed=fixed, proxy=proxy,
                     rate_dynamics=rate_dynamics)


def simulate_series_batch(
    points: list[dict],
    cfg: ModelConfig,
    states: np.ndarray,
    *,
    initial: dict[str, float],
    trend0: float,
    rng: np.random.Generator,
    fixed: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`simulate_series` for many draws at once: ``states`` (len(points) * m, H+1) holds ``m``
    consecutive paths per draw, path ``i`` simulated with ``points[i // m]``.  One vectorised pass over
    the months instead of one per draw (the forecast's 1,000 draws); the random numbers are drawn in
    another order than draw by draw, so the paths differ but their distribution does not."""
    m = states.shape[0] // len(points)
    if m * len(points) != states.shape[0]:
        raise ValueError(f"{states.shape[0]} paths are not a whole number per draw ({len(points)} draws)")
    ps = [numpy_params(pt, cfg) for pt in points]
    for q in ps:
        q["vol_levels"] = _vol_levels(np, q, cfg)
    p = {k: np.repeat(np.stack([np.asarray(q[k], dtype=float) for q in ps]), m, axis=0) for k in ps[0]}
    return _simulate(p, cfg, states, initial=initial, trend0=trend0, rng=rng, fixed=fixed, proxy=False,
                     rate_dynamics="steps")


def _simulate(p: dict, cfg: ModelConfig, states: np.ndarray, *, initial, trend0, rng, fixed, proxy,
              rate_dynamics) -> dict[str, np.ndarray]:
    """The simulation of :func:`simulate_series` on derived parameters ``p`` (one draw: per-state arrays
    (k,) and scalars; a batch: (n, k) and (n,), one row per path)."""
    if rate_dynamics not in RATE_DYNAMICS:
        raise ValueError(f"rate_dynamics must be one of {RATE_DYNAMICS}, got {rate_dynamics!r}")
    nu = cfg.priors.student_nu
    n, H1 = states.shape
    s, r, b = split_states(states, cfg)
    fixed = fixed or {}
    step = 1.0 / cfg.volume_trend_per
    bs_loc = p["bs_mean"] + (np.expand_dims(p["bs_proxy_shift"], -1) if proxy else 0.0)
    bs_scale = p["bs_scale"] * (np.expand_dims(p["bs_proxy_scale"], -1) if proxy else 1.0)
    lev = p["vol_levels"]
    vol_shift = p["vol_proxy_shift"] if proxy else 0.0
    out = {k: np.full((n, H1), np.nan) for k in SIM_SERIES}
    for k in (C.CPI_MOM_ANN, C.POLICY_RATE, C.BALANCE_SHEET, C.SMALLCAP_VOLUME_LOG):
        out[k][:, 0] = initial.get(k, np.nan)
    cpi_prev, vol_prev, rate, bs = _start_values(p, states, s[:, 0], initial, lev, vol_shift,
                                                   trend0)
    for h in range(1, H1):
        sh, kh = s[:, h], states[:, h]
        mu = _take(p["cpi_mean"], sh)
        cpi = mu + p["cpi_ar"] * (cpi_prev - mu) + _take(p["cpi_sigma"], sh) * rng.standard_t(nu, n)
        cpi = _override(fixed, C.CPI_MOM_ANN, h, cpi)
        new_rate = _rate_move(p, cfg, rate, sh, r[:, h], rng, rate_dynamics)
        new_rate = np.maximum(rate + _override(fixed, C.POLICY_RATE_CHANGE, h, new_rate - rate),
                              RATE_FLOOR)
        g = _take(bs_loc, b[:, h]) + _take(bs_scale, b[:, h]) * rng.standard_t(nu, n)
        g = _override(fixed, C.BALANCE_SHEET_GROWTH, h, g)
        bs = bs * np.exp(g / 100.0)
        m_t = p["vol_level"] + p["vol_trend"] * (trend0 + h * step) + _take(lev, kh) + vol_shift
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
    """Simulate a monthly panel (the model's columns) and its true state paths.

    Returns ``(panel, states)``: the panel is indexed by month start like
    :func:`regimecast.data.load_panel`; ``states`` has integer columns ``macro``, ``rate`` and ``bs``.
    Rate changes follow the likelihood's own emission (``rate_dynamics="emission"``).
    """
    rng = np.random.default_rng(random_seed)
    dates = pd.date_range(start, end, freq="MS")
    H = len(dates) - 1
    p = numpy_params(point, cfg)
    lt = joint_log_transition(np, p, cfg)
    k0 = np.array([((cfg.n_macro // 2) * cfg.n_rate + HOLD) * cfg.n_bs + STEADY])
    states = simulate_states(lt, k0, H, rng)
    init = {C.CPI_MOM_ANN: 2.8, C.POLICY_RATE: 3.0, C.BALANCE_SHEET: 50.0, C.SMALLCAP_VOLUME_LOG: 16.0}
    sims = simulate_series(p, cfg, states, initial=init, trend0=0.0, rng=rng, rate_dynamics="emission")
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
    s, r, b = split_states(states[0], cfg)
    truth = pd.DataFrame({"macro": s, "rate": r, "bs": b}, index=df.index)
    return df, truth

"""The hierarchical macro-regime x policy-state Markov-switching model.

Two coupled hidden chains, run as one chain on the product space (``K = n_macro * 4`` joint states,
joint index ``k = s * 4 + z``):

* macro regime S (default deflationary / moderate / inflationary), ordered by mean CPI inflation;
* policy state Z by role (QE, cutting, hold, tightening).

Transition (row = from): ``P[(s, z) -> (s', z')] = P(S' = s' | S = s, Z = z) * P(Z' = z' | Z = z, S' = s')``

* ``P(S' | S, Z)``: softmax over s' of ``a[s, s'] + b[z, s']`` for s' != s and 0 for staying, so policy
  moves the odds of leaving a macro regime (e.g. QE raising the odds of moving to inflationary);
* ``P(Z' | Z, S')``: softmax over z' of ``base[z, z'] + tau * raw[s', z, z']`` for z' != z, 0 for
  staying: the policy rows under each macro regime are partially pooled towards a shared base with a
  learned spread ``tau`` (logistic-normal hierarchy).

Prior means of the off-diagonal logits are set from expected durations, so a prior is stated in months.

Emissions (a missing month simply drops out of the likelihood):

* CPI inflation ``cpi_mom_ann``: AR(1) around the regime mean, regime-specific volatility (Normal);
* policy-rate change: Student-t with policy-state location and scale; months at the zero lower bound
  (rate below ``zlb`` this month and last) carry no rate signal and drop out, so near-zero rates never
  read as "hold" while the balance sheet expands;
* balance-sheet growth: Student-t with location ordered tightening/QT < cutting = hold < QE and a
  policy-state scale; the pre-2002 BOGMBASE proxy gets its own shift and scale;
* log small-cap volume: AR(1) around a linear trend whose level is shifted by policy state and macro
  regime (hold and the middle macro regime are the reference levels); the RUT-based proxy period gets its
  own level shift (the lagged mean carries the lagged proxy flag, so the splice's jump identifies it).

What the sample at the as-of cannot inform is decided from the data, never by hand per date:

* :func:`inactive_params`: parameters with no data at all (no reserve-targeting month, no proxy month,
  no volume) are fixed at neutral values;
* :func:`prior_sds`: parameters of a state that an observable proxy shows too rarely are pinned to
  their priors (prior sd x ``PIN_FACTOR``): a macro regime's volume shift needs ``MIN_VOLUME_MONTHS``
  months with volume whose CPI y/y is nearest that regime's prior mean; a policy state's volume shift
  as many volume months with its rate-change (QE: balance-sheet growth) signature; the QE state's
  emission parameters ``MIN_QE_MONTHS`` months of balance-sheet growth nearer the QE prior mean than the
  cutting/hold one; an outer macro regime's CPI scale and gap ``MIN_REGIME_MONTHS`` months whose CPI
  y/y is nearest its prior mean (the deflationary regime before 2009).  So a state never observed (QE before 2008, an inflationary regime with volume
  before 2021) keeps the meaning its prior gives it and its label cannot swap.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
from scipy.special import gammaln as np_gammaln

from regimecast.config import ModelConfig
from regimecast.data import columns as C
from regimecast.errors import DataError
from regimecast.hmm import hmm_logp
from regimecast.models import backend as B

QE, CUT, HOLD, TIGHT = range(4)
REQUIRED = (
    C.CPI_MOM_ANN,
    C.POLICY_RATE,
    C.POLICY_RATE_CHANGE,
    C.BALANCE_SHEET_GROWTH,
    C.BALANCE_SHEET_PROXY,
    C.SMALLCAP_VOLUME_LOG,
    C.SMALLCAP_VOLUME_PROXY,
)


@dataclass(frozen=True)
class MacroData:
    """The model's view of the panel: aligned float arrays, NaN = missing."""

    dates: pd.DatetimeIndex
    cpi: np.ndarray
    cpi_lag: np.ndarray
    rate: np.ndarray
    rate_lag: np.ndarray
    rate_change: np.ndarray  # NaN where missing or at the zero lower bound
    rate_era: np.ndarray  # 1 in the reserve-targeting era (volatile funds rate), else 0
    bs_growth: np.ndarray
    bs_proxy: np.ndarray
    vol: np.ndarray
    vol_lag: np.ndarray
    vol_proxy: np.ndarray
    trend: np.ndarray  # time in units of volume_trend_per months, 0 at the centre of the volume data
    infl_driver: np.ndarray  # (cpi_yoy_{t-1} - 3) / 3, 0 where unknown: drives the optional TVTP
    cpi_yoy: np.ndarray | None = None  # CPI y/y (NaN = unknown): the observable proxy of the regime

    @property
    def T(self) -> int:
        return len(self.dates)


def prepare_data(panel: pd.DataFrame, cfg: ModelConfig) -> MacroData:
    """Cut the panel at ``cfg.start`` and turn it into the model's arrays."""
    missing = [c for c in REQUIRED if c not in panel.columns]
    if missing:
        raise DataError(
            f"panel lacks column(s) {', '.join(missing)}; build it with regimecast.data.load_panel"
        )
    df = panel.loc[panel.index >= pd.Timestamp(cfg.start)]
    if len(df) < cfg.min_months:
        raise DataError(
            f"only {len(df)} months from {cfg.start} to {panel.index.max():%Y-%m}; the model needs "
            f"at least {cfg.min_months} (model.min_months): use an earlier model.start or a later --as-of"
        )
    full = panel.reindex(pd.date_range(panel.index.min(), df.index.max(), freq="MS"))

    def col(name):
        return df[name].to_numpy(dtype=float)

    def lag(name):
        return full[name].shift(1).reindex(df.index).to_numpy(dtype=float)

    rate = col(C.POLICY_RATE)
    rate_lag = lag(C.POLICY_RATE)
    rate_change = col(C.POLICY_RATE_CHANGE).copy()
    at_zlb = (rate < cfg.zlb) & (rate_lag < cfg.zlb)
    rate_change[at_zlb] = np.nan
    vol = col(C.SMALLCAP_VOLUME_LOG).copy()
    vol[df.index < pd.Timestamp(cfg.volume_start)] = np.nan  # before model.volume_start: unused
    t = np.arange(len(df), dtype=float)
    # centre the volume trend on the months with volume data, so level and slope are not confounded
    t_centre = float(t[np.isfinite(vol)].mean()) if np.isfinite(vol).any() else 0.0
    return MacroData(
        dates=pd.DatetimeIndex(df.index),
        cpi=col(C.CPI_MOM_ANN),
        cpi_lag=lag(C.CPI_MOM_ANN),
        rate=rate,
        rate_lag=rate_lag,
        rate_change=rate_change,
        rate_era=_era_flag(df.index, cfg.rate_volatile_era),
        bs_growth=col(C.BALANCE_SHEET_GROWTH),
        bs_proxy=np.nan_to_num(col(C.BALANCE_SHEET_PROXY)),
        vol=vol,
        vol_lag=lag(C.SMALLCAP_VOLUME_LOG),
        vol_proxy=np.nan_to_num(col(C.SMALLCAP_VOLUME_PROXY)),
        trend=(t - t_centre) / cfg.volume_trend_per,
        infl_driver=_inflation_driver(full, df.index),
        cpi_yoy=col(C.CPI_YOY) if C.CPI_YOY in df else None,
    )


def _inflation_driver(full: pd.DataFrame, index: pd.DatetimeIndex) -> np.ndarray:
    if C.CPI_YOY not in full:
        return np.zeros(len(index))
    lagged = full[C.CPI_YOY].shift(1).reindex(index).to_numpy(dtype=float)
    return np.nan_to_num((lagged - INFLATION_CENTRE) / INFLATION_SCALE)


def _era_flag(index: pd.DatetimeIndex, era: tuple[str, ...]) -> np.ndarray:
    if not era:
        return np.zeros(len(index))
    lo, hi = pd.Timestamp(era[0]), pd.Timestamp(era[1])
    return ((index >= lo) & (index <= hi)).astype(float)


# --------------------------------------------------------------------------------------------------
# Transition structure
# --------------------------------------------------------------------------------------------------


def offdiag_logit_mean(duration: float, n: int) -> float:
    """Off-diagonal logit (stay = 0) that gives an expected duration of ``duration`` months."""
    p_leave = 1.0 / max(duration, 1.0 + 1e-9)
    return float(np.log(p_leave / (1.0 - p_leave) / (n - 1)))


def _offdiag_index(n: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.nonzero(~np.eye(n, dtype=bool))
    return rows, cols


def _scatter_offdiag(xp, values, n: int, lead: tuple[int, ...] = ()):
    """(..., n, n-1) off-diagonal values -> (..., n, n) logits with zeros on the diagonal."""
    rows, cols = _offdiag_index(n)
    flat = values.reshape((*lead, n * (n - 1)))
    if B.is_symbolic(xp):
        out = pt.zeros((*lead, n, n))
        return pt.set_subtensor(out[..., rows, cols], flat)
    out = np.zeros((*lead, n, n))
    out[..., rows, cols] = flat
    return out



def joint_log_transition(xp, p: dict, nS: int, nZ: int = 4, drivers: np.ndarray | None = None):
    """Log transition of the joint chain from parameter dict ``p`` (NumPy or PyTensor).

    (K, K) for constant transitions; with ``drivers`` (T-1,) (standardised lagged inflation, the
    optional time-varying policy transitions) (T-1, K, K), where a move into policy state z' gets the
    extra logit ``policy_tvtp[z'] * drivers[t]``.
    """
    a = _scatter_offdiag(xp, p["macro_offdiag"], nS)  # (s, s')
    b = p["macro_policy_sd"] * p["macro_policy_raw"]  # (z, s')
    eye_s = np.eye(nS)
    # logits_S[s, z, s'] = a[s, s'] + b[z, s'] off the diagonal, 0 on it
    logits_s = a[:, None, :] + b[None, :, :] * (1.0 - eye_s)[:, None, :]
    log_ps = B.log_softmax(xp, logits_s, axis=-1)  # (s, z, s')
    base = _scatter_offdiag(xp, p["policy_base"], nZ)  # (z, z')
    dev = _scatter_offdiag(xp, p["policy_dev_raw"], nZ, lead=(nS,))  # (s', z, z')
    logits_z = base[None, :, :] + p["policy_tau"] * dev
    K = nS * nZ
    if drivers is not None:
        off = 1.0 - np.eye(nZ)
        shift = p["policy_tvtp"][None, :] * off  # (z, z'): only moves are shifted
        logits_zt = logits_z[None] + np.asarray(drivers)[:, None, None, None] * shift[None, None]
        log_pzt = B.log_softmax(xp, logits_zt, axis=-1)  # (t, s', z, z')
        joint = log_ps[None, :, :, :, None] + xp.transpose(log_pzt, (0, 2, 1, 3))[:, None, :, :, :]
        return joint.reshape((len(drivers), K, K))
    log_pz = B.log_softmax(xp, logits_z, axis=-1)  # (s', z, z')
    # joint[s, z, s', z'] = log_ps[s, z, s'] + log_pz[s', z, z']
    joint = log_ps[:, :, :, None] + xp.transpose(log_pz, (1, 0, 2))[None, :, :, :]
    return joint.reshape((K, K))


INFLATION_CENTRE, INFLATION_SCALE = 3.0, 3.0  # the TVTP driver: (cpi_yoy of last month - 3%) / 3%


def transition_drivers(d: MacroData, cfg: ModelConfig) -> np.ndarray | None:
    """(T-1,) drivers of the transition into month t+1 (inflation printed by then), or None."""
    return d.infl_driver[1:] if cfg.tvtp else None


# --------------------------------------------------------------------------------------------------
# Emissions
# --------------------------------------------------------------------------------------------------


def _normal_logpdf(xp, x, mu, sigma):
    return -0.5 * ((x - mu) / sigma) ** 2 - xp.log(sigma) - 0.5 * np.log(2 * np.pi)


def _student_logpdf(xp, x, mu, sigma, nu):
    const = np_gammaln((nu + 1) / 2) - np_gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
    return const - xp.log(sigma) - (nu + 1) / 2 * xp.log1p(((x - mu) / sigma) ** 2 / nu)


def _masked(xp, obs_ok: np.ndarray, lp):
    return xp.where(obs_ok[:, None], lp, 0.0)



def derive(xp, p: dict, cfg: ModelConfig) -> dict:
    """Add the derived parameters (state means from reference + gaps, policy effect) to ``p``."""
    q = dict(p)
    nS = cfg.n_macro
    ref = nS // 2
    gaps = p["cpi_gap"]  # (nS-1,), gap i separates regime i and i+1
    below = [p["cpi_ref"] - xp.sum(gaps[i:ref]) for i in range(ref)]
    above = [p["cpi_ref"] + xp.sum(gaps[ref:i]) for i in range(ref + 1, nS)]
    q["cpi_mean"] = B.stack(xp, [*below, p["cpi_ref"], *above])
    h = p["rate_hold"]
    q["rate_mean"] = B.stack(xp, [h - p["rate_gap"][0], h, h + p["rate_gap"][1]])
    m = p["bs_mid"]
    q["bs_mean"] = B.stack(xp, [m - p["bs_gap"][0], m, m + p["bs_gap"][1]])
    q["macro_policy_effect"] = p["macro_policy_sd"] * p["macro_policy_raw"]
    return q


def rate_vol_multiplier(rate_lag: np.ndarray, level: float) -> np.ndarray:
    """Rate-change scale multiplier sqrt(max(rate, 0.25) / level) (CIR-like); 1 when level = 0."""
    if level <= 0:
        return np.ones_like(rate_lag)
    r = np.where(np.isfinite(rate_lag), rate_lag, level)
    return np.sqrt(np.maximum(r, 0.25) / level)


@dataclass(frozen=True)
class _EmissionInputs:
    """The data-only arrays of :func:`joint_log_emission` (NaNs zeroed, masks, multipliers)."""

    cpi_ok: np.ndarray
    cpi: np.ndarray
    cpi_lag: np.ndarray
    rate_ok: np.ndarray
    rate: np.ndarray
    rate_mult: np.ndarray
    era: np.ndarray
    bs_ok: np.ndarray
    bs: np.ndarray
    bs_proxy: np.ndarray
    vol_ok: np.ndarray
    vol: np.ndarray
    vol_lag: np.ndarray
    trend: np.ndarray
    vol_proxy: np.ndarray
    proxy_change: np.ndarray
    step: float


_INPUTS: dict[int, tuple] = {}  # id(MacroData) -> (weakref, rate_vol_level, _EmissionInputs)


def _emission_inputs(d: MacroData, cfg: ModelConfig) -> _EmissionInputs:
    """The data side of the emission, computed once per ``MacroData`` object (the update and the
    forecast evaluate thousands of draws on the same data; a MacroData is never changed in place)."""
    level = cfg.priors.rate_vol_level
    hit = _INPUTS.get(id(d))
    if hit is not None and hit[0]() is d and hit[1] == level:
        return hit[2]

    def col(a):
        return np.nan_to_num(a)[:, None]

    out = _EmissionInputs(
        cpi_ok=np.isfinite(d.cpi) & np.isfinite(d.cpi_lag), cpi=col(d.cpi), cpi_lag=col(d.cpi_lag),
        rate_ok=np.isfinite(d.rate_change), rate=col(d.rate_change),
        rate_mult=rate_vol_multiplier(d.rate_lag, level)[:, None], era=d.rate_era[:, None],
        bs_ok=np.isfinite(d.bs_growth), bs=col(d.bs_growth), bs_proxy=d.bs_proxy[:, None],
        vol_ok=np.isfinite(d.vol) & np.isfinite(d.vol_lag), vol=col(d.vol), vol_lag=col(d.vol_lag),
        trend=d.trend[:, None], vol_proxy=d.vol_proxy[:, None],
        # last month's mean carries last month's proxy flag: the splice month's jump is the proxy shift
        proxy_change=(d.vol_proxy - np.concatenate([d.vol_proxy[:1], d.vol_proxy[:-1]]))[:, None],
        step=float(d.trend[1] - d.trend[0]) if d.T > 1 else 0.0,
    )
    if len(_INPUTS) > 256:
        _INPUTS.clear()
    _INPUTS[id(d)] = (weakref.ref(d), level, out)
    return out


def joint_log_emission(xp, p: dict, d: MacroData, cfg: ModelConfig):
    """(T, K) log emission densities for every joint state; 0 where a series is missing.

    CPI depends on the macro regime only and the rate / balance-sheet series on the policy state only,
    so they are evaluated on (T, n_macro) and (T, 4) and broadcast onto the joint states.
    """
    nS, nZ = cfg.n_macro, cfg.n_policy
    nu = cfg.priors.student_nu
    p = derive(xp, p, cfg)
    e = _emission_inputs(d, cfg)

    # CPI: AR(1) around the macro-regime mean -> (T, nS)
    mu = p["cpi_mean"][None, :]
    lp = _student_logpdf(xp, e.cpi, mu + p["cpi_ar"] * (e.cpi_lag - mu), p["cpi_sigma"][None, :], nu)
    macro_part = _masked(xp, e.cpi_ok, lp)

    # policy-rate change (NaN at the zero lower bound) -> (T, 4)
    mult = e.rate_mult * (1.0 + e.era * (p["rate_era_scale"] - 1.0))
    lp = _student_logpdf(xp, e.rate, _rate_means(xp, p)[None, :], p["rate_scale"][None, :] * mult, nu)
    policy_part = _masked(xp, e.rate_ok, lp)

    # balance-sheet growth, with the proxy period's own shift and scale -> (T, 4)
    loc = _bs_means(xp, p)[None, :] + e.bs_proxy * p["bs_proxy_shift"]
    scale = p["bs_scale"][None, :] * (1.0 + e.bs_proxy * (p["bs_proxy_scale"] - 1.0))
    policy_part = policy_part + _masked(xp, e.bs_ok, _student_logpdf(xp, e.bs, loc, scale, nu))

    T = d.T
    total = (macro_part[:, :, None] + policy_part[:, None, :]).reshape((T, nS * nZ))

    # log small-cap volume: AR(1) around trend + joint-state levels -> (T, K)
    lev = _vol_levels(xp, p, cfg)  # (K,)
    m_t = p["vol_level"] + (e.trend * p["vol_trend"] + e.vol_proxy * p["vol_proxy_shift"]) + lev[None, :]
    m_lag = m_t - p["vol_trend"] * e.step - e.proxy_change * p["vol_proxy_shift"]
    lp = _normal_logpdf(xp, e.vol, m_t + p["vol_ar"] * (e.vol_lag - m_lag), p["vol_sigma"])
    return total + _masked(xp, e.vol_ok, lp)


def _rate_means(xp, p):
    """(4,) rate-change locations by policy role [QE, cut, hold, tight]."""
    ordered = p["rate_mean"]  # (3,) cut < hold < tight
    return B.concat(xp, [xp.reshape(p["rate_mean_qe"], (1,)), ordered])


def _bs_means(xp, p):
    """(4,) balance-sheet growth locations by role: QT < cut = hold < QE."""
    o = p["bs_mean"]  # (3,) ordered [tight, middle, QE]
    return B.stack(xp, [o[2], o[1], o[1], o[0]])


def _vol_levels(xp, p, cfg: ModelConfig):
    """(K,) volume level shifts: policy shift (hold = 0) + macro shift (middle regime = 0)."""
    nS, nZ = cfg.n_macro, cfg.n_policy
    pol = B.concat(xp, [p["vol_policy"][:HOLD], xp.zeros(1), p["vol_policy"][HOLD:]])  # (4,)
    ref = nS // 2
    mac = B.concat(xp, [p["vol_macro"][:ref], xp.zeros(1), p["vol_macro"][ref:]])  # (nS,)
    return (mac[:, None] + pol[None, :]).reshape((nS * nZ,))


# --------------------------------------------------------------------------------------------------
# The PyMC model
# --------------------------------------------------------------------------------------------------

def coords(cfg: ModelConfig, data: MacroData | None = None) -> dict[str, list]:
    nS = cfg.n_macro
    ref = nS // 2
    c = {
        "macro": list(cfg.macro_labels),
        "macro_to": [f"leave_{i}" for i in range(nS - 1)],
        "policy": list(cfg.policy_labels),
        "policy_to": [f"leave_{i}" for i in range(3)],
        "rate_state": [cfg.policy_labels[i] for i in (CUT, HOLD, TIGHT)],
        "cpi_gap_dim": [f"{a}->{b}" for a, b in zip(cfg.macro_labels, cfg.macro_labels[1:], strict=False)],
        "rate_gap_dim": ["hold-cutting", "tightening-hold"],
        "bs_gap_dim": ["middle-QT", "QE-middle"],
        "bs_state": ["tightening/QT", "cutting/hold", "QE"],
        "policy_nonref": [lab for i, lab in enumerate(cfg.policy_labels) if i != HOLD],
        "macro_nonref": [lab for i, lab in enumerate(cfg.macro_labels) if i != ref],
        "state": [f"{s}|{z}" for s in cfg.macro_labels for z in cfg.policy_labels],
    }
    if data is not None:
        c["time"] = list(data.dates)
    return c


PARAM_GROUPS = ("rate_era_scale", "bs_proxy_shift", "vol_level", "vol_proxy_shift")


def inactive_params(d: MacroData, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Parameters the data cannot inform, fixed at neutral values instead of sampled from their prior.

    No month in the reserve-targeting era, fewer than ``MIN_VOLUME_MONTHS`` months of volume in the
    likelihood (volume is then fixed at its recent level), or a balance-sheet / volume series that is
    all proxy or all non-proxy: the corresponding parameters would be prior-only (an exactly zero
    gradient at the posterior mode, which nutpie refuses as a start) or, with only proxy months,
    confounded with the series' own location and scale (a ridge that splits chains: bs_mid at
    1994-01).  ``numpy_params`` fills the same values in.
    """
    nS = cfg.n_macro
    # a handful of volume months cannot inform the volume level, persistence and noise (2005-01, the
    # first month of model.volume_start, had 4 divergent transitions with one): below MIN_VOLUME_MONTHS
    # they are fixed, every state's volume emission is then the same and volume moves no state
    has_vol = int(np.sum(np.isfinite(d.vol) & np.isfinite(d.vol_lag))) >= MIN_VOLUME_MONTHS
    out: dict[str, np.ndarray] = {}
    if not np.any(d.rate_era):
        out["rate_era_scale"] = np.array(1.0)
    bs_ok = np.isfinite(d.bs_growth)
    if not (np.any(bs_ok & (d.bs_proxy > 0)) and np.any(bs_ok & (d.bs_proxy == 0))):
        out |= {"bs_proxy_shift": np.array(0.0), "bs_proxy_scale": np.array(1.0)}
    if not has_vol:
        out |= {
            "vol_level": np.array(recent_volume_level(d)),
            "vol_trend": np.array(0.0),
            "vol_policy": np.zeros(3),
            "vol_macro": np.zeros(nS - 1),
            "vol_ar": np.array(0.5),
            "vol_sigma": np.array(0.15),
        }
    vol_ok = np.isfinite(d.vol)
    if not (has_vol and np.any(vol_ok & (d.vol_proxy > 0)) and np.any(vol_ok & (d.vol_proxy == 0))):
        out["vol_proxy_shift"] = np.array(0.0)
    return out


# A state's weakly identified parameters are sampled with their usual prior only when the sample
# holds enough months that an observable proxy places in that state: MIN_VOLUME_MONTHS months with
# volume for a volume level shift (each month informs it only through (1 - vol_ar) * shift),
# MIN_QE_MONTHS QE-like months for the QE state's emission parameters.  Otherwise their prior sd
# shrinks by PIN_FACTOR ("pinned": the state keeps the meaning its prior gives it).
MIN_VOLUME_MONTHS = 24
MIN_QE_MONTHS = 12
MIN_REGIME_MONTHS = 24  # months with CPI y/y nearest a non-reference regime's prior mean
# months of volume before the volume trend is free: over a shorter span an AR(1) near a unit root and a
# trend explain the same drift, and the chains split between them (2007-09 .. 2008-09 as-ofs)
MIN_TREND_MONTHS = 60
PIN_FACTOR = 0.1


def recent_volume_level(d: MacroData, months: int = 36) -> float:
    """Mean log volume over the ``months`` months before the panel's last (used or not by the model).

    The level that volume parameters are fixed at when fewer than ``MIN_VOLUME_MONTHS`` volume months
    are in the likelihood (an as-of before or just after ``model.volume_start``): the forecast then
    starts from where volume stood, not from a constant of another series' units.  It reads ``vol_lag``, which ``volume_start`` does not mask.
    """
    v = d.vol_lag[np.isfinite(d.vol_lag)][-months:]
    return float(v.mean()) if v.size else 0.0


def _nearest(values: np.ndarray, centres) -> np.ndarray:
    """Index of the nearest centre for each value (-1 where the value is NaN)."""
    c = np.asarray(centres, dtype=float)
    idx = np.abs(np.nan_to_num(values, nan=np.inf)[:, None] - c[None, :]).argmin(axis=1)
    return np.where(np.isfinite(values), idx, -1)


def state_evidence(d: MacroData, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Months of observable evidence per state, from the data (the states themselves are latent).

    * ``cpi_macro`` (n_macro,): months whose CPI y/y is nearest regime s's prior mean;
    * ``vol_macro`` (n_macro,): the same months restricted to those with volume;
    * ``vol_policy`` (4,): months with volume whose rate change is nearest a rate state's prior mean
      (QE: balance-sheet growth nearer the QE prior mean than the cutting/hold one);
    * ``qe`` (): months (outside the balance-sheet proxy period) with balance-sheet growth nearer the
      QE prior mean than the cutting/hold one: the evidence for the QE state's emission parameters.
    """
    pr = cfg.priors
    has_vol = np.isfinite(d.vol) & np.isfinite(d.vol_lag)
    yoy = d.cpi_yoy if d.cpi_yoy is not None else np.full(d.T, np.nan)
    regime = _nearest(yoy, pr.cpi_mean)
    bs_mid, bs_qe = pr.bs_growth_mean[1], pr.bs_growth_mean[2]
    qe_like = np.isfinite(d.bs_growth) & (d.bs_growth > (bs_mid + bs_qe) / 2)
    rate_state = _nearest(d.rate_change, pr.rate_change_mean) + CUT  # cut, hold, tight
    vol_policy = np.array([np.sum(has_vol & qe_like)]
                          + [np.sum(has_vol & (rate_state == z) & ~qe_like) for z in (CUT, HOLD, TIGHT)])
    return {
        "cpi_macro": np.array([np.sum(regime == s) for s in range(cfg.n_macro)]),
        "vol_macro": np.array([np.sum(has_vol & (regime == s)) for s in range(cfg.n_macro)]),
        "vol_policy": vol_policy,
        "qe": np.array(np.sum(qe_like & (d.bs_proxy == 0))),
        "volume": np.array(np.sum(has_vol)),
    }


def prior_sds(d: MacroData, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Prior sds of the parameters whose prior follows the evidence (:func:`state_evidence`).

    An outer macro regime's CPI scale and gap with fewer than ``MIN_REGIME_MONTHS`` months of evidence,
    a volume level shift of a state with fewer than ``MIN_VOLUME_MONTHS`` months of evidence, and
    the QE state's emission parameters (rate-change location and scale, balance-sheet gap and scale)
    while fewer than ``MIN_QE_MONTHS`` QE-like months exist, get ``PIN_FACTOR`` times their usual
    prior sd:
    such a state cannot absorb odd months by moving its parameters, so labels cannot swap.
    """
    pr = cfg.priors
    ev = state_evidence(d, cfg)
    ref = cfg.n_macro // 2

    def sd(usual: float, months) -> np.ndarray:
        m = np.asarray(months)
        return np.where(m >= MIN_VOLUME_MONTHS, usual, usual * PIN_FACTOR)

    qe_sd = 1.0 if ev["qe"] >= MIN_QE_MONTHS else PIN_FACTOR
    rare = ev["cpi_macro"] < MIN_REGIME_MONTHS  # a regime's CPI scale and outer gap are pinned
    rare[ref] = False
    outer = [i if i < ref else i + 1 for i in range(cfg.n_macro - 1)]  # gap i's non-reference side
    policy_scale = np.full(4, pr.scale_sd)
    policy_scale[QE] *= qe_sd
    return {
        "cpi_sigma": np.where(rare, pr.scale_sd * PIN_FACTOR, pr.scale_sd),
        "cpi_gap": np.where(rare[outer], pr.cpi_gap_sd * PIN_FACTOR, pr.cpi_gap_sd),
        "vol_macro": sd(VOL_SHIFT_SD, np.delete(ev["vol_macro"], ref)),
        "vol_policy": sd(VOL_SHIFT_SD, np.delete(ev["vol_policy"], HOLD)),
        "rate_mean_qe": np.array(RATE_QE_SD * qe_sd),
        "rate_scale": policy_scale,
        "bs_scale": policy_scale.copy(),
        "bs_gap": np.array([pr.gap_sd, pr.gap_sd * qe_sd]),
        "vol_trend": np.array(1.0 if ev["volume"] >= MIN_TREND_MONTHS else PIN_FACTOR),
    }


VOL_SHIFT_SD, RATE_QE_SD = 0.3, 0.2


def data_scales(d: MacroData) -> dict[str, float]:
    v = d.vol[np.isfinite(d.vol)]
    return {
        "vol_mean": float(v.mean()) if v.size else 17.0,
        "vol_sd": float(v.std()) if v.size > 1 else 1.0,
    }


def build_macro_model(d: MacroData, cfg: ModelConfig) -> tuple[pm.Model, dict]:
    """The PyMC model and handles to its (log_init, log_transition, log_emission) tensors."""
    nS, nZ = cfg.n_macro, cfg.n_policy
    K = nS * nZ
    pr = cfg.priors
    dur = cfg.durations
    sc = data_scales(d)
    active = set(PARAM_GROUPS) - set(inactive_params(d, cfg))
    psd = prior_sds(d, cfg)
    with pm.Model(coords=coords(cfg, d)) as model:
        p: dict = {}
        mu_s = np.array([offdiag_logit_mean(x, nS) for x in dur.macro])
        p["macro_offdiag"] = pm.Normal(
            "macro_offdiag", mu_s[:, None] * np.ones((nS, nS - 1)), 1.0, dims=("macro", "macro_to")
        )
        # Gamma(2, .) scales: zero density at 0 keeps NUTS out of the funnel's neck, while the data
        # still decide how much the policy effect / the per-regime policy rows may spread
        p["macro_policy_sd"] = pm.Gamma("macro_policy_sd", alpha=2.0, beta=2.0 / 0.5)
        p["macro_policy_raw"] = pm.Normal("macro_policy_raw", 0.0, 1.0, dims=("policy", "macro"))
        pm.Deterministic(
            "macro_policy_effect", p["macro_policy_sd"] * p["macro_policy_raw"], dims=("policy", "macro")
        )
        mu_z = np.array([offdiag_logit_mean(x, nZ) for x in dur.policy()])
        p["policy_base"] = pm.Normal(
            "policy_base", mu_z[:, None] * np.ones((nZ, nZ - 1)), 1.5, dims=("policy", "policy_to")
        )
        p["policy_tau"] = pm.Gamma("policy_tau", alpha=2.0, beta=2.0 / pr.pooling_scale)
        p["policy_dev_raw"] = pm.Normal(
            "policy_dev_raw", 0.0, 1.0, dims=("macro", "policy", "policy_to")
        )

        ref = nS // 2
        cm = np.asarray(pr.cpi_mean)
        p["cpi_ref"] = pm.Normal("cpi_ref", cm[ref], pr.cpi_ref_sd)
        p["cpi_gap"] = pm.LogNormal("cpi_gap", np.log(np.diff(cm)), psd["cpi_gap"], dims="cpi_gap_dim")
        p["cpi_ar"] = pm.Beta("cpi_ar", 2.0, 3.0)
        p["cpi_sigma"] = pm.LogNormal(
            "cpi_sigma", np.log(np.asarray(pr.cpi_sigma)), psd["cpi_sigma"], dims="macro"
        )
        rm = np.asarray(pr.rate_change_mean)
        p["rate_hold"] = pm.Normal("rate_hold", rm[1], pr.rate_hold_sd)
        p["rate_gap"] = pm.LogNormal("rate_gap", np.log(np.diff(rm)), pr.gap_sd, dims="rate_gap_dim")
        p["rate_mean_qe"] = pm.Normal("rate_mean_qe", -0.05, psd["rate_mean_qe"])
        if "rate_era_scale" in active:
            p["rate_era_scale"] = pm.LogNormal("rate_era_scale", np.log(3.0), 0.5)
        p["rate_scale"] = pm.LogNormal(
            "rate_scale", np.log(np.asarray(pr.rate_scale)), psd["rate_scale"], dims="policy"
        )
        bm = np.asarray(pr.bs_growth_mean)
        p["bs_mid"] = pm.Normal("bs_mid", bm[1], pr.bs_mid_sd)
        p["bs_gap"] = pm.LogNormal("bs_gap", np.log(np.diff(bm)), psd["bs_gap"], dims="bs_gap_dim")
        p["bs_scale"] = pm.LogNormal(
            "bs_scale", np.log(np.asarray(pr.bs_scale)), psd["bs_scale"], dims="policy"
        )
        q = derive(pt, p, cfg)
        pm.Deterministic("cpi_mean", q["cpi_mean"], dims="macro")
        pm.Deterministic("rate_mean", q["rate_mean"], dims="rate_state")
        pm.Deterministic("bs_mean", q["bs_mean"], dims="bs_state")
        if "bs_proxy_shift" in active:
            p["bs_proxy_shift"] = pm.Normal("bs_proxy_shift", 0.0, 0.5)
            p["bs_proxy_scale"] = pm.LogNormal("bs_proxy_scale", 0.0, 0.5)
        p |= _volume_priors(active, sc, psd)
        for name, value in inactive_params(d, cfg).items():
            p[name] = pt.as_tensor_variable(value)

        log_init = pt.as_tensor_variable(np.full(K, -np.log(K)))
        if cfg.tvtp:
            p["policy_tvtp"] = pm.Normal("policy_tvtp", 0.0, pr.tvtp_sd, dims="policy")
        log_trans = joint_log_transition(pt, p, nS, nZ, drivers=transition_drivers(d, cfg))
        log_em = joint_log_emission(pt, p, d, cfg)
        pm.Potential("loglik", hmm_logp(log_init, log_trans, log_em))
    return model, {"log_init": log_init, "log_transition": log_trans, "log_emission": log_em, "params": p}


def _volume_priors(active: set[str], sc: dict, psd: dict) -> dict:
    """The volume parameters that the data inform (inside a model context)."""
    p = {}
    if "vol_level" in active:
        p["vol_level"] = pm.Normal("vol_level", sc["vol_mean"], 2.0 * sc["vol_sd"] + 0.5)
        p["vol_trend"] = pm.Normal("vol_trend", 0.0, psd["vol_trend"])
        p["vol_policy"] = pm.Normal("vol_policy", 0.0, psd["vol_policy"], dims="policy_nonref")
        p["vol_macro"] = pm.Normal("vol_macro", 0.0, psd["vol_macro"], dims="macro_nonref")
        p["vol_ar"] = pm.Beta("vol_ar", 8.0, 2.0)
        p["vol_sigma"] = pm.LogNormal("vol_sigma", np.log(0.15), 0.5)
    if "vol_proxy_shift" in active:
        p["vol_proxy_shift"] = pm.Normal("vol_proxy_shift", 0.0, 0.5)
    return p


def compile_matrices(model: pm.Model, handles: dict):
    """Compile ``f(**free_rv_values) -> (log_init, log_transition, log_emission)``."""
    rvs = [model[name] for name in free_param_names(model)]
    fn = pytensor.function(
        rvs,
        [handles["log_init"], handles["log_transition"], handles["log_emission"]],
        on_unused_input="ignore",
        mode="FAST_RUN",
    )
    names = [rv.name for rv in rvs]

    def f(point: dict):
        return fn(*[np.asarray(point[n], dtype=float) for n in names])

    return f


def free_param_names(model: pm.Model) -> list[str]:
    return [rv.name for rv in model.free_RVs]


def numpy_params(point: dict, cfg: ModelConfig) -> dict:
    """Complete a point of free parameters with the derived ones (NumPy), for the simulator."""
    p = {k: np.asarray(v, dtype=float) for k, v in point.items()}
    return derive(np, p, cfg)


def log_matrices_np(point: dict, d: MacroData, cfg: ModelConfig):
    """NumPy (log_init, log_transition, log_emission) at a parameter point (reference path)."""
    p = numpy_params({**inactive_params(d, cfg), **point}, cfg)
    K = cfg.n_macro * cfg.n_policy
    return (
        np.full(K, -np.log(K)),
        joint_log_transition(np, p, cfg.n_macro, cfg.n_policy, drivers=transition_drivers(d, cfg)),
        joint_log_emission(np, p, d, cfg),
    )

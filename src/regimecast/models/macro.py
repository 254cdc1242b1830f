"""The hierarchical macro-regime x rate-stance x balance-sheet-stance Markov-switching model.

Three coupled hidden chains, run as one chain on the product space (``K = n_macro * 3 * 3`` joint
states, joint index ``k = (s * 3 + r) * 3 + b``):

* macro regime S (default deflationary / moderate / inflationary), ordered by mean CPI inflation;
* rate stance R by role (cutting, hold, hiking);
* balance-sheet stance B by role (QT, steady, QE).

The two instruments move apart (hikes with QT 2022-23, hold with QT 2023-24, cuts with QT 2024-25, hold
with QE 2012-14), so every one of the 9 policy combinations is a state of its own.

Transition (row = from), factorised so that each factor stays a small, readable softmax::

    P[(s, r, b) -> (s', r', b')] = P(s' | s, r, b) * P(r' | r, b, s') * P(b' | b, r, s')

* ``P(S' | S, R, B)``: softmax over s' of ``a[s, s'] + sd * (mr[r, s'] + mb[b, s'])`` for s' != s, 0
  for staying: either instrument moves the odds of leaving a macro regime (QE towards inflation);
* ``P(R' | R, B, S')``: softmax over r' of ``rate_base[r, r'] + rate_tau * (rate_dev_bs[b, r, r'] +
  rate_dev_macro[s', r, r'])`` for r' != r, 0 for staying: one base row per rate stance, shifted by the
  balance-sheet stance and by the new macro regime through non-centred deviations pooled with a learned
  spread ``rate_tau`` (additive, so a rare combination such as deflationary + QT borrows strength from
  every month with QT and every deflationary month);
* ``P(B' | B, R, S')``: the same with the roles of the instruments swapped (``bs_*``).

The two instruments move simultaneously given (r, b, s'): each reacts to the other's *current* stance
and the *new* macro regime.  No move is a structural zero: a move that skips the middle state (cutting
<-> hiking, QT <-> QE) gets a lower prior mean logit (``rate_jump_logit``, ``bs_jump_logit``), and the
prior means are set from expected durations, so a prior is stated in months.

Emissions (a missing month simply drops out of the likelihood):

* CPI inflation ``cpi_mom_ann``: AR(1) around the regime mean, regime-specific scale (Student-t);
* policy-rate change: Student-t on the rate stance, ordered locations cutting < hold < hiking, a CIR-like
  scale multiplier and the reserve-targeting era's own scale; in a month at the zero lower bound (rate
  below ``zlb`` this month and last) the change drops out and the month is instead the observation
  "the rate did not move": log-density 0 under hold, ``priors.zlb_move_logit`` under cutting or hiking
  (with a single policy chain this month had to stay silent, or the floor read as "hold" against QE;
  with the balance sheet on its own chain, hold + QE is what 2009-15 was);
* balance-sheet growth: Student-t on the balance-sheet stance, ordered QT < steady < QE; the pre-2002
  BOGMBASE proxy gets its own shift and scale;
* log small-cap volume: AR(1) around a linear trend whose level is shifted by the macro regime, the rate
  stance and the balance-sheet stance (moderate, hold and steady are the reference levels, fixed at 0);
  the RUT-based proxy period gets its own level shift.

What the sample at the as-of cannot inform is decided from the data, never by hand per date:

* :func:`inactive_params`: parameters with no data at all (no reserve-targeting month, no proxy month,
  no volume) are fixed at neutral values;
* :func:`prior_sds`: parameters of a state that an observable proxy shows too rarely are pinned to
  their priors (prior sd x ``PIN_FACTOR``): a macro regime's volume shift needs ``MIN_VOLUME_MONTHS``
  months with volume whose CPI y/y is nearest that regime's prior mean; a rate stance's volume shift as
  many volume months whose rate change is nearest its prior mean; a balance-sheet stance's volume shift
  as many volume months with its balance-sheet signature; the QE state's emission parameters
  ``MIN_QE_MONTHS`` months of balance-sheet growth nearer the QE prior mean than the steady one, the QT
  state's ``MIN_QT_MONTHS`` months whose 3-month mean growth is nearer the QT prior mean (one negative
  month of noise is not QT); an outer macro regime's CPI scale and gap ``MIN_REGIME_MONTHS`` months
  whose CPI y/y is nearest its prior mean.  So a state never observed (QE before 2008, QT before 2017)
  keeps the meaning its prior gives it and its label cannot swap.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, fields

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

CUT, HOLD, HIKE = range(3)  # rate stance roles
QT, STEADY, QE = range(3)  # balance-sheet stance roles
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


def offdiag_logit_means(duration: float, penalties) -> np.ndarray:
    """Off-diagonal logits ``m + penalties`` (stay = 0) whose total odds of leaving give an expected
    duration of ``duration`` months: ``sum(exp(m + pen)) = p_leave / (1 - p_leave)``."""
    pen = np.asarray(penalties, dtype=float)
    p_leave = 1.0 / max(duration, 1.0 + 1e-9)
    return np.log(p_leave / (1.0 - p_leave) / np.exp(pen).sum()) + pen


def instrument_prior_means(durations, jump: float) -> np.ndarray:
    """(3, 2) prior means of an instrument's off-diagonal logits (row = from, columns = the other two
    states in order): a move skipping the middle state (0 <-> 2) gets the extra logit ``jump``."""
    out = np.empty((3, 2))
    for i, dur in enumerate(durations):
        to = [j for j in range(3) if j != i]
        out[i] = offdiag_logit_means(dur, [jump if abs(i - j) == 2 else 0.0 for j in to])
    return out


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


def _macro_log_probs(xp, p: dict, nS: int):
    """(s, r, b, s') log P(S' = s' | S = s, R = r, B = b)."""
    a = _scatter_offdiag(xp, p["macro_offdiag"], nS)  # (s, s')
    eff = p["macro_policy_sd"] * (p["macro_rate_raw"][:, None, :] + p["macro_bs_raw"][None, :, :])
    off = (1.0 - np.eye(nS))[:, None, None, :]
    logits = a[:, None, None, :] + eff[None, :, :, :] * off  # (s, r, b, s')
    return B.log_softmax(xp, logits, axis=-1)


def _instrument_log_probs(xp, p: dict, name: str, other: str, nS: int, drivers=None):
    """([t,] other, s', own, own') log P(own' | own, other, S' = s') of instrument ``name``.

    Logits ``base[own, own'] + tau * (dev_<other>[other, own, own'] + dev_macro[s', own, own'])`` off
    the diagonal, 0 on it; with ``drivers`` (T-1,) a move into own' also gets ``tvtp[own'] * x_t``.
    """
    n = n_other = 3
    dev = p[f"{name}_dev_{other}"][:, None] + p[f"{name}_dev_macro"][None, :]  # (other, s', n, n-1)
    vals = p[f"{name}_base"][None, None] + p[f"{name}_tau"] * dev
    logits = _scatter_offdiag(xp, vals, n, lead=(n_other, nS))
    if drivers is None:
        return B.log_softmax(xp, logits, axis=-1)
    shift = p[f"{name}_tvtp"][None, :] * (1.0 - np.eye(n))  # only moves are shifted
    x = drivers[:, None, None, None, None]  # NumPy or a pm.Data tensor
    return B.log_softmax(xp, logits[None] + x * shift[None, None, None], axis=-1)


def joint_log_transition(xp, p: dict, cfg: ModelConfig, drivers: np.ndarray | None = None):
    """Log transition of the joint chain from parameter dict ``p`` (NumPy or PyTensor).

    (K, K) with row = from, ``k = (s * 3 + r) * 3 + b``; with ``drivers`` (T-1,) (standardised lagged
    inflation, the optional time-varying instrument transitions) (T-1, K, K)::

        log P[(s, r, b) -> (s', r', b')] = log P(s' | s, r, b) + log P(r' | r, b, s')
                                           + log P(b' | b, r, s')
    """
    nS, K = cfg.n_macro, cfg.n_states
    ps = _macro_log_probs(xp, p, nS)  # (s, r, b, s')
    pr = _instrument_log_probs(xp, p, "rate", "bs", nS, drivers)  # ([t], b, s', r, r')
    pb = _instrument_log_probs(xp, p, "bs", "rate", nS, drivers)  # ([t], r, s', b, b')
    if drivers is None:
        pr = xp.transpose(pr, (2, 0, 1, 3))[None, :, :, :, :, None]  # (1, r, b, s', r', 1)
        pb = xp.transpose(pb, (0, 2, 1, 3))[None, :, :, :, None, :]  # (1, r, b, s', 1, b')
        return (ps[:, :, :, :, None, None] + pr + pb).reshape((K, K))
    n_t = drivers.shape[0]
    pr = xp.transpose(pr, (0, 3, 1, 2, 4))[:, None, :, :, :, :, None]  # (t, 1, r, b, s', r', 1)
    pb = xp.transpose(pb, (0, 1, 3, 2, 4))[:, None, :, :, :, None, :]  # (t, 1, r, b, s', 1, b')
    return (ps[None, :, :, :, :, None, None] + pr + pb).reshape((n_t, K, K))


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
    q["rate_mean"] = B.stack(xp, [h - p["rate_gap"][0], h, h + p["rate_gap"][1]])  # cut, hold, hike
    m = p["bs_mid"]
    q["bs_mean"] = B.stack(xp, [m - p["bs_gap"][0], m, m + p["bs_gap"][1]])  # QT, steady, QE
    q["macro_rate_effect"] = p["macro_policy_sd"] * p["macro_rate_raw"]
    q["macro_bs_effect"] = p["macro_policy_sd"] * p["macro_bs_raw"]
    return q


def at_zero_lower_bound(d: MacroData, cfg: ModelConfig) -> np.ndarray:
    """(T,) bool: the policy rate is below ``cfg.zlb`` this month and last (unknown = False)."""
    with np.errstate(invalid="ignore"):
        return (d.rate < cfg.zlb) & (d.rate_lag < cfg.zlb)


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
    zlb: np.ndarray  # (T, 1) 1.0 in a month at the zero lower bound
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
    key = (level, cfg.zlb)
    hit = _INPUTS.get(id(d))
    if hit is not None and hit[0]() is d and hit[1] == key:
        return hit[2]

    def col(a):
        return np.nan_to_num(a)[:, None]

    out = _EmissionInputs(
        cpi_ok=np.isfinite(d.cpi) & np.isfinite(d.cpi_lag), cpi=col(d.cpi), cpi_lag=col(d.cpi_lag),
        rate_ok=np.isfinite(d.rate_change), rate=col(d.rate_change),
        rate_mult=rate_vol_multiplier(d.rate_lag, level)[:, None], era=d.rate_era[:, None],
        zlb=at_zero_lower_bound(d, cfg).astype(float)[:, None],
        bs_ok=np.isfinite(d.bs_growth), bs=col(d.bs_growth), bs_proxy=d.bs_proxy[:, None],
        vol_ok=np.isfinite(d.vol) & np.isfinite(d.vol_lag), vol=col(d.vol), vol_lag=col(d.vol_lag),
        trend=d.trend[:, None], vol_proxy=d.vol_proxy[:, None],
        # last month's mean carries last month's proxy flag: the splice month's jump is the proxy shift
        proxy_change=(d.vol_proxy - np.concatenate([d.vol_proxy[:1], d.vol_proxy[:-1]]))[:, None],
        step=float(d.trend[1] - d.trend[0]) if d.T > 1 else 0.0,
    )
    if len(_INPUTS) > 256:
        _INPUTS.clear()
    _INPUTS[id(d)] = (weakref.ref(d), key, out)
    return out


def joint_log_emission(xp, p: dict, d: MacroData, cfg: ModelConfig, inputs: _EmissionInputs | None = None):
    """(T, K) log emission densities for every joint state; 0 where a series is missing.

    CPI depends on the macro regime only, the rate change on the rate stance only and balance-sheet
    growth on the balance-sheet stance only, so they are evaluated on (T, n_macro), (T, 3) and (T, 3)
    and broadcast onto the joint states; volume depends on all three.  ``inputs``: the data side
    (default: from ``d``), e.g. as ``pm.Data`` tensors in the PyMC model.
    """
    nS, nR, nB = cfg.n_macro, cfg.n_rate, cfg.n_bs
    nu = cfg.priors.student_nu
    p = derive(xp, p, cfg)
    e = inputs if inputs is not None else _emission_inputs(d, cfg)

    # CPI: AR(1) around the macro-regime mean -> (T, nS)
    mu = p["cpi_mean"][None, :]
    lp = _student_logpdf(xp, e.cpi, mu + p["cpi_ar"] * (e.cpi_lag - mu), p["cpi_sigma"][None, :], nu)
    macro_part = _masked(xp, e.cpi_ok, lp)

    # policy-rate change (NaN at the zero lower bound) on the rate stance -> (T, 3)
    mult = e.rate_mult * (1.0 + e.era * (p["rate_era_scale"] - 1.0))
    lp = _student_logpdf(xp, e.rate, p["rate_mean"][None, :], p["rate_scale"][None, :] * mult, nu)
    zlb_move = np.array([cfg.priors.zlb_move_logit, 0.0, cfg.priors.zlb_move_logit])[None, :]
    rate_part = _masked(xp, e.rate_ok, lp) + e.zlb * zlb_move  # at the floor: the rate did not move

    # balance-sheet growth on the balance-sheet stance, the proxy period's own shift/scale -> (T, 3)
    loc = p["bs_mean"][None, :] + e.bs_proxy * p["bs_proxy_shift"]
    scale = p["bs_scale"][None, :] * (1.0 + e.bs_proxy * (p["bs_proxy_scale"] - 1.0))
    bs_part = _masked(xp, e.bs_ok, _student_logpdf(xp, e.bs, loc, scale, nu))

    T = e.cpi.shape[0]
    total = (macro_part[:, :, None, None] + rate_part[:, None, :, None]
             + bs_part[:, None, None, :]).reshape((T, nS * nR * nB))

    # log small-cap volume: AR(1) around trend + joint-state levels -> (T, K)
    lev = _vol_levels(xp, p, cfg)  # (K,)
    m_t = p["vol_level"] + (e.trend * p["vol_trend"] + e.vol_proxy * p["vol_proxy_shift"]) + lev[None, :]
    m_lag = m_t - p["vol_trend"] * e.step - e.proxy_change * p["vol_proxy_shift"]
    lp = _normal_logpdf(xp, e.vol, m_t + p["vol_ar"] * (e.vol_lag - m_lag), p["vol_sigma"])
    return total + _masked(xp, e.vol_ok, lp)


def joint_log_emission_batch(ps: list[dict], d: MacroData, cfg: ModelConfig) -> np.ndarray:
    """(N, T, K) :func:`joint_log_emission` of N draws at once (NumPy; ``ps`` are derived parameter
    dicts, e.g. from :func:`numpy_params`).  The same formulas with a leading draw axis: the update
    evaluates its new months under every posterior draw, where one call per draw cost ~150 us."""
    nS, nR, nB = cfg.n_macro, cfg.n_rate, cfg.n_bs
    nu = cfg.priors.student_nu
    e = _emission_inputs(d, cfg)
    P = {k: np.stack([np.asarray(q[k], dtype=float) for q in ps]) for k in (
        "cpi_mean", "cpi_ar", "cpi_sigma", "rate_mean", "rate_scale", "rate_era_scale", "bs_mean",
        "bs_scale", "bs_proxy_shift", "bs_proxy_scale", "vol_level", "vol_trend", "vol_proxy_shift",
        "vol_ar", "vol_sigma")}
    N, T = len(ps), d.T

    def per_state(k):  # (N, 1, k)
        return P[k][:, None, :]

    def scalar(k):  # (N, 1, 1)
        return P[k][:, None, None]

    def masked(ok, lp):
        return np.where(ok[None, :, None], lp, 0.0)

    mu = per_state("cpi_mean")
    macro_part = masked(e.cpi_ok, _student_logpdf(np, e.cpi[None], mu + scalar("cpi_ar") * (e.cpi_lag[None] - mu),
                                                    per_state("cpi_sigma"), nu))
    mult = e.rate_mult[None] * (1.0 + e.era[None] * (scalar("rate_era_scale") - 1.0))
    lp = _student_logpdf(np, e.rate[None], per_state("rate_mean"), per_state("rate_scale") * mult, nu)
    zlb_move = np.array([cfg.priors.zlb_move_logit, 0.0, cfg.priors.zlb_move_logit])
    rate_part = masked(e.rate_ok, lp) + e.zlb[None] * zlb_move
    loc = per_state("bs_mean") + e.bs_proxy[None] * scalar("bs_proxy_shift")
    scale = per_state("bs_scale") * (1.0 + e.bs_proxy[None] * (scalar("bs_proxy_scale") - 1.0))
    bs_part = masked(e.bs_ok, _student_logpdf(np, e.bs[None], loc, scale, nu))
    total = (macro_part[:, :, :, None, None] + rate_part[:, :, None, :, None]
             + bs_part[:, :, None, None, :]).reshape((N, T, nS * nR * nB))
    lev = np.stack([_vol_levels(np, q, cfg) for q in ps])[:, None, :]  # (N, 1, K)
    m_t = scalar("vol_level") + (e.trend[None] * scalar("vol_trend")
                                 + e.vol_proxy[None] * scalar("vol_proxy_shift")) + lev
    m_lag = m_t - scalar("vol_trend") * e.step - e.proxy_change[None] * scalar("vol_proxy_shift")
    lp = _normal_logpdf(np, e.vol[None], m_t + scalar("vol_ar") * (e.vol_lag[None] - m_lag),
                        scalar("vol_sigma"))
    return total + masked(e.vol_ok, lp)


def _with_zero(xp, shifts, ref: int):
    """Insert the reference level 0 at position ``ref`` of a vector of shifts."""
    return B.concat(xp, [shifts[:ref], xp.zeros(1), shifts[ref:]])


def _vol_levels(xp, p, cfg: ModelConfig):
    """(K,) volume level shifts: macro (middle regime = 0) + rate (hold = 0) + bs (steady = 0)."""
    mac = _with_zero(xp, p["vol_macro"], cfg.n_macro // 2)
    rate = _with_zero(xp, p["vol_rate"], HOLD)
    bs = _with_zero(xp, p["vol_bs"], STEADY)
    return (mac[:, None, None] + rate[None, :, None] + bs[None, None, :]).reshape((cfg.n_states,))


# --------------------------------------------------------------------------------------------------
# The PyMC model
# --------------------------------------------------------------------------------------------------

def coords(cfg: ModelConfig, data: MacroData | None = None) -> dict[str, list]:
    ref = cfg.n_macro // 2
    ml, rl, bl = cfg.macro_labels, cfg.rate_labels, cfg.bs_labels
    c = {
        "macro": list(ml),
        "macro_to": [f"leave_{i}" for i in range(cfg.n_macro - 1)],
        "rate": list(rl),
        "rate_to": ["leave_0", "leave_1"],
        "bs": list(bl),
        "bs_to": ["leave_0", "leave_1"],
        "cpi_gap_dim": [f"{a}->{b}" for a, b in zip(ml, ml[1:], strict=False)],
        "rate_gap_dim": [f"{rl[HOLD]}-{rl[CUT]}", f"{rl[HIKE]}-{rl[HOLD]}"],
        "bs_gap_dim": [f"{bl[STEADY]}-{bl[QT]}", f"{bl[QE]}-{bl[STEADY]}"],
        "rate_nonref": [lab for i, lab in enumerate(rl) if i != HOLD],
        "bs_nonref": [lab for i, lab in enumerate(bl) if i != STEADY],
        "macro_nonref": [lab for i, lab in enumerate(ml) if i != ref],
        "state": cfg.joint_labels(),
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
            "vol_rate": np.zeros(2),
            "vol_bs": np.zeros(2),
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
# MIN_QE_MONTHS QE-like months for the QE state's emission parameters, MIN_QT_MONTHS QT-like months
# for the QT state's.  Otherwise their prior sd shrinks by PIN_FACTOR ("pinned": the state keeps the
# meaning its prior gives it).
MIN_VOLUME_MONTHS = 24
MIN_QE_MONTHS = 12
# QT-like months also come from the unwinding of crisis facilities and noise (real panel, steady
# prior N(0.3, 0.15) %/month: 12 by 2012-12 and 2016-12 before any QT programme; 24 by 2018-12, 30 by
# 2019-06, 32 from 2019-09 to 2022-06, 35 at 2022-09, 36 at 2022-10, 47 by 2023-12).  With 24 the
# 2018-12 and 2019-06 fits split their chains over the QT state's gap and its leaving odds (r-hat
# 1.018-1.028, also after the retry): one QT episode does not pin down both a QT pace and a "steady"
# pace.  36 keeps the first QT episode at the prior's pace (-0.6 %/month, what 2018-19 shrank at) and
# frees it in 2022-10, once the 2022 programme is running; while the QT state is pinned, so are the
# balance-sheet chain's odds of entering and leaving it (``bs_base_sds``).
MIN_QT_MONTHS = 36
QT_EVIDENCE_MONTHS = 3  # QT evidence reads the trailing mean of this many months of bs growth
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


def _bs_signature(d: MacroData, cfg: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """(T,) bool each: QE-like months (growth nearer the QE prior mean than the steady one) and
    QT-like months (growth and its trailing ``QT_EVIDENCE_MONTHS``-month mean both nearer the QT prior
    mean: the steady state's noise makes single months negative, a QT programme makes a run of them)."""
    qt, mid, qe = cfg.priors.bs_growth_mean
    g = d.bs_growth
    qe_like = np.isfinite(g) & (g > (mid + qe) / 2)
    run = pd.Series(g).rolling(QT_EVIDENCE_MONTHS, min_periods=QT_EVIDENCE_MONTHS).mean().to_numpy()
    qt_like = np.isfinite(run) & (run < (qt + mid) / 2) & (np.nan_to_num(g, nan=np.inf) < (qt + mid) / 2)
    return qe_like, qt_like


def state_evidence(d: MacroData, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Months of observable evidence per state, from the data (the states themselves are latent).

    * ``cpi_macro`` (n_macro,): months whose CPI y/y is nearest regime s's prior mean;
    * ``vol_macro`` (n_macro,): the same months restricted to those with volume;
    * ``vol_rate`` (3,): months with volume whose rate change is nearest a rate stance's prior mean;
    * ``vol_bs`` (3,): months with volume that are QT-like, neither, QE-like (:func:`_bs_signature`);
    * ``qe`` / ``qt`` (): QE-like / QT-like months outside the balance-sheet proxy period: the
      evidence for the QE / QT state's emission parameters;
    * ``volume`` (): months with volume.
    """
    pr = cfg.priors
    has_vol = np.isfinite(d.vol) & np.isfinite(d.vol_lag)
    yoy = d.cpi_yoy if d.cpi_yoy is not None else np.full(d.T, np.nan)
    regime = _nearest(yoy, pr.cpi_mean)
    qe_like, qt_like = _bs_signature(d, cfg)
    bs_state = np.where(qe_like, QE, np.where(qt_like, QT, STEADY))
    bs_state = np.where(np.isfinite(d.bs_growth), bs_state, -1)
    rate_state = _nearest(d.rate_change, pr.rate_change_mean)
    real = d.bs_proxy == 0
    return {
        "cpi_macro": np.array([np.sum(regime == s) for s in range(cfg.n_macro)]),
        "vol_macro": np.array([np.sum(has_vol & (regime == s)) for s in range(cfg.n_macro)]),
        "vol_rate": np.array([np.sum(has_vol & (rate_state == r)) for r in range(cfg.n_rate)]),
        "vol_bs": np.array([np.sum(has_vol & (bs_state == b)) for b in range(cfg.n_bs)]),
        "qe": np.array(np.sum(qe_like & real)),
        "qt": np.array(np.sum(qt_like & real)),
        "volume": np.array(np.sum(has_vol)),
    }


def prior_sds(d: MacroData, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Prior sds of the parameters whose prior follows the evidence (:func:`state_evidence`).

    An outer macro regime's CPI scale and gap with fewer than ``MIN_REGIME_MONTHS`` months of evidence,
    a volume level shift of a state with fewer than ``MIN_VOLUME_MONTHS`` months of evidence, the QE
    state's balance-sheet gap and scale while fewer than ``MIN_QE_MONTHS`` QE-like months exist and the
    QT state's while fewer than ``MIN_QT_MONTHS`` QT-like months exist, get ``PIN_FACTOR`` times their
    usual prior sd: such a state cannot absorb odd months by moving its parameters, so labels cannot
    swap.
    """
    pr = cfg.priors
    ev = state_evidence(d, cfg)
    ref = cfg.n_macro // 2

    def sd(usual: float, months) -> np.ndarray:
        m = np.asarray(months)
        return np.where(m >= MIN_VOLUME_MONTHS, usual, usual * PIN_FACTOR)

    qe_sd = 1.0 if ev["qe"] >= MIN_QE_MONTHS else PIN_FACTOR
    qt_sd = 1.0 if ev["qt"] >= MIN_QT_MONTHS else PIN_FACTOR
    rare = ev["cpi_macro"] < MIN_REGIME_MONTHS  # a regime's CPI scale and outer gap are pinned
    rare[ref] = False
    outer = [i if i < ref else i + 1 for i in range(cfg.n_macro - 1)]  # gap i's non-reference side
    return {
        "bs_base": bs_base_sds(ev),
        "cpi_sigma": np.where(rare, pr.scale_sd * PIN_FACTOR, pr.scale_sd),
        "cpi_gap": np.where(rare[outer], pr.cpi_gap_sd * PIN_FACTOR, pr.cpi_gap_sd),
        "vol_macro": sd(VOL_SHIFT_SD, np.delete(ev["vol_macro"], ref)),
        "vol_rate": sd(VOL_SHIFT_SD, np.delete(ev["vol_rate"], HOLD)),
        "vol_bs": sd(VOL_SHIFT_SD, np.delete(ev["vol_bs"], STEADY)),
        "rate_scale": np.full(cfg.n_rate, pr.scale_sd),
        "bs_scale": pr.scale_sd * np.array([qt_sd, 1.0, qe_sd]),
        "bs_gap": pr.gap_sd * np.array([qt_sd, qe_sd]),
        "vol_trend": np.array(1.0 if ev["volume"] >= MIN_TREND_MONTHS else PIN_FACTOR),
    }


VOL_SHIFT_SD = 0.3
BASE_SD = 1.5  # prior sd of an instrument's base transition logits (rate_base, bs_base)


def bs_base_sds(ev: dict) -> np.ndarray:
    """(3, 2) prior sds of ``bs_base`` (row = from, columns = the other two states in order).

    A move into or out of the QE (QT) state is pinned (``BASE_SD * PIN_FACTOR``) while the QE (QT)
    state's emission is pinned (fewer than ``MIN_QE_MONTHS`` / ``MIN_QT_MONTHS`` months of evidence):
    months that no observable places in a state cannot tell how often the chain enters or leaves it,
    and left free those odds wander with the barely informed rest of the chain (1990-01, 2008-01 and
    2008-04 split their chains on ``bs_base[steady, leave_0]`` / ``bs_base[QT, leave_0]``)."""
    rows, cols = _offdiag_index(3)
    unsure = {QT} if ev["qt"] < MIN_QT_MONTHS else set()
    if ev["qe"] < MIN_QE_MONTHS:
        unsure.add(QE)
    pinned = np.array([r in unsure or c in unsure for r, c in zip(rows, cols, strict=True)]).reshape(3, 2)
    return np.where(pinned, BASE_SD * PIN_FACTOR, BASE_SD)


def data_scales(d: MacroData) -> dict[str, float]:
    v = d.vol[np.isfinite(d.vol)]
    return {
        "vol_mean": float(v.mean()) if v.size else 17.0,
        "vol_sd": float(v.std()) if v.size > 1 else 1.0,
    }


def model_data(d: MacroData, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Every number of the PyMC model that comes from the data, by its ``pm.Data`` name.

    ``obs_*``: the emission inputs (first axis = time); ``prior_sd_*``: the evidence-dependent prior
    sds (:func:`prior_sds`); ``scale_*``: :func:`data_scales`; ``fixed_*``: the values of the
    parameters the data cannot inform (:func:`inactive_params`); ``obs_drivers``: the TVTP drivers.
    Two panels with the same :func:`model_structure` give models that differ only in these values, so
    one compiled model serves both (``pm.set_data`` / nutpie's ``with_data``).
    """
    e = _emission_inputs(d, cfg)
    out = {f"obs_{f.name}": np.asarray(getattr(e, f.name)) for f in fields(e)}
    out |= {f"prior_sd_{k}": np.asarray(v, dtype=float) for k, v in prior_sds(d, cfg).items()}
    out |= {f"scale_{k}": np.asarray(v, dtype=float) for k, v in data_scales(d).items()}
    out |= {f"fixed_{k}": np.asarray(v, dtype=float) for k, v in inactive_params(d, cfg).items()}
    if cfg.tvtp:
        out["obs_drivers"] = np.asarray(transition_drivers(d, cfg), dtype=float)
    return out


def model_structure(d: MacroData, cfg: ModelConfig) -> tuple:
    """What a built model depends on besides :func:`model_data`: the model settings and which
    parameters are fixed rather than sampled (and so the free parameters and their shapes)."""
    return (repr(cfg), tuple(sorted(inactive_params(d, cfg))))


def _data_vars(values: dict[str, np.ndarray], shared: bool) -> dict:
    """``pm.Data`` (time series may change length) or constants for each value (in a model context)."""
    if not shared:
        return {name: pt.as_tensor_variable(v) for name, v in values.items()}
    out = {}
    for name, v in values.items():
        series = name.startswith("obs_") and v.ndim > 0
        out[name] = pm.Data(name, v, shape=(None, *v.shape[1:]) if series else v.shape)
    return out


def build_macro_model(d: MacroData, cfg: ModelConfig, *, shared_data: bool = False) -> tuple[pm.Model, dict]:
    """The PyMC model and handles to its (log_init, log_transition, log_emission) tensors.

    ``shared_data``: the data enter as ``pm.Data`` (:func:`model_data`), so the model can be refilled
    with another panel of the same :func:`model_structure` and sampled without compiling it again
    (:func:`reusable_model`).  Otherwise they are constants: nutpie's numba compile of that graph is
    cached on disk across processes (19 s warm against 68 s for the ``pm.Data`` graph, which is
    compiled afresh in every process), which suits a single fit."""
    K = cfg.n_states
    active = set(PARAM_GROUPS) - set(inactive_params(d, cfg))
    with pm.Model(coords=coords(cfg)) as model:
        D = _data_vars(model_data(d, cfg), shared_data)
        inputs = _EmissionInputs(**{f.name: D[f"obs_{f.name}"] for f in fields(_EmissionInputs)})
        psd = {k.removeprefix("prior_sd_"): v for k, v in D.items() if k.startswith("prior_sd_")}
        sc = {k.removeprefix("scale_"): v for k, v in D.items() if k.startswith("scale_")}
        p: dict = {}
        p |= _transition_priors(cfg, psd)
        p |= _emission_priors(cfg, psd, active)
        q = derive(pt, p, cfg)
        pm.Deterministic("cpi_mean", q["cpi_mean"], dims="macro")
        pm.Deterministic("rate_mean", q["rate_mean"], dims="rate")
        pm.Deterministic("bs_mean", q["bs_mean"], dims="bs")
        pm.Deterministic("macro_rate_effect", q["macro_rate_effect"], dims=("rate", "macro"))
        pm.Deterministic("macro_bs_effect", q["macro_bs_effect"], dims=("bs", "macro"))
        p |= _volume_priors(active, sc, psd)
        p |= {k.removeprefix("fixed_"): v for k, v in D.items() if k.startswith("fixed_")}

        log_init = pt.as_tensor_variable(np.full(K, -np.log(K)))
        if cfg.tvtp:
            p["rate_tvtp"] = pm.Normal("rate_tvtp", 0.0, cfg.priors.tvtp_sd, dims="rate")
            p["bs_tvtp"] = pm.Normal("bs_tvtp", 0.0, cfg.priors.tvtp_sd, dims="bs")
        log_trans = joint_log_transition(pt, p, cfg, drivers=D.get("obs_drivers"))
        log_em = joint_log_emission(pt, p, d, cfg, inputs)
        pm.Potential("loglik", hmm_logp(log_init, log_trans, log_em))
    return model, {"log_init": log_init, "log_transition": log_trans, "log_emission": log_em, "params": p}


_MODELS: dict[tuple, pm.Model] = {}  # model_structure -> the model built for it in this process


def reusable_model(d: MacroData, cfg: ModelConfig) -> pm.Model:
    """The model for ``d``: built once per :func:`model_structure` in this process, refilled with
    ``d``'s values (``pm.set_data``) after that, so the samplers' compiled code is reused (a backtest
    worker fits dozens of panels that differ only in their data)."""
    key = model_structure(d, cfg)
    model = _MODELS.get(key)
    if model is None:
        if len(_MODELS) >= 8:
            _MODELS.clear()
        model = _MODELS[key] = build_macro_model(d, cfg, shared_data=True)[0]
    else:
        pm.set_data(model_data(d, cfg), model=model)
    return model


def _transition_priors(cfg: ModelConfig, psd: dict) -> dict:
    """The transition parameters (inside a model context); prior means from the stated durations.

    Gamma(2, .) scales: zero density at 0 keeps NUTS out of the funnel's neck, while the data still
    decide how much the instruments move the macro odds and how far the rows of each instrument
    spread across the other instrument's stance and the macro regime.
    """
    nS, pr, dur = cfg.n_macro, cfg.priors, cfg.durations
    mu_s = np.array([offdiag_logit_mean(x, nS) for x in dur.macro])
    p = {
        "macro_offdiag": pm.Normal("macro_offdiag", mu_s[:, None] * np.ones((nS, nS - 1)), 1.0,
                                   dims=("macro", "macro_to")),
        "macro_policy_sd": pm.Gamma("macro_policy_sd", alpha=2.0, beta=2.0 / 0.5),
        "macro_rate_raw": pm.Normal("macro_rate_raw", 0.0, 1.0, dims=("rate", "macro")),
        "macro_bs_raw": pm.Normal("macro_bs_raw", 0.0, 1.0, dims=("bs", "macro")),
    }
    for name, other, jump in (("rate", "bs", pr.rate_jump_logit), ("bs", "rate", pr.bs_jump_logit)):
        mu = instrument_prior_means(getattr(dur, name), jump)
        p[f"{name}_base"] = pm.Normal(f"{name}_base", mu, psd.get(f"{name}_base", BASE_SD),
                                      dims=(name, f"{name}_to"))
        p[f"{name}_tau"] = pm.Gamma(f"{name}_tau", alpha=2.0, beta=2.0 / pr.pooling_scale)
        p[f"{name}_dev_{other}"] = pm.Normal(f"{name}_dev_{other}", 0.0, 1.0,
                                             dims=(other, name, f"{name}_to"))
        p[f"{name}_dev_macro"] = pm.Normal(f"{name}_dev_macro", 0.0, 1.0,
                                           dims=("macro", name, f"{name}_to"))
    return p


def _emission_priors(cfg: ModelConfig, psd: dict, active: set[str]) -> dict:
    """The CPI, rate-change and balance-sheet parameters (inside a model context)."""
    pr, ref = cfg.priors, cfg.n_macro // 2
    cm, rm, bm = (np.asarray(x) for x in (pr.cpi_mean, pr.rate_change_mean, pr.bs_growth_mean))
    p = {
        "cpi_ref": pm.Normal("cpi_ref", cm[ref], pr.cpi_ref_sd),
        "cpi_gap": pm.LogNormal("cpi_gap", np.log(np.diff(cm)), psd["cpi_gap"], dims="cpi_gap_dim"),
        "cpi_ar": pm.Beta("cpi_ar", 2.0, 3.0),
        "cpi_sigma": pm.LogNormal("cpi_sigma", np.log(np.asarray(pr.cpi_sigma)), psd["cpi_sigma"],
                                  dims="macro"),
        "rate_hold": pm.Normal("rate_hold", rm[1], pr.rate_hold_sd),
        "rate_gap": pm.LogNormal("rate_gap", np.log(np.diff(rm)), pr.gap_sd, dims="rate_gap_dim"),
    }
    if "rate_era_scale" in active:
        p["rate_era_scale"] = pm.LogNormal("rate_era_scale", np.log(3.0), 0.5)
    p["rate_scale"] = pm.LogNormal("rate_scale", np.log(np.asarray(pr.rate_scale)),
                                   psd["rate_scale"], dims="rate")
    p["bs_mid"] = pm.Normal("bs_mid", bm[1], pr.bs_mid_sd)
    p["bs_gap"] = pm.LogNormal("bs_gap", np.log(np.diff(bm)), psd["bs_gap"], dims="bs_gap_dim")
    p["bs_scale"] = pm.LogNormal("bs_scale", np.log(np.asarray(pr.bs_scale)), psd["bs_scale"],
                                 dims="bs")
    if "bs_proxy_shift" in active:
        p["bs_proxy_shift"] = pm.Normal("bs_proxy_shift", 0.0, 0.5)
        p["bs_proxy_scale"] = pm.LogNormal("bs_proxy_scale", 0.0, 0.5)
    return p


def _volume_priors(active: set[str], sc: dict, psd: dict) -> dict:
    """The volume parameters that the data inform (inside a model context)."""
    p = {}
    if "vol_level" in active:
        p["vol_level"] = pm.Normal("vol_level", sc["vol_mean"], 2.0 * sc["vol_sd"] + 0.5)
        p["vol_trend"] = pm.Normal("vol_trend", 0.0, psd["vol_trend"])
        p["vol_rate"] = pm.Normal("vol_rate", 0.0, psd["vol_rate"], dims="rate_nonref")
        p["vol_bs"] = pm.Normal("vol_bs", 0.0, psd["vol_bs"], dims="bs_nonref")
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
    K = cfg.n_states
    return (
        np.full(K, -np.log(K)),
        joint_log_transition(np, p, cfg, drivers=transition_drivers(d, cfg)),
        joint_log_emission(np, p, d, cfg),
    )

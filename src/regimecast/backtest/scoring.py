"""Scores for probability and ensemble forecasts, calibration summaries, and comparison tests.

Binary events (``y`` in {0, 1}, forecast probability ``p``):

* Brier score ``(p - y)^2`` and log score ``-log p(y)`` (``scoringrules``), lower is better.  The log
  score of an ensemble probability of exactly 0 or 1 that turns out wrong is infinite; probabilities
  are clipped to ``[floor, 1 - floor]`` first (``LOG_FLOOR``, stated in every table that uses it).
* Murphy's decomposition of the mean Brier score into reliability - resolution + uncertainty over
  probability bins, and a reliability table with consistency bands (the range of observed
  frequencies a perfectly calibrated forecaster would produce in each bin, by resampling).

Series (observation ``y``, ensemble ``x`` of simulated values): CRPS of the ensemble
(``scoringrules.crps_ensemble``) and the PIT value ``mean(x <= y)`` (randomised at ties).

Comparisons: skill ``1 - S_model / S_baseline`` and the Diebold-Mariano test on the score
differences with a Newey-West (Bartlett) long-run variance whose lag covers the overlap of the
forecast horizons (``h - 1`` origins), with the Harvey-Leybourne-Newbold small-sample correction and
Student-t reference distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scoringrules as sr
from scipy import stats

LOG_FLOOR = 0.01


def _check_binary(p, y) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=float)
    if p.shape != y.shape:
        raise ValueError(f"forecasts {p.shape} and outcomes {y.shape} differ in shape")
    if np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise ValueError("binary outcomes must be 0 or 1")
    return p, y


def brier(p, y) -> np.ndarray:
    """Per-forecast Brier score ``(p - y)^2``."""
    p, y = _check_binary(p, y)
    return np.asarray(sr.brier_score(y, p), dtype=float)


def log_score(p, y, *, floor: float = LOG_FLOOR) -> np.ndarray:
    """Per-forecast log score ``-log p(y)`` with ``p`` clipped to ``[floor, 1 - floor]``."""
    p, y = _check_binary(p, y)
    return np.asarray(sr.log_score(y, np.clip(p, floor, 1.0 - floor)), dtype=float)


def crps(y, ensemble) -> np.ndarray:
    """Per-forecast CRPS of an ensemble ``(n, m)`` against observations ``(n,)``."""
    y = np.asarray(y, dtype=float)
    x = np.asarray(ensemble, dtype=float)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"ensemble must be (n, m) with n = {y.shape[0]}, got {x.shape}")
    return np.asarray(sr.crps_ensemble(y, x, m_axis=-1), dtype=float)


def pit(y, ensemble, *, random_seed: int = 0) -> np.ndarray:
    """Randomised PIT values: ``P(X < y) + U * P(X = y)`` per forecast."""
    y = np.asarray(y, dtype=float)[:, None]
    x = np.asarray(ensemble, dtype=float)
    below = (x < y).mean(axis=1)
    ties = (x == y).mean(axis=1)
    u = np.random.default_rng(random_seed).uniform(size=below.shape)
    return below + u * ties


@dataclass(frozen=True)
class BrierDecomposition:
    """Murphy (1973): ``brier = reliability - resolution + uncertainty`` (exact for binned ``p``)."""

    brier: float
    reliability: float
    resolution: float
    uncertainty: float
    n: int


def _bin_index(p: np.ndarray, bins: int) -> np.ndarray:
    return np.minimum((p * bins).astype(int), bins - 1)


def brier_decomposition(p, y, *, bins: int = 10) -> BrierDecomposition:
    """Decompose the mean Brier score over ``bins`` equal-width probability bins.

    The identity holds exactly when every forecast equals its bin's mean forecast; with spread
    inside bins a within-bin variance term remains, reported in ``brier`` (the raw mean score).
    """
    p, y = _check_binary(p, y)
    idx = _bin_index(p, bins)
    ybar = y.mean()
    rel = res = 0.0
    for b in np.unique(idx):
        m = idx == b
        pk, ok = p[m].mean(), y[m].mean()
        rel += m.sum() * (pk - ok) ** 2
        res += m.sum() * (ok - ybar) ** 2
    n = len(p)
    return BrierDecomposition(
        brier=float(np.mean((p - y) ** 2)),
        reliability=rel / n,
        resolution=res / n,
        uncertainty=float(ybar * (1 - ybar)),
        n=n,
    )


def reliability_table(
    p, y, *, bins: int = 10, level: float = 0.9, n_boot: int = 2000, random_seed: int = 0
) -> pd.DataFrame:
    """Per bin: count, mean forecast, observed frequency, and the consistency band.

    The band is the central ``level`` range of observed frequencies when outcomes are drawn as
    Bernoulli(p) from the bin's own forecasts (Bröcker and Smith 2007): a calibrated forecaster's
    observed frequency falls outside it with probability ``1 - level``.
    """
    p, y = _check_binary(p, y)
    rng = np.random.default_rng(random_seed)
    idx = _bin_index(p, bins)
    rows = []
    for b in range(bins):
        m = idx == b
        if not m.any():
            continue
        sims = (rng.uniform(size=(n_boot, int(m.sum()))) < p[m]).mean(axis=1)
        lo, hi = np.quantile(sims, [(1 - level) / 2, (1 + level) / 2])
        rows.append(
            {
                "bin_lo": b / bins,
                "bin_hi": (b + 1) / bins,
                "n": int(m.sum()),
                "mean_forecast": float(p[m].mean()),
                "observed": float(y[m].mean()),
                "band_lo": float(lo),
                "band_hi": float(hi),
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Comparison:
    """Model vs baseline on the same origins (scores: lower is better)."""

    score_model: float
    score_baseline: float
    skill: float  # 1 - model / baseline
    dm_stat: float  # > 0: the model scores better
    p_value: float  # two-sided
    n: int
    lag: int


def newey_west_variance(d: np.ndarray, lag: int) -> float:
    """Long-run variance of the mean of ``d`` with Bartlett weights up to ``lag``."""
    d = np.asarray(d, dtype=float) - np.mean(d)
    n = len(d)
    v = float(d @ d) / n
    for k in range(1, min(lag, n - 1) + 1):
        w = 1.0 - k / (lag + 1.0)
        v += 2.0 * w * float(d[k:] @ d[:-k]) / n
    return v


def diebold_mariano(score_model, score_baseline, *, lag: int = 0) -> tuple[float, float]:
    """DM statistic (HLN-corrected) and two-sided p-value for equal expected scores.

    ``lag``: autocorrelation lags of the score differences to allow for (overlapping horizons:
    ``h - 1`` in units of the origin spacing).  A positive statistic favours the model.
    """
    d = np.asarray(score_baseline, dtype=float) - np.asarray(score_model, dtype=float)
    ok = np.isfinite(d)
    d = d[ok]
    n = len(d)
    if n < 3:
        return math.nan, math.nan
    var = newey_west_variance(d, lag)
    if var <= 0:
        return math.nan, math.nan
    dm = float(np.mean(d) / math.sqrt(var / n))
    h = lag + 1
    hln = math.sqrt(max((n + 1 - 2 * h + h * (h - 1) / n) / n, 1e-12))
    stat = dm * hln
    return stat, float(2 * stats.t.sf(abs(stat), df=n - 1))


def compare(score_model, score_baseline, *, lag: int = 0) -> Comparison:
    """Mean scores, skill and the DM test of a model against a baseline on paired origins."""
    a = np.asarray(score_model, dtype=float)
    b = np.asarray(score_baseline, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    sm, sb = float(a[ok].mean()), float(b[ok].mean())
    stat, pv = diebold_mariano(a[ok], b[ok], lag=lag)
    skill = 1.0 - sm / sb if sb > 0 else math.nan
    return Comparison(sm, sb, skill, stat, pv, int(ok.sum()), lag)

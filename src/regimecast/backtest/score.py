"""Score the origins of a backtest against what happened and against the baselines.

``score_backtest`` adds the realised outcomes and the baselines' forecasts to the origins table and
returns the scores table: one row per target x forecaster x score, with for the model rows the skill
against each baseline and a Diebold-Mariano test (HAC lag = overlapping origins of the target's window).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from regimecast.backtest import scoring as S
from regimecast.backtest.baselines import RuleOfThumb, climatology, random_walk_ensemble
from regimecast.backtest.chronology import Chronology
from regimecast.backtest.results import EVENT_TARGETS, SERIES_TARGETS


def add_outcomes_and_baselines(
    origins: pd.DataFrame,
    ensembles: dict[str, dict[str, np.ndarray]],
    chron: Chronology,
    panel: pd.DataFrame,
    *,
    rule: RuleOfThumb | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Realised outcomes (``y_<target>``) and baseline forecasts (``clim_``, ``rule_``) per origin;
    the random-walk ensembles by origin for the series targets."""
    rule = rule or RuleOfThumb()
    df = origins.copy()
    periods = [pd.Period(o, freq="M") for o in df["origin"]]
    for target, (event, months) in EVENT_TARGETS.items():
        df[f"y_{target}"] = [chron.outcome(event, t, months) for t in periods]
        df[f"clim_{target}"] = [climatology(chron, event, t, months) for t in periods]
    df["rule_qe_start_12m"] = [
        rule.qe_probability(_at(panel, "recession", t) == 1.0, _at(panel, "cpi_yoy", t)) for t in periods
    ]
    rw: dict[str, dict[str, np.ndarray]] = {}
    for target, (col, months) in SERIES_TARGETS.items():
        df[f"y_{target}"] = [_at(panel, col, t + months) for t in periods]
        for o, t in zip(df["origin"], periods, strict=True):
            ens = random_walk_ensemble(panel[col], t, months) if col in panel else np.array([np.nan])
            rw.setdefault(o, {})[target] = ens
    return df, rw


def _at(panel: pd.DataFrame, col: str, t: pd.Period) -> float:
    if col not in panel:
        return math.nan
    ts = t.to_timestamp()
    return float(panel[col].get(ts, math.nan)) if ts in panel.index else math.nan


def _lag(months: int, every: int) -> int:
    return max(int(math.ceil(months / every)) - 1, 0)


def score_events(df: pd.DataFrame, *, every: int = 3) -> pd.DataFrame:
    rows = []
    for target, (_, months) in EVENT_TARGETS.items():
        y = df[f"y_{target}"].to_numpy(dtype=float)
        forecasters = {"model": f"p_{target}", "climatology": f"clim_{target}"}
        if f"rule_{target}" in df:
            forecasters["rule_of_thumb"] = f"rule_{target}"
        ok = np.isfinite(y)
        for col in forecasters.values():
            ok &= np.isfinite(df[col].to_numpy(dtype=float)) if col in df else False
        if not ok.any():
            continue
        for score_name, fn in (("brier", S.brier), ("log", S.log_score)):
            scores = {f: fn(df.loc[ok, c].to_numpy(dtype=float), y[ok]) for f, c in forecasters.items()}
            rows += _rows(target, score_name, scores, _lag(months, every), y[ok].mean())
    return pd.DataFrame(rows)


def score_series(df: pd.DataFrame, ensembles, rw, *, every: int = 3) -> pd.DataFrame:
    rows = []
    for target, (_, months) in SERIES_TARGETS.items():
        y = df[f"y_{target}"].to_numpy(dtype=float)
        model = [ensembles[o].get(target, np.array([np.nan])) for o in df["origin"]]
        ok = np.isfinite(y) & np.array([np.isfinite(m).any() for m in model])
        if not ok.any():
            continue
        idx = np.flatnonzero(ok)
        s_model = np.array([S.crps(y[[i]], _finite(model[i])[None, :])[0] for i in idx])
        s_rw = np.array([S.crps(y[[i]], _finite(rw[df["origin"].iloc[i]][target])[None, :])[0] for i in idx])
        rows += _rows(target, "crps", {"model": s_model, "random_walk": s_rw}, _lag(months, every), math.nan)
    return pd.DataFrame(rows)


def _finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x[np.isfinite(x)] if np.isfinite(x).any() else np.array([np.nan])


def _rows(target, score_name, scores: dict[str, np.ndarray], lag: int, base_rate: float) -> list[dict]:
    rows = []
    model = scores["model"]
    for name, s in scores.items():
        row = {"target": target, "score": score_name, "forecaster": name, "mean": float(np.mean(s)),
               "n": int(len(s)), "event_rate": base_rate, "hac_lag": lag}
        if name == "model":
            for base, sb in scores.items():
                if base == "model":
                    continue
                c = S.compare(model, sb, lag=lag)
                row[f"skill_vs_{base}"] = c.skill
                row[f"dm_vs_{base}"] = c.dm_stat
                row[f"p_vs_{base}"] = c.p_value
        rows.append(row)
    return rows


def brier_components(df: pd.DataFrame) -> pd.DataFrame:
    """Murphy decomposition of the model's Brier score per event target."""
    rows = []
    for target in EVENT_TARGETS:
        y = df[f"y_{target}"].to_numpy(dtype=float)
        p = df[f"p_{target}"].to_numpy(dtype=float)
        ok = np.isfinite(y) & np.isfinite(p)
        if ok.sum() < 2:
            continue
        d = S.brier_decomposition(p[ok], y[ok])
        rows.append({"target": target, "brier": d.brier, "reliability": d.reliability,
                     "resolution": d.resolution, "uncertainty": d.uncertainty, "n": d.n})
    return pd.DataFrame(rows)

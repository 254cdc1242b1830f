"""The forecasts a user would make without the model, computed in real time at each origin.

* ``climatology``: how often the event happened within ``k`` months at the at-risk months of the record
  known by the origin (outcomes whose window closed by then), from 1960.  Before the first QE
  programme this is 0 for a QE start: the record held none.
* ``random_walk_ensemble``: the series' value at the origin plus every ``k``-month change observed up to
  the origin (an empirical random walk; for CPI y/y this is Atkeson and Ohanian's (2001) "inflation
  over the next year equals inflation over the last year", with its historical error spread).
* ``rule_of_thumb_qe``: the users' thesis as code: QE within 12 months is likely when a recession is
  under way and CPI y/y has fallen below ``low`` percent; unlikely while inflation is at or above
  ``sticky`` percent.  The recession flag is NBER's (USREC) as dated today, an advantage no real-time
  user had, so beating this baseline is harder, not easier.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from regimecast.backtest.chronology import Chronology


def climatology(chron: Chronology, event: str, origin: pd.Period, months: int, *,
                since: str = "1960-01") -> float:
    """Real-time base rate of ``event`` within ``months``: outcomes known at ``origin`` only."""
    known = replace(chron, complete_through=origin)
    past = pd.period_range(pd.Period(since, freq="M"), origin - months, freq="M")
    outcomes = np.array([known.outcome(event, t, months) for t in past])
    outcomes = outcomes[np.isfinite(outcomes)]
    return float(outcomes.mean()) if outcomes.size else float("nan")


def random_walk_ensemble(series: pd.Series, origin: pd.Period, months: int, *,
                         min_changes: int = 24) -> np.ndarray:
    """Value at the origin plus the ``months``-month changes seen up to the origin."""
    s = series.dropna()
    s = s[s.index.to_period("M") <= origin]
    if s.empty:
        return np.array([np.nan])
    last = float(s.iloc[-1])
    monthly = s.copy()
    monthly.index = monthly.index.to_period("M")
    monthly = monthly.reindex(pd.period_range(monthly.index[0], origin, freq="M"))
    changes = (monthly.shift(-months) - monthly).dropna().to_numpy()
    if changes.size < min_changes:
        return np.array([last])
    return last + changes


@dataclass(frozen=True)
class RuleOfThumb:
    """P(QE within 12 months) from the users' thesis; thresholds in CPI y/y percent."""

    low: float = 2.0
    sticky: float = 3.0
    p_bust: float = 0.5
    p_sticky: float = 0.02
    p_else: float = 0.1

    def qe_probability(self, in_recession: bool, cpi_yoy: float) -> float:
        if not np.isfinite(cpi_yoy):
            return self.p_else
        if in_recession and cpi_yoy < self.low:
            return self.p_bust
        if cpi_yoy >= self.sticky:
            return self.p_sticky
        return self.p_else

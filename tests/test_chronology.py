"""The shipped Fed chronology: valid, identical in checkout and package, consistent with the data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regimecast.backtest.baselines import RuleOfThumb, climatology, random_walk_ensemble
from regimecast.backtest.chronology import default_path, load_chronology
from regimecast.errors import DataError

REPO = Path(__file__).resolve().parents[1]


def test_packaged_chronology_is_the_checkout_copy():
    assert default_path().read_bytes() == (REPO / "data" / "chronology.csv").read_bytes()


def _monthly(path: Path) -> dict[str, float]:
    """month -> mean of the numeric values in that month (independent csv reading)."""
    sums: dict[str, list[float]] = {}
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        for row in reader:
            if len(row) >= 2 and row[1] not in ("", "."):
                sums.setdefault(row[0][:7], []).append(float(row[1]))
    return {m: sum(v) / len(v) for m, v in sums.items()}


def _shift(month: str, k: int) -> str:
    return str(pd.Period(month, freq="M") + k)


def test_rate_cycles_move_the_funds_rate(data_store):
    ff = _monthly(data_store / "fred" / "FEDFUNDS.csv")
    chron = load_chronology(REPO / "data" / "chronology.csv")
    for _, ep in chron.episodes.iterrows():
        if ep["type"] not in ("easing", "tightening"):
            continue
        start = str(ep["start"])
        before = ff[_shift(start, -1)]
        after = np.mean([ff[_shift(start, k)] for k in (1, 2, 3)])
        if ep["type"] == "easing":
            assert after < before, f"{ep['episode']}: funds rate {before} -> {after} did not fall"
        else:
            assert after > before, f"{ep['episode']}: funds rate {before} -> {after} did not rise"


def test_qe_grows_and_qt_shrinks_the_balance_sheet(data_store):
    walcl = _monthly(data_store / "fred" / "WALCL.csv")
    chron = load_chronology(REPO / "data" / "chronology.csv")
    for _, ep in chron.episodes.iterrows():
        start, end = str(ep["start"]), str(ep["end"]) if ep["end"] is not pd.NaT else ""
        if ep["type"] == "qe":
            growth = walcl[end] / walcl[_shift(start, -1)] - 1
            assert growth > 0.15, f"{ep['episode']}: balance sheet grew only {growth:.1%}"
        elif ep["type"] == "qt":
            change = walcl[end] / walcl[start] - 1
            assert change < -0.05, f"{ep['episode']}: balance sheet changed {change:.1%}"


def test_outcomes_and_risk_sets():
    chron = load_chronology()
    o = pd.Period
    assert chron.outcome("qe_start", o("2008-06", "M"), 6) == 1.0  # QE1 announced 2008-11
    assert chron.outcome("qe_start", o("2008-06", "M"), 3) == 0.0
    assert np.isnan(chron.outcome("qe_start", o("2009-06", "M"), 12))  # QE1 running: not at risk
    assert chron.outcome("first_cut", o("2023-12", "M"), 12) == 1.0  # 2024-09
    assert chron.outcome("first_cut", o("2023-08", "M"), 12) == 0.0
    assert np.isnan(chron.outcome("first_hike", o("2023-12", "M"), 12))  # after hikes: not at risk
    assert np.isnan(chron.outcome("first_cut", o("2025-06", "M"), 12))  # window not closed yet


def _write(tmp_path: Path, rows: list[str]) -> Path:
    p = tmp_path / "chron.csv"
    p.write_text("episode,type,start,end,start_date,end_date,basis,source,note\n" + "\n".join(rows) + "\n")
    return p


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (["a,easing,2001-13,,,,x,src,"], "YYYY-MM"),
        (["a,easing,2001-01,,,,x,,"], "source"),
        (["a,qe,2001-01,,,,x,src,"], "end month"),
        (["a,wobble,2001-01,,,,x,src,"], "type"),
        (["a,easing,2001-01,,,,x,src,", "b,easing,2002-01,,,,x,src,"], "alternate"),
        (["a,qe,2001-01,2002-01,,,x,src,", "b,qt,2001-06,2003-01,,,x,src,"], "before"),
        (["a,easing,2001-01,,,,x,src,", "a,tightening,2002-01,,,,x,src,"], "twice"),
    ],
)
def test_bad_chronology_rows_are_named(tmp_path, rows, match):
    with pytest.raises(DataError, match=match):
        load_chronology(_write(tmp_path, rows))


def test_climatology_uses_only_outcomes_known_at_the_origin(tmp_path):
    path = _write(tmp_path, ["t,tightening,2000-01,,,,x,src,", "e,easing,2000-07,,,,x,src,",
                             "t2,tightening,2001-01,,,,x,src,", "e2,easing,2003-01,,,,x,src,"])
    chron = load_chronology(path, complete_through="2010-01")
    # at origin 2002-06, 6-month windows known: origins 2000-01 .. 2001-12, at risk after a tightening
    origin = pd.Period("2002-06", "M")
    at_risk, hits = 0, 0
    for t in pd.period_range("2000-01", "2001-12", freq="M"):
        last = "tightening" if (pd.Period("2000-01", "M") <= t < pd.Period("2000-07", "M")) or t >= pd.Period("2001-01", "M") else "easing"
        if last == "tightening":
            at_risk += 1
            hits += int(t < pd.Period("2000-07", "M") <= t + 6)
    assert climatology(chron, "first_cut", origin, 6, since="2000-01") == pytest.approx(hits / at_risk)
    # the 2003-01 easing is not known at 2002-06: no origin after 2001-12 is used
    assert climatology(chron, "first_cut", origin, 6, since="2001-01") == 0.0


def test_random_walk_ensemble_and_rule_of_thumb():
    idx = pd.date_range("2000-01-01", periods=60, freq="MS")
    s = pd.Series(np.arange(60.0), index=idx)
    ens = random_walk_ensemble(s, pd.Period("2004-12", "M"), 12)
    np.testing.assert_allclose(ens, 59.0 + 12.0)
    assert ens.size == 60 - 12
    short = random_walk_ensemble(s, pd.Period("2001-06", "M"), 12)
    np.testing.assert_array_equal(short, [17.0])
    rule = RuleOfThumb()
    assert rule.qe_probability(True, 1.0) == rule.p_bust
    assert rule.qe_probability(True, 5.0) == rule.p_sticky
    assert rule.qe_probability(False, 2.5) == rule.p_else

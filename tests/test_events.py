"""Events on hand-made paths with known answers."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from synthetic import (
    CUTTING,
    HOLD,
    INFLATIONARY,
    MODERATE,
    QE,
    TIGHTENING,
    make_forecast,
    make_history,
    make_random_forecast,
)

from regimecast import schema
from regimecast.errors import ConfigError, DataError
from regimecast.events import (
    DEFAULT_EVENT_SPECS,
    IF_MET_OPTIONS,
    NAMED_EVENT_SPECS,
    StateRef,
    check_events,
    default_events,
    evaluate_events,
    event_label,
    event_summary_table,
    events_table,
    load_events,
)

H = 12


def _paths(n: int, fill: int = HOLD) -> np.ndarray:
    return np.full((n, H + 1), fill, dtype=np.int64)


def _qe_paths() -> np.ndarray:
    """100 paths: 30 enter QE at h=3, 20 at h=7, 10 are in QE at h=0..2 then hold (ongoing, not a
    start), 40 never see QE."""
    p = _paths(100)
    p[:30, 3:] = QE
    p[30:50, 7:9] = QE  # a short QE episode, then cutting
    p[30:50, 9:] = CUTTING
    p[50:60, :3] = QE
    return p


QE_START = {"name": "qe", "kind": "state_start", "state": "bs:QE"}


def test_state_start_known_probabilities():
    fc = make_forecast(_qe_paths())
    res = evaluate_events(fc, make_history(), load_events([QE_START]))
    prob = res["probability"].sel(event="qe").values
    cum = res["cumulative"].sel(event="qe").values
    expected = np.zeros(H + 1)
    expected[3], expected[7] = 0.3, 0.2
    np.testing.assert_allclose(prob, expected, atol=1e-12)
    np.testing.assert_allclose(cum, np.cumsum(expected), atol=1e-12)
    s = res.sel(event="qe")
    assert float(s["p_never"]) == pytest.approx(0.5)
    assert float(s["p_within_6m"]) == pytest.approx(0.3)
    assert float(s["p_within_12m"]) == pytest.approx(0.5)
    assert float(s["p_within_24m"]) == pytest.approx(0.5)  # horizon shorter than 24 -> within H
    # quantiles over the 50 paths where QE starts: 60% at h=3, 40% at h=7
    assert float(s["median"]) == 3 and float(s["q10"]) == 3 and float(s["q90"]) == 7
    assert pd.Timestamp(s["median_date"].values) == pd.Timestamp("2026-06-01")
    assert pd.Timestamp(s["q90_date"].values) == pd.Timestamp("2026-10-01")
    # per-path first months
    first = res["first_month"].sel(event="qe").values
    assert np.all(first[:30] == 3) and np.all(first[30:50] == 7) and np.isnan(first[50:]).all()


def test_ongoing_qe_is_not_a_start_but_reentry_is():
    p = _paths(4)
    p[0, :3] = QE  # ongoing at as-of, ends: no start
    p[1, :] = QE  # ongoing all the way: no start
    p[2, :2] = QE
    p[2, 5:] = QE  # re-enters at h=5
    p[3, 0] = HOLD
    fc = make_forecast(p)
    res = evaluate_events(fc, make_history(), load_events([QE_START]))
    first = res["first_month"].sel(event="qe").values
    assert np.isnan(first[[0, 1, 3]]).all() and first[2] == 5
    assert float(res["probability"].sel(event="qe", horizon=0)) == 0.0

    spec = dict(QE_START, allow_ongoing=True)
    res2 = evaluate_events(fc, make_history(), load_events([spec]))
    first2 = res2["first_month"].sel(event="qe").values
    np.testing.assert_array_equal(first2[:3], [0, 0, 0])
    assert np.isnan(first2[3])
    assert float(res2["probability"].sel(event="qe", horizon=0)) == pytest.approx(0.75)


def test_duration_with_censoring():
    p = _paths(10)
    p[0, 2:9] = QE  # QE at 2, tightening at 9 -> 7 months
    p[0, 9:] = TIGHTENING
    p[1, 0] = TIGHTENING  # tightening before QE does not end anything
    p[1, 1:4] = QE  # QE at 1, hold, tightening at 4 -> 3 months
    p[1, 4:] = TIGHTENING
    p[2, 5:] = QE  # QE at 5, never tightens: censored, at least 12-5+1 = 8 months (>= 6)
    p[3, 10:] = QE  # QE at 10, censored, at least 3 months (not known to be >= 6)
    spec = {"name": "window", "kind": "duration", "start": "bs:QE", "end": "rate:hiking"}
    res = evaluate_events(make_forecast(p), make_history(), load_events([spec]))
    s = res.sel(event="window")
    np.testing.assert_array_equal(s["start_month"].values[:4], [2, 1, 5, 10])
    assert np.isnan(s["start_month"].values[4:]).all()
    dur = s["duration_months"].values
    assert dur[0] == 7 and dur[1] == 3 and np.isnan(dur[2:]).all()
    np.testing.assert_array_equal(s["censored"].values, [False, False, True, True] + [False] * 6)
    assert float(s["p_start"]) == pytest.approx(0.4)
    assert float(s["p_censored"]) == pytest.approx(0.5)
    assert float(s["p_never"]) == pytest.approx(0.5)
    assert float(s["p_at_least"]) == pytest.approx(0.5)  # 7-month window + censored >= 8
    assert float(s["p_within_6m"]) == pytest.approx(0.25)
    assert float(s["p_within_12m"]) == pytest.approx(0.5)
    assert float(s["median"]) == 3 and float(s["q90"]) == 7
    assert np.isnat(s["median_date"].values)
    dp = s["duration_probability"].values
    assert dp[3] == pytest.approx(0.25) and dp[7] == pytest.approx(0.25)
    assert dp.sum() + float(s["p_censored"]) == pytest.approx(1.0)
    # on the date axis the window closes at h=4 (path 1) and h=9 (path 0)
    prob = s["probability"].values
    assert prob[4] == pytest.approx(0.1) and prob[9] == pytest.approx(0.1)
    assert prob.sum() == pytest.approx(0.2)


def test_duration_to_macro_state_can_be_zero():
    p = _paths(3)
    m = np.full((3, H + 1), MODERATE)
    p[0, 2:] = QE
    m[0, 2:] = INFLATIONARY  # inflationary already at QE start -> 0 months
    p[1, 3:] = QE
    m[1, 0] = INFLATIONARY  # before the start: ignored
    m[1, 8:] = INFLATIONARY  # -> 5 months
    spec = {"name": "infl", "kind": "duration", "start": "bs:QE", "end": "macro:inflationary"}
    res = evaluate_events(make_forecast(p, m), make_history(), load_events([spec]))
    dur = res["duration_months"].sel(event="infl").values
    assert dur[0] == 0 and dur[1] == 5 and np.isnan(dur[2])
    assert float(res["p_start"].sel(event="infl")) == pytest.approx(2 / 3)


def test_threshold_crossing_at_known_month():
    hist = make_history(volume_2021=3.5e7)
    n = 8
    h = np.arange(H + 1)
    vol = np.full((n, H + 1), 3.0e7)
    vol[:4] = 3.0e7 + h * 0.9e6  # 3.45e7 at h=5, 3.54e7 at h=6: crosses at 6
    vol[4, :] = 4.0e7  # above from the as-of month on: first month h >= 1 is 1
    vol[5, 0] = 4.0e7  # above only at h=0: never
    vol[6, 3] = np.nan  # missing values never cross
    fc = make_forecast(_paths(n), series={"smallcap_volume": vol})
    spec = {"name": "volume_return", "kind": "threshold", "variable": "smallcap_volume",
            "above": True, "mean_of": ["2021-01", "2021-12"]}  # month values, start not checked
    res = evaluate_events(fc, hist, load_events([spec]))
    s = res.sel(event="volume_return")
    assert float(s["threshold"]) == pytest.approx(3.5e7)
    first = s["first_month"].values
    np.testing.assert_array_equal(first[:5], [6, 6, 6, 6, 1])
    assert np.isnan(first[5:]).all()
    assert float(s["probability"].sel(horizon=6)) == pytest.approx(0.5)
    assert float(s["p_never"]) == pytest.approx(3 / 8)


def test_threshold_below_and_percentile():
    hist = make_history()
    level = float(np.nanpercentile(hist["policy_rate"].values, 25))
    rate = np.full((2, H + 1), level + 1.0)
    rate[0, 4:] = level - 0.5
    fc = make_forecast(_paths(2), series={"policy_rate": rate})
    spec = {
        "name": "low",
        "kind": "threshold",
        "variable": "policy_rate",
        "above": False,
        "percentile": 25,
    }
    res = evaluate_events(fc, hist, load_events([spec]))
    assert float(res["threshold"].sel(event="low")) == pytest.approx(level)
    first = res["first_month"].sel(event="low").values
    assert first[0] == 4 and np.isnan(first[1])


def test_mean_of_window_without_data_is_a_data_error():
    spec = {
        "name": "v",
        "kind": "threshold",
        "variable": "smallcap_volume",
        "mean_of": ["1990-01", "1990-12"],
    }
    with pytest.raises(DataError, match="mean_of"):
        evaluate_events(make_forecast(_paths(2)), make_history(), load_events([spec]))


def test_probability_invariants_on_random_paths():
    fc = make_random_forecast(n=300, horizon=30)
    res = evaluate_events(fc, make_history(), default_events())
    prob, cum = res["probability"].values, res["cumulative"].values
    assert ((prob >= 0) & (prob <= 1)).all() and ((cum >= 0) & (cum <= 1 + 1e-12)).all()
    assert (np.diff(cum, axis=1) >= -1e-12).all()
    for name in res["event"].values:
        s = res.sel(event=name)
        if str(s["kind"].values) == "duration":
            total = float(s["duration_probability"].sum()) + float(s["p_censored"])
            assert total == pytest.approx(1.0)
        else:
            assert float(s["cumulative"][-1]) + float(s["p_never"]) == pytest.approx(1.0)
            assert float(s["probability"].sel(horizon=0)) == 0.0
        assert float(s["p_within_6m"]) <= float(s["p_within_12m"]) <= float(s["p_within_24m"])
        if np.isfinite(float(s["median"])):
            assert float(s["q10"]) <= float(s["median"]) <= float(s["q90"])
    # the empirical QE-start frequency by month 12, computed directly from the paths
    pol = fc["bs_state"].values
    entered = (pol[:, 1:13] == 2) & (pol[:, :12] != 2)  # the balance-sheet chain enters QE
    assert float(res["p_within_12m"].sel(event="qe_start")) == pytest.approx(
        entered.any(axis=1).mean()
    )


EVENTS_TOML = """
[[events]]
name = "qe"
kind = "state_start"
state = "bs:QE"

[[events]]
name = "qe_to_tightening"
kind = "duration"
start = "bs:QE"
end = "rate:hiking"
at_least = 4

[[events]]
name = "big_balance_sheet"
kind = "threshold"
variable = "balance_sheet"
level = 7500.0
"""


def test_events_from_toml_end_to_end():
    specs = tomllib.loads(EVENTS_TOML)["events"]
    events = load_events(specs)
    assert [e.kind for e in events] == ["state_start", "duration", "threshold"]
    p = _qe_paths()
    p[:30, 10:] = TIGHTENING  # QE at 3 -> tightening at 10: 7 months
    bs = np.full((100, H + 1), 7000.0)
    bs[:25, 2:] = 7600.0
    fc = make_forecast(p, series={"balance_sheet": bs})
    res = evaluate_events(fc, make_history(), events)
    assert float(res["cumulative"].sel(event="qe")[-1]) == pytest.approx(0.5)
    assert float(res["p_start"].sel(event="qe_to_tightening")) == pytest.approx(0.5)
    # 30 closed windows of 7 months; 20 censored starting at 7 with >= 6 months observed
    assert float(res["p_censored"].sel(event="qe_to_tightening")) == pytest.approx(0.4)
    assert float(res["p_at_least"].sel(event="qe_to_tightening")) == pytest.approx(1.0)
    assert float(res["probability"].sel(event="big_balance_sheet", horizon=2)) == pytest.approx(
        0.25
    )

    table = events_table(res)
    assert list(table.columns) == ["event", "date", "probability", "cumulative"]
    assert len(table) == 3 * (H + 1)
    row = table[(table.event == "qe") & (table.date == pd.Timestamp("2026-06-01"))]
    assert float(row.probability.iloc[0]) == pytest.approx(0.3)

    summary = event_summary_table(res)
    assert list(summary.event) == ["qe", "qe_to_tightening", "big_balance_sheet"]
    for col in ("median", "q10", "q90", "p_within_6m", "p_within_12m", "p_within_24m", "p_never"):
        assert col in summary.columns
    assert summary.set_index("event").loc["qe", "median"] == pd.Timestamp("2026-06-01")
    assert summary.set_index("event").loc["qe_to_tightening", "median"] == 7


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"name": "x", "kind": "regime_flip", "state": "bs:QE"}, "kind"),
        ({"name": "x", "state": "bs:QE"}, "kind"),
        ({"name": "x", "kind": "state_start"}, "state"),
        ({"kind": "state_start", "state": "bs:QE"}, "name"),
        ({"name": "x", "kind": "state_start", "state": "bs:QQE"}, "state"),
        ({"name": "x", "kind": "state_start", "state": "fiscal:QE"}, "state"),
        ({"name": "x", "kind": "state_start", "state": "QE"}, "state"),
        ({"name": "x", "kind": "duration", "start": "bs:QE"}, "end"),
        ({"name": "x", "kind": "duration", "start": "bs:QE", "end": "macro:hot"}, "end"),
        (
            {
                "name": "x",
                "kind": "duration",
                "start": "bs:QE",
                "end": "rate:hold",
                "at_least": 0,
            },
            "at_least",
        ),
        ({"name": "x", "kind": "threshold", "variable": "gdp", "level": 1.0}, "variable"),
        ({"name": "x", "kind": "threshold", "variable": "cpi_yoy"}, "level"),
        (
            {
                "name": "x",
                "kind": "threshold",
                "variable": "cpi_yoy",
                "level": 1.0,
                "percentile": 5,
            },
            "percentile",
        ),
        (
            {"name": "x", "kind": "threshold", "variable": "cpi_yoy", "percentile": 150},
            "percentile",
        ),
        ({"name": "x", "kind": "threshold", "variable": "cpi_yoy", "mean_of": ["2021"]}, "mean_of"),
        ({"name": "x", "kind": "threshold", "variable": "cpi_yoy", "level": "high"}, "level"),
        (
            {"name": "x", "kind": "threshold", "variable": "cpi_yoy", "level": 1.0, "treshold": 2},
            "treshold",
        ),
        (
            {"name": "x", "kind": "state_start", "state": "bs:QE", "allow_ongoing": "yes"},
            "allow_ongoing",
        ),
        ({"name": "bad name", "kind": "state_start", "state": "bs:QE"}, "name"),
    ],
)
def test_bad_event_definitions_name_the_field(spec, field):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        load_events([spec])


def test_duplicate_names_rejected():
    with pytest.raises(ConfigError, match="'name'"):
        load_events([QE_START, QE_START])


def test_event_label_not_in_forecast_labels():
    fc = make_forecast(_paths(3))
    fc.attrs["bs_labels"] = ["QT", "steady", "easing"]
    with pytest.raises(ConfigError, match="bs:QE"):
        evaluate_events(fc, make_history(), load_events([QE_START]))


def test_definitions_are_frozen():
    ev = default_events()[0]
    with pytest.raises(AttributeError):
        ev.name = "other"  # type: ignore[misc]


def test_shipped_events_without_labels_keep_their_labels():
    bare = [{k: v for k, v in s.items() if k != "label"} for s in DEFAULT_EVENT_SPECS]
    events = load_events(bare)
    assert [event_label(e) for e in events] == [s["label"] for s in DEFAULT_EVENT_SPECS]
    custom = load_events([{"name": "qe_start", "kind": "state_start", "state": "rate:hold"}])
    assert event_label(custom[0]) == "hold starts"


# --------------------------------------------------------------------------------------------------
# real-time thresholds, start condition, generic chains, checks before sampling
# --------------------------------------------------------------------------------------------------
def _volume_history(values: np.ndarray, start: str, *, as_of: str | None = None) -> xr.Dataset:
    time = pd.period_range(start, periods=values.size, freq="M").to_timestamp()
    ds = xr.Dataset({"smallcap_volume": ("time", np.asarray(values, float))}, coords={"time": time})
    if as_of is not None:
        ds = ds.sel(time=slice(None, pd.Timestamp(as_of + "-01")))
    return ds


def _prior_peak_oracle(hist: pd.Series, as_of: str) -> float:
    """Highest 12-month mean whose window lies in the 60 months up to and including the as-of."""
    end = pd.Timestamp(as_of + "-01")
    start = end - pd.DateOffset(months=59)
    best = -np.inf
    months = pd.date_range(start, end, freq="MS")
    for i in range(len(months) - 11):
        window = hist.reindex(months[i : i + 12])
        if window.notna().all():
            best = max(best, float(window.mean()))
    return best


@pytest.mark.parametrize("as_of", ["1992-09", "2000-01", "2008-06", "2016-06", "2023-12"])
def test_prior_peak_threshold_against_direct_computation(as_of):
    rng = np.random.default_rng(4)
    n = len(pd.period_range("1987-09", "2025-12", freq="M"))
    values = np.exp(np.cumsum(rng.normal(0.01, 0.08, n))) * 1e8
    values[40:43] = np.nan  # a gap: 12-month windows over it do not count
    hist = _volume_history(values, "1987-09", as_of=as_of)
    series = pd.Series(hist["smallcap_volume"].values, index=pd.DatetimeIndex(hist["time"].values))
    ev = default_events()[-1]
    assert ev.name == "volume_return"
    assert ev.threshold(hist) == pytest.approx(_prior_peak_oracle(series, as_of), rel=1e-12)
    # pandas' rolling over the look-back gives the same
    lo = pd.Timestamp(as_of + "-01") - pd.DateOffset(months=59)
    direct = series[lo:].rolling(12).mean().max()
    assert ev.threshold(hist) == pytest.approx(direct, rel=1e-12)


def _start_condition_forecast(paths: np.ndarray) -> xr.Dataset:
    return make_forecast(_paths(paths.shape[0]), series={"smallcap_volume": paths}, as_of="2026-03")


def _flat_history(level: float, last: list[float]) -> xr.Dataset:
    """72 months up to 2026-03 at ``level`` with a 12-month peak of 10.0 in 2022, ending in ``last``."""
    values = np.full(72, level)
    values[12:24] = 10.0  # 2021-04..2022-03: the last peak, 12-month mean exactly 10
    values[-len(last) :] = last
    return _volume_history(values, "2020-04")


START_SPEC = {"name": "back", "kind": "threshold", "variable": "smallcap_volume",
              "reference": "prior_peak", "mean_months": 3}


@pytest.mark.parametrize("mode", ["ignore", "report", "count_at_0"])
def test_start_condition_on_hand_made_paths(mode):
    spec = dict(START_SPEC, if_met_at_as_of=mode)
    # already above at the as-of: 3-month mean at 2026-03 is (11 + 11 + 11) / 3 > 10
    hist = _flat_history(8.0, [11.0, 11.0, 11.0])
    paths = np.full((3, H + 1), 11.0)  # stays above
    paths[1, 2:5] = 5.0  # falls back: 3-month means 9, 7, 5, 7.3, 9.7, then 12 at h=7
    paths[1, 5:] = 12.0
    paths[2, 1:] = 5.0  # falls back, never returns
    res = evaluate_events(_start_condition_forecast(paths), hist, load_events([spec]))
    s = res.sel(event="back")
    assert float(s["threshold"]) == pytest.approx(10.0)
    assert float(s["met_at_as_of"]) == 1.0
    assert float(s["value_at_as_of"]) == pytest.approx(11.0)
    first = s["first_month"].values
    # oracle: 3-month means by hand along each path (history 11, 11 before the as-of)
    means = pd.DataFrame(np.hstack([np.full((3, 2), 11.0), paths]).T).rolling(3).mean().T.values[:, 2:]
    above = means > 10.0
    if mode == "ignore":
        expected = [1, 1, np.nan]  # trivially met in month one where still above
    elif mode == "count_at_0":
        expected = [0, 0, 0]
    else:  # a new crossing: path 1 returns at the first month above after being below
        back = next(h for h in range(1, H + 1) if above[1, h] and not above[1, h - 1])
        expected = [np.nan, back, np.nan]
        assert back == 7
    np.testing.assert_array_equal(first, expected)
    summary = event_summary_table(res).set_index("event")
    if mode == "report":
        assert "already above its last peak at the as-of" in summary.loc["back", "met_text"]
    else:
        assert summary.loc["back", "met_text"] == ""


def test_start_condition_below_then_above_and_never_above():
    hist = _flat_history(8.0, [8.0, 8.0, 8.0])  # below at the as-of
    paths = np.full((2, H + 1), 8.0)
    paths[0, 4:] = 14.0  # 3-month means: h=4 (8+8+14)/3 = 10 (not above), h=5 12 > 10
    for mode in IF_MET_OPTIONS:
        spec = dict(START_SPEC, if_met_at_as_of=mode)
        res = evaluate_events(_start_condition_forecast(paths), hist, load_events([spec]))
        s = res.sel(event="back")
        assert float(s["met_at_as_of"]) == 0.0
        first = s["first_month"].values
        assert first[0] == 5 and np.isnan(first[1]), mode
        assert float(s["p_never"]) == pytest.approx(0.5)


def test_report_says_already_above(tmp_path):
    from regimecast.report import write_outputs

    hist = _flat_history(8.0, [11.0, 11.0, 11.0])
    paths = np.full((4, H + 1), 11.0)
    fc = _start_condition_forecast(paths)
    spec = dict(START_SPEC, if_met_at_as_of="report", label="small-cap volume back above its last peak")
    out = write_outputs(tmp_path, fc, hist, load_events([spec]), meta={"as_of": "2026-03"})
    text = out["report.md"].read_text()
    line = next(ln for ln in text.splitlines() if "already above its last peak at the as-of" in ln)
    assert "threshold 10" in line and "P(falls back and returns within 12 months" in line
    assert "= 0%" in line


def test_every_default_event_is_defined_at_every_quarterly_as_of():
    """Synthetic history with volume from 1987-09: no model fit needed."""
    rng = np.random.default_rng(0)
    time = pd.period_range("1960-01", "2025-12", freq="M").to_timestamp()
    volume = np.exp(np.cumsum(rng.normal(0.005, 0.05, time.size))) * 1e8
    volume[time < pd.Timestamp("1987-09-01")] = np.nan
    hist = xr.Dataset(
        {
            "smallcap_volume": ("time", volume),
            "policy_rate": ("time", rng.uniform(0, 8, time.size)),
        },
        coords={"time": time},
    )
    events = default_events()
    for as_of in pd.period_range("1990-01", "2025-10", freq="Q").asfreq("M", how="start"):
        cut = hist.sel(time=slice(None, as_of.to_timestamp()))
        check_events(events, cut, as_of)
        fc = make_random_forecast(n=20, horizon=6, as_of=str(as_of), seed=1)
        res = evaluate_events(fc, cut, events)
        thr = float(res["threshold"].sel(event="volume_return"))
        assert np.isfinite(thr) and thr > 0, as_of


def test_check_events_raises_what_evaluation_raises():
    hist = make_history(as_of="2019-09")
    spec = dict(NAMED_EVENT_SPECS["volume_above_2021"])
    events = load_events([spec])
    with pytest.raises(DataError, match="after the as-of month 2019-09") as before:
        check_events(events, hist, "2019-09")
    fc = make_forecast(_paths(3), as_of="2019-09")
    with pytest.raises(DataError) as during:
        evaluate_events(fc, hist, events)
    assert str(before.value) == str(during.value)
    # a panel DataFrame works as well
    panel = hist[["smallcap_volume"]].to_dataframe()
    with pytest.raises(DataError, match="after the as-of"):
        check_events(events, panel, "2019-09")
    # missing history of the variable
    no_volume = hist.drop_vars("smallcap_volume")
    with pytest.raises(DataError, match="no variable 'smallcap_volume'"):
        check_events(default_events(), no_volume, "2019-09")
    with pytest.raises(DataError, match="no variable 'smallcap_volume'"):
        evaluate_events(fc, no_volume, default_events())
    # too little volume history for the last peak
    short = _volume_history(np.full(6, 1e8), "2019-04")
    with pytest.raises(DataError, match="12 consecutive observed months"):
        check_events(default_events(), short, "2019-09")
    # the 2021 reading is fine once 2021 is over
    check_events(events, make_history(as_of="2023-12"), "2023-12")


def test_volume_above_2021_named_option():
    hist = make_history(volume_2021=3.5e7, as_of="2023-12")
    vol = np.full((2, H + 1), 3.0e7)
    vol[0, 5:] = 4.0e7
    fc = make_forecast(_paths(2), series={"smallcap_volume": vol}, as_of="2023-12")
    res = evaluate_events(fc, hist, load_events([NAMED_EVENT_SPECS["volume_above_2021"]]))
    s = res.sel(event="volume_above_2021")
    assert float(s["threshold"]) == pytest.approx(3.5e7)
    # 3-month means: h=5 (3+3+4)/3 = 3.33e7, h=6 3.67e7 > 3.5e7
    np.testing.assert_array_equal(s["first_month"].values, [6, np.nan])
    assert str(s["label"].values) == "small-cap volume back above its 2021 average"


def test_duration_end_may_be_a_list_of_states():
    p = _paths(3)
    p[0, 2:] = QE
    p[0, 6:] = TIGHTENING  # tightening at 6 -> 4 months
    p[1, 1:] = QE
    m = np.full((3, H + 1), MODERATE)
    m[1, 4:] = INFLATIONARY  # inflation first at 4 -> 3 months
    p[1, 9:] = TIGHTENING
    spec = {"name": "w", "kind": "duration", "start": "bs:QE",
            "end": ["rate:hiking", "macro:inflationary"]}
    (ev,) = load_events([spec])
    assert event_label(ev) == "QE until hiking or inflationary"
    res = evaluate_events(make_forecast(p, m), make_history(), [ev])
    dur = res["duration_months"].sel(event="w").values
    assert dur[0] == 4 and dur[1] == 3 and np.isnan(dur[2])
    with pytest.raises(ConfigError, match="'end'"):
        load_events([dict(spec, end=["rate:hiking", "policy:hike"])])


def test_events_on_any_declared_chain():
    """A forecast with a fourth chain ``fiscal``: events need no code change."""
    fc = make_forecast(_paths(4))
    fiscal = np.zeros((4, H + 1), dtype=np.int64)
    fiscal[:2, 3:] = 1
    fc["fiscal_state"] = (("sample", "horizon"), fiscal)
    fc.attrs["fiscal_labels"] = ["flat", "hike"]
    fc.attrs["chains"] = [*fc.attrs["chains"], "fiscal"]
    labels = schema.chain_labels(fc)
    assert list(labels) == ["macro", "rate", "bs", "fiscal"]
    specs = [
        {"name": "hike", "kind": "state_start", "state": "fiscal:hike"},
        {"name": "qe_to_hike", "kind": "duration", "start": "bs:QE",
         "end": ["rate:hiking", "fiscal:hike"]},
    ]
    events = load_events(specs, labels=labels)
    res = evaluate_events(fc, make_history(), events)
    np.testing.assert_array_equal(res["first_month"].sel(event="hike").values, [3, 3, np.nan, np.nan])
    with pytest.raises(ConfigError, match="unknown chain 'fiscal'"):
        load_events(specs[:1])  # the default config declares only macro, rate and bs


def test_default_specs_match_default_toml():
    from regimecast.config import load_config

    toml_events = [dict(e) for e in load_config().events]
    shipped = [{k: v for k, v in s.items() if k != "label"} for s in DEFAULT_EVENT_SPECS]
    assert toml_events == shipped


def test_labels_come_from_the_config():
    from regimecast.config import ModelConfig

    model = ModelConfig(macro_labels=("low", "mid", "high"))
    labels = schema.model_chain_labels(model)
    assert labels["macro"] == ["low", "mid", "high"]
    (ev,) = load_events([{"name": "x", "kind": "state_start", "state": "macro:high"}], labels=labels)
    assert ev.state == StateRef("macro", "high")
    with pytest.raises(ConfigError, match="'state'"):
        load_events([{"name": "x", "kind": "state_start", "state": "macro:inflationary"}],
                    labels=labels)


def test_a_new_kind_is_one_class():
    from dataclasses import dataclass
    from typing import ClassVar

    from regimecast import events as ev_mod

    @dataclass(frozen=True)
    class Always(ev_mod._EventKind):
        name: str
        label: str = ""
        kind: ClassVar[str] = "always"
        REQUIRED: ClassVar[frozenset[str]] = frozenset()
        OPTIONAL: ClassVar[frozenset[str]] = frozenset()

        @classmethod
        def parse(cls, spec, ctx):
            return cls(name=spec["name"], label=spec.get("label", ""))

        def default_label(self):
            return "always"

        def evaluate(self, forecast, history):
            first = np.ones(forecast.sizes["sample"])
            return ev_mod.EventResult(first, ev_mod._dated_summary(first, forecast.sizes["horizon"]))

    ev_mod.register(Always)
    try:
        (ev,) = load_events([{"name": "a", "kind": "always"}])
        res = evaluate_events(make_forecast(_paths(5)), make_history(), [ev])
        assert float(res["probability"].sel(event="a", horizon=1)) == 1.0
        assert float(res["p_within_6m"].sel(event="a")) == 1.0
    finally:
        del ev_mod.EVENT_KINDS["always"]


def _default(name: str):
    return next(e for e in load_events(DEFAULT_EVENT_SPECS) if e.name == name)


def test_qt_end_is_the_first_month_the_balance_sheet_leaves_qt():
    """Oracle: hand-made balance-sheet paths (0 = QT, 1 = steady, 2 = QE) and their leaving months."""
    n = 5
    rate = np.ones((n, H + 1), dtype=np.int64)
    bs = np.ones((n, H + 1), dtype=np.int64)
    bs[0, :5] = 0  # in QT at the as-of, stops shrinking at 5
    bs[1, 2:6] = 0  # enters QT at 2, leaves at 6
    bs[2, :] = 0  # QT throughout: no end within the horizon
    bs[4, :3] = 0
    bs[4, 3:] = 2  # QT straight into QE at 3: the end of QT all the same
    res = evaluate_events(make_forecast(rate=rate, bs=bs), make_history(), [_default("qt_end")])
    np.testing.assert_array_equal(res["first_month"].sel(event="qt_end").values,
                                  [5, 6, np.nan, np.nan, 3])
    assert float(res["p_within_6m"].sel(event="qt_end")) == pytest.approx(3 / 5)


def test_bullish_window_runs_from_qe_until_the_first_hike_or_qt():
    """Oracle: hand-made paths of both instruments; the window closes at whichever comes first."""
    n = 4
    rate = np.ones((n, H + 1), dtype=np.int64)  # hold
    bs = np.ones((n, H + 1), dtype=np.int64)  # steady
    bs[0, 2:6] = 2  # QE at 2 .. 5, QT from 6; hikes from 8: QT first -> 4 months
    bs[0, 6:] = 0
    rate[0, 8:] = 2
    bs[1, 1:] = 2  # QE from 1; hikes from 3 while QE runs: 2 months
    rate[1, 3:] = 2
    rate[2, :] = 2  # hiking before QE starts at 4 and still hiking: 0 months
    bs[2, 4:] = 2
    bs[3, 5:] = 2  # QE from 5, no hike, no QT: censored
    first_hike = _default("first_hike")
    res = evaluate_events(make_forecast(rate=rate, bs=bs), make_history(),
                          [_default("bullish_window"), first_hike, _default("qe_start")])
    np.testing.assert_array_equal(res["duration_months"].sel(event="bullish_window").values,
                                  [4, 2, 0, np.nan])
    np.testing.assert_array_equal(res["first_month"].sel(event="first_hike").values,
                                  [8, 3, np.nan, np.nan])
    np.testing.assert_array_equal(res["first_month"].sel(event="qe_start").values, [2, 1, 4, 5])

"""The monthly panel on the real data store: facts checked against the raw files.

Expected values are computed here from the raw CSV files with plain ``csv``/``statistics`` code, not
by calling the code under test.
"""

from __future__ import annotations

import csv
import hashlib
import math
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regimecast.cli import main
from regimecast.data import (
    build_panel,
    data_vintage,
    load_panel,
    panel_to_dataset,
    read_panel_csv,
    read_series,
    resolve_store,
)
from regimecast.data import columns as C
from regimecast.data.panel import MIN_TRADING_DAYS, daily_volume_to_monthly
from regimecast.data.sources import SERIES


def _raw(path: Path) -> dict[str, str]:
    """date -> value cell of a two-column FRED file, read with csv."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return {r[0]: r[1] for r in rows[1:] if r}


def _daily_volume(path: Path) -> dict[str, float]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {r["Date"]: float(r["Volume"]) for r in rows if r["Volume"] not in ("", "null")}


@pytest.fixture(scope="module")
def panel(data_store: Path) -> pd.DataFrame:
    return load_panel(data_store)


@pytest.fixture(scope="module")
def panel_2023(data_store: Path) -> pd.DataFrame:
    return load_panel(data_store, as_of="2023-12")


def test_shape_and_range(panel: pd.DataFrame) -> None:
    assert list(panel.columns) == list(C.PANEL_COLUMNS)
    assert panel.index.name == C.DATE
    assert panel.index[0] == pd.Timestamp(
        "1959-01-01"
    )  # BOGMBASE, the last core series, starts then
    assert (panel.index.day == 1).all()
    assert len(pd.date_range(panel.index[0], panel.index[-1], freq="MS")) == len(panel)
    # default as-of: the last month with any value (IWM/^RUT January 2026; February 2026 is partial)
    assert panel.index[-1] == pd.Timestamp("2026-01-01")
    assert panel.attrs["as_of"] == "2026-01"


def test_cpi_yoy_june_2022(panel: pd.DataFrame, data_store: Path) -> None:
    raw = _raw(data_store / "fred" / "CPIAUCSL.csv")
    expected = 100 * (float(raw["2022-06-01"]) / float(raw["2021-06-01"]) - 1)
    got = panel.loc["2022-06-01", C.CPI_YOY]
    assert got == pytest.approx(expected, rel=1e-12)
    assert 8.9 <= got <= 9.2
    mom = 1200 * math.log(float(raw["2022-06-01"]) / float(raw["2022-05-01"]))
    assert panel.loc["2022-06-01", C.CPI_MOM_ANN] == pytest.approx(mom, rel=1e-12)
    core = _raw(data_store / "fred" / "CPILFESL.csv")
    assert panel.loc["2022-06-01", C.CORE_CPI_YOY] == pytest.approx(
        100 * (float(core["2022-06-01"]) / float(core["2021-06-01"]) - 1), rel=1e-12
    )


def test_fed_funds_late_2023(panel: pd.DataFrame) -> None:
    late = panel.loc["2023-08-01":"2023-12-01", C.POLICY_RATE]
    assert (late == 5.33).all()
    assert (panel.loc["2023-09-01":"2023-12-01", C.POLICY_RATE_CHANGE].abs() < 1e-12).all()
    # July 2023: the last hike (5.08 -> 5.12), change in percentage points
    assert panel.loc["2023-07-01", C.POLICY_RATE_CHANGE] == pytest.approx(0.04, abs=1e-9)


def test_balance_sheet_peak_matches_weekly_file(panel: pd.DataFrame, data_store: Path) -> None:
    weekly: dict[str, list[float]] = defaultdict(list)
    for d, v in _raw(data_store / "fred" / "WALCL.csv").items():
        if v not in ("", "."):
            weekly[d[:7]].append(float(v))
    expected = {m: statistics.fmean(vs) / 1000 for m, vs in weekly.items() if m.startswith("2022")}
    for month, value in expected.items():
        assert panel.loc[f"{month}-01", C.BALANCE_SHEET] == pytest.approx(value, rel=1e-12)
    peak_month = max(expected, key=expected.get)
    assert peak_month in ("2022-03", "2022-04", "2022-05")
    bs = panel[C.BALANCE_SHEET]
    assert bs.idxmax() == pd.Timestamp(f"{peak_month}-01")
    assert 8_900 <= bs.max() <= 9_000  # billions: about 8.9-9.0 trillion
    assert panel.loc[f"{peak_month}-01", C.BALANCE_SHEET_PROXY] == 0


def test_balance_sheet_splice(panel: pd.DataFrame, data_store: Path) -> None:
    base = _raw(data_store / "fred" / "BOGMBASE.csv")
    flag = panel[C.BALANCE_SHEET_PROXY]
    assert set(flag.unique()) == {0, 1}
    assert (flag[:"2002-11-01"] == 1).all() and (flag["2002-12-01":] == 0).all()
    assert panel.loc["1990-01-01", C.BALANCE_SHEET] == float(base["1990-01-01"])
    assert panel.loc["2002-11-01", C.BALANCE_SHEET] == float(base["2002-11-01"])
    # Growth is never computed across the splice (BOGMBASE Nov 2002 -> WALCL Dec 2002).
    growth = panel[C.BALANCE_SHEET_GROWTH]
    assert math.isnan(growth["2002-12-01"])
    assert growth["2002-11-01"] == pytest.approx(
        100 * math.log(float(base["2002-11-01"]) / float(base["2002-10-01"])), rel=1e-12
    )
    bs = panel[C.BALANCE_SHEET]
    assert growth["2003-01-01"] == pytest.approx(
        100 * math.log(bs["2003-01-01"] / bs["2002-12-01"]), rel=1e-12
    )
    assert growth[1:].isna().sum() == 1 + 2  # the splice, and Dec 2025/Jan 2026 (no WALCL yet)


def test_cpi_october_2025_missing_not_filled(panel: pd.DataFrame, data_store: Path) -> None:
    assert _raw(data_store / "fred" / "CPIAUCSL.csv")["2025-10-01"] == ""
    assert math.isnan(panel.loc["2025-10-01", C.CPI_YOY])
    assert math.isnan(panel.loc["2025-10-01", C.CORE_CPI_YOY])
    assert math.isnan(panel.loc["2025-10-01", C.CPI_MOM_ANN])
    assert math.isnan(panel.loc["2025-11-01", C.CPI_MOM_ANN])  # needs October
    assert not math.isnan(panel.loc["2025-11-01", C.CPI_YOY])  # Nov 2025 / Nov 2024 is fine
    assert not math.isnan(panel.loc["2025-09-01", C.CPI_MOM_ANN])


def test_smallcap_volume_rut_and_iwm_cross_check(panel: pd.DataFrame, data_store: Path) -> None:
    rut = _daily_volume(data_store / "yahoo" / "RUT.csv")
    iwm = _daily_volume(data_store / "yahoo" / "IWM.csv")
    for month in ("1995-03", "2010-06"):
        r = [v for d, v in rut.items() if d.startswith(month) and v > 0]
        assert panel.loc[f"{month}-01", C.SMALLCAP_VOLUME] == pytest.approx(statistics.fmean(r))
        assert panel.loc[f"{month}-01", C.SMALLCAP_VOLUME_LOG] == pytest.approx(
            math.log(statistics.fmean(r))
        )
    june = [v for d, v in iwm.items() if d.startswith("2010-06") and v > 0]
    assert panel.loc["2010-06-01", C.SMALLCAP_VOLUME_IWM] == pytest.approx(statistics.fmean(june))
    assert (panel[C.SMALLCAP_VOLUME_PROXY] == 0).all()  # one source, no splice
    vol = panel[C.SMALLCAP_VOLUME]
    assert vol[:"1987-09-01"].isna().all()  # before ^RUT volume, and its partial first month
    assert vol["1987-10-01":].notna().all()


def test_zero_volume_days_are_missing_days(data_store: Path) -> None:
    rut = read_series(data_store, "RUT")
    monthly = daily_volume_to_monthly(rut)
    aug = _daily_volume(data_store / "yahoo" / "RUT.csv")
    valid = [v for d, v in aug.items() if d.startswith("2025-08") and v > 0]
    assert len(valid) >= MIN_TRADING_DAYS and len(valid) < 21  # nine zero days in Aug 2025
    assert monthly["2025-08-01"] == pytest.approx(statistics.fmean(valid))
    # A month with fewer than MIN_TRADING_DAYS valid days is missing, not averaged from scraps.
    thin = rut.copy()
    sept = (thin.index >= "2025-09-01") & (thin.index <= "2025-09-30")
    idx = np.flatnonzero(sept)[: sept.sum() - (MIN_TRADING_DAYS - 1)]
    thin.iloc[idx] = 0.0
    assert math.isnan(daily_volume_to_monthly(thin)["2025-09-01"])


def test_partial_last_month_is_missing(data_store: Path) -> None:
    df = load_panel(data_store, as_of="2026-02")
    assert df.index[-1] == pd.Timestamp("2026-02-01")
    # ^RUT and IWM have 15 days of February 2026 (to the 23rd): the month is incomplete, so missing.
    assert math.isnan(df.loc["2026-02-01", C.SMALLCAP_VOLUME])
    assert math.isnan(df.loc["2026-02-01", C.SMALLCAP_VOLUME_IWM])
    assert not math.isnan(df.loc["2026-01-01", C.SMALLCAP_VOLUME])


def test_as_of_cut_has_no_look_ahead(
    panel: pd.DataFrame, panel_2023: pd.DataFrame, data_store: Path
) -> None:
    assert panel_2023.index[-1] == pd.Timestamp("2023-12-01")
    assert panel_2023.attrs["as_of"] == "2023-12"
    # Same values as the full panel up to 2023-12 (one vintage per file: nothing is revised).
    pd.testing.assert_frame_equal(panel_2023, panel.loc[:"2023-12-01"], check_freq=False)


@pytest.mark.parametrize("as_of", ["2007-06", "2023-12"])
def test_data_after_as_of_is_never_read(data_store: Path, as_of: str) -> None:
    """Poisoning every observation dated after the as-of month changes nothing."""
    clean = load_panel(data_store, as_of=as_of)
    end = pd.Timestamp(as_of) + pd.offsets.MonthEnd(0)
    poisoned = {}
    for k, s in ((k, read_series(data_store, k)) for k in SERIES):
        s = s.copy()
        s[s.index > end] = 1.0 if k == "USREC" else 1e9
        poisoned[k] = s
    again = build_panel(poisoned, as_of=as_of, store=data_store)
    pd.testing.assert_frame_equal(again, clean, check_freq=False)
    assert again.attrs["volume_series"] == clean.attrs["volume_series"] == C.VOLUME_SERIES


def test_as_of_mid_history_drops_later_days(data_store: Path) -> None:
    df = load_panel(data_store, as_of="2008-09")
    assert df.index[-1] == pd.Timestamp("2008-09-01")
    iwm = _daily_volume(data_store / "yahoo" / "IWM.csv")
    sept = [v for d, v in iwm.items() if d.startswith("2008-09") and v > 0]
    assert df.loc["2008-09-01", C.SMALLCAP_VOLUME_IWM] == pytest.approx(statistics.fmean(sept))
    rut = _daily_volume(data_store / "yahoo" / "RUT.csv")
    sept = [v for d, v in rut.items() if d.startswith("2008-09") and v > 0]
    assert df.loc["2008-09-01", C.SMALLCAP_VOLUME] == pytest.approx(statistics.fmean(sept))
    assert df.attrs["sources"]["IWM"]["last"] == "2008-09-30"


def test_dataset(panel: pd.DataFrame) -> None:
    ds = panel_to_dataset(panel)
    assert ds.sizes == {"time": len(panel)}
    assert set(ds.data_vars) == set(C.PANEL_COLUMNS)
    assert ds[C.CPI_YOY].attrs["units"] == "percent"
    assert ds[C.BALANCE_SHEET].attrs["units"] == "billions of USD"
    assert "description" in ds[C.SMALLCAP_VOLUME].attrs
    assert ds.attrs["as_of"] == "2026-01" and ds.attrs["store"]
    np.testing.assert_array_equal(ds[C.POLICY_RATE].values, panel[C.POLICY_RATE].values)


def test_cli_panel_writes_csv(
    tmp_path: Path, data_store: Path, capsys: pytest.CaptureFixture[str], panel_2023: pd.DataFrame
) -> None:
    out = tmp_path / "panel.csv"
    assert main(["panel", "--data", str(data_store), "--as-of", "2023-12", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1959-01 .. 2023-12" in printed and "cpi_yoy" in printed and "CPIAUCSL" in printed
    assert out.read_text().splitlines()[0] == ",".join([C.DATE, *C.PANEL_COLUMNS])
    back = read_panel_csv(out)
    assert back.index[-1] == pd.Timestamp("2023-12-01")
    np.testing.assert_allclose(back.to_numpy(float), panel_2023.to_numpy(float), rtol=1e-9)
    assert [p.name for p in tmp_path.iterdir()] == ["panel.csv"]


def test_data_vintage_without_manifest(data_store: Path) -> None:
    v = data_vintage(data_store)
    assert v["source"] == "files"
    cpi = v["files"]["fred/CPIAUCSL.csv"]
    path = data_store / "fred" / "CPIAUCSL.csv"
    assert cpi["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cpi["rows"] == len(path.read_text().splitlines()) - 1
    assert cpi["last_observation"] == "2025-11-01"
    assert v["files"]["yahoo/RUT.csv"]["last_observation"] == "2026-02-20"  # 02-23 has Volume 0


def test_resolve_store_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGIMECAST_DATA", str(tmp_path / "env"))
    assert resolve_store(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_store(None) == tmp_path / "env"
    monkeypatch.delenv("REGIMECAST_DATA")
    assert resolve_store(None) == Path("data")

"""Small-cap volume: the Russell 2000's own share volume (^RUT), IWM as a cross-check, old runs refused.

Expected values come from the raw CSV files read with plain ``csv``/``datetime``/``statistics`` code,
never from the code under test.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import statistics
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pinned import pinned_fit, qe_prone_point, save_pinned_run

from regimecast.cli import main
from regimecast.data import columns as C
from regimecast.data import load_panel
from regimecast.errors import RunMismatchError
from regimecast.runs import load_run

MIN_DAYS = 10  # the rule stated in the data docs: fewer valid days -> the month is missing


def _daily(path: Path) -> list[tuple[date, float]]:
    with open(path, newline="") as fh:
        return [(date.fromisoformat(r["Date"]), float(r["Volume"])) for r in csv.DictReader(fh)]


def _weekdays(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    while first.weekday() >= 5:
        first += timedelta(days=1)
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    while last.weekday() >= 5:
        last -= timedelta(days=1)
    return first, last


def month_means(path: Path, until: date | None = None) -> dict[str, float]:
    """``YYYY-MM`` -> mean Volume over the month's non-zero days; NaN for a month with fewer than
    MIN_DAYS such days or one the file does not cover from its first to its last weekday."""
    rows = [(d, v) for d, v in _daily(path) if until is None or d <= until]
    file_first, file_last = rows[0][0], rows[-1][0]
    by_month: dict[str, list[float]] = defaultdict(list)
    for d, v in rows:
        by_month.setdefault(f"{d:%Y-%m}", [])
        if v > 0:
            by_month[f"{d:%Y-%m}"].append(v)
    out = {}
    for key, vals in by_month.items():
        first, last = _weekdays(int(key[:4]), int(key[5:]))
        covered = file_first <= first and last <= file_last
        out[key] = statistics.fmean(vals) if covered and len(vals) >= MIN_DAYS else math.nan
    return out


def _assert_column(panel: pd.DataFrame, col: str, expected: dict[str, float]) -> None:
    got = panel[col]
    months = [f"{d:%Y-%m}" for d in got.index]
    for key, value in zip(months, got.to_numpy(), strict=True):
        want = expected.get(key, math.nan)
        if math.isnan(want):
            assert math.isnan(value), f"{col} {key}: expected missing, got {value}"
        else:
            assert value == pytest.approx(want, rel=1e-12), f"{col} {key}"
    # every month the oracle has a value for is inside the panel
    assert {k for k, v in expected.items() if not math.isnan(v)} <= set(months)


@pytest.fixture(scope="module")
def panel(data_store: Path) -> pd.DataFrame:
    return load_panel(data_store, as_of="2026-02")


@pytest.fixture(scope="module")
def rut_means(data_store: Path) -> dict[str, float]:
    return month_means(data_store / "yahoo" / "RUT.csv")


def test_volume_is_rut_constituent_month_mean(panel, rut_means, data_store) -> None:
    _assert_column(panel, C.SMALLCAP_VOLUME, rut_means)
    logs = {k: math.log(v) if not math.isnan(v) else math.nan for k, v in rut_means.items()}
    _assert_column(panel, C.SMALLCAP_VOLUME_LOG, logs)
    vol = panel[C.SMALLCAP_VOLUME]
    # 1987-09 starts on the 10th (partial first month); 2026-02 ends on the 23rd (partial last month)
    assert math.isnan(vol["1987-09-01"]) and math.isnan(vol["2026-02-01"])
    assert vol["1987-10-01":"2026-01-01"].notna().all()  # no gap in between, no splice
    # August 2025: nine zero-volume days are missing days, the other twelve are averaged
    aug = [v for d, v in _daily(data_store / "yahoo" / "RUT.csv") if f"{d:%Y-%m}" == "2025-08"]
    assert len(aug) == 21 and sum(v == 0 for v in aug) == 9
    assert vol["2025-08-01"] == pytest.approx(statistics.fmean(v for v in aug if v > 0))
    assert (panel[C.SMALLCAP_VOLUME_PROXY] == 0).all()
    assert panel.attrs["volume_series"] == C.VOLUME_SERIES


def test_iwm_cross_check_column(panel, data_store) -> None:
    expected = month_means(data_store / "yahoo" / "IWM.csv")
    _assert_column(panel, C.SMALLCAP_VOLUME_IWM, expected)
    assert math.isnan(panel.loc["2000-05-01", C.SMALLCAP_VOLUME_IWM])  # launched 2000-05-26


def test_as_of_cut_makes_the_cut_month_partial(data_store) -> None:
    # The file cut at 2008-09-30 (a Tuesday) covers September; a cut mid-month must not be used.
    df = load_panel(data_store, as_of="2008-09")
    cut = month_means(data_store / "yahoo" / "RUT.csv", until=date(2008, 9, 30))
    assert df.loc["2008-09-01", C.SMALLCAP_VOLUME] == pytest.approx(cut["2008-09"], rel=1e-12)
    assert df.index[-1] == pd.Timestamp("2008-09-01")


def test_the_measures_disagree_where_it_matters(panel, rut_means, data_store) -> None:
    """^RUT constituent volume fell from 2021 to 2023-24; IWM's share volume rose (README numbers)."""
    iwm = month_means(data_store / "yahoo" / "IWM.csv")

    def year(means: dict[str, float], y: int) -> float:
        return statistics.fmean(means[f"{y}-{m:02d}"] for m in range(1, 13))

    rut = {y: year(rut_means, y) / 1e9 for y in (2021, 2023, 2024)}
    assert rut[2021] > rut[2023] > rut[2024]
    assert (round(rut[2021], 1), round(rut[2023], 1), round(rut[2024], 1)) == (4.4, 4.0, 3.9)
    assert year(iwm, 2023) > year(iwm, 2021)
    for y in (2021, 2023, 2024):
        got = panel.loc[f"{y}-01-01":f"{y}-12-01", C.SMALLCAP_VOLUME].mean()
        assert got == pytest.approx(rut[y] * 1e9, rel=1e-12)


def test_column_meta_units() -> None:
    assert "Russell 2000" in C.COLUMN_META[C.SMALLCAP_VOLUME].units
    assert "Russell 2000" in C.COLUMN_META[C.SMALLCAP_VOLUME_LOG].units
    assert "IWM" in C.COLUMN_META[C.SMALLCAP_VOLUME_IWM].units
    assert C.SMALLCAP_VOLUME_IWM in C.PANEL_COLUMNS
    assert set(C.COLUMN_META) == set(C.PANEL_COLUMNS)


# ----------------------------------------------------------------------------------------------
# Runs made with another volume series are refused
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "pinned"
    save_pinned_run(pinned_fit(qe_prone_point()), run)
    return run


def _copy_with_manifest(run: Path, dest: Path, edit) -> Path:
    shutil.copytree(run, dest)
    m = json.loads((dest / "manifest.json").read_text())
    edit(m)
    (dest / "manifest.json").write_text(json.dumps(m))
    return dest


def test_new_run_records_the_volume_series(saved_run) -> None:
    manifest = json.loads((saved_run / "manifest.json").read_text())
    assert manifest["volume_series"] == C.VOLUME_SERIES
    _, loaded = load_run(saved_run)
    assert loaded["volume_series"] == C.VOLUME_SERIES


def test_run_with_old_volume_series_is_refused(saved_run, tmp_path) -> None:
    old = "IWM share volume, ^RUT x ratio before 2005-01"
    run = _copy_with_manifest(saved_run, tmp_path / "old", lambda m: m.update(volume_series=old))
    with pytest.raises(RunMismatchError, match="refit") as err:
        load_run(run)
    assert old in str(err.value) and C.VOLUME_SERIES in str(err.value)


def test_run_without_volume_series_is_refused(saved_run, tmp_path, capsys) -> None:
    run = _copy_with_manifest(saved_run, tmp_path / "legacy", lambda m: m.pop("volume_series"))
    with pytest.raises(RunMismatchError, match="old small-cap volume series .IWM"):
        load_run(run)
    out = tmp_path / "fc"
    assert main(["forecast", "--from-run", str(run), "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "IWM" in lines[0] and "refit" in lines[0]
    assert not out.exists()


# ----------------------------------------------------------------------------------------------
# The model uses volume from model.volume_start
# ----------------------------------------------------------------------------------------------


def test_model_uses_volume_from_volume_start(data_store) -> None:
    from dataclasses import replace

    import numpy as np

    from regimecast.config import load_config
    from regimecast.models.macro import prepare_data

    cfg = load_config().model
    assert cfg.volume_start == "2005-01"
    panel = load_panel(data_store, as_of="2023-12")
    before = panel.copy()
    d = prepare_data(panel, cfg)
    pd.testing.assert_frame_equal(panel, before)  # the panel itself is not touched
    dates = pd.DatetimeIndex(d.dates)
    used = np.isfinite(d.vol)
    assert dates[used][0] == pd.Timestamp("2005-01-01") and used.sum() == 19 * 12
    np.testing.assert_array_equal(d.vol[used], panel[C.SMALLCAP_VOLUME_LOG].loc["2005":].to_numpy())
    # the trend is 0 at the centre of the months used: (2005-01 + 2023-12) / 2
    centre = (np.flatnonzero(dates == "2005-01-01")[0] + np.flatnonzero(dates == "2023-12-01")[0]) / 2
    assert d.trend[int(centre)] == pytest.approx(-0.5 / cfg.volume_trend_per)
    d_all = prepare_data(panel, replace(cfg, volume_start="1987-01"))
    assert pd.DatetimeIndex(d_all.dates)[np.isfinite(d_all.vol)][0] == pd.Timestamp("1987-10-01")


@pytest.mark.parametrize("bad", ["2005", "2005-13", "05-01", "2005-1"])
def test_bad_volume_start_is_a_config_error(bad) -> None:
    from regimecast.config import load_config
    from regimecast.errors import ConfigError

    with pytest.raises(ConfigError, match="model.volume_start"):
        load_config().replace(model={"volume_start": bad})

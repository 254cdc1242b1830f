"""The monthly panel: raw series -> month-start rows of transformed columns, with an as-of cut.

As-of semantics
---------------
``as_of="YYYY-MM"`` cuts every raw series at the end of that month *before* anything is aggregated or
transformed: no daily, weekly or monthly observation dated after the as-of month is used.  A month
whose source has not printed a value (e.g. CPI for 2025-10, never published) stays missing (NaN);
nothing is filled from a later value.

Aggregation
-----------
* Weekly WALCL (millions USD) -> month average / 1000 (billions).  A month needs at least
  :data:`MIN_WEEKLY_OBS` weekly values, and the file must reach the month's last week (its last
  date at or after month end - 6 days); otherwise the month is missing.
* Daily volume -> average daily volume over the month's valid days.  Zero-volume days are missing
  days.  A month needs at least :data:`MIN_TRADING_DAYS` valid days and the file must cover it from
  its first to its last weekday; otherwise (the file's partial first and last months) it is missing.

Small-cap volume
----------------
``smallcap_volume`` is the Russell 2000's own traded volume: Yahoo's ``^RUT`` daily Volume (the
aggregate share volume of the index constituents, from 1987-09) averaged per month as above, one
source throughout, no splice (:data:`regimecast.data.columns.VOLUME_SERIES`).  ``smallcap_volume_iwm``
is IWM's share volume by the same rules, a cross-check the model does not use.
``smallcap_volume_proxy`` is kept for panels that splice a proxy in; here it is always 0.

Splices
-------
* ``balance_sheet``: WALCL from its first month (2002-12); BOGMBASE (billions USD) before, flagged by
  ``balance_sheet_proxy = 1``.  Growth is computed within each source, so it is NaN at the splice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from regimecast.data import columns as C
from regimecast.data.sources import SERIES, read_store, resolve_store
from regimecast.data.validate import parse_month
from regimecast.errors import DataError
from regimecast.io import atomic_write_text

log = logging.getLogger(__name__)

MIN_TRADING_DAYS = 10
MIN_WEEKLY_OBS = 2

#: Raw series whose first month bounds the panel's start (volume is allowed to start later).
CORE_SERIES = ("CPIAUCSL", "CPILFESL", "FEDFUNDS", "TB3MS", "GS10", "USREC")


def _month_end(month: pd.Timestamp) -> pd.Timestamp:
    return month + pd.offsets.MonthEnd(0)


def _monthly(s: pd.Series) -> pd.Series:
    """A monthly (day-1 dated) series, keyed by month start."""
    out = s.copy()
    out.index = out.index.to_period("M").to_timestamp()
    return out


def weekly_to_monthly(s: pd.Series) -> pd.Series:
    """Month averages of a weekly series (NaN for months too thin or not yet complete)."""
    s = s.dropna()
    if s.empty:
        return s
    months = s.index.to_period("M").to_timestamp()
    g = s.groupby(months)
    mean, count = g.mean(), g.count()
    mean[count < MIN_WEEKLY_OBS] = np.nan
    last = s.index[-1]
    ends = mean.index + pd.offsets.MonthEnd(0)
    mean[ends - pd.Timedelta(days=6) > last] = np.nan
    return mean


def daily_volume_to_monthly(vol: pd.Series) -> pd.Series:
    """Average daily volume per month over valid (non-zero, non-missing) days.

    Months with fewer than :data:`MIN_TRADING_DAYS` valid days, or not covered by the file from
    their first to their last weekday (the file's partial first and last months), are NaN.
    """
    if vol.empty:
        return vol
    first, last = vol.index[0], vol.index[-1]
    v = vol.where(vol > 0).dropna()
    if v.empty:
        return v
    months = v.index.to_period("M").to_timestamp()
    g = v.groupby(months)
    mean, count = g.mean(), g.count()
    mean[count < MIN_TRADING_DAYS] = np.nan
    starts = mean.index.to_numpy(dtype="datetime64[D]")
    ends = (mean.index + pd.offsets.MonthEnd(0)).to_numpy(dtype="datetime64[D]")
    first_wd = np.busday_offset(starts, 0, roll="forward")
    last_wd = np.busday_offset(ends, 0, roll="backward")
    mean[first_wd < np.datetime64(first.date(), "D")] = np.nan
    mean[last_wd > np.datetime64(last.date(), "D")] = np.nan
    return mean


def load_panel(
    store: str | os.PathLike[str] | None = None, as_of: str | None = None
) -> pd.DataFrame:
    """Read the store and build the monthly panel (see the module docstring for the rules).

    Parameters
    ----------
    store : data store folder; ``None`` resolves ``REGIMECAST_DATA``, then ``./data``.
    as_of : ``"YYYY-MM"``; nothing dated after that month is used.  Default: the last month in
        which any panel column has a value.

    Returns
    -------
    DataFrame with a DatetimeIndex of month starts named ``date`` and the columns of
    :data:`regimecast.data.columns.PANEL_COLUMNS`; ``attrs`` holds ``store``, ``as_of``, the
    volume series (:data:`regimecast.data.columns.VOLUME_SERIES`) and the balance-sheet splice.
    """
    return load_panels(store, as_of)[1]


def load_panels(
    store: str | os.PathLike[str] | None = None, as_of: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The latest panel and the panel cut at ``as_of`` (the same object when None), built from one
    read of the store (:func:`load_panel`)."""
    root = resolve_store(store)
    if not root.is_dir():
        raise DataError(
            f"data store {root} does not exist; run `regimecast fetch --data {root}`, or point "
            "--data / REGIMECAST_DATA at a folder with fred/ and yahoo/"
        )
    raw = read_store(root)  # one consistent set of files, never two fetches' vintages
    latest = build_panel(raw, store=root)
    return latest, latest if as_of is None else build_panel(raw, as_of=as_of, store=root)


def build_panel(
    raw: Mapping[str, pd.Series], *, as_of: str | None = None, store: Path | str | None = None
) -> pd.DataFrame:
    """Build the panel from raw series keyed as in :data:`~regimecast.data.sources.SERIES`."""
    cut = parse_month(as_of) if as_of is not None else None
    start = data_start(raw)
    if cut is not None and cut < start:
        raise DataError(
            f"as-of {cut:%Y-%m} is before the data starts ({start:%Y-%m}, the first month every core "
            f"series ({', '.join(CORE_SERIES)} and the balance sheet) has a value); "
            "choose a later --as-of"
        )
    series = dict(raw)
    if cut is not None:
        end_day = _month_end(cut)
        series = {k: s[s.index <= end_day] for k, s in series.items()}

    monthly = {k: _monthly(series[k]) for k in (*CORE_SERIES, "BOGMBASE")}
    walcl = weekly_to_monthly(series["WALCL"]) / 1000.0
    iwm = daily_volume_to_monthly(series["IWM"])
    rut = daily_volume_to_monthly(series["RUT"])

    first = min(s.index.min() for s in monthly.values())
    candidates = [s.index.max() for s in (*monthly.values(), walcl, iwm, rut) if len(s)]
    last = cut if cut is not None else max(candidates)
    full = pd.date_range(min(first, last), max(last, first), freq="MS", name=C.DATE)

    def m(key: str) -> pd.Series:
        return monthly[key].reindex(full)

    cpi, core = m("CPIAUCSL"), m("CPILFESL")
    fed = m("FEDFUNDS")
    out = pd.DataFrame(index=full)
    out[C.CPI_YOY] = 100.0 * (cpi / cpi.shift(12) - 1.0)
    out[C.CPI_MOM_ANN] = 1200.0 * np.log(cpi / cpi.shift(1))
    out[C.CORE_CPI_YOY] = 100.0 * (core / core.shift(12) - 1.0)
    out[C.POLICY_RATE] = fed
    out[C.POLICY_RATE_CHANGE] = fed - fed.shift(1)
    out[C.BILL_RATE] = m("TB3MS")
    out[C.GS10] = m("GS10")

    # Balance sheet: WALCL from its first valid month, BOGMBASE before; growth within each source.
    walcl_f = walcl.reindex(full)
    base_f = m("BOGMBASE")
    walcl_valid = walcl_f.dropna()
    bs_splice = walcl_valid.index[0] if len(walcl_valid) else full[-1] + pd.offsets.MonthBegin(1)
    proxy = full < bs_splice
    out[C.BALANCE_SHEET] = np.where(proxy, base_f, walcl_f)
    out[C.BALANCE_SHEET_PROXY] = proxy.astype(int)
    g_walcl = 100.0 * np.log(walcl_f / walcl_f.shift(1))
    g_base = 100.0 * np.log(base_f / base_f.shift(1))
    out[C.BALANCE_SHEET_GROWTH] = np.where(proxy, g_base, g_walcl)

    # Small-cap volume: ^RUT constituent share volume; IWM share volume as a cross-check.
    out[C.SMALLCAP_VOLUME] = rut.reindex(full)
    out[C.SMALLCAP_VOLUME_PROXY] = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out[C.SMALLCAP_VOLUME_LOG] = np.log(out[C.SMALLCAP_VOLUME])
    out[C.SMALLCAP_VOLUME_IWM] = iwm.reindex(full)
    out[C.RECESSION] = m("USREC")

    out = out.loc[start:last, list(C.PANEL_COLUMNS)]
    if cut is None:
        values = out.drop(columns=list(C.FLAG_COLUMNS))
        has = values.notna().any(axis=1)
        out = out.loc[: has[has].index[-1]]
    out.index.name = C.DATE
    out.attrs.update(
        store=str(store) if store is not None else "",
        as_of=f"{out.index[-1]:%Y-%m}",
        as_of_requested=f"{cut:%Y-%m}" if cut is not None else "",
        volume_series=C.VOLUME_SERIES,
        balance_sheet_splice=f"{bs_splice:%Y-%m}",
        sources={k: _source_info(k, series[k]) for k in SERIES},
    )
    return out


def data_start(raw: Mapping[str, pd.Series]) -> pd.Timestamp:
    """The panel's first month: the first month in which every core series and the balance sheet
    (BOGMBASE, or WALCL if earlier) have a value."""
    firsts = []
    for key in CORE_SERIES:
        valid = raw[key].dropna()
        if valid.empty:
            raise DataError(
                f"{SERIES[key].relpath} has no values; run `regimecast fetch --series {key}`"
            )
        firsts.append(valid.index[0].to_period("M").to_timestamp())
    bs = [raw[k].dropna().index for k in ("BOGMBASE", "WALCL")]
    bs = [i[0].to_period("M").to_timestamp() for i in bs if len(i)]
    if not bs:
        raise DataError(
            "neither fred/BOGMBASE.csv nor fred/WALCL.csv has values; run `regimecast fetch`"
        )
    return max(*firsts, min(bs))


def _source_info(key: str, s: pd.Series) -> dict[str, str | None]:
    spec = SERIES[key]
    valid = s.dropna()
    if spec.source == "yahoo":
        valid = valid[valid > 0]
    return {
        "file": spec.relpath,
        "frequency": spec.frequency,
        "first": f"{valid.index[0]:%Y-%m-%d}" if len(valid) else None,
        "last": f"{valid.index[-1]:%Y-%m-%d}" if len(valid) else None,
    }


def summarize_panel(df: pd.DataFrame) -> pd.DataFrame:
    """Per column: first and last month with a value, missing months in between, last value."""
    rows = []
    for col in df.columns:
        s = df[col]
        valid = s.dropna()
        if valid.empty:
            rows.append(
                {
                    "column": col,
                    "first": None,
                    "last": None,
                    "missing": 0,
                    "missing_months": "",
                    "last_value": np.nan,
                }
            )
            continue
        inside = s.loc[valid.index[0] : valid.index[-1]]
        gaps = inside.index[inside.isna()]
        shown = ", ".join(f"{d:%Y-%m}" for d in gaps[:4]) + (", ..." if len(gaps) > 4 else "")
        rows.append(
            {
                "column": col,
                "first": f"{valid.index[0]:%Y-%m}",
                "last": f"{valid.index[-1]:%Y-%m}",
                "missing": int(len(gaps)),
                "missing_months": shown,
                "last_value": float(valid.iloc[-1]),
            }
        )
    return pd.DataFrame(rows).set_index("column")


def write_panel_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write the panel atomically as CSV with a ``date`` column (YYYY-MM-DD month starts)."""
    path = Path(path)
    out = df.copy()
    out.index = out.index.strftime("%Y-%m-%d")
    out.index.name = C.DATE
    return atomic_write_text(path, out.to_csv(float_format="%.10g", lineterminator="\n"))


def read_panel_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a panel CSV written by :func:`write_panel_csv`."""
    df = pd.read_csv(path, parse_dates=[C.DATE], index_col=C.DATE)
    return df


def panel_to_dataset(df: pd.DataFrame) -> xr.Dataset:
    """The panel as an xarray Dataset: dim ``time``; units/description in each variable's attrs."""
    data_vars = {}
    for col in df.columns:
        meta = C.COLUMN_META.get(col)
        attrs = {"units": meta.units, "description": meta.description} if meta else {}
        data_vars[col] = xr.Variable(("time",), df[col].to_numpy(), attrs=attrs)
    attrs = {
        k: v
        for k, v in df.attrs.items()
        if isinstance(v, (str, int, float)) and not isinstance(v, bool)
    }
    ds = xr.Dataset(data_vars, coords={"time": pd.DatetimeIndex(df.index).values}, attrs=attrs)
    ds["time"].attrs["description"] = "month start"
    return ds

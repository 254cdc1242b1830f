"""Checks on raw data files and on the monthly panel.

Every failure raises :class:`~regimecast.errors.DataError` naming the file, the line or date, and the fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from regimecast.errors import DataError

_DATE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[ T][0-9:.+\-Z]*)?$")
_MISSING = {"", ".", "null", "nan", "NaN", "NA", "#N/A"}

#: Median gap between observations (days) for each frequency, as an inclusive range.
_FREQ_GAPS: dict[str, tuple[float, float]] = {
    "daily": (1.0, 4.0),
    "weekly": (5.0, 10.0),
    "monthly": (27.0, 32.0),
    "quarterly": (85.0, 95.0),
}


def parse_date(text: str, path: Path | str, line: int) -> date:
    """Parse an ISO date (``YYYY-MM-DD``, optionally followed by a time) or raise DataError."""
    m = _DATE_RE.match(text.strip())
    if m:
        try:
            return date.fromisoformat(m.group(1))
        except ValueError:
            pass
    raise DataError(
        f"{path} line {line}: cannot parse date {text!r}; dates must be ISO YYYY-MM-DD "
        "(fix or remove that line, or re-download the file with `regimecast fetch`)"
    )


def parse_value(text: str, path: Path | str, line: int, column: str) -> float:
    """Parse a number; an empty cell, ``.`` or ``null`` is missing (NaN).  Raise DataError otherwise."""
    t = text.strip()
    if t in _MISSING:
        return math.nan
    try:
        v = float(t)
    except ValueError:
        v = None
    if v is None or math.isinf(v):
        raise DataError(
            f"{path} line {line}: column {column} has non-numeric value {text!r}; "
            "use a number, or leave the cell empty (or '.') for a missing value"
        )
    return v


def check_sorted_unique(dates: Sequence[date], lines: Sequence[int], path: Path | str) -> None:
    """Raise DataError at the first duplicated or out-of-order date."""
    for i in range(1, len(dates)):
        if dates[i] == dates[i - 1]:
            raise DataError(
                f"{path} line {lines[i]}: date {dates[i].isoformat()} is duplicated (also on line "
                f"{lines[i - 1]}); keep one row per date"
            )
        if dates[i] < dates[i - 1]:
            raise DataError(
                f"{path} line {lines[i]}: date {dates[i].isoformat()} comes after "
                f"{dates[i - 1].isoformat()} (line {lines[i - 1]}); sort the file by date, oldest first"
            )


def infer_frequency(dates: Sequence[date]) -> str:
    """Name the frequency of sorted dates from the median gap: daily, weekly, monthly, quarterly or irregular."""
    if len(dates) < 3:
        return "irregular"
    ords = np.array([d.toordinal() for d in dates], dtype=float)
    gap = float(np.median(np.diff(ords)))
    for name, (lo, hi) in _FREQ_GAPS.items():
        if lo <= gap <= hi:
            return name
    return "irregular"


def check_frequency(dates: Sequence[date], expected: str, path: Path | str, series: str) -> None:
    """Raise DataError when ``dates`` are not at the ``expected`` frequency."""
    found = infer_frequency(dates)
    if len(dates) >= 3 and found != expected:
        ords = np.diff([d.toordinal() for d in dates])
        raise DataError(
            f"{path}: {series} should be {expected} but the file looks {found} "
            f"(median gap {float(np.median(ords)):g} days between {dates[0]} and {dates[-1]}); "
            f"download the {expected} series (e.g. `regimecast fetch --series {series}`)"
        )
    if expected == "monthly":
        for d in dates:
            if d.day != 1:
                raise DataError(
                    f"{path}: {series} is monthly but date {d.isoformat()} is not the first of a "
                    "month; monthly observations must be dated YYYY-MM-01"
                )


def check_positive(
    values: Sequence[float],
    dates: Sequence[date],
    lines: Sequence[int],
    path: Path | str,
    column: str,
) -> None:
    """Raise DataError at the first zero or negative level (index levels, balances, prices)."""
    for v, d, ln in zip(values, dates, lines, strict=True):
        if v <= 0:  # NaN compares False
            raise DataError(
                f"{path} line {ln}: {column} on {d.isoformat()} is {v:g}, but this level must be "
                "positive; fix the value or leave the cell empty for a missing value"
            )


def check_non_negative(
    values: Sequence[float],
    dates: Sequence[date],
    lines: Sequence[int],
    path: Path | str,
    column: str,
) -> None:
    """Raise DataError at the first negative value (volumes)."""
    for v, d, ln in zip(values, dates, lines, strict=True):
        if v < 0:
            raise DataError(
                f"{path} line {ln}: {column} on {d.isoformat()} is {v:g}, but it cannot be negative; "
                "fix the value or leave the cell empty for a missing value"
            )


def check_binary(
    values: Sequence[float],
    dates: Sequence[date],
    lines: Sequence[int],
    path: Path | str,
    column: str,
) -> None:
    """Raise DataError at the first value that is not 0 or 1 (indicator series)."""
    for v, d, ln in zip(values, dates, lines, strict=True):
        if not math.isnan(v) and v not in (0.0, 1.0):
            raise DataError(
                f"{path} line {ln}: {column} on {d.isoformat()} is {v:g}, but this indicator must "
                "be 0 or 1"
            )


def parse_month(text: str, *, option: str = "--as-of") -> pd.Timestamp:
    """Parse ``YYYY-MM`` (or ``YYYY-MM-DD``) into the month-start timestamp, or raise DataError."""
    m = re.fullmatch(r"(\d{4})-(\d{2})(?:-\d{2})?", text.strip())
    if m and 1 <= int(m.group(2)) <= 12:
        return pd.Timestamp(year=int(m.group(1)), month=int(m.group(2)), day=1)
    raise DataError(f"{option} {text!r} is not a month; write it as YYYY-MM, e.g. 2023-12")


def require_history(
    df: pd.DataFrame,
    min_months: int,
    what: str = "the model",
    *,
    columns: Sequence[str] | None = None,
) -> int:
    """Raise DataError unless ``df`` has at least ``min_months`` complete months.

    A month is complete when every one of ``columns`` (default: every column of ``df``) has a value.
    Returns the number of complete months.
    """
    cols = list(df.columns if columns is None else columns)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(
            f"the panel has no column {', '.join(missing)} needed by {what}; rebuild it with "
            "`regimecast panel` from a complete data store"
        )
    complete = df[cols].notna().all(axis=1) if cols else pd.Series(True, index=df.index)
    n = int(complete.sum())
    if n < min_months:
        if n:
            idx = complete[complete].index
            span = f" ({idx[0]:%Y-%m} to {idx[-1]:%Y-%m})"
        else:
            span = ""
        raise DataError(
            f"too short a history for {what}: {n} complete months{span} of {', '.join(cols)}, "
            f"need at least {min_months}; use a later --as-of or a data store with longer series"
        )
    return n

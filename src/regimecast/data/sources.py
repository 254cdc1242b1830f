"""The raw series regimecast uses, where they live in the data store, and their readers.

Store layout (the same as a fetch produces)::

    <store>/fred/<SERIES_ID>.csv   observation_date,<SERIES_ID>   (older downloads: DATE,<SERIES_ID>)
    <store>/yahoo/<TICKER>.csv     Date,Open,High,Low,Close,Volume (^RUT is stored as RUT.csv)
    <store>/manifest.json          written by `regimecast fetch`: the data vintage
    <store>/.commit-journal.json   only while a fetch commits (or after one was killed mid-commit)

Store resolution: an explicit ``data`` argument (``--data DIR``) > env ``REGIMECAST_DATA`` > ``./data``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from regimecast.data import validate
from regimecast.errors import DataError
from regimecast.io import reading

ENV_STORE = "REGIMECAST_DATA"

FRED_DATE_HEADERS = ("observation_date", "date")
YAHOO_COLUMNS = ("Date", "Open", "High", "Low", "Close", "Volume")


@dataclass(frozen=True)
class SeriesSpec:
    """One raw series: its key in the store, where it comes from and what it must look like."""

    key: str
    source: str  # "fred" or "yahoo"
    symbol: str  # the remote identifier (FRED series id or Yahoo ticker)
    frequency: str  # "monthly", "weekly" or "daily"
    units: str
    description: str
    positive: bool = False  # levels must be > 0
    binary: bool = False  # values must be 0 or 1

    @property
    def relpath(self) -> str:
        """Path of the file inside the store, e.g. ``fred/CPIAUCSL.csv``."""
        return f"{self.source}/{self.key}.csv"

    def path(self, store: Path) -> Path:
        return Path(store) / self.relpath


SERIES: dict[str, SeriesSpec] = {
    s.key: s
    for s in (
        SeriesSpec(
            "CPIAUCSL",
            "fred",
            "CPIAUCSL",
            "monthly",
            "index 1982-84=100",
            "CPI-U all items, seasonally adjusted",
            positive=True,
        ),
        SeriesSpec(
            "CPILFESL",
            "fred",
            "CPILFESL",
            "monthly",
            "index 1982-84=100",
            "CPI-U less food and energy, seasonally adjusted",
            positive=True,
        ),
        SeriesSpec(
            "FEDFUNDS",
            "fred",
            "FEDFUNDS",
            "monthly",
            "percent",
            "effective federal funds rate, monthly average",
        ),
        SeriesSpec(
            "TB3MS",
            "fred",
            "TB3MS",
            "monthly",
            "percent",
            "3-month Treasury bill, secondary market",
        ),
        SeriesSpec(
            "GS10",
            "fred",
            "GS10",
            "monthly",
            "percent",
            "10-year Treasury constant-maturity yield, monthly average",
        ),
        SeriesSpec(
            "WALCL",
            "fred",
            "WALCL",
            "weekly",
            "millions of USD",
            "Fed total assets (H.4.1), Wednesday level",
            positive=True,
        ),
        SeriesSpec(
            "BOGMBASE",
            "fred",
            "BOGMBASE",
            "monthly",
            "billions of USD",
            "monetary base, total (balance-sheet proxy before WALCL)",
            positive=True,
        ),
        SeriesSpec(
            "USREC", "fred", "USREC", "monthly", "0/1", "NBER recession indicator", binary=True
        ),
        SeriesSpec("IWM", "yahoo", "IWM", "daily", "shares", "iShares Russell 2000 ETF daily bars"),
        SeriesSpec(
            "RUT",
            "yahoo",
            "^RUT",
            "daily",
            "index volume",
            "Russell 2000 index daily bars (Volume = 0 marks a missing day)",
        ),
    )
}

FRED_SERIES: tuple[str, ...] = tuple(k for k, s in SERIES.items() if s.source == "fred")
YAHOO_SERIES: tuple[str, ...] = tuple(k for k, s in SERIES.items() if s.source == "yahoo")


def resolve_store(data: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the data store: ``data`` if given, else env ``REGIMECAST_DATA``, else ``./data``."""
    if data is not None and str(data) != "":
        return Path(data).expanduser()
    env = os.environ.get(ENV_STORE)
    if env:
        return Path(env).expanduser()
    return Path("data")


def lookup(name: str) -> SeriesSpec:
    """Find a series by key or remote symbol (``RUT`` or ``^RUT``), case-insensitively."""
    n = name.strip().upper()
    for s in SERIES.values():
        if n in (s.key.upper(), s.symbol.upper()):
            return s
    raise DataError(f"unknown series {name!r}; known series: {', '.join(SERIES)}")


def _fix(spec: SeriesSpec) -> str:
    return f"run `regimecast fetch --series {spec.key}` or check --data / {ENV_STORE}"


def _read_rows(path: Path, spec: SeriesSpec) -> list[list[str]]:
    if not path.is_file():
        raise DataError(f"data file {path} not found ({spec.key}); {_fix(spec)}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not a UTF-8 text CSV ({err.reason}); {_fix(spec)}") from None
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or not any(c.strip() for c in rows[0]):
        raise DataError(f"{path} is empty; {_fix(spec)}")
    return rows


def _to_index(dates: list[date]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.array(dates, dtype="datetime64[D]"), name="date")


def read_fred(path: str | os.PathLike[str], spec: SeriesSpec | str) -> pd.Series:
    """Read one FRED series file into a float Series (DatetimeIndex ``date``; NaN where missing).

    Accepts FRED's ``observation_date,<ID>`` header and the older ``DATE,<ID>``; an empty cell or
    ``.`` is a missing value.  Checks dates (parseable, sorted, unique), frequency, numbers, and
    positivity or 0/1 where the series requires it.
    """
    spec = lookup(spec) if isinstance(spec, str) else spec
    path = Path(path)
    rows = _read_rows(path, spec)
    header = [c.strip() for c in rows[0]]
    ok = (
        len(header) >= 2
        and header[0].lower() in FRED_DATE_HEADERS
        and header[1].upper() == spec.key.upper()
    )
    if not ok:
        raise DataError(
            f"{path} line 1: expected the header 'observation_date,{spec.key}' (or 'DATE,{spec.key}'), "
            f"found {','.join(header)!r}; rename the columns or {_fix(spec)}"
        )
    dates: list[date] = []
    values: list[float] = []
    lines: list[int] = []
    for i, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < 2:
            row = [*row, ""]
        dates.append(validate.parse_date(row[0], path, i))
        values.append(validate.parse_value(row[1], path, i, spec.key))
        lines.append(i)
    if not dates:
        raise DataError(f"{path} has a header but no data rows; {_fix(spec)}")
    validate.check_sorted_unique(dates, lines, path)
    validate.check_frequency(dates, spec.frequency, path, spec.key)
    if spec.positive:
        validate.check_positive(values, dates, lines, path, spec.key)
    if spec.binary:
        validate.check_binary(values, dates, lines, path, spec.key)
    return pd.Series(values, index=_to_index(dates), name=spec.key, dtype=float)


def read_yahoo(path: str | os.PathLike[str], spec: SeriesSpec | str) -> pd.DataFrame:
    """Read Yahoo daily bars into a float DataFrame (``Open..Volume``, DatetimeIndex ``date``).

    LF or CRLF line endings; an empty cell or ``null`` is missing.  Volume must be >= 0 (zero marks
    a missing day and is kept as 0 here; aggregation drops it) and Close > 0.
    """
    spec = lookup(spec) if isinstance(spec, str) else spec
    path = Path(path)
    rows = _read_rows(path, spec)
    header = [c.strip() for c in rows[0]]
    pos = {name: header.index(name) for name in YAHOO_COLUMNS if name in header}
    lacking = [c for c in ("Date", "Close", "Volume") if c not in pos]
    if lacking:
        raise DataError(
            f"{path} line 1: no column {', '.join(lacking)} in header {','.join(header)!r}; "
            f"expected {','.join(YAHOO_COLUMNS)}; {_fix(spec)}"
        )
    dates: list[date] = []
    lines: list[int] = []
    cols: dict[str, list[float]] = {c: [] for c in YAHOO_COLUMNS[1:] if c in pos}
    for i, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < len(header):
            raise DataError(
                f"{path} line {i}: {len(row)} fields, expected {len(header)} ({','.join(header)}); "
                f"fix or remove that line, or {_fix(spec)}"
            )
        dates.append(validate.parse_date(row[pos["Date"]], path, i))
        for c, vals in cols.items():
            vals.append(validate.parse_value(row[pos[c]], path, i, c))
        lines.append(i)
    if not dates:
        raise DataError(f"{path} has a header but no data rows; {_fix(spec)}")
    validate.check_sorted_unique(dates, lines, path)
    validate.check_frequency(dates, spec.frequency, path, spec.key)
    validate.check_non_negative(cols["Volume"], dates, lines, path, "Volume")
    validate.check_positive(cols["Close"], dates, lines, path, "Close")
    df = pd.DataFrame(cols, index=_to_index(dates), dtype=float)
    return df.reindex(columns=[c for c in YAHOO_COLUMNS[1:] if c in df.columns])


@contextlib.contextmanager
def reading_store(store: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the store still while reading several files: all from one fetch, never a mix.

    A fetch interrupted mid-commit (``.commit-journal.json`` in the store) is completed first; a
    fetch committing right now is waited for.  See :func:`regimecast.io.reading`.
    """
    root = Path(store)
    hint = f"run `regimecast fetch --data {root}` with write access to the store to complete it"
    with reading(root, hint=hint):
        yield root


def read_store(
    store: str | os.PathLike[str], keys: Iterable[str] | None = None
) -> dict[str, pd.Series]:
    """Read ``keys`` (default: every series) with :func:`read_series`, as one consistent set."""
    with reading_store(store) as root:
        return {key: _read_series(root, key) for key in (keys or SERIES)}


def read_series(store: str | os.PathLike[str], key: str) -> pd.Series:
    """Read one series from the store: a FRED series, or a Yahoo ticker's daily Volume."""
    with reading_store(store) as root:
        return _read_series(root, key)


def _read_series(store: Path, key: str) -> pd.Series:
    spec = lookup(key)
    path = spec.path(Path(store))
    if spec.source == "fred":
        return read_fred(path, spec)
    vol = read_yahoo(path, spec)["Volume"]
    vol.name = spec.key
    return vol


def file_info(path: Path, spec: SeriesSpec) -> dict[str, object]:
    """Rows, first and last observation (last non-missing value) of a store file, validated."""
    s = read_fred(path, spec) if spec.source == "fred" else read_yahoo(path, spec)["Volume"]
    valid = s.dropna()
    if spec.source == "yahoo":
        valid = valid[valid > 0]
    return {
        "rows": int(len(s)),
        "first_observation": _iso(s.index[0]),
        "last_date": _iso(s.index[-1]),
        "last_observation": _iso(valid.index[-1]) if len(valid) else None,
    }


def _iso(ts: pd.Timestamp) -> str:
    return ts.date().isoformat()

"""The Fed's episode record (``data/chronology.csv``) and the outcomes it implies at each origin.

One row per episode: ``easing`` / ``tightening`` rows give the month of the first cut / first hike of
a rate cycle (the first move after a move in the other direction), ``qe`` / ``qt`` rows the first and
last month of each asset-purchase programme and each balance-sheet runoff, ``reserve_purchases`` the
2019 bill purchases ("not QE", kept for reference, never scored).  How each date was chosen is in the
``basis`` column and in README "Track record".

Outcomes at an origin ``t`` (the as-of month) for a window of ``k`` months: did an episode of the type
start in ``t+1 .. t+k``?  An origin is *at risk* only where the event can happen as the model defines
it: a first cut only after a tightening cycle (the last rate episode before ``t`` is a tightening), a
first hike only after an easing cycle, a QE start only outside a running QE programme.  An outcome is
*known* only when ``t + k`` is not later than the month the chronology is complete through.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from regimecast.errors import DataError

TYPES = ("easing", "tightening", "qe", "qt", "reserve_purchases")
COLUMNS = ("episode", "type", "start", "end", "start_date", "end_date", "basis", "source", "note")
#: The last month whose episodes the shipped chronology records completely.
COMPLETE_THROUGH = "2026-01"
#: event name -> (episode type whose start is the event, type whose running episode blocks it)
EVENT_TYPES = {
    "qe_start": ("qe", "qe"),
    "first_cut": ("easing", None),
    "first_hike": ("tightening", None),
}


def default_path() -> Path:
    """The chronology shipped with the package (identical to the checkout's ``data/chronology.csv``)."""
    return Path(str(resources.files("regimecast.backtest").joinpath("chronology.csv")))


@dataclass(frozen=True)
class Chronology:
    episodes: pd.DataFrame  # columns COLUMNS, start/end as pandas Periods (M)
    complete_through: pd.Period

    def starts(self, kind: str) -> list[pd.Period]:
        return list(self.episodes.loc[self.episodes["type"] == kind, "start"])

    def last_rate_episode(self, origin: pd.Period) -> str | None:
        rate = self.episodes[self.episodes["type"].isin(("easing", "tightening"))]
        before = rate[rate["start"] <= origin]
        return None if before.empty else str(before.sort_values("start")["type"].iloc[-1])

    def running(self, kind: str, origin: pd.Period) -> bool:
        ep = self.episodes[self.episodes["type"] == kind]
        end = ep["end"].fillna(self.complete_through)
        return bool(((ep["start"] <= origin) & (end >= origin)).any())

    def at_risk(self, event: str, origin: pd.Period) -> bool:
        """Whether ``event`` can happen after ``origin`` as the model defines it."""
        if event == "qe_start":
            return not self.running("qe", origin)
        last = self.last_rate_episode(origin)
        if event == "first_cut":
            return last in (None, "tightening")
        if event == "first_hike":
            return last in (None, "easing")
        raise DataError(f"no chronology outcome for event {event!r}; known: {sorted(EVENT_TYPES)}")

    def outcome(self, event: str, origin: pd.Period, months: int) -> float:
        """1.0 / 0.0 if the event started within ``months`` after ``origin``; NaN if unknown or not
        at risk."""
        if origin + months > self.complete_through or not self.at_risk(event, origin):
            return float("nan")
        kind = EVENT_TYPES[event][0]
        return float(any(origin < s <= origin + months for s in self.starts(kind)))


def load_chronology(path: str | Path | None = None, *, complete_through: str = COMPLETE_THROUGH) -> Chronology:
    """Read and validate the chronology; a :class:`DataError` names the row and the fix."""
    path = Path(path) if path is not None else default_path()
    if not path.is_file():
        raise DataError(f"chronology file {path} not found; pass the project's data/chronology.csv")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    if df["episode"].duplicated().any():
        dup = df.loc[df["episode"].duplicated(), "episode"].iloc[0]
        raise DataError(f"{path}: episode {dup!r} appears twice; episode names must be unique")
    out = df.copy()
    for i, row in df.iterrows():
        where = f"{path}: row {i + 2} ({row['episode']})"
        if row["type"] not in TYPES:
            raise DataError(f"{where}: type {row['type']!r} unknown; use one of {', '.join(TYPES)}")
        for col in ("start", "end"):
            if row[col] and not _is_month(row[col]):
                raise DataError(f"{where}: {col} {row[col]!r} is not a YYYY-MM month")
        if not row["start"]:
            raise DataError(f"{where}: start month missing")
        if row["type"] in ("qe", "qt") and not row["end"]:
            raise DataError(f"{where}: a {row['type']} episode needs its end month (or the last month so far)")
        if row["end"] and row["end"] < row["start"]:
            raise DataError(f"{where}: end {row['end']} is before start {row['start']}")
        if not row["source"]:
            raise DataError(f"{where}: every episode needs its source")
    out["start"] = pd.PeriodIndex(df["start"], freq="M")
    out["end"] = [pd.Period(e, freq="M") if e else pd.NaT for e in df["end"]]
    _check_alternation(out, path)
    return Chronology(out.sort_values("start").reset_index(drop=True), pd.Period(complete_through, freq="M"))


def _is_month(text: str) -> bool:
    try:
        pd.Period(text, freq="M")
    except ValueError:
        return False
    return len(text) == 7 and text[4] == "-"


def _check_alternation(df: pd.DataFrame, path: Path) -> None:
    """Rate cycles alternate (a first cut follows a hike cycle); QE and QT episodes never overlap."""
    rate = df[df["type"].isin(("easing", "tightening"))].sort_values("start")
    kinds = list(rate["type"])
    for a, b, name in zip(kinds, kinds[1:], rate["episode"].iloc[1:], strict=False):
        if a == b:
            raise DataError(f"{path}: {name} follows another {a} episode; rate cycles must alternate")
    bs = df[df["type"].isin(("qe", "qt"))].sort_values("start")
    for (_, x), (_, y) in zip(bs.iterrows(), bs.iloc[1:].iterrows(), strict=False):
        if y["start"] <= x["end"]:
            raise DataError(f"{path}: {y['episode']} starts before {x['episode']} ends")

"""What is new in a data store since a run: appended months and revised values, in release order.

:func:`find_news` compares the panel a run saw (its ``panel.csv``) with the store's panel cut at a later
as-of month and lists every changed cell: a month past the run's as-of (``new month``), a value inside the
run's sample that changed (``revised``), a value that was missing and is now printed (``late print``), or
one that disappeared (``withdrawn``).  Values are compared with a relative tolerance of ``1e-10`` (the
CSV round trip of ``panel.csv`` is exact to about 1e-16), so only genuine changes count.

:func:`release_steps` orders the news the way it reaches a user, for the news attribution of
``regimecast update``: first the revisions of past months (one step per release group), then month by
month the groups in their release order inside a month (:data:`RELEASE_GROUPS`: small-cap volume at the
month's end, the fed funds average on the first business day after it, the H.4.1 balance sheet in the
first week after it, CPI in the middle of the next month).  Each step is a panel at the *new* as-of month
holding the prints released so far; a print not yet released is the run's old value (or missing, for a
month past the run's as-of), which the model treats as unobserved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from regimecast.config import ModelConfig
from regimecast.data import columns as C

#: Release groups of the model's inputs, in their release order inside a month: (name, source, columns).
RELEASE_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("small-cap volume", "IWM", (C.SMALLCAP_VOLUME, C.SMALLCAP_VOLUME_LOG)),
    ("policy rate", "FEDFUNDS", (C.POLICY_RATE, C.POLICY_RATE_CHANGE)),
    ("balance sheet", "WALCL", (C.BALANCE_SHEET, C.BALANCE_SHEET_GROWTH)),
    ("CPI", "CPIAUCSL", (C.CPI_MOM_ANN, C.CPI_YOY)),
)
NEWS_COLUMNS = ("series", "month", "old", "new", "kind", "in_model", "group")
RTOL = 1e-10


def model_columns(cfg: ModelConfig) -> tuple[str, ...]:
    """Panel columns the model's likelihood reads (``prepare_data``); CPI y/y only with TVTP."""
    from regimecast.models.macro import REQUIRED

    return (*REQUIRED, C.CPI_YOY) if cfg.tvtp else tuple(REQUIRED)


def group_of(column: str) -> str:
    for name, _, cols in RELEASE_GROUPS:
        if column in cols:
            return name
    return ""


def find_news(old: pd.DataFrame, new: pd.DataFrame, cfg: ModelConfig) -> pd.DataFrame:
    """Every changed cell between ``old`` (a run's panel) and ``new`` (the store's, later as-of).

    Returns a DataFrame with :data:`NEWS_COLUMNS`: ``series`` (panel column), ``month`` (YYYY-MM),
    ``old`` / ``new`` values (NaN = missing), ``kind`` (new month, revised, late print, withdrawn),
    ``in_model`` (the model's likelihood reads the column) and ``group`` (its release group).
    """
    used = set(model_columns(cfg))
    cols = [c for c in new.columns if c in old.columns and c not in C.FLAG_COLUMNS]
    last_old = old.index.max()
    o = old.reindex(new.index)[cols].to_numpy(dtype=float)
    n = new[cols].to_numpy(dtype=float)
    both = np.isfinite(o) & np.isfinite(n)
    differs = np.zeros_like(both)
    differs[both] = ~np.isclose(n[both], o[both], rtol=RTOL, atol=0.0)
    differs |= np.isfinite(o) != np.isfinite(n)
    rows = []
    for i, j in zip(*np.nonzero(differs), strict=True):
        month = new.index[i]
        if month > last_old:
            kind = "new month"
        elif both[i, j]:
            kind = "revised"
        else:
            kind = "late print" if np.isfinite(n[i, j]) else "withdrawn"
        rows.append((cols[j], f"{month:%Y-%m}", o[i, j], n[i, j], kind, cols[j] in used, group_of(cols[j])))
    df = pd.DataFrame(rows, columns=list(NEWS_COLUMNS))
    return df.sort_values(["month", "series"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Step:
    """One release of the news attribution: its label and the panel once it is out."""

    label: str
    group: str
    month: str  # YYYY-MM of the prints ("" for a batch of revisions)
    panel: pd.DataFrame


def base_panel(old: pd.DataFrame, new: pd.DataFrame, cfg: ModelConfig) -> pd.DataFrame:
    """The new panel's months with the run's old values in every model column (missing past its as-of)."""
    out = new.copy()
    used = [c for c in model_columns(cfg) if c not in C.FLAG_COLUMNS]
    out[used] = old.reindex(new.index)[used]
    return out


def release_steps(old: pd.DataFrame, new: pd.DataFrame, news: pd.DataFrame, cfg: ModelConfig) -> list[Step]:
    """Cumulative panels, one per release (revisions first, then month by month in group order).

    Only news in the model's columns makes a step; the last step's model columns equal ``new``'s.
    """
    panel = base_panel(old, new, cfg)
    relevant = news[news["in_model"]]
    if relevant.empty:
        return []
    past = relevant[relevant["kind"] != "new month"]
    fresh = relevant[relevant["kind"] == "new month"]
    steps: list[Step] = []
    order = [g for g, _, _ in RELEASE_GROUPS]
    for g in order:
        sub = past[past["group"] == g]
        if len(sub):
            panel = _apply(panel, new, sub)
            span = f"{sub['month'].min()}..{sub['month'].max()}"
            steps.append(Step(f"{g} revisions ({span})", g, "", panel))
    for month in sorted(fresh["month"].unique()):
        for g in order:
            sub = fresh[(fresh["month"] == month) & (fresh["group"] == g)]
            if len(sub):
                panel = _apply(panel, new, sub)
                steps.append(Step(f"{month} {g}", g, month, panel))
    return steps


def _apply(panel: pd.DataFrame, new: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``panel`` with the group's columns of ``new`` released in the months of ``cells``."""
    out = panel.copy()
    months = pd.to_datetime(cells["month"].unique() + "-01")
    for g in cells["group"].unique():
        cols = [c for c in next(cs for n, _, cs in RELEASE_GROUPS if n == g) if c in out]
        out.loc[months, cols] = new.loc[months, cols]
    return out


def news_table_text(news: pd.DataFrame, max_rows: int = 40) -> str:
    """The news as a fixed-width table (series, month, old, new, kind), model inputs first."""
    if news.empty:
        return "no new data"
    df = news.sort_values(["in_model", "month"], ascending=[False, True], kind="stable")
    lines = [f"{'series':<22} {'month':<8} {'old':>12} {'new':>12}  kind"]
    for r in df.head(max_rows).itertuples():
        note = "" if r.in_model else " (not a model input)"
        lines.append(f"{r.series:<22} {r.month:<8} {_num(r.old):>12} {_num(r.new):>12}  {r.kind}{note}")
    if len(df) > max_rows:
        lines.append(f"... and {len(df) - max_rows} more rows (news.csv in the run)")
    return "\n".join(lines)


def _num(v: float) -> str:
    return "-" if not np.isfinite(v) else f"{v:.6g}"

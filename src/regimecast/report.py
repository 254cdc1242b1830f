"""The quarterly report: event tables (CSV), charts (PNG), and a one-page Markdown + HTML report.

:func:`write_outputs` evaluates the events on a forecast and writes every file of a run's report
into an existing run directory, each file atomically.  Markdown and HTML are rendered by Jinja2
templates (``templates/report.md.j2``, ``templates/report.html.j2``) from ONE ordered list of
:class:`Section` objects (:func:`report_sections`), so both carry the same content: caller-supplied
lead sections first, then the headline numbers, the event tables, where each series ends, the
charts, the data vintage, the sampler diagnostics and the configuration.  The HTML is
self-contained (inline CSS, images embedded as base64).  A demo run (``meta["demo"]`` or
``forecast.attrs["demo"] == 1``) carries the "SYNTHETIC DEMO DATA - not a forecast" stamp in the
title, above the headlines and on every chart.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import matplotlib.pyplot as plt
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from regimecast import schema
from regimecast.data.columns import BALANCE_SHEET, CPI_YOY, POLICY_RATE, SMALLCAP_VOLUME
from regimecast.errors import DataError
from regimecast.events import (
    DURATION_KIND,
    STATE_END,
    STATE_START,
    Event,
    evaluate_events,
    event_summary_table,
    events_table,
    load_events,
)
from regimecast.io import atomic_path, atomic_write_text
from regimecast.plots import DEMO_STAMP, plot_events, plot_fan, plot_regimes
from regimecast.schema import DATE, EVENT

log = logging.getLogger(__name__)

#: Series that get a fan chart, written as ``fan_<variable>.png``.
FAN_VARIABLES: tuple[str, ...] = (CPI_YOY, POLICY_RATE, BALANCE_SHEET, SMALLCAP_VOLUME)
EVENTS_CSV = "events.csv"
SUMMARY_CSV = "event_summary.csv"
REGIMES_PNG = "regimes.png"
EVENTS_PNG = "events.png"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
PNG_DPI = 110

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #b2182b; padding-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.6em; color: #444; }
table { border-collapse: collapse; margin: .6em 0; font-size: .88em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
ul.headlines li { font-size: 1.08em; margin: .25em 0; }
.demo { background: #fde0dd; color: #a50f15; border: 2px solid #a50f15; padding: .5em 1em;
        font-weight: bold; font-size: 1.1em; }
.note { color: #555; font-size: .85em; }
img { max-width: 100%; border: 1px solid #eee; margin: .4em 0; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .82em; }
"""


# --------------------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------------------
def _pct(p: float) -> str:
    """``0.2345 -> "23%"``, NaN -> ``"n/a"``."""
    return "n/a" if p is None or not math.isfinite(float(p)) else f"{float(p):.0%}"


def _months(m: float) -> str:
    return "n/a" if not math.isfinite(float(m)) else f"{float(m):g}"


def _month(ts: Any) -> str:
    return "n/a" if ts is None or pd.isna(ts) else f"{pd.Timestamp(ts):%Y-%m}"


def _long_month(ts: Any) -> str:
    return "n/a" if ts is None or pd.isna(ts) else f"{pd.Timestamp(ts):%B %Y}"


def _within_k(k: int, horizon: int) -> int:
    return min(k, horizon)


def _display_value(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str)
    return str(value)


def _number(v: float) -> str:
    """A threshold or level for reading: ``4.41 bn``, ``3.25 m``, ``2.5``; NaN -> ``"n/a"``."""
    if v is None or not math.isfinite(float(v)):
        return "n/a"
    v = float(v)
    if abs(v) >= 1e9:
        return f"{v / 1e9:.3g} bn"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.3g} m"
    return f"{v:.4g}"


def _threshold(rec: Mapping[str, Any]) -> str:
    """The threshold of a summary record in the series' units, ``""`` for non-threshold events."""
    thr = rec.get("threshold", math.nan)
    if thr is None or not math.isfinite(float(thr)):
        return ""
    units = str(rec.get("threshold_units") or "")
    units = "" if units == "nan" else units
    return f"{_number(thr)} {units}".strip()


def _summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    """The event summary as strings, for the terminal, Markdown and HTML."""
    rows = []
    for rec in summary.to_dict("records"):
        is_dur = rec["kind"] == DURATION_KIND
        fmt = (lambda v: "n/a" if not math.isfinite(v) else f"{v:g} mo") if is_dur else _month
        never = _pct(rec["p_never"])
        at_least = (
            f"{_pct(rec['p_at_least'])} (>= {int(rec['at_least_months'])} mo)" if is_dur else ""
        )
        rows.append(
            {
                "event": rec["event"],
                "median": fmt(rec["median_months"] if is_dur else rec["median"]),
                "10%-90%": (
                    f"{fmt(rec['q10_months'])} - {fmt(rec['q90_months'])}"
                    if is_dur
                    else f"{fmt(rec['q10'])} - {fmt(rec['q90'])}"
                ),
                "P(<=6m)": _pct(rec["p_within_6m"]),
                "P(<=12m)": _pct(rec["p_within_12m"]),
                "P(<=24m)": _pct(rec["p_within_24m"]),
                "P(never)": never + (" (censored)" if is_dur else ""),
                "P(start)": _pct(rec["p_start"]) if is_dur else "",
                "P(long)": at_least,
                "threshold": _threshold(rec),
            }
        )
    return pd.DataFrame(rows)


def headline_table(summary_df: pd.DataFrame) -> str:
    """Plain-text table of an event summary (from :func:`~regimecast.events.event_summary_table`).

    Dated events show the median and 10%-90% months (``YYYY-MM``) of the first occurrence among
    paths where it happens; duration events show months, conditional on the start, with
    ``P(never)`` the censored share.  ``P(<=km)`` is the probability within ``k`` months (within
    the horizon when it is shorter).
    """
    df = _summary_display(summary_df)
    if df.empty:
        return "(no events)"
    cols = list(df.columns)
    widths = [max(len(c), *(len(str(v)) for v in df[c])) for c in cols]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for rec in df.itertuples(index=False):
        cells = [
            (str(v).ljust(w) if i == 0 else str(v).rjust(w))
            for i, (v, w) in enumerate(zip(rec, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def headline_lines(result: xr.Dataset, summary: pd.DataFrame) -> list[str]:
    """One sentence per event with its headline numbers, e.g. ``P(QE starts by March 2027) = 23%``."""
    dates = pd.DatetimeIndex(result[DATE].values)
    horizon = len(dates) - 1
    lines = []
    for rec in summary.to_dict("records"):
        label = rec["label"]
        if rec["kind"] in (STATE_START, STATE_END):
            k = _within_k(12, horizon)
            line = f"P({label} by {_long_month(dates[k])}) = {_pct(rec['p_within_12m'])}"
            if math.isfinite(rec["median_months"]):
                line += (
                    f"; if it happens within {horizon} months, median {_long_month(rec['median'])}"
                    f" (10%-90%: {_month(rec['q10'])} to {_month(rec['q90'])})"
                )
            line += f"; P(not within {horizon} months) = {_pct(rec['p_never'])}"
        elif rec["kind"] == DURATION_KIND:
            n = int(rec["at_least_months"])
            if not rec["p_start"] > 0:
                lines.append(
                    f"{label}: the window does not open within {horizon} months on any "
                    "simulated path"
                )
                continue
            if math.isfinite(rec["median_months"]):
                unit = "month" if rec["median_months"] == 1 else "months"
                line = (
                    f"median {label} = {_months(rec['median'])} {unit}"
                    f" (10%-90%: {_months(rec['q10'])}-{_months(rec['q90'])})"
                )
            else:
                line = f"{label}: no window closed within the horizon"
            line += (
                f", P(>= {n} months) = {_pct(rec['p_at_least'])}"
                f"; still open at the horizon end: {_pct(rec['p_censored'])}"
                f"; given the start within {horizon} months (P = {_pct(rec['p_start'])})"
            )
        else:
            line = _threshold_line(rec, dates)
        lines.append(line)
    return lines


def _threshold_line(rec: Mapping[str, Any], dates: pd.DatetimeIndex) -> str:
    """Headline of a threshold event; says so when the series is already past it at the as-of."""
    k = _within_k(24, len(dates) - 1)
    by = f"within {k} months, by {_long_month(dates[k])}"
    thr = _threshold(rec)
    met = str(rec.get("met_text") or "")
    if met and met != "nan":
        return (
            f"{met} (threshold {thr}, at the as-of {_number(rec.get('value_at_as_of'))}); "
            f"P(falls back and returns {by}) = {_pct(rec['p_within_24m'])}"
        )
    line = f"P({rec['label']} {by}) = {_pct(rec['p_within_24m'])}"
    return line + (f"; threshold {thr}" if thr else "")


def quarterly_table(result: xr.Dataset) -> pd.DataFrame:
    """Cumulative event probabilities at quarterly horizons (3, 6, ... months and the last month),
    as percent strings: one row per event, one column per month (``YYYY-MM``)."""
    dates = pd.DatetimeIndex(result[DATE].values)
    horizon = len(dates) - 1
    steps = list(range(3, horizon + 1, 3))
    if not steps or steps[-1] != horizon:
        steps.append(horizon)
    rows = []
    for i, name in enumerate(result[EVENT].values):
        cum = result["cumulative"].values[i]
        row = {"event": str(name)}
        row.update({f"{dates[h]:%Y-%m}": _pct(cum[h]) for h in steps if h >= 1})
        rows.append(row)
    return pd.DataFrame(rows)


def _kv_frame(d: Mapping[str, Any] | None) -> pd.DataFrame:
    items = []
    for k, v in sorted((d or {}).items()):
        if k == "files" and isinstance(v, Mapping):
            # one readable row per data file instead of one JSON blob
            for name, info in sorted(v.items()):
                info = info if isinstance(info, Mapping) else {}
                sha = str(info.get("sha256") or "")[:12]
                items.append((name, f"rows {info.get('rows')}, last {info.get('last_observation')}, "
                                    f"downloaded {info.get('downloaded_utc') or 'n/a'}, sha256 {sha}"))
        else:
            items.append((k, v))
    return pd.DataFrame(
        {"key": [str(k) for k, _ in items], "value": [_display_value(v) for _, v in items]}
    )


_CONVENTIONS = (
    "Dated events: probabilities are over all simulated paths; the median and 10%-90% months are "
    "over the paths where the event happens within the horizon, and P(never) is the share where it "
    "does not. Duration events (months from the start state to the end state): every number is "
    "conditional on the start happening within the horizon (P(start)); medians are over windows that "
    "closed, P(never) is the share still open at the horizon end (censored), and P(long) counts a "
    "censored window as long when its observed length already reaches the threshold (a lower "
    "bound). P(<=km) uses the horizon when it is shorter than k months."
)

_QUARTERLY_NOTE = (
    "P(the event has happened by the end of each month shown), over all simulated paths; for "
    "duration events, P(the window has opened and closed by then)."
)


_SERIES_ENDS_NOTE = (
    "The last month with an observation of each series at the as-of; the model treats later "
    "months of a series as missing."
)


# --------------------------------------------------------------------------------------------------
# sections and rendering
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Section:
    """One section of the report, rendered the same way in Markdown and HTML.

    ``title`` is the heading; then, in this order, ``paragraphs``, ``bullets``, ``table`` (a
    DataFrame whose cells are shown as strings), ``notes`` (small print), ``images`` (``(file name,
    caption)`` of PNGs in the run directory) and ``code`` (preformatted text).
    """

    title: str
    paragraphs: Sequence[str] = ()
    table: pd.DataFrame | None = None
    bullets: Sequence[str] = ()
    notes: Sequence[str] = ()
    images: Sequence[tuple[str, str]] = ()
    code: str = ""

    def context(self) -> dict[str, Any]:
        """The section as plain data for the templates (table cells as strings)."""
        table = None
        if self.table is not None:
            table = {
                "columns": [str(c) for c in self.table.columns],
                "rows": [[str(v) for v in rec] for rec in self.table.itertuples(index=False)],
            }
        return {
            "title": self.title,
            "paragraphs": list(self.paragraphs),
            "bullets": list(self.bullets),
            "table": table,
            "notes": list(self.notes),
            "images": list(self.images),
            "code": self.code,
        }


@dataclass(frozen=True)
class ReportPage:
    """The whole report: a title block and the ordered sections."""

    title: str
    subtitle: str
    sections: Sequence[Section]
    footer: str
    demo: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


@cache
def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("regimecast", "templates"),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["md_cell"] = _md_cell
    return env


def render_markdown(page: ReportPage) -> str:
    """The report as Markdown (images referenced by file name)."""
    template = _environment(False).get_template("report.md.j2")
    return template.render(**_page_context(page))


def render_html(page: ReportPage, run_dir: str | os.PathLike[str]) -> str:
    """The report as one self-contained HTML page (images from ``run_dir`` embedded as base64)."""
    names = {name for s in page.sections for name, _ in s.images}
    images = {n: base64.b64encode((Path(run_dir) / n).read_bytes()).decode("ascii") for n in names}
    template = _environment(True).get_template("report.html.j2")
    return template.render(**_page_context(page), images=images, css=_CSS)


def _page_context(page: ReportPage) -> dict[str, Any]:
    return {
        "title": page.title,
        "subtitle": page.subtitle,
        "demo": page.demo,
        "demo_stamp": DEMO_STAMP,
        "sections": [s.context() for s in page.sections],
        "footer": page.footer,
    }


def _title(as_of: str, demo: bool) -> str:
    title = f"regimecast quarterly report - as of {as_of}"
    return f"{title} - {DEMO_STAMP}" if demo else title


def _series_ends_table(series_ends: Mapping[str, Any], as_of: str) -> pd.DataFrame:
    """``series, last observed, months before the as-of`` for each series."""
    rows = []
    end = pd.Period(as_of, freq="M") if as_of else None
    for name, last in series_ends.items():
        month = pd.Period(str(last)[:7], freq="M") if last else None
        gap = "" if month is None or end is None else str((end - month).n)
        rows.append({"series": str(name), "last observed": str(month or "none"),
                     "months before the as-of": gap})
    return pd.DataFrame(rows, columns=["series", "last observed", "months before the as-of"])


def _threshold_notes(summary: pd.DataFrame) -> list[str]:
    """One line per threshold event: the threshold used, its rule and whether it is met already."""
    notes = []
    for rec in summary.to_dict("records"):
        thr = _threshold(rec)
        if not thr:
            continue
        rule = str(rec.get("threshold_rule") or "")
        met = rec.get("met_at_as_of", math.nan)
        state = "" if not math.isfinite(float(met)) else (
            f"; at the as-of {_number(rec.get('value_at_as_of'))}, "
            + ("already past it" if float(met) >= 0.5 else "not past it")
        )
        notes.append(f"{rec['event']}: threshold {thr} ({rule}){state}.")
    return notes


def report_sections(
    result: xr.Dataset,
    summary: pd.DataFrame,
    images: Sequence[tuple[str, str]],
    meta: Mapping[str, Any],
    *,
    demo: bool,
    lead_sections: Sequence[Section] = (),
) -> list[Section]:
    """The ordered sections of the report: ``lead_sections``, headlines, event tables, where each
    series ends (when ``meta["series_ends"]`` is given), charts, vintage, diagnostics, config."""
    prefix = "[synthetic demo data] " if demo else ""
    sections = [
        *lead_sections,
        Section("Headlines", bullets=[prefix + ln for ln in headline_lines(result, summary)]),
        Section("Event summary", table=_summary_display(summary),
                notes=[*_threshold_notes(summary), _CONVENTIONS]),
        Section(
            "Cumulative event probabilities by quarter",
            table=quarterly_table(result),
            notes=[f"{_QUARTERLY_NOTE} Monthly probabilities: {EVENTS_CSV}; summary: {SUMMARY_CSV}."],
        ),
    ]
    if meta.get("series_ends"):
        ends = _series_ends_table(meta["series_ends"], str(result.attrs.get("as_of", "")))
        sections.append(Section("Data: where each series ends", table=ends,
                                notes=[_SERIES_ENDS_NOTE]))
    config_json = json.dumps(meta.get("config") or {}, indent=2, sort_keys=True, default=str)
    sections += [
        Section("Charts", images=list(images)),
        Section("Data vintage", table=_kv_frame(meta.get("data_vintage"))),
        Section("Sampler diagnostics", table=_kv_frame(meta.get("diagnostics"))),
        Section("Configuration", code=config_json),
    ]
    return sections


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------
def _save_png(fig: Figure, path: Path) -> Path:
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=PNG_DPI)
    finally:
        plt.close(fig)
    return path


def _save_csv(df: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def _coerce_events(
    events: Sequence[Event | Mapping[str, Any]], forecast: xr.Dataset
) -> list[Event]:
    if all(isinstance(e, Mapping) for e in events):
        return list(load_events(events, labels=schema.chain_labels(forecast)))  # type: ignore[arg-type]
    if any(isinstance(e, Mapping) for e in events):
        raise TypeError("pass either event dicts or loaded events, not a mix")
    return list(events)  # type: ignore[arg-type]


def _threshold_lines(result: xr.Dataset, variable: str) -> list[tuple[float, str]]:
    """``(threshold, "threshold of <event>")`` of the threshold events on ``variable``."""
    if "variable" not in result.coords:
        return []
    return [
        (float(result["threshold"].values[i]), f"threshold of {name}")
        for i, name in enumerate(map(str, result[EVENT].values))
        if str(result["variable"].values[i]) == variable
        and math.isfinite(float(result["threshold"].values[i]))
    ]


def _write_charts(
    run_dir: Path, forecast: xr.Dataset, history: xr.Dataset, result: xr.Dataset
) -> tuple[dict[str, Path], list[tuple[str, str]]]:
    out: dict[str, Path] = {}
    images: list[tuple[str, str]] = []
    for var in FAN_VARIABLES:
        name = f"fan_{var}.png"
        if var not in forecast:
            log.warning("forecast has no %s; skipping %s", var, name)
            continue
        fig = plot_fan(history, forecast, var, reference_lines=_threshold_lines(result, var))
        out[name] = _save_png(fig, run_dir / name)
        images.append((name, f"Fan chart of {var}: 50/80/90% bands"))
    out[REGIMES_PNG] = _save_png(plot_regimes(history, forecast), run_dir / REGIMES_PNG)
    images.append((REGIMES_PNG, "Macro regime, rate stance and balance-sheet stance probabilities"))
    out[EVENTS_PNG] = _save_png(plot_events(result), run_dir / EVENTS_PNG)
    images.append((EVENTS_PNG, "Event probabilities and window lengths"))
    return out, images


def write_outputs(
    run_dir: str | os.PathLike[str],
    forecast: xr.Dataset,
    history: xr.Dataset,
    events: Sequence[Event | Mapping[str, Any]],
    *,
    meta: Mapping[str, Any],
    lead_sections: Sequence[Section] = (),
) -> dict[str, Path]:
    """Evaluate ``events`` on ``forecast`` and write the report files into ``run_dir``.

    Parameters
    ----------
    run_dir : an existing directory.
    forecast, history : Datasets following :mod:`regimecast.schema` (see
        :func:`regimecast.events.evaluate_events`).
    events : loaded events (:func:`~regimecast.events.load_events`) or the raw ``[[events]]`` dicts.
    meta : ``as_of``, ``horizon``, ``data_vintage`` (dict), ``diagnostics`` (dict: ``r_hat_max``,
        ``ess_bulk_min``, ``ess_tail_min``, ``divergences``, ``sampling_seconds``), ``config``
        (dict), ``scenario`` (str), ``demo`` (bool), ``package_version``, optional
        ``series_ends`` (dict series -> last observed month ``YYYY-MM``).
    lead_sections : :class:`Section` objects rendered first (e.g. "What changed since ...").

    Returns
    -------
    dict mapping each file name (``events.csv``, ``event_summary.csv``, ``fan_<variable>.png``,
    ``regimes.png``, ``events.png``, ``report.md``, ``report.html``) to its path.  Every file is
    written atomically.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"run directory {run_dir} does not exist; create it before writing outputs")
    demo = bool(meta.get("demo", False)) or int(forecast.attrs.get("demo", 0) or 0) == 1
    scenario = str(meta.get("scenario") or forecast.attrs.get("scenario", "") or "")
    forecast = forecast.assign_attrs(demo=int(demo), scenario=scenario)
    as_of = str(meta.get("as_of") or forecast.attrs.get("as_of", ""))

    result = evaluate_events(forecast, history, _coerce_events(events, forecast))
    summary = event_summary_table(result)
    out = {
        EVENTS_CSV: _save_csv(events_table(result), run_dir / EVENTS_CSV),
        SUMMARY_CSV: _save_csv(summary, run_dir / SUMMARY_CSV),
    }
    charts, images = _write_charts(run_dir, forecast, history, result)
    out.update(charts)

    horizon = int(result.attrs["horizon_months"])
    if meta.get("horizon") is not None and int(meta["horizon"]) != horizon:
        log.warning("meta horizon %s differs from the forecast's %d months", meta["horizon"], horizon)
    subtitle = (
        f"As-of month {as_of}; horizon {horizon} months; {result.attrs.get('n_paths')} simulated "
        "paths" + (f"; scenario: {scenario}" if scenario else "") + "."
    )
    page = ReportPage(
        title=_title(as_of, demo),
        subtitle=subtitle,
        sections=report_sections(result, summary, images, meta, demo=demo,
                                 lead_sections=lead_sections),
        footer=f"Generated by regimecast {meta.get('package_version', 'unknown')}.",
        demo=demo,
    )
    out[REPORT_MD] = atomic_write_text(run_dir / REPORT_MD, render_markdown(page))
    out[REPORT_HTML] = atomic_write_text(run_dir / REPORT_HTML, render_html(page, run_dir))
    log.info("wrote %d report files to %s", len(out), run_dir)
    return out

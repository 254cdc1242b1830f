"""The quarterly report: event tables (CSV), charts (PNG), and a one-page Markdown + HTML report.

:func:`write_outputs` evaluates the events on a forecast and writes every file of a run's report
into an existing run directory, each file atomically.  The HTML is self-contained (inline CSS,
images embedded as base64), headline numbers first, then the event tables, the charts, the data
vintage, the sampler diagnostics and the configuration.  A demo run (``meta["demo"]`` or
``forecast.attrs["demo"] == 1``) carries the "SYNTHETIC DEMO DATA - not a forecast" stamp in the
title, above the headlines and on every chart.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from regimecast.data.columns import BALANCE_SHEET, CPI_YOY, POLICY_RATE, SMALLCAP_VOLUME
from regimecast.errors import DataError
from regimecast.events import (
    DATE,
    DEFAULT_MACRO_LABELS,
    DEFAULT_POLICY_LABELS,
    DURATION_KIND,
    EVENT,
    FORECAST_VARIABLES,
    MACRO_LABELS_ATTR,
    POLICY_LABELS_ATTR,
    STATE_START,
    Event,
    evaluate_events,
    event_summary_table,
    events_table,
    load_events,
)
from regimecast.io import atomic_path
from regimecast.plots import DEMO_STAMP, plot_events, plot_fan, plot_regimes

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
        if rec["kind"] == STATE_START:
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
            k = _within_k(24, horizon)
            line = (
                f"P({label} within {k} months, by {_long_month(dates[k])}) = "
                f"{_pct(rec['p_within_24m'])}"
            )
        lines.append(line)
    return lines


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


def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    esc = [c.replace("|", "\\|") for c in cols]
    out = ["| " + " | ".join(esc) + " |", "|" + "|".join(["---"] * len(cols)) + "|"]
    for rec in df.itertuples(index=False):
        out.append("| " + " | ".join(str(v).replace("|", "\\|") for v in rec) + " |")
    return "\n".join(out)


def _html_table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in rec) + "</tr>"
        for rec in df.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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


# --------------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------------
def _title(as_of: str, demo: bool) -> str:
    title = f"regimecast quarterly report - as of {as_of}"
    return f"{title} - {DEMO_STAMP}" if demo else title


def _render_markdown(ctx: dict[str, Any]) -> str:
    parts = [f"# {ctx['title']}", ""]
    if ctx["demo"]:
        parts += [f"> **{DEMO_STAMP}.** These numbers come from synthetic demo data.", ""]
    parts += [ctx["subtitle"], ""]
    parts += ["## Headlines", ""]
    prefix = "[synthetic demo data] " if ctx["demo"] else ""
    parts += [f"- {prefix}{line}" for line in ctx["headlines"]] + [""]
    parts += ["## Event summary", "", _md_table(ctx["summary"]), "", f"_{_CONVENTIONS}_", ""]
    parts += [
        "## Cumulative event probabilities by quarter",
        "",
        _md_table(ctx["quarterly"]),
        "",
        f"_{_QUARTERLY_NOTE}_ Monthly probabilities: `{EVENTS_CSV}`; summary: `{SUMMARY_CSV}`.",
        "",
    ]
    parts += ["## Charts", ""]
    parts += [f"![{caption}]({name})\n" for name, caption in ctx["images"]]
    parts += ["## Data vintage", "", _md_table(ctx["vintage"]), ""]
    parts += ["## Sampler diagnostics", "", _md_table(ctx["diagnostics"]), ""]
    parts += ["## Configuration", "", "```json", ctx["config_json"], "```", ""]
    parts += [ctx["footer"], ""]
    return "\n".join(parts)


def _render_html(ctx: dict[str, Any], run_dir: Path) -> str:
    esc = html.escape
    body = [f"<h1>{esc(ctx['title'])}</h1>"]
    if ctx["demo"]:
        body.append(
            f'<p class="demo">{esc(DEMO_STAMP)}. These numbers come from synthetic demo data.</p>'
        )
    body.append(f"<p>{esc(ctx['subtitle'])}</p>")
    prefix = "[synthetic demo data] " if ctx["demo"] else ""
    body.append("<h2>Headlines</h2>")
    body.append(
        '<ul class="headlines">'
        + "".join(f"<li>{esc(prefix + line)}</li>" for line in ctx["headlines"])
        + "</ul>"
    )
    body.append("<h2>Event summary</h2>" + _html_table(ctx["summary"]))
    body.append(f'<p class="note">{esc(_CONVENTIONS)}</p>')
    body.append(
        "<h2>Cumulative event probabilities by quarter</h2>" + _html_table(ctx["quarterly"])
    )
    body.append(
        f'<p class="note">{esc(_QUARTERLY_NOTE)} Monthly probabilities: <a href="{EVENTS_CSV}">{EVENTS_CSV}</a>; '
        f'summary: <a href="{SUMMARY_CSV}">{SUMMARY_CSV}</a>.</p>'
    )
    body.append("<h2>Charts</h2>")
    for name, caption in ctx["images"]:
        data = base64.b64encode((run_dir / name).read_bytes()).decode("ascii")
        body.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)} ({esc(name)})</figcaption></figure>"
        )
    body.append("<h2>Data vintage</h2>" + _html_table(ctx["vintage"]))
    body.append("<h2>Sampler diagnostics</h2>" + _html_table(ctx["diagnostics"]))
    body.append(f"<h2>Configuration</h2><pre>{esc(ctx['config_json'])}</pre>")
    body.append(f'<p class="note">{esc(ctx["footer"])}</p>')
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(ctx['title'])}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _atomic_file(path: Path) -> Iterator[Path]:
    """:func:`~regimecast.io.atomic_path` giving an ordinary file (umask mode, not mkstemp's 0600)."""
    with atomic_path(path) as tmp:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())


def _write_text(path: Path, text: str) -> Path:
    with _atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _save_png(fig: Figure, path: Path) -> Path:
    try:
        with _atomic_file(path) as tmp:
            fig.savefig(tmp, format="png", dpi=PNG_DPI)
    finally:
        plt.close(fig)
    return path


def _save_csv(df: pd.DataFrame, path: Path) -> Path:
    with _atomic_file(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def _coerce_events(
    events: Sequence[Event | Mapping[str, Any]], forecast: xr.Dataset
) -> list[Event]:
    if all(isinstance(e, Mapping) for e in events):
        return list(
            load_events(
                events,  # type: ignore[arg-type]
                macro_labels=list(forecast.attrs.get(MACRO_LABELS_ATTR, DEFAULT_MACRO_LABELS)),
                policy_labels=list(forecast.attrs.get(POLICY_LABELS_ATTR, DEFAULT_POLICY_LABELS)),
                variables=FORECAST_VARIABLES,
            )
        )
    if any(isinstance(e, Mapping) for e in events):
        raise TypeError("pass either event dicts or loaded events, not a mix")
    return list(events)  # type: ignore[arg-type]


def write_outputs(
    run_dir: str | os.PathLike[str],
    forecast: xr.Dataset,
    history: xr.Dataset,
    events: Sequence[Event | Mapping[str, Any]],
    *,
    meta: Mapping[str, Any],
) -> dict[str, Path]:
    """Evaluate ``events`` on ``forecast`` and write the report files into ``run_dir``.

    Parameters
    ----------
    run_dir : an existing directory.
    forecast, history : Datasets as produced by :mod:`regimecast.forecast` (see
        :func:`regimecast.events.evaluate_events`).
    events : loaded events (:func:`~regimecast.events.load_events`) or the raw ``[[events]]`` dicts.
    meta : ``as_of``, ``horizon``, ``data_vintage`` (dict), ``diagnostics`` (dict: ``r_hat_max``,
        ``ess_bulk_min``, ``ess_tail_min``, ``divergences``, ``sampling_seconds``), ``config``
        (dict), ``scenario`` (str), ``demo`` (bool), ``package_version``.

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
    table = events_table(result)
    summary = event_summary_table(result)
    out: dict[str, Path] = {}
    out[EVENTS_CSV] = _save_csv(table, run_dir / EVENTS_CSV)
    out[SUMMARY_CSV] = _save_csv(summary, run_dir / SUMMARY_CSV)

    images: list[tuple[str, str]] = []
    for var in FAN_VARIABLES:
        name = f"fan_{var}.png"
        if var not in forecast:
            log.warning("forecast has no %s; skipping %s", var, name)
            continue
        out[name] = _save_png(plot_fan(history, forecast, var), run_dir / name)
        images.append((name, f"Fan chart of {var}: 50/80/90% bands"))
    out[REGIMES_PNG] = _save_png(plot_regimes(history, forecast), run_dir / REGIMES_PNG)
    images.append((REGIMES_PNG, "Macro regime and policy state probabilities"))
    out[EVENTS_PNG] = _save_png(plot_events(result), run_dir / EVENTS_PNG)
    images.append((EVENTS_PNG, "Event probabilities and window lengths"))

    horizon = int(result.attrs["horizon_months"])
    if meta.get("horizon") is not None and int(meta["horizon"]) != horizon:
        log.warning(
            "meta horizon %s differs from the forecast's %d months", meta["horizon"], horizon
        )
    n_paths = result.attrs.get("n_paths")
    subtitle = (
        f"As-of month {as_of}; horizon {horizon} months; {n_paths} simulated paths"
        + (f"; scenario: {scenario}" if scenario else "")
        + "."
    )
    ctx = {
        "title": _title(as_of, demo),
        "demo": demo,
        "subtitle": subtitle,
        "headlines": headline_lines(result, summary),
        "summary": _summary_display(summary),
        "quarterly": quarterly_table(result),
        "images": images,
        "vintage": _kv_frame(meta.get("data_vintage")),
        "diagnostics": _kv_frame(meta.get("diagnostics")),
        "config_json": json.dumps(meta.get("config") or {}, indent=2, sort_keys=True, default=str),
        "footer": f"Generated by regimecast {meta.get('package_version', 'unknown')}.",
    }
    out[REPORT_MD] = _write_text(run_dir / REPORT_MD, _render_markdown(ctx))
    out[REPORT_HTML] = _write_text(run_dir / REPORT_HTML, _render_html(ctx, run_dir))
    log.info("wrote %d report files to %s", len(out), run_dir)
    return out

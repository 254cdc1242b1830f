"""What an update changed: events, latest regime and policy probabilities, and the news attribution.

``changes_table`` returns one long table (``changes.csv``) with columns ``section, item, measure, before,
after, change``:

* ``event``: for every event, P(within 6 / 12 / 24 months) and the median date (duration events: the
  median length in months), from the parent's forecast and the updated run's forecast (same seed and
  settings; both simulated, so they carry Monte-Carlo noise of about ``sqrt(p (1 - p) / paths)``);
* ``regime``: for each month from the parent's as-of to the new one, the macro-regime and policy-state
  probabilities the parent gave it (filtered at its as-of, predicted beyond) and the updated run's
  filtered probabilities (each month given the data up to that month), posterior means;
* ``news``: the news attribution of :mod:`regimecast.attribution` (exact, no simulation noise): how each
  release moved P(QE starts within 12 months) and P(first cut within 12 months).

``changes_markdown`` renders the "What changed since <parent as-of>" section; ``changes_section`` gives
the same content as (title, paragraphs, table) for the report's lead sections.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from regimecast.results import MacroFit

CHANGES_COLUMNS = ("section", "item", "measure", "before", "after", "change")
TRACKED_LABELS = {"qe": "P(QE starts within 12 m)", "cut": "P(first cut within 12 m)"}
MAX_DRAWS = 400


def forecast_summary(fit: MacroFit, *, seed: int) -> pd.DataFrame:
    """The event summary of a forecast from ``fit`` with the config's settings and ``seed``."""
    from regimecast.events import (
        DEFAULT_EVENT_SPECS,
        evaluate_events,
        event_summary_table,
        load_events,
    )
    from regimecast.forecast import forecast, history_dataset

    cfg = fit.config
    fc = forecast(fit, horizon=cfg.forecast.horizon, max_draws=cfg.forecast.max_draws,
                  paths_per_draw=cfg.forecast.paths_per_draw, random_seed=seed)
    events = load_events(cfg.events or DEFAULT_EVENT_SPECS, labels=cfg.model.chain_labels())
    return event_summary_table(evaluate_events(fc, history_dataset(fit), events))


def _median_text(row) -> str:
    if row["unit"] == "months":
        v = float(row["median_months"])
        return "n/a" if not math.isfinite(v) else f"{v:g} mo"
    v = pd.to_datetime(row["median"], errors="coerce")
    return "n/a" if pd.isna(v) else f"{v:%Y-%m}"


def event_changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    rows = []
    b = before.set_index("event")
    for _, a in after.iterrows():
        if a["event"] not in b.index:
            continue
        o = b.loc[a["event"]]
        for k in (6, 12, 24):
            col = f"p_within_{k}m"
            rows.append(("event", a["event"], col, float(o[col]), float(a[col]), float(a[col] - o[col])))
        change = float(a["median_months"]) - float(o["median_months"])
        if a["unit"] != "months":  # dates: the change in calendar months, not in months-ahead
            mb, ma = pd.to_datetime(o["median"], errors="coerce"), pd.to_datetime(a["median"], errors="coerce")
            change = float("nan") if pd.isna(mb) or pd.isna(ma) else float(
                (ma.year - mb.year) * 12 + ma.month - mb.month)
        rows.append(("event", a["event"], "median", _median_text(o), _median_text(a), change))
    return pd.DataFrame(rows, columns=list(CHANGES_COLUMNS))


def parent_view(parent: MacroFit, n_ahead: int) -> np.ndarray:
    """(n_ahead + 1, K): the parent's filtered joint state at its as-of, then predicted months ahead
    (posterior mean over ``MAX_DRAWS`` draws; the filter states are the run's stored ones)."""
    from regimecast.reweight import fit_filter_state

    st = fit_filter_state(parent)
    pos = parent.draw_positions(MAX_DRAWS, random_seed=parent.random_seed)
    state, A = st.alpha[pos], np.exp(st.log_a[pos])
    seq = [state]
    for _ in range(n_ahead):
        state = np.einsum("nk,nkj->nj", state, A)
        seq.append(state)
    return np.mean(seq, axis=1)


def regime_changes(parent: MacroFit, fit: MacroFit) -> pd.DataFrame:
    """Per month from the parent's as-of to the new one and per chain state: the parent's view (filtered
    at its as-of, predicted beyond) against the updated run's filtered probabilities (posterior means
    over ``MAX_DRAWS`` draws; the latter are the run's own ``regime_probabilities``, written with it)."""
    m = fit.config.model
    start, end = parent.panel.index.max(), fit.panel.index.max()
    n_ahead = (end.year - start.year) * 12 + end.month - start.month
    comps = {c: np.asarray(v) for c, v in m.state_components().items()}
    before = parent_view(parent, n_ahead)
    probs = fit.regime_probabilities(MAX_DRAWS)
    months = pd.date_range(start, end, freq="MS")
    after = {c: probs[f"filtered_{c}"].sel(stat="mean").sel({"time": months, c: list(labels)}).values
             for c, labels in m.chain_labels().items()}  # (months, labels) per chain
    rows = []
    for t, month in enumerate(months):
        for chain, labels in m.chain_labels().items():
            b = np.bincount(comps[chain], weights=before[t], minlength=len(labels))
            a = after[chain][t]
            for j, lab in enumerate(labels):
                rows.append(("regime", f"{month:%Y-%m}", f"P({chain} = {lab})", b[j], a[j], a[j] - b[j]))
    return pd.DataFrame(rows, columns=list(CHANGES_COLUMNS))


def news_changes(attribution: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for key, label in TRACKED_LABELS.items():
        prev = None
        for r in attribution.itertuples():
            now = getattr(r, f"p_{key}")
            if prev is not None:
                rows.append(("news", r.step, label, prev, now, now - prev))
            prev = now
    return pd.DataFrame(rows, columns=list(CHANGES_COLUMNS))


def changes_table(parent: MacroFit, fit: MacroFit, before: pd.DataFrame, after: pd.DataFrame,
                  rw) -> pd.DataFrame:
    """The long ``changes.csv`` table (see the module docstring)."""
    parts = [event_changes(before, after), regime_changes(parent, fit), news_changes(rw.attribution)]
    return pd.concat(parts, ignore_index=True)


def _pct(v) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "n/a" if not math.isfinite(v) else f"{v:.0%}"


def _pp(v) -> str:
    v = float(v)
    return "n/a" if not math.isfinite(v) else f"{100 * v:+.1f} pp"


def headline_sentences(changes: pd.DataFrame, parent_as_of: str, lineage: dict) -> list[str]:
    """Plain sentences: how the update was made, and how the news moved the two tracked numbers."""
    k = lineage.get("khat")
    verb = {"reweighted": "reweighting", "refitted": "refitting (warm-started)"}.get(lineage["method"], "")
    how = (f"Updated from the run as of {parent_as_of} by {verb} "
           f"({lineage['draws']} draws; Pareto k-hat {'n/a' if k is None else f'{k:.2f}'}, "
           f"effective sample size {lineage['ess']:.0f}"
           + (f", about {lineage['effective_draws']:.0f} independent draws"
              if lineage.get("effective_draws") is not None else "") + ").")
    out = [how]
    news = changes[changes["section"] == "news"]
    for label in TRACKED_LABELS.values():
        sub = news[news["measure"] == label]
        if sub.empty:
            continue
        first, last = float(sub["before"].iloc[0]), float(sub["after"].iloc[-1])
        movers = sub.iloc[1:].reindex(sub.iloc[1:]["change"].abs().sort_values(ascending=False).index)
        top = "; ".join(f"the {r.item} print moved it by {_pp(r.change)}" for r in movers.head(2).itertuples()
                        if abs(r.change) >= 0.0005)
        out.append(f"{label} moved from {_pct(first)} (from {parent_as_of}, without the news) to "
                   f"{_pct(last)}" + (f": {top}." if top else "."))
    return out


def _md(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def display_frame(changes: pd.DataFrame, section: str) -> pd.DataFrame:
    sub = changes[changes["section"] == section].drop(columns="section")
    out = sub.copy()
    is_p = out["measure"] != "median"
    for col in ("before", "after"):
        out[col] = [(_pct(v) if p else v) for v, p in zip(out[col], is_p, strict=True)]
    out["change"] = [(_pp(v) if p else ("n/a" if not math.isfinite(float(v)) else f"{float(v):+g} mo"))
                     for v, p in zip(out["change"], is_p, strict=True)]
    return out


def changes_section(parent: MacroFit, changes: pd.DataFrame, lineage: dict):
    """(title, paragraphs, table) of the report's "What changed since <parent as-of>" lead section."""
    as_of = f"{parent.panel.index.max():%Y-%m}"
    title = f"What changed since {as_of}"
    return title, headline_sentences(changes, as_of, lineage), display_frame(changes, "event")


def changes_markdown(parent: MacroFit, fit: MacroFit, news: pd.DataFrame, changes: pd.DataFrame, rw,
                     lineage: dict) -> str:
    title, paragraphs, events = changes_section(parent, changes, lineage)
    parts = [f"## {title}", "", *[f"{p}\n" for p in paragraphs]]
    parts += ["### Events (forecasts before and after, same seed)", "", _md(events), ""]
    parts += ["### News attribution (exact, measured from the new as-of month after 'time passes')", "",
              _md(display_frame(changes, "news")), ""]
    parts += ["### Latest months: regime and policy probabilities (before: the parent's view; after: "
              "filtered with the new data)", "", _md(display_frame(changes, "regime")), ""]
    model_news = news[news["in_model"]]
    parts += [f"### New data ({len(model_news)} model inputs, {len(news) - len(model_news)} other cells)",
              "", _md(news.head(60)), ""]
    return "\n".join(parts)


def terminal_table(changes: pd.DataFrame) -> str:
    """A short fixed-width text of the tracked numbers and the news attribution."""
    ev = changes[(changes["section"] == "event") & (changes["measure"].isin(["p_within_12m", "median"]))]
    lines = [f"{'event':<22} {'measure':<14} {'before':>9} {'after':>9} {'change':>10}"]
    for r in display_frame(ev.assign(section="event"), "event").itertuples():
        lines.append(f"{r.item:<22} {r.measure:<14} {r.before:>9} {r.after:>9} {r.change:>10}")
    news = display_frame(changes, "news")
    if len(news):
        lines += ["", f"{'news (release order)':<52} {'measure':<26} {'after':>6} {'change':>10}"]
        for r in news.itertuples():
            lines.append(f"{r.item[:52]:<52} {r.measure:<26} {r.after:>6} {r.change:>10}")
    return "\n".join(lines)

"""The track record on one page: origins.csv, scores.csv, timeline, reliability and PIT charts, and
report.md / report.html rendered from one list of sections (Jinja2)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from regimecast.backtest import scoring as S  # noqa: E402
from regimecast.backtest.chronology import Chronology  # noqa: E402
from regimecast.backtest.results import EVENT_TARGETS, SERIES_TARGETS  # noqa: E402
from regimecast.io import atomic_path, atomic_write_text  # noqa: E402


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    table: pd.DataFrame | None = None
    image: str | None = None


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_timeline(df: pd.DataFrame, chron: Chronology, path: Path) -> Path:
    t = pd.PeriodIndex(df["origin"], freq="M").to_timestamp()
    fig, axes = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    for ax, target, kind, label in (
        (axes[0], "qe_start_12m", "qe", "P(QE starts within 12 months)"),
        (axes[1], "first_cut_12m", "easing", "P(first cut within 12 months)"),
    ):
        ax.plot(t, df[f"p_{target}"], marker=".", color="C0", label="regimecast")
        if f"clim_{target}" in df:
            ax.plot(t, df[f"clim_{target}"], color="0.5", ls="--", label="climatology (real time)")
        for _, ep in chron.episodes[chron.episodes["type"] == kind].iterrows():
            start = ep["start"].to_timestamp()
            end = (ep["end"] if ep["end"] is not pd.NaT else ep["start"] + 1).to_timestamp()
            ax.axvspan(start, max(end, start + pd.DateOffset(months=1)), color="C1", alpha=0.25)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(f"{label}; shaded: {'QE programmes' if kind == 'qe' else 'first cuts'} (chronology)")
        ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_reliability(p, y, target: str, path: Path, *, bins: int = 5) -> Path:
    table = S.reliability_table(p, y, bins=bins)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1)
    mid = table["mean_forecast"]
    ax.vlines(mid, table["band_lo"], table["band_hi"], color="0.7", lw=6, label="90% consistency band")
    ax.plot(mid, table["observed"], "o-", color="C0", label="observed frequency")
    for x, yv, n in zip(mid, table["observed"], table["n"], strict=True):
        ax.annotate(f"n={n}", (x, yv), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("forecast probability")
    ax.set_ylabel("observed frequency")
    ax.set_title(f"Reliability: {target}")
    ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path)


def plot_pit(values: np.ndarray, target: str, path: Path, *, bins: int = 10) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    n = len(values)
    ax.hist(values, bins=bins, range=(0, 1), color="C0", alpha=0.8)
    lo, hi = np.quantile(np.random.default_rng(0).binomial(n, 1 / bins, size=5000), [0.05, 0.95])
    ax.axhspan(lo, hi, color="0.8", alpha=0.6, label="90% band for a uniform PIT")
    ax.set_xlabel("PIT")
    ax.set_ylabel("origins")
    ax.set_title(f"PIT: {target} (n={n})")
    ax.legend(fontsize=7)
    return _save(fig, path)


MD = jinja2.Template(
    """# {{ title }}
{% for s in sections %}
## {{ s.title }}
{% for p in s.paragraphs %}
{{ p }}
{% endfor %}{% if s.table is not none %}
{{ md_table(s.table) }}
{% endif %}{% if s.image %}
![{{ s.title }}]({{ s.image }})
{% endif %}{% endfor %}""",
    autoescape=False,
)
HTML = jinja2.Template(
    """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:sans-serif;max-width:60em;margin:auto}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}</style></head><body>
<h1>{{ title }}</h1>{% for s in sections %}<h2>{{ s.title }}</h2>
{% for p in s.paragraphs %}<p>{{ p }}</p>{% endfor %}
{% if s.table is not none %}{{ s.table.to_html(index=False, float_format="%.3f", border=0) | safe }}{% endif %}
{% if s.image %}<img alt="{{ s.title }}" src="data:image/png;base64,{{ images[s.image] }}">{% endif %}
{% endfor %}</body></html>""",
    autoescape=True,
)


def md_table(df: pd.DataFrame) -> str:
    def cell(v) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def render(out: Path, title: str, sections: list[Section]) -> dict[str, Path]:
    images = {s.image: base64.b64encode((out / s.image).read_bytes()).decode() for s in sections if s.image}
    md = MD.render(title=title, sections=sections, md_table=md_table)
    html = HTML.render(title=title, sections=sections, images=images)
    return {
        "report.md": atomic_write_text(out / "report.md", md),
        "report.html": atomic_write_text(out / "report.html", html),
    }


def write_charts(out: Path, df: pd.DataFrame, pits: dict[str, np.ndarray], chron: Chronology) -> dict[str, Path]:
    files = {"timeline.png": plot_timeline(df, chron, out / "timeline.png")}
    for target in EVENT_TARGETS:
        y = df[f"y_{target}"].to_numpy(dtype=float)
        p = df[f"p_{target}"].to_numpy(dtype=float)
        ok = np.isfinite(y) & np.isfinite(p)
        if ok.sum() >= 2:
            name = f"reliability_{target}.png"
            files[name] = plot_reliability(p[ok], y[ok], target, out / name)
    for target in SERIES_TARGETS:
        if target in pits and len(pits[target]):
            name = f"pit_{target.removesuffix('_12m')}.png"
            files[name] = plot_pit(pits[target], target, out / name)
    return files

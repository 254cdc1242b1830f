"""The numbers a user reads: the report's headline sentences recomputed from ``forecast.nc``'s state
paths and the run's own panel, and the CLI's printed table against ``event_summary.csv``."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pinned import pinned_fit, qe_prone_point, save_pinned_run

from regimecast.cli import main

H = 24


@pytest.fixture(scope="module")
def forecast_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-numbers")
    # seed 12: a panel whose volume at the as-of is below its last peak (the truth below assumes so)
    save_pinned_run(pinned_fit(qe_prone_point(), seed=12), root / "run")
    out = root / "fc"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["forecast", "--from-run", str(root / "run"), "--out", str(out), "--seed", "7",
                     "--horizon", str(H)])
    assert code == 0
    return {"dir": out, "run": root / "run", "stdout": buf.getvalue()}


def _first_entry(states: np.ndarray, target: int) -> np.ndarray:
    """Month (1..H) of the first entry into ``target`` on each path, 0 if none (plain loop)."""
    out = np.zeros(states.shape[0], dtype=int)
    for i, path in enumerate(states):
        for h in range(1, states.shape[1]):
            if path[h] == target and path[h - 1] != target:
                out[i] = h
                break
    return out


def _truth(fdir, run) -> dict[str, float]:
    fc = xr.load_dataset(fdir / "forecast.nc")
    bs, rate = fc["bs_state"].values, fc["rate_state"].values  # bs: QT 0, QE 2; rate: cutting 0, hiking 2
    qe, cut = _first_entry(bs, 2), _first_entry(rate, 0)
    started = qe > 0
    # the bullish window closes at the first hike or the start of QT
    open_at_end = [not ((rate[i, qe[i]:] == 2) | (bs[i, qe[i]:] == 0)).any() for i in np.flatnonzero(started)]
    panel = pd.read_csv(run / "panel.csv", parse_dates=["date"], index_col="date")
    hist = panel["smallcap_volume"].loc[:"2023-12-01"]
    # the last peak: highest 12-month average inside the 5 years up to the as-of (pandas, by hand)
    level = hist.iloc[-60:].rolling(12).mean().max()
    vol = fc["smallcap_volume"].values
    both = np.concatenate([np.tile(hist.iloc[-3:-1].to_numpy(), (vol.shape[0], 1)), vol], axis=1)
    mean3 = (both[:, 2:] + both[:, 1:-1] + both[:, :-2]) / 3  # trailing 3-month mean at h = 0..H
    assert hist.iloc[-3:].mean() <= level  # not met at the as-of here, so any crossing counts
    return {
        "qe_12": float(((qe > 0) & (qe <= 12)).mean()),
        "qe_never": float((qe == 0).mean()),
        "cut_12": float(((cut > 0) & (cut <= 12)).mean()),
        "window_start": float(started.mean()),
        "window_open": float(np.mean(open_at_end)),
        "volume_24": float((mean3[:, 1:] > level).any(axis=1).mean()),
    }


def _sentences(fdir) -> list[str]:
    md = (fdir / "report.md").read_text().splitlines()
    text = html.unescape((fdir / "report.html").read_text())
    items = [re.sub(r"<[^>]+>", "", li) for li in re.findall(r"<li>(.*?)</li>", text, flags=re.S)]
    return md + items


def _find(lines: list[str], start: str) -> list[str]:
    found = [ln for ln in lines if start in ln]
    assert len(found) >= 2, (start, lines)  # once in Markdown, once in HTML
    return found


def _says(sentence: str, before: str, p: float) -> None:
    """``sentence`` shows ``before`` followed by ``p`` as a whole percent (either rounding of a tie)."""
    m = re.search(re.escape(before) + r"\s*(\d+)%", sentence)
    assert m, (before, sentence)
    assert abs(int(m.group(1)) - 100 * p) <= 0.5 + 1e-9, (sentence, p)


def test_headline_probabilities_recomputed_from_the_state_paths(forecast_dir):
    truth = _truth(forecast_dir["dir"], forecast_dir["run"])
    assert 0.05 < truth["qe_12"] < 0.95  # a QE-prone model: the number is informative
    lines = _sentences(forecast_dir["dir"])
    for sentence in _find(lines, "P(QE starts by December 2024) ="):
        _says(sentence, "P(QE starts by December 2024) =", truth["qe_12"])
        _says(sentence, f"P(not within {H} months) =", truth["qe_never"])
    for sentence in _find(lines, "P(first rate cut by December 2024) ="):
        _says(sentence, "P(first rate cut by December 2024) =", truth["cut_12"])
    for sentence in _find(lines, "P(small-cap volume back above its last peak within 24 months"):
        _says(sentence, "by December 2025) =", truth["volume_24"])
    for sentence in _find(lines, "bullish window (QE until the first hike or QT)"):
        _says(sentence, "still open at the horizon end:", truth["window_open"])
        _says(sentence, "(P =", truth["window_start"])


def test_printed_table_matches_event_summary_csv(forecast_dir):
    summary = pd.read_csv(forecast_dir["dir"] / "event_summary.csv").set_index("event")
    out = forecast_dir["stdout"].splitlines()
    header = next(i for i, ln in enumerate(out) if ln.startswith("event "))
    cols = re.split(r"\s{2,}", out[header].strip())
    assert cols[:6] == ["event", "median", "10%-90%", "P(<=6m)", "P(<=12m)", "P(<=24m)"]
    rows = {}
    for ln in out[header + 2 : header + 2 + len(summary)]:
        cells = re.split(r"\s{2,}", ln.strip())
        rows[cells[0]] = dict(zip(cols, cells, strict=False))
    assert set(rows) == set(summary.index)
    for event, rec in summary.iterrows():
        row = rows[event]
        for col, field in (("P(<=6m)", "p_within_6m"), ("P(<=12m)", "p_within_12m"),
                           ("P(<=24m)", "p_within_24m")):
            assert row[col] == f"{rec[field]:.0%}", (event, col, row[col], rec[field])
        assert row["P(never)"].split()[0] == f"{rec['p_never']:.0%}", (event, row)
        if rec["kind"] in ("state_start", "state_end"):
            assert row["median"] == f"{pd.Timestamp(rec['median']):%Y-%m}", (event, row)
    truth = _truth(forecast_dir["dir"], forecast_dir["run"])
    _says(rows["qe_start"]["P(<=12m)"], "", truth["qe_12"])

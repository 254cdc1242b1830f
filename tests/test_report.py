"""The report files: all written, images readable, headline numbers right, demo stamp honest."""

from __future__ import annotations

import html
import re
import tomllib

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from synthetic import make_history, make_random_forecast  # noqa: E402

from regimecast.data.columns import COLUMN_META  # noqa: E402
from regimecast.events import (  # noqa: E402
    DEFAULT_EVENT_SPECS,
    default_events,
    evaluate_events,
    event_summary_table,
)
from regimecast.report import headline_table, write_outputs  # noqa: E402

H = 24
EXPECTED_FILES = {
    "events.csv",
    "event_summary.csv",
    "fan_cpi_yoy.png",
    "fan_policy_rate.png",
    "fan_balance_sheet.png",
    "fan_smallcap_volume.png",
    "regimes.png",
    "events.png",
    "report.md",
    "report.html",
}


def _meta(demo: bool) -> dict:
    return {
        "as_of": "2026-03",
        "horizon": H,
        "data_vintage": {"fred": "2026-04-02", "yahoo": "2026-04-01"},
        "diagnostics": {
            "r_hat_max": 1.004,
            "ess_bulk_min": 812.0,
            "ess_tail_min": 655.0,
            "divergences": 0,
            "sampling_seconds": 123.4,
        },
        "config": {"model": {"n_macro": 3}, "sampler": {"draws": 1000, "chains": 4}},
        "scenario": "",
        "demo": demo,
        "package_version": "0.1.0",
    }


def _independent_numbers(fc) -> dict[str, float]:
    """Headline numbers recomputed with plain loops over the paths."""
    bs_paths, rate_paths = fc["bs_state"].values, fc["rate_state"].values  # bs: QT 0, QE 2; rate: hiking 2
    n = bs_paths.shape[0]
    qe_by_12 = 0
    durations, censored, long_windows, started = [], 0, 0, 0
    for path, rate in zip(bs_paths, rate_paths, strict=True):
        start = next((h for h in range(1, H + 1) if path[h] == 2 and path[h - 1] != 2), None)
        if start is not None and start <= 12:
            qe_by_12 += 1
        if start is None:
            continue
        started += 1
        end = next((h for h in range(start, H + 1) if rate[h] == 2 or path[h] == 0), None)
        if end is None:
            censored += 1
            long_windows += H - start + 1 >= 6
        else:
            durations.append(end - start)
            long_windows += end - start >= 6
    durations = sorted(durations)
    # median by the inverted CDF: smallest value whose empirical CDF reaches 1/2
    median = durations[int(np.ceil(0.5 * len(durations))) - 1]
    # volume_return: 3-month average above the highest 12-month average of the 5 years to the as-of
    vol_hist = make_history()["smallcap_volume"].to_series()
    level = vol_hist["2021-04-01":"2026-03-01"].rolling(12).mean().max()
    vol = fc["smallcap_volume"].values
    full = np.hstack([np.tile(vol_hist.values[-3:-1], (vol.shape[0], 1)), vol])
    avg3 = pd.DataFrame(full.T).rolling(3).mean().to_numpy().T[:, 2:]
    assert (avg3[:, 0] < level).all()  # not met at the as-of: the first crossing is the event
    vol_back = float((avg3[:, 1 : H + 1] > level).any(axis=1).mean())
    return {
        "p_qe_12": qe_by_12 / n,
        "median_window": float(median),
        "p_long": long_windows / started,
        "p_censored": censored / started,
        "p_volume_24": vol_back,
    }


@pytest.fixture(scope="module", params=[0, 1], ids=["real", "demo"])
def outputs(request, tmp_path_factory):
    demo = request.param
    fc = make_random_forecast(n=300, horizon=H, demo=demo, seed=11)
    hist = make_history()
    run_dir = tmp_path_factory.mktemp(f"run{demo}")
    paths = write_outputs(run_dir, fc, hist, default_events(), meta=_meta(bool(demo)))
    return {"demo": demo, "fc": fc, "hist": hist, "paths": paths, "run_dir": run_dir}


def test_every_file_written_and_non_empty(outputs):
    paths = outputs["paths"]
    assert set(paths) == EXPECTED_FILES
    for name, path in paths.items():
        assert path == outputs["run_dir"] / name
        assert path.is_file() and path.stat().st_size > 0, name
    leftovers = [p.name for p in outputs["run_dir"].iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_pngs_are_images(outputs):
    for name, path in outputs["paths"].items():
        if name.endswith(".png"):
            img = mpimg.imread(path)
            assert img.ndim == 3 and img.shape[2] in (3, 4)
            assert 300 <= img.shape[0] <= 3000 and 500 <= img.shape[1] <= 3000, (name, img.shape)
            assert img.std() > 0.01  # not blank


def test_csvs(outputs):
    table = pd.read_csv(outputs["paths"]["events.csv"])
    assert list(table.columns) == ["event", "date", "probability", "cumulative"]
    assert len(table) == len(DEFAULT_EVENT_SPECS) * (H + 1)
    assert table.probability.between(0, 1).all()
    summary = pd.read_csv(outputs["paths"]["event_summary.csv"])
    assert list(summary.event) == [s["name"] for s in DEFAULT_EVENT_SPECS]


def test_headline_numbers_in_html_and_markdown(outputs):
    truth = _independent_numbers(outputs["fc"])
    html_text = html.unescape(outputs["paths"]["report.html"].read_text())
    md_text = outputs["paths"]["report.md"].read_text()
    items = re.findall(r"<li>(.*?)</li>", html_text)
    for text, lines in ((html_text, items), (md_text, md_text.splitlines())):
        qe = [ln for ln in lines if "P(QE starts by March 2027)" in ln]
        assert qe and f"= {truth['p_qe_12']:.0%}" in qe[0]
        window = [ln for ln in lines if "median bullish window" in ln]
        assert window
        assert f"= {truth['median_window']:g} months" in window[0]
        assert f"P(>= 6 months) = {truth['p_long']:.0%}" in window[0]
        assert f"still open at the horizon end: {truth['p_censored']:.0%}" in window[0]
        vol = [ln for ln in lines if "small-cap volume back above its last peak" in ln]
        assert vol and f"= {truth['p_volume_24']:.0%}" in vol[0]
        assert "r_hat_max" in text and "1.004" in text and "2026-04-02" in text
    # headlines come before the tables and charts
    assert html_text.index("Headlines") < html_text.index("Event summary") < html_text.index("<img")


def test_html_is_self_contained(outputs):
    text = outputs["paths"]["report.html"].read_text()
    srcs = re.findall(r'<img src="([^"]+)"', text)
    assert len(srcs) == 6 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<style>" in text and "stylesheet" not in text


def test_demo_stamp_only_when_demo(outputs):
    for name in ("report.html", "report.md"):
        text = outputs["paths"][name].read_text().lower()
        title = (
            text.splitlines()[0] if name == "report.md" else re.search(r"<h1>(.*?)</h1>", text)[1]
        )
        if outputs["demo"]:
            assert "synthetic demo data" in title
            headlines = text[text.index("headlines") :]
            assert "[synthetic demo data]" in headlines.split("event summary")[0]
        else:
            assert "synthetic demo" not in text


def test_headline_table_plain_text():
    fc = make_random_forecast(n=200, horizon=H, seed=5)
    summary = event_summary_table(evaluate_events(fc, make_history(), default_events()))
    text = headline_table(summary)
    lines = text.splitlines()
    assert len(lines) == 2 + len(summary)
    row = next(ln for ln in lines if ln.startswith("qe_start"))
    p12 = float(summary.set_index("event").loc["qe_start", "p_within_12m"])
    assert f"{p12:.0%}" in row.split()
    assert "<" not in text.replace("<=", "")  # no markup


def test_write_outputs_from_toml_events(tmp_path):
    specs = tomllib.loads(
        '[[events]]\nname = "qe"\nkind = "state_start"\nstate = "bs:QE"\nlabel = "QE starts"\n'
    )["events"]
    fc = make_random_forecast(n=80, horizon=9, seed=3)
    paths = write_outputs(tmp_path, fc, make_history(), specs, meta=_meta(False))
    text = paths["report.md"].read_text()
    # horizon 9 < 12 months: "by" the last forecast month
    assert "P(QE starts by December 2026)" in text


def test_events_that_never_happen(tmp_path):
    from synthetic import HOLD, make_forecast

    fc = make_forecast(np.full((20, 7), HOLD))  # never leaves hold; horizon 6
    paths = write_outputs(tmp_path, fc, make_history(), default_events(), meta=_meta(False))
    text = paths["report.md"].read_text()
    assert "P(QE starts by September 2026) = 0%" in text
    assert "does not open within 6 months" in text
    assert "horizon 6 months" in text
    summary = pd.read_csv(paths["event_summary.csv"])
    assert summary.set_index("event").loc["qe_start", "p_never"] == 1.0


def test_files_have_ordinary_permissions(outputs):
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    for path in outputs["paths"].values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def _html_text(page: str) -> str:
    body = page[page.index("<body>") :]
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def _md_text(page: str) -> str:
    lines = [ln for ln in page.splitlines() if not re.fullmatch(r"\|(---\|)+", ln)]
    return "\n".join(lines).replace("\\|", "|")


def _numbers(text: str) -> list[str]:
    return sorted(re.findall(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?%?", text))


def test_markdown_and_html_carry_the_same_content(tmp_path):
    from regimecast.report import Section

    fc = make_random_forecast(n=150, horizon=H, seed=7)
    lead = Section(
        "What changed since 2025-12",
        paragraphs=["P(QE starts by March 2027) rose from 12% to 31%."],
        table=pd.DataFrame({"event": ["qe_start"], "before": ["12%"], "now": ["31%"]}),
    )
    meta = dict(_meta(False), series_ends={"cpi_mom_ann": "2026-02", "smallcap_volume": "2026-03"})
    paths = write_outputs(tmp_path, fc, make_history(), default_events(), meta=meta,
                          lead_sections=[lead])
    md = paths["report.md"].read_text()
    page = paths["report.html"].read_text()
    md_titles = re.findall(r"^## (.*)$", md, flags=re.M)
    html_titles = [html.unescape(t) for t in re.findall(r"<h2>(.*?)</h2>", page)]
    assert md_titles == html_titles
    assert md_titles[0] == "What changed since 2025-12" and md_titles[1] == "Headlines"
    assert "Data: where each series ends" in md_titles
    md_numbers, html_numbers = _numbers(_md_text(md)), _numbers(_html_text(page))
    assert len(md_numbers) > 100
    assert md_numbers == html_numbers
    # every word of the headline sentences is in both
    for line in re.findall(r"^- (.*)$", md, flags=re.M):
        assert line in _html_text(page).replace("\n", " ") or html.escape(line) in page


def test_series_ends_table_counts_months_before_the_as_of(tmp_path):
    fc = make_random_forecast(n=40, horizon=6, seed=1)
    meta = dict(_meta(False), series_ends={"cpi_mom_ann": "2026-01", "balance_sheet": "2026-03"})
    md = write_outputs(tmp_path, fc, make_history(), default_events(), meta=meta)["report.md"]
    text = md.read_text()
    assert "| cpi_mom_ann | 2026-01 | 2 |" in text
    assert "| balance_sheet | 2026-03 | 0 |" in text


def test_volume_threshold_shown_in_series_units(outputs):
    md = outputs["paths"]["report.md"].read_text()
    vol_hist = make_history()["smallcap_volume"].to_series()
    level = vol_hist["2021-04-01":"2026-03-01"].rolling(12).mean().max()
    row = next(ln for ln in md.splitlines() if ln.startswith("| volume_return"))
    assert f"{level / 1e6:.3g} m shares per day" in row
    summary = pd.read_csv(outputs["paths"]["event_summary.csv"]).set_index("event")
    assert summary.loc["volume_return", "threshold"] == pytest.approx(level)
    assert summary.loc["volume_return", "threshold_units"] == COLUMN_META["smallcap_volume"].units
    assert COLUMN_META["smallcap_volume"].units.startswith("shares per day")
    assert "2021-04..2026-03" in summary.loc["volume_return", "threshold_rule"]

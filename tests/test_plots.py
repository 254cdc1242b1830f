"""Charts: quantiles checked against numpy, figures built without error, demo stamp present."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from synthetic import make_forecast, make_history, make_random_forecast  # noqa: E402

from regimecast.events import default_events, evaluate_events  # noqa: E402
from regimecast.plots import (  # noqa: E402
    DEMO_STAMP,
    fan_quantiles,
    plot_events,
    plot_fan,
    plot_regimes,
    quantile_levels,
    state_frequencies,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig) -> list[str]:
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts] + [ax.get_title()]
    return out


def test_quantile_levels():
    np.testing.assert_allclose(
        quantile_levels((0.5, 0.8, 0.9)), [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]
    )
    with pytest.raises(ValueError):
        quantile_levels((1.2,))


def test_fan_quantiles_match_numpy_and_are_ordered():
    fc = make_random_forecast(n=250, horizon=18)
    q = fan_quantiles(fc, "cpi_yoy", (0.5, 0.8, 0.9))
    values = fc["cpi_yoy"].values  # (sample, horizon)
    levels = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]
    np.testing.assert_allclose(q["quantile"].values, levels)
    np.testing.assert_allclose(q.values, np.quantile(values, levels, axis=0))
    assert (np.diff(q.values, axis=0) >= 0).all()
    assert q.sizes["horizon"] == 19 and "date" in q.coords


def test_fan_quantiles_ignore_missing_values():
    fc = make_random_forecast(n=50, horizon=6)
    vol = fc["smallcap_volume"].values.copy()
    vol[:, 0] = np.nan  # unobserved at the as-of month
    vol[:10, 3] = np.nan
    fc["smallcap_volume"] = (("sample", "horizon"), vol)
    q = fan_quantiles(fc, "smallcap_volume", (0.8,))
    assert np.isnan(q.values[:, 0]).all()
    np.testing.assert_allclose(q.values[:, 3], np.quantile(vol[10:, 3], [0.1, 0.5, 0.9]))


def test_state_frequencies_known_shares():
    rate = np.ones((10, 4), dtype=np.int64)
    rate[:3, 2:] = 2
    freq = state_frequencies(make_forecast(rate=rate, bs=np.ones((10, 4), dtype=np.int64)), "rate")
    np.testing.assert_allclose(freq.sel(rate="hiking").values, [0, 0, 0.3, 0.3])
    np.testing.assert_allclose(freq.sum("rate").values, 1.0)


@pytest.mark.parametrize("demo", [0, 1])
def test_plots_build_and_stamp_demo(demo):
    fc = make_random_forecast(n=120, horizon=24, demo=demo)
    hist = make_history()
    figs = [
        plot_fan(hist, fc, "cpi_yoy"),
        plot_regimes(hist, fc),
        plot_events(evaluate_events(fc, hist, default_events())),
    ]
    for fig in figs:
        texts = _texts(fig)
        assert (DEMO_STAMP in texts) == bool(demo)
        for ax in fig.axes:
            assert ax.get_title()
    fan = figs[0]
    ax = fan.axes[0]
    assert "percent" in ax.get_ylabel()
    labels = ax.get_legend_handles_labels()[1]
    assert {"observed", "median", "50% band", "80% band", "90% band"} <= set(labels)
    assert any("as of 2026-03" in t for t in _texts(fan))
    assert len(figs[1].axes) == 3  # macro, rate, bs


def test_plot_fan_accepts_ax_and_returns_its_figure():
    fig, ax = plt.subplots()
    out = plot_fan(make_history(), make_random_forecast(n=40, horizon=6), "policy_rate", ax=ax)
    assert out is fig


def test_fan_chart_draws_event_thresholds():
    fc = make_random_forecast(n=60, horizon=12)
    res = evaluate_events(fc, make_history(), default_events())
    level = float(res["threshold"].sel(event="volume_return"))
    fig = plot_fan(make_history(), fc, "smallcap_volume",
                   reference_lines=[(level, "threshold of volume_return")])
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "threshold of volume_return"]
    assert len(lines) == 1 and np.allclose(lines[0].get_ydata(), level)


def test_plot_regimes_one_panel_per_declared_chain():
    fc = make_random_forecast(n=60, horizon=12)
    fiscal = np.zeros((60, 13), dtype=np.int64)
    fiscal[:20, 4:] = 1
    fc["fiscal_state"] = (("sample", "horizon"), fiscal)
    fc.attrs["chains"] = ["macro", "rate", "bs", "fiscal"]
    fc.attrs["fiscal_labels"] = ["flat", "hike"]
    fig = plot_regimes(make_history(), fc)
    assert len(fig.axes) == 4
    freq = state_frequencies(fc, "fiscal")
    np.testing.assert_allclose(freq.sel(fiscal="hike").values, [0] * 4 + [20 / 60] * 9)

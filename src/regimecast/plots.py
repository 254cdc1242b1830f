"""Charts of a forecast: fan charts, regime probabilities, event probabilities.

Compute and draw are kept apart: :func:`fan_quantiles` and :func:`state_frequencies` compute, the
``plot_*`` functions draw.  Every plot takes its data first and everything else keyword-only,
accepts ``ax=`` (or ``axes=``), returns the matplotlib Figure and never samples.  A forecast with
``attrs["demo"] == 1`` gets a visible "SYNTHETIC DEMO DATA - not a forecast" stamp on every chart.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import matplotlib.colors as mcolors
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from regimecast import schema
from regimecast.data.columns import (
    BALANCE_SHEET,
    COLUMN_META,
    CPI_MOM_ANN,
    CPI_YOY,
    POLICY_RATE,
    SMALLCAP_VOLUME,
)
from regimecast.errors import DataError
from regimecast.events import DURATION_KIND
from regimecast.schema import DATE, EVENT, HORIZON, SAMPLE, TIME

log = logging.getLogger(__name__)

DEMO_STAMP = "SYNTHETIC DEMO DATA - not a forecast"
_STAMP_GID = "regimecast-demo-stamp"
DEFAULT_BANDS: tuple[float, ...] = (0.5, 0.8, 0.9)
FAN_COLOR = "#b2182b"  # Bank of England red

#: Chart titles of the forecast series.
VARIABLE_TITLES: dict[str, str] = {
    CPI_YOY: "CPI inflation, year on year",
    CPI_MOM_ANN: "CPI inflation, month on month annualised",
    POLICY_RATE: "Policy rate (effective federal funds rate)",
    BALANCE_SHEET: "Fed balance sheet (total assets)",
    SMALLCAP_VOLUME: "Small-cap volume (average daily shares)",
}

STATE_COLORS: dict[str, str] = {
    "deflationary": "#2166ac",
    "moderate": "#a6d96a",
    "inflationary": "#d6604d",
    "QE": "#1a9850",
    "cutting": "#91cf60",
    "hold": "#bdbdbd",
    "tightening": "#d73027",
    "hiking": "#d73027",
    "QT": "#fc8d59",
    "steady": "#d9d9d9",
}


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def is_demo(ds: xr.Dataset) -> bool:
    """Whether ``ds`` (a forecast or an event result) is marked as synthetic demo data."""
    try:
        return int(ds.attrs.get("demo", 0)) == 1
    except (TypeError, ValueError):
        return bool(ds.attrs.get("demo"))


def stamp_demo(fig: Figure) -> Figure:
    """Put the :data:`DEMO_STAMP` across ``fig`` (once) and return it."""
    if any(t.get_gid() == _STAMP_GID for t in fig.texts):
        return fig
    fig.text(
        0.5,
        0.5,
        DEMO_STAMP,
        gid=_STAMP_GID,
        ha="center",
        va="center",
        rotation=20,
        fontsize=22,
        fontweight="bold",
        color="red",
        alpha=0.35,
        zorder=1000,
    )
    return fig


def _finish(fig: Figure, demo: bool) -> Figure:
    if demo:
        stamp_demo(fig)
    return fig


def _as_of(forecast: xr.Dataset) -> pd.Timestamp:
    if DATE in forecast.coords:
        return pd.Timestamp(forecast[DATE].values[0])
    return pd.Period(forecast.attrs["as_of"], freq="M").to_timestamp()


def _forecast_dates(forecast: xr.Dataset) -> pd.DatetimeIndex:
    if DATE in forecast.coords:
        return pd.DatetimeIndex(forecast[DATE].values)
    return pd.period_range(
        _as_of(forecast), periods=forecast.sizes[HORIZON], freq="M"
    ).to_timestamp()


def _mark_as_of(ax: Axes, as_of: pd.Timestamp) -> None:
    ax.axvline(as_of, color="black", lw=1.0, ls="--", zorder=5)
    ax.annotate(
        f"as of {as_of:%Y-%m}",
        xy=(as_of, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(3, -3),
        textcoords="offset points",
        ha="left",
        va="top",
        fontsize=8,
    )


def _units(variable: str) -> str:
    meta = COLUMN_META.get(variable)
    return meta.units if meta else ""


def _suffix(forecast: xr.Dataset) -> str:
    scenario = str(forecast.attrs.get("scenario", "") or "")
    return f" - scenario: {scenario}" if scenario else ""


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


# --------------------------------------------------------------------------------------------------
# fan chart
# --------------------------------------------------------------------------------------------------
def quantile_levels(bands: Sequence[float] = DEFAULT_BANDS) -> np.ndarray:
    """Sorted quantile levels of central ``bands``: ``(1-b)/2``, 0.5, ``(1+b)/2`` for each ``b``."""
    bands = tuple(float(b) for b in bands)
    if not bands or any(not 0.0 < b < 1.0 for b in bands):
        raise ValueError(f"bands must be coverages strictly between 0 and 1, got {bands}")
    levels = {0.5}
    for b in bands:
        levels.update({round((1 - b) / 2, 10), round((1 + b) / 2, 10)})
    return np.array(sorted(levels))


def fan_quantiles(
    forecast: xr.Dataset, variable: str, bands: Sequence[float] = DEFAULT_BANDS
) -> xr.DataArray:
    """Quantiles of ``forecast[variable]`` across samples at every horizon.

    Returns
    -------
    DataArray (quantile, horizon), ``quantile`` = :func:`quantile_levels` of ``bands`` (linear
    interpolation, ignoring NaN; NaN where every sample is NaN), with the ``date`` coordinate.
    """
    if variable not in forecast:
        raise DataError(
            f"forecast has no variable {variable!r}; available: {sorted(map(str, forecast.data_vars))}"
        )
    levels = quantile_levels(bands)
    values = forecast[variable].transpose(SAMPLE, HORIZON).values.astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN horizons give NaN
        q = np.nanquantile(values, levels, axis=0)
    return xr.DataArray(
        q,
        dims=("quantile", HORIZON),
        coords={
            "quantile": levels,
            HORIZON: forecast[HORIZON].values,
            DATE: (HORIZON, _forecast_dates(forecast).values),
        },
        name=variable,
    )


def _band_colors(n: int, color: str) -> list[tuple[float, float, float]]:
    """Colours from light (widest band) to dark (narrowest), mixed with white, no alpha stacking."""
    rgb = np.array(mcolors.to_rgb(color))
    strengths = np.linspace(0.25, 0.75, n)
    return [tuple(1 - s * (1 - rgb)) for s in strengths]


def plot_fan(
    history: xr.Dataset,
    forecast: xr.Dataset,
    variable: str,
    *,
    ax: Axes | None = None,
    bands: Sequence[float] = DEFAULT_BANDS,
    history_months: int = 120,
    color: str = FAN_COLOR,
    title: str | None = None,
    reference_lines: Sequence[tuple[float, str]] = (),
) -> Figure:
    """Bank of England style fan chart: observed history, then nested central bands of the forecast.

    Parameters
    ----------
    history : Dataset with dim ``time`` and ``variable``; the last ``history_months`` are drawn.
    forecast : Dataset with dims ``sample``, ``horizon``; the bands are quantiles across samples.
    variable : series name, e.g. ``"cpi_yoy"``.
    bands : central coverages, drawn nested (widest lightest).
    reference_lines : ``(value, label)`` horizontal lines, e.g. an event's threshold.
    """
    q = fan_quantiles(forecast, variable, bands)
    dates = pd.DatetimeIndex(q[DATE].values)
    as_of = _as_of(forecast)
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
    else:
        fig = ax.figure

    if variable in history:
        hist = history[variable].to_series().dropna()
        hist.index = pd.DatetimeIndex(hist.index)
        hist = hist[hist.index > as_of - pd.DateOffset(months=history_months)]
        hist = hist[hist.index <= as_of]
        ax.plot(hist.index, hist.values, color="black", lw=1.4, label="observed")

    sorted_bands = sorted(float(b) for b in bands)[::-1]  # widest first
    levels = q["quantile"].values
    for band, shade in zip(sorted_bands, _band_colors(len(sorted_bands), color), strict=True):
        lo = q.values[np.argmin(np.abs(levels - (1 - band) / 2))]
        hi = q.values[np.argmin(np.abs(levels - (1 + band) / 2))]
        ax.fill_between(dates, lo, hi, color=shade, lw=0, label=f"{band:.0%} band")
    median = q.sel(quantile=0.5).values
    ax.plot(dates, median, color=color, lw=1.6, label="median")
    for value, label in reference_lines:
        ax.axhline(value, color="#444444", lw=1.0, ls=":", label=label)
    _mark_as_of(ax, as_of)

    units = _units(variable)
    ax.set_ylabel(f"{variable} ({units})" if units else variable)
    ax.set_xlabel("month")
    _date_axis(ax)
    ax.set_title(
        title
        or f"{VARIABLE_TITLES.get(variable, variable)}: forecast fan, as of {as_of:%Y-%m}"
        + _suffix(forecast)
    )
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    return _finish(fig, is_demo(forecast))


# --------------------------------------------------------------------------------------------------
# regime probabilities
# --------------------------------------------------------------------------------------------------
def state_frequencies(forecast: xr.Dataset, chain: str) -> xr.DataArray:
    """Share of samples in each state of ``chain`` (any chain the forecast declares, e.g.
    ``"macro"``, ``"rate"`` or ``"bs"``) by horizon.

    Returns
    -------
    DataArray (horizon, ``chain``) with the state labels as the ``chain`` coordinate; rows sum to 1.
    """
    all_labels = schema.chain_labels(forecast)
    if chain not in all_labels:
        raise ValueError(f"chain must be one of {sorted(all_labels)}, got {chain!r}")
    labels = all_labels[chain]
    states = forecast[schema.state_variable(chain)].transpose(SAMPLE, HORIZON).values
    freq = np.stack([(states == k).mean(axis=0) for k in range(len(labels))], axis=1)
    return xr.DataArray(
        freq,
        dims=(HORIZON, chain),
        coords={
            HORIZON: forecast[HORIZON].values,
            DATE: (HORIZON, _forecast_dates(forecast).values),
            chain: labels,
        },
        name=f"{chain}_frequency",
    )


def _state_color(label: str, i: int) -> str:
    return STATE_COLORS.get(label, f"C{i % 10}")


def plot_regimes(
    history: xr.Dataset,
    forecast: xr.Dataset,
    *,
    axes: Sequence[Axes] | None = None,
    history_months: int = 120,
) -> Figure:
    """Stacked areas of each chain's state probabilities (macro regimes, policy states, ...),
    history then forecast, one panel per chain the forecast declares, in its order.

    History (up to the as-of month) is the posterior-mean smoothed ``p_<chain>``; the forecast
    (months 1..H) is the share of simulated paths in each state.
    """
    as_of = _as_of(forecast)
    chains = schema.chains(forecast)
    if axes is None:
        fig, axes_arr = plt.subplots(
            len(chains), 1, figsize=(9, 3.25 * len(chains)), sharex=True, layout="constrained",
            squeeze=False,
        )
        axes = list(axes_arr[:, 0])
    else:
        if len(axes) != len(chains):
            raise ValueError(f"plot_regimes needs {len(chains)} axes ({', '.join(chains)})")
        fig = axes[0].figure
    for ax, chain in zip(axes, chains, strict=True):
        _regime_panel(ax, history, forecast, chain, as_of, history_months)
    axes[-1].set_xlabel("month")
    return _finish(fig, is_demo(forecast))


_CHAIN_TITLES = {
    "macro": "Macro regime probabilities",
    "policy": "Policy state probabilities",
    "rate": "Rate stance probabilities",
    "bs": "Balance-sheet stance probabilities",
}


def _history_shares(
    history: xr.Dataset, chain: str, labels: list[str], as_of: pd.Timestamp, months: int
) -> tuple[pd.DatetimeIndex, np.ndarray] | None:
    """(dates, (T, K) smoothed probabilities) of ``chain`` over the last ``months`` of history."""
    p_name = schema.probability_variable(chain)
    if p_name not in history or TIME not in history[p_name].dims:
        log.warning("history has no %s; drawing the forecast only", p_name)
        return None
    hp = history[p_name]
    hist_dates = pd.DatetimeIndex(hp[TIME].values)
    keep = (hist_dates > as_of - pd.DateOffset(months=months)) & (hist_dates <= as_of)
    hist_labels = [str(x) for x in hp[chain].values] if chain in hp.coords else labels
    cols = []
    for lab in labels:
        if lab in hist_labels:
            cols.append(hp.isel({chain: hist_labels.index(lab)}).values[keep])
        else:
            log.warning("history %s has no state %r; drawing zeros", p_name, lab)
            cols.append(np.zeros(keep.sum()))
    return hist_dates[keep], np.column_stack(cols)


def _regime_panel(
    ax: Axes,
    history: xr.Dataset,
    forecast: xr.Dataset,
    chain: str,
    as_of: pd.Timestamp,
    history_months: int,
) -> None:
    freq = state_frequencies(forecast, chain)
    labels = [str(x) for x in freq[chain].values]
    x, y = pd.DatetimeIndex(freq[DATE].values)[1:], freq.values[1:]
    past = _history_shares(history, chain, labels, as_of, history_months)
    if past is not None:
        x, y = past[0].append(x), np.vstack([past[1], y])
    y = np.nan_to_num(y.astype(float))
    ax.stackplot(
        x,
        y.T,
        labels=labels,
        colors=[_state_color(lab, i) for i, lab in enumerate(labels)],
        alpha=0.9,
        step=None,
    )
    _mark_as_of(ax, as_of)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    title = _CHAIN_TITLES.get(chain, f"{chain.capitalize()} state probabilities")
    ax.set_title(f"{title}: smoothed history, then share of simulated paths" + _suffix(forecast))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    _date_axis(ax)


# --------------------------------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------------------------------
def plot_events(
    event_result: xr.Dataset,
    *,
    axes: Sequence[Axes] | None = None,
    events: Sequence[str] | None = None,
) -> Figure:
    """Cumulative probability of the dated events by month, and the duration distributions.

    Left: P(event has happened by month) for ``state_start`` and ``threshold`` events.  Right: bars
    of P(duration = d months | start within horizon) for ``duration`` events over observed
    windows; the censored share (window still open at the horizon end) is given in the legend.
    """
    names = [str(x) for x in event_result[EVENT].values]
    if events is not None:
        unknown = sorted(set(events) - set(names))
        if unknown:
            raise ValueError(f"unknown events {unknown}; known: {names}")
        names = [n for n in names if n in set(events)]
    kinds = dict(
        zip(
            map(str, event_result[EVENT].values), map(str, event_result["kind"].values), strict=True
        )
    )
    dated = [n for n in names if kinds[n] != DURATION_KIND]
    durations = [n for n in names if kinds[n] == DURATION_KIND]
    if axes is None:
        fig, axes_arr = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
        axes = list(axes_arr)
    else:
        if len(axes) != 2:
            raise ValueError("plot_events needs two axes (cumulative, durations)")
        fig = axes[0].figure
    ax_cum, ax_dur = axes
    dates = pd.DatetimeIndex(event_result[DATE].values)
    as_of = str(event_result.attrs.get("as_of", f"{dates[0]:%Y-%m}"))
    scenario = str(event_result.attrs.get("scenario", "") or "")
    suffix = f" - scenario: {scenario}" if scenario else ""

    _draw_cumulative(ax_cum, event_result, dated, f"as of {as_of}{suffix}")
    _draw_durations(ax_dur, event_result, durations, offset=len(dated))
    return _finish(fig, is_demo(event_result))


def _draw_cumulative(ax: Axes, event_result: xr.Dataset, names: Sequence[str], when: str) -> None:
    """Step lines of P(event has happened by month) for the dated events ``names``."""
    dates = pd.DatetimeIndex(event_result[DATE].values)
    for i, name in enumerate(names):
        sub = event_result.sel({EVENT: name})
        ax.step(dates, sub["cumulative"].values, where="post", color=f"C{i % 10}", lw=1.8,
                label=str(sub["label"].values))
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("probability event has happened")
    ax.set_xlabel("month")
    ax.set_title(f"Cumulative event probabilities, {when}")
    _date_axis(ax)
    ax.grid(alpha=0.3)
    if names:
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    else:
        ax.text(0.5, 0.5, "no dated events", ha="center", va="center", transform=ax.transAxes)


def _draw_durations(
    ax: Axes, event_result: xr.Dataset, names: Sequence[str], *, offset: int
) -> None:
    """Bars of P(duration = d | start) of the duration events ``names``; censored share in legend."""
    months = event_result["duration"].values
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        sub = event_result.sel({EVENT: name})
        p_cens = float(sub["p_censored"])
        p_start = float(sub["p_start"])
        cens = "n/a" if np.isnan(p_cens) else f"{p_cens:.0%}"
        ax.bar(
            months + (i - (len(names) - 1) / 2) * width,
            sub["duration_probability"].values,
            width=width,
            color=f"C{(i + offset) % 10}",
            label=f"{sub['label'].values} (P(start) {p_start:.0%}, still open at horizon end {cens})",
        )
    ax.set_xlabel("duration (months)")
    ax.set_ylabel("probability given the start")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_title("Window lengths (closed windows; censored share in legend)")
    ax.grid(alpha=0.3, axis="y")
    if names:
        ax.legend(loc="upper right", fontsize=7, frameon=False)
    else:
        ax.text(0.5, 0.5, "no duration events", ha="center", va="center", transform=ax.transAxes)

"""Forecasts: regime paths and every observed series, simulated forward from each posterior draw.

For each posterior draw the months ahead are appended to the sample as missing observations (or as
scenario prints, which enter as evidence) and regime paths are drawn by forward-filter backward-sampling
over the extended series.  Without a scenario this is exactly forward simulation from the filtered joint
state at the as-of month; with one, the paths are conditioned on the hypothetical prints.  Series are then
simulated along the paths, so the bands carry both parameter and regime uncertainty.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import xarray as xr

from regimecast import schema
from regimecast.data import columns as C
from regimecast.errors import ConfigError
from regimecast.hmm import hmm_sample_paths
from regimecast.models.macro import MacroData, joint_log_emission, numpy_params
from regimecast.models.macro_sim import simulate_series
from regimecast.results import MacroFit

log = logging.getLogger(__name__)

SCENARIO_VARIABLES = (C.CPI_MOM_ANN, C.POLICY_RATE_CHANGE, C.BALANCE_SHEET_GROWTH)
_DIMS = (schema.SAMPLE, schema.HORIZON)
FORECAST_SERIES = (C.CPI_YOY, C.CPI_MOM_ANN, C.POLICY_RATE, C.BALANCE_SHEET, C.SMALLCAP_VOLUME)


def parse_scenario(text: str | None, as_of: pd.Timestamp, horizon: int) -> dict[str, np.ndarray]:
    """Parse ``"cpi_mom_ann:2024-04=0.0,2024-05=-1.0;balance_sheet_growth:2024-06=3"``.

    Returns ``{variable: (horizon + 1,) array}`` with NaN where no print is given (index 0 = as-of).
    """
    out: dict[str, np.ndarray] = {}
    if not text or not text.strip():
        return out
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        if ":" not in part:
            raise ConfigError(
                f"scenario {part!r}: expected 'variable:YYYY-MM=value,...', "
                "e.g. 'cpi_mom_ann:2024-04=0.0,2024-05=-1.0'"
            )
        var, prints = part.split(":", 1)
        var = var.strip()
        if var not in SCENARIO_VARIABLES:
            raise ConfigError(
                f"scenario variable {var!r} is not modelled; use one of {', '.join(SCENARIO_VARIABLES)}"
            )
        arr = out.setdefault(var, np.full(horizon + 1, np.nan))
        for item in prints.split(","):
            m = re.fullmatch(r"\s*(\d{4}-\d{2})\s*=\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*", item)
            if not m:
                raise ConfigError(f"scenario print {item!r} for {var}: expected YYYY-MM=number")
            month = pd.Timestamp(m.group(1) + "-01")
            h = (month.year - as_of.year) * 12 + month.month - as_of.month
            if not 1 <= h <= horizon:
                raise ConfigError(
                    f"scenario month {m.group(1)} is outside the forecast window "
                    f"({(as_of + pd.DateOffset(months=1)):%Y-%m} .. "
                    f"{(as_of + pd.DateOffset(months=horizon)):%Y-%m})"
                )
            arr[h] = float(m.group(2))
    return out


def _future_emission(point: dict, fit: MacroFit, scenario: dict[str, np.ndarray], horizon: int):
    """(H, K) log emissions of the months ahead: 0 (unobserved) except scenario prints."""
    cfg = fit.config.model
    K = cfg.n_macro * cfg.n_policy
    if not scenario:
        return np.zeros((horizon, K))
    d = fit.data
    nan = np.full(horizon, np.nan)
    cpi = scenario.get(C.CPI_MOM_ANN, np.full(horizon + 1, np.nan)).copy()
    cpi[0] = d.cpi[-1]
    cpi_lag = cpi[:-1].copy()
    fut = MacroData(
        dates=pd.date_range(d.dates[-1] + pd.DateOffset(months=1), periods=horizon, freq="MS"),
        cpi=cpi[1:],
        cpi_lag=cpi_lag,
        rate=nan,
        rate_lag=nan,
        rate_change=scenario.get(C.POLICY_RATE_CHANGE, np.full(horizon + 1, np.nan))[1:],
        rate_era=np.zeros(horizon),
        bs_growth=scenario.get(C.BALANCE_SHEET_GROWTH, np.full(horizon + 1, np.nan))[1:],
        bs_proxy=np.zeros(horizon),
        vol=nan,
        vol_lag=nan,
        vol_proxy=np.zeros(horizon),
        trend=d.trend[-1] + (np.arange(1, horizon + 1)) * (d.trend[1] - d.trend[0]),
        infl_driver=np.zeros(horizon),
    )
    le = joint_log_emission(np, numpy_params(point, cfg), fut, cfg)
    # a CPI print whose previous month is unknown: use the regime's stationary AR(1) distribution
    lone = np.isfinite(fut.cpi) & ~np.isfinite(fut.cpi_lag)
    if lone.any():
        p = numpy_params(point, cfg)
        s_of = np.repeat(np.arange(cfg.n_macro), cfg.n_policy)
        mu = p["cpi_mean"][s_of]
        sd = p["cpi_sigma"][s_of] / np.sqrt(1.0 - p["cpi_ar"] ** 2)
        y = fut.cpi[lone][:, None]
        le[lone] += -0.5 * ((y - mu) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)
    return le


def _yoy_path(history_mom: np.ndarray, future_mom: np.ndarray) -> np.ndarray:
    """Year-on-year CPI (percent) along simulated paths from annualised m/m log changes.

    ``history_mom``: the last 11 months before the as-of month and the as-of month (12,), gaps
    filled by the mean of the available months; ``future_mom`` (n, H+1) with column 0 = as-of.
    """
    hist = history_mom.copy()
    if np.isnan(hist).all():
        hist[:] = 0.0
    hist[np.isnan(hist)] = np.nanmean(hist)
    n, H1 = future_mom.shape
    full = np.concatenate([np.broadcast_to(hist[:-1], (n, 11)), future_mom], axis=1)
    full[:, 11] = np.where(np.isfinite(full[:, 11]), full[:, 11], hist[-1])
    csum = np.cumsum(full, axis=1)
    window = csum[:, 11:] - np.concatenate([np.zeros((n, 1)), csum[:, : H1 - 1]], axis=1)
    return 100.0 * (np.exp(window / 1200.0) - 1.0)


def forecast(
    fit: MacroFit,
    *,
    horizon: int = 24,
    max_draws: int = 1000,
    paths_per_draw: int = 1,
    scenario: str | None = None,
    random_seed: int = 0,
    demo: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> xr.Dataset:
    """Simulate ``horizon`` months ahead from every (or ``max_draws``) posterior draw.

    Returns a Dataset with dims ``sample`` (draw x path) and ``horizon`` (0 = the as-of month), a
    ``date`` coordinate of month starts, integer ``macro_state`` / ``policy_state`` (labels in attrs)
    and the series ``cpi_yoy``, ``cpi_mom_ann``, ``policy_rate``, ``balance_sheet``,
    ``smallcap_volume``.
    """
    cfg = fit.config.model
    d = fit.data
    as_of = d.dates[-1]
    scen = parse_scenario(scenario, as_of, horizon)
    rng = np.random.default_rng(random_seed)
    points = fit.points(max_draws, random_seed=random_seed)
    panel = fit.panel.loc[: as_of]
    last = panel.iloc[-1]
    initial = {
        C.CPI_MOM_ANN: float(last[C.CPI_MOM_ANN]),
        C.POLICY_RATE: float(panel[C.POLICY_RATE].dropna().iloc[-1]),
        C.BALANCE_SHEET: float(panel[C.BALANCE_SHEET].dropna().iloc[-1]),
        C.SMALLCAP_VOLUME_LOG: float(last[C.SMALLCAP_VOLUME_LOG]),
    }
    fixed = {C.CPI_MOM_ANN: scen[C.CPI_MOM_ANN]} if C.CPI_MOM_ANN in scen else None
    T = d.T
    n = len(points) * paths_per_draw
    states = np.empty((n, horizon + 1), dtype=np.int64)
    series = {k: np.empty((n, horizon + 1)) for k in (C.CPI_MOM_ANN, C.POLICY_RATE, C.BALANCE_SHEET,
                                                      C.SMALLCAP_VOLUME)}
    for i, p in enumerate(points):
        li, lt, le = fit.matrices(p)
        if lt.ndim == 3:  # time-varying policy transitions: hold the driver at its as-of value
            lt = np.concatenate([lt, np.repeat(lt[-1:], horizon, axis=0)])
        full = np.vstack([le, _future_emission(p, fit, scen, horizon)])
        paths = hmm_sample_paths(li, lt, full, n=paths_per_draw, random_seed=rng)[:, T - 1 :]
        sl = slice(i * paths_per_draw, (i + 1) * paths_per_draw)
        states[sl] = paths
        sims = simulate_series(p, cfg, paths, initial=initial, trend0=float(d.trend[-1]), rng=rng,
                               fixed=fixed)
        for k in series:
            series[k][sl] = sims[k]
        if progress is not None:
            progress(i + 1, len(points))
    hist_mom = panel[C.CPI_MOM_ANN].to_numpy(dtype=float)[-12:]
    series[C.CPI_YOY] = _yoy_path(hist_mom, series[C.CPI_MOM_ANN])
    series[C.CPI_YOY][:, 0] = float(last.get(C.CPI_YOY, np.nan))
    dates = pd.date_range(as_of, periods=horizon + 1, freq="MS")
    ds = xr.Dataset(
        {
            schema.state_variable("macro"): (_DIMS, states // cfg.n_policy),
            schema.state_variable("policy"): (_DIMS, states % cfg.n_policy),
            **{k: (_DIMS, v) for k, v in series.items()},
        },
        coords={schema.SAMPLE: np.arange(n), schema.HORIZON: np.arange(horizon + 1),
                schema.DATE: (schema.HORIZON, dates)},
        attrs={
            schema.AS_OF_ATTR: f"{as_of:%Y-%m}",
            schema.DEMO_ATTR: int(demo),
            schema.SCENARIO_ATTR: scenario or "",
            **schema.chain_attrs(schema.model_chain_labels(cfg)),
            "draws": len(points),
            "paths_per_draw": paths_per_draw,
            "random_seed": random_seed,
        },
    )
    for k in series:
        meta = C.COLUMN_META.get(k)
        if meta is not None:
            ds[k].attrs.update(units=meta.units, description=meta.description)
    return schema.validate_forecast(ds)


def history_dataset(fit: MacroFit) -> xr.Dataset:
    """Observed series up to the as-of month plus smoothed regime probabilities (for charts)."""
    reg = fit.regime_probabilities()
    panel = fit.panel.loc[fit.data.dates[0] : fit.data.dates[-1]]
    ds = xr.Dataset(
        {k: (schema.TIME, panel[k].to_numpy(dtype=float)) for k in FORECAST_SERIES if k in panel},
        coords={schema.TIME: pd.DatetimeIndex(panel.index).values},
    )
    for chain in ("macro", "policy"):
        ds[schema.probability_variable(chain)] = (
            reg[f"smoothed_{chain}"].sel(stat="mean", drop=True).reindex(time=ds.time)
        )
    for k in FORECAST_SERIES:
        meta = C.COLUMN_META.get(k)
        if k in ds and meta is not None:
            ds[k].attrs.update(units=meta.units, description=meta.description)
    return ds

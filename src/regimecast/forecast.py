"""Forecasts: regime paths and every observed series, simulated forward from each posterior draw.

For each posterior draw the months ahead are appended to the sample as missing observations (or as
scenario prints, which enter as evidence) and regime paths are drawn by forward-filter backward-sampling.
The smoothed state at the as-of month is the filtered one, so the draws start from the filtered joint
state each run stores (``reweight.fit_filter_state``) and filter and sample the months ahead only.  When
a series ends before the as-of month and must be simulated over its missing months (the ragged edge),
those months' states are backward-sampled from the filtered states of the last months the run also
stores; only without them is the whole sample filtered and sampled again per draw.  Without
a scenario this is exactly forward simulation from the filtered joint state at the as-of month; with
one, the paths are conditioned on the hypothetical prints.  Series are then simulated along the paths,
so the bands carry both parameter and regime uncertainty.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from regimecast import schema
from regimecast.data import columns as C
from regimecast.errors import ConfigError
from regimecast.hmm import hmm_sample_paths
from regimecast.models.macro import (
    INFLATION_CENTRE,
    INFLATION_SCALE,
    MacroData,
    joint_log_emission,
    joint_log_transition,
    numpy_params,
)
from regimecast.models.macro_sim import simulate_series_batch
from regimecast.results import MacroFit
from regimecast.reweight import FilterState, fit_filter_state, stored_filter_state

log = logging.getLogger(__name__)

SCENARIO_VARIABLES = (C.CPI_MOM_ANN, C.POLICY_RATE_CHANGE, C.BALANCE_SHEET_GROWTH)
_DIMS = (schema.SAMPLE, schema.HORIZON)
FORECAST_SERIES = (C.CPI_YOY, C.CPI_MOM_ANN, C.POLICY_RATE, C.BALANCE_SHEET, C.SMALLCAP_VOLUME)


def parse_scenario(
    text: str | None,
    as_of: pd.Timestamp,
    horizon: int,
    labels: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, np.ndarray]:
    """Parse ``"cpi_mom_ann:2024-04=0.0,2024-05=-1.0;balance_sheet_growth:2024-06=3"``.

    A part may also fix a chain's state: ``"bs:2024-06=QT;rate:2024-06..2024-09=hold"`` conditions on
    the balance-sheet stance being QT in 2024-06 and the rate stance on hold (for any chain of
    ``labels``, ``{chain: state labels}``, default the default model's chains).  Prints of
    ``policy_rate_change`` inform the rate stance and ``balance_sheet_growth`` the balance-sheet
    stance through the model's emissions.

    Returns ``{variable or chain: (horizon + 1,) array}`` with NaN where nothing is given (index 0 =
    as-of); a chain's array holds the index of the required state label.
    """
    if labels is None:
        from regimecast.config import ModelConfig

        labels = ModelConfig().chain_labels()
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
        if var not in SCENARIO_VARIABLES and var not in labels:
            raise ConfigError(
                f"scenario variable {var!r} is not modelled; use one of {', '.join(SCENARIO_VARIABLES)} "
                f"or a chain ({', '.join(labels)}) with a state label"
            )
        arr = out.setdefault(var, np.full(horizon + 1, np.nan))
        for item in prints.split(","):
            if var in labels:
                _parse_state_item(item, var, list(labels[var]), arr, as_of, horizon)
                continue
            m = re.fullmatch(r"\s*(\d{4}-\d{2})\s*=\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*", item)
            if not m:
                raise ConfigError(f"scenario print {item!r} for {var}: expected YYYY-MM=number")
            arr[_scenario_step(m.group(1), as_of, horizon)] = float(m.group(2))
    return out


def _scenario_step(month_text: str, as_of: pd.Timestamp, horizon: int) -> int:
    month = pd.Timestamp(month_text + "-01")
    h = (month.year - as_of.year) * 12 + month.month - as_of.month
    if not 1 <= h <= horizon:
        raise ConfigError(
            f"scenario month {month_text} is outside the forecast window "
            f"({(as_of + pd.DateOffset(months=1)):%Y-%m} .. "
            f"{(as_of + pd.DateOffset(months=horizon)):%Y-%m})"
        )
    return h


def _parse_state_item(item: str, chain: str, labels: list[str], arr: np.ndarray,
                      as_of: pd.Timestamp, horizon: int) -> None:
    """``YYYY-MM=label`` or ``YYYY-MM..YYYY-MM=label`` of a chain into ``arr`` (label indices)."""
    m = re.fullmatch(r"\s*(\d{4}-\d{2})(?:\s*\.\.\s*(\d{4}-\d{2}))?\s*=\s*(\S+)\s*", item)
    if not m:
        raise ConfigError(
            f"scenario item {item!r} for chain {chain}: expected YYYY-MM=label or "
            f"YYYY-MM..YYYY-MM=label with a label in {labels}"
        )
    if m.group(3) not in labels:
        raise ConfigError(
            f"scenario item {item!r}: {m.group(3)!r} is not a {chain} state; use one of {labels}"
        )
    lo = _scenario_step(m.group(1), as_of, horizon)
    hi = _scenario_step(m.group(2), as_of, horizon) if m.group(2) else lo
    if hi < lo:
        raise ConfigError(f"scenario item {item!r}: the range ends before it starts")
    arr[lo : hi + 1] = labels.index(m.group(3))


def _state_conditions(cfg, scenario: dict[str, np.ndarray], horizon: int) -> np.ndarray:
    """(H, K) log emission of the chains' required states: 0 where allowed, -inf elsewhere."""
    out = np.zeros((horizon, cfg.n_states))
    for chain, comp in cfg.state_components().items():
        req = scenario.get(chain)
        if req is None:
            continue
        fixed = np.isfinite(req[1:])
        bad = fixed[:, None] & (np.asarray(comp)[None, :] != np.nan_to_num(req[1:])[:, None])
        out[bad] = -np.inf
    return out


def _future_emission(point: dict, fit: MacroFit, scenario: dict[str, np.ndarray], horizon: int):
    """(H, K) log emissions of the months ahead: 0 (unobserved) except scenario prints."""
    cfg = fit.config.model
    if not scenario:
        return np.zeros((horizon, cfg.n_states))
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
    le = joint_log_emission(np, numpy_params(point, cfg), fut, cfg) + _state_conditions(
        cfg, scenario, horizon)
    # a CPI print whose previous month is unknown: use the regime's stationary AR(1) distribution
    lone = np.isfinite(fut.cpi) & ~np.isfinite(fut.cpi_lag)
    if lone.any():
        p = numpy_params(point, cfg)
        s_of = np.asarray(cfg.state_components()["macro"])
        mu = p["cpi_mean"][s_of]
        sd = p["cpi_sigma"][s_of] / np.sqrt(1.0 - p["cpi_ar"] ** 2)
        y = fut.cpi[lone][:, None]
        le[lone] += -0.5 * ((y - mu) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)
    return le


def _yoy_path(history_mom: np.ndarray, future_mom: np.ndarray) -> np.ndarray:
    """Year-on-year CPI (percent) along simulated paths from annualised m/m log changes.

    ``history_mom``: the 11 months before the as-of month, (11,) or per path (n, 11), interior gaps
    filled by the mean of the available months; ``future_mom`` (n, H+1) with column 0 = as-of.
    The y/y at horizon h is ``100 * (exp(sum of the 12 monthly log changes ending at h / 1200) - 1)``.
    """
    hist = np.array(history_mom, dtype=float, ndmin=2)
    fill = np.nanmean(hist) if np.isfinite(hist).any() else 0.0
    hist[np.isnan(hist)] = fill
    n, H1 = future_mom.shape
    fut = future_mom.copy()
    fut[:, 0] = np.where(np.isfinite(fut[:, 0]), fut[:, 0], fill)  # CPI never observed: the mean
    full = np.concatenate([np.broadcast_to(hist, (n, 11)), fut], axis=1)
    csum = np.cumsum(full, axis=1)
    window = csum[:, 11:] - np.concatenate([np.zeros((n, 1)), csum[:, : H1 - 1]], axis=1)
    return 100.0 * (np.exp(window / 1200.0) - 1.0)


NOWCAST_SERIES = (C.CPI_MOM_ANN, C.POLICY_RATE, C.BALANCE_SHEET, C.SMALLCAP_VOLUME_LOG)


def _last_observed(panel: pd.DataFrame, dates: pd.DatetimeIndex) -> dict[str, tuple[int, float]]:
    """For each simulated series: (months from its last observation to the as-of, that value).

    Series never observed in the model's sample are left out (the simulation then starts them at the
    regime mean).
    """
    out = {}
    for col in NOWCAST_SERIES:
        s = panel[col].reindex(dates) if col in panel else pd.Series(np.nan, index=dates)
        ok = np.flatnonzero(np.isfinite(s.to_numpy(dtype=float)))
        if ok.size:
            out[col] = (len(dates) - 1 - int(ok[-1]), float(s.iloc[ok[-1]]))
    return out


def _initial_values(points: list[dict], fit: MacroFit, tails: np.ndarray, last: dict,
                    rng) -> tuple[dict, np.ndarray]:
    """Values at the as-of month per path, and the CPI prints of the 11 months before it (n, 11).

    The ragged edge: a series whose last months are missing is simulated forward from its last
    observed value along the sampled (smoothed) regime path of those months, so the forecast starts
    from the last observation and the filtered state, never from NaN.  ``tails`` (n, L + 1): each
    path's last L + 1 in-sample joint states (L = the largest lag in ``last``), paths in draw order,
    ``len(tails) // len(points)`` per draw; every draw is simulated at once.
    """
    cfg, d = fit.config.model, fit.data
    n, W = tails.shape
    T = d.T
    hist = fit.panel[C.CPI_MOM_ANN].reindex(d.dates).to_numpy(dtype=float)
    hist = np.concatenate([np.full(11, np.nan), hist])[-12:-1]
    hist = np.broadcast_to(hist, (n, 11)).copy()
    initial: dict[str, float | np.ndarray] = {}
    for col, (lag, value) in last.items():
        if lag == 0:
            initial[col] = value
            continue
        sims = simulate_series_batch(points, cfg, tails[:, W - 1 - lag :], initial={col: value},
                                     trend0=float(d.trend[T - 1 - lag]), rng=rng)
        initial[col] = sims[col][:, -1]
        if col == C.CPI_MOM_ANN and lag > 1:  # the missing months before the as-of enter the y/y
            k = min(lag - 1, 11)
            hist[:, 11 - k :] = sims[col][:, -1 - k : -1]
    return initial, hist


def _future_transitions(p: dict, fit: MacroFit, lt: np.ndarray, horizon: int) -> np.ndarray:
    """In-sample log transitions followed by the ``horizon`` months ahead.

    Time-varying policy transitions hold the driver at its as-of value: the transition into month
    as-of + 1 is driven by the inflation printed by the as-of month (the last y/y print up to then),
    like :attr:`MacroData.infl_driver` in sample.
    """
    if lt.ndim != 3:
        return lt
    cfg = fit.config.model
    yoy = fit.panel.loc[: fit.data.dates[-1]].get(C.CPI_YOY, pd.Series(dtype=float)).dropna()
    x = (float(yoy.iloc[-1]) - INFLATION_CENTRE) / INFLATION_SCALE if len(yoy) else 0.0
    ahead = joint_log_transition(np, numpy_params(p, cfg), cfg, drivers=np.full(horizon, x))
    return np.concatenate([lt, ahead])


def _future_paths(p: dict, fit: MacroFit, alpha: np.ndarray, log_a: np.ndarray, scen: dict,
                  horizon: int, n: int, rng) -> np.ndarray:
    """(n, H+1) joint-state paths from the as-of month on, from the filtered state ``alpha`` there:
    forward-filter backward-sampling over the months ahead only (their scenario prints are evidence).
    ``log_a`` is the draw's transition beyond the as-of (time-varying transitions are recomputed)."""
    la = _future_transitions(p, fit, log_a[None], horizon)[1:] if fit.config.model.tvtp else log_a
    le = np.vstack([np.zeros((1, alpha.shape[0])), _future_emission(p, fit, scen, horizon)])
    with np.errstate(divide="ignore"):
        return hmm_sample_paths(np.log(alpha), la, le, n=n, random_seed=rng)


def _full_paths(p: dict, fit: MacroFit, scen: dict, horizon: int, n: int, rng,
                matrices: tuple | None = None) -> np.ndarray:
    """(n, T+H) joint-state paths over the whole sample and the months ahead (the ragged edge needs
    the history's last months).  ``matrices``: the draw's (log_init, log_transition, log_emission)
    when already computed (``MacroFit.hmm_arrays_many``), else ``fit.matrices(p)``."""
    li, lt, le = matrices if matrices is not None else fit.matrices(p)
    lt = _future_transitions(p, fit, lt, horizon)
    full = np.vstack([le, _future_emission(p, fit, scen, horizon)])
    return hmm_sample_paths(li, lt, full, n=n, random_seed=rng)


def _window_tails(as_of_states: np.ndarray, state: FilterState, rows: np.ndarray, lag: int,
                  rng) -> np.ndarray:
    """(n, lag + 1) in-sample joint states of each path, backward-sampled from the stored filtered
    states of the last months (``state.window``): s_t ~ alpha_t(s) A(s, s_{t+1}), the same step as
    forward-filter backward-sampling over the whole sample takes.  ``rows``: each path's draw."""
    n = len(as_of_states)
    tails = np.empty((n, lag + 1), dtype=np.int64)
    tails[:, -1] = as_of_states
    W = state.window.shape[1]
    A = np.exp(state.log_a[rows])  # (n, K, K); without time-varying transitions, every month's
    for j in range(1, lag + 1):
        w = state.window[rows, W - 1 - j] * A[np.arange(n), :, tails[:, -j]]
        cum = np.cumsum(w, axis=1)
        u = rng.random(n) * cum[:, -1]
        tails[:, -1 - j] = np.minimum((cum < u[:, None]).sum(axis=1), w.shape[1] - 1)
    return tails


def _known_filter_state(fit: MacroFit) -> FilterState | None:
    """The fit's per-draw filter state when it is known without filtering (memo or the stored group)."""
    if "filter_state" in fit._memo:
        return fit._memo["filter_state"]
    state = stored_filter_state(fit.idata, fit.data)
    if state is not None:
        fit._memo["filter_state"] = state
    return state


def _simulate_draws(fit: MacroFit, points: list[dict], pos: np.ndarray, scen: dict, horizon: int,
                    paths_per_draw: int, rng, progress) -> tuple[np.ndarray, dict, np.ndarray]:
    """Joint-state paths (n, H+1), the simulated series and the 11 CPI prints before the as-of (n, 11)
    for every draw in ``points`` (at stacked positions ``pos``), ``paths_per_draw`` paths each.

    The paths start from the as-of month's filtered state.  At a ragged edge the missing months'
    states are backward-sampled from the stored last months' filtered states; without them (an old
    run, time-varying transitions, a deeper edge) the whole sample is filtered again per draw."""
    cfg, d = fit.config.model, fit.data
    last = _last_observed(fit.panel.loc[: d.dates[-1]], d.dates)
    max_lag = max((lag for lag, _ in last.values()), default=0)
    state = fit_filter_state(fit) if max_lag == 0 else _known_filter_state(fit)
    windowed = (max_lag > 0 and state is not None and state.window is not None and not cfg.tvtp
                and state.window.shape[1] > max_lag)
    full = max_lag > 0 and not windowed
    fixed = {k: scen[k] for k in SCENARIO_VARIABLES if k in scen}  # the prints, on every path
    T, n = d.T, len(points) * paths_per_draw
    states = np.empty((n, horizon + 1), dtype=np.int64)
    tails = np.empty((n, max_lag + 1), dtype=np.int64)  # the last in-sample months of each path
    matrices = fit.hmm_arrays_many(points) if full else None  # batched over draws
    for i, p in enumerate(points):
        sl = slice(i * paths_per_draw, (i + 1) * paths_per_draw)
        if full:
            all_paths = _full_paths(p, fit, scen, horizon, paths_per_draw, rng, next(matrices))
            states[sl], tails[sl] = all_paths[:, T - 1 :], all_paths[:, T - 1 - max_lag : T]
        else:
            states[sl] = _future_paths(p, fit, state.alpha[pos[i]], state.log_a[pos[i]], scen, horizon,
                                       paths_per_draw, rng)
        if progress is not None:
            progress(i + 1, len(points))
    if not full:
        tails = _window_tails(states[:, 0], state, np.repeat(pos, paths_per_draw), max_lag, rng)
    # the series, for every draw at once: from the as-of values (nowcast along the tails if ragged)
    initial, hist_mom = _initial_values(points, fit, tails, last, rng)
    sims = simulate_series_batch(points, cfg, states, initial=initial, trend0=float(d.trend[-1]),
                                 rng=rng, fixed=fixed)
    series = {k: sims[k] for k in (C.CPI_MOM_ANN, C.POLICY_RATE, C.BALANCE_SHEET, C.SMALLCAP_VOLUME)}
    return states, series, hist_mom


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
    ``date`` coordinate of month starts, integer ``macro_state`` / ``rate_state`` / ``bs_state``
    (labels in attrs)
    and the series ``cpi_yoy``, ``cpi_mom_ann``, ``policy_rate``, ``balance_sheet``,
    ``smallcap_volume``.
    """
    cfg = fit.config.model
    d = fit.data
    as_of = d.dates[-1]
    scen = parse_scenario(scenario, as_of, horizon, cfg.chain_labels())
    rng = np.random.default_rng(random_seed)
    points = fit.points(max_draws, random_seed=random_seed)
    panel = fit.panel.loc[: as_of]
    pos = fit.draw_positions(max_draws, random_seed=random_seed)
    states, series, hist_mom = _simulate_draws(fit, points, pos, scen, horizon, paths_per_draw, rng,
                                               progress)
    n = states.shape[0]
    series[C.CPI_YOY] = _yoy_path(hist_mom, series[C.CPI_MOM_ANN])
    printed = float(panel.iloc[-1].get(C.CPI_YOY, np.nan))
    if np.isfinite(printed):  # the as-of month's own print, when there is one
        series[C.CPI_YOY][:, 0] = printed
    dates = pd.date_range(as_of, periods=horizon + 1, freq="MS")
    ds = xr.Dataset(
        {
            **{schema.state_variable(c): (_DIMS, np.asarray(comp)[states])
               for c, comp in cfg.state_components().items()},
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
    for chain in fit.config.model.chains:
        ds[schema.probability_variable(chain)] = (
            reg[f"smoothed_{chain}"].sel(stat="mean", drop=True).reindex(time=ds.time)
        )
    for k in FORECAST_SERIES:
        meta = C.COLUMN_META.get(k)
        if k in ds and meta is not None:
            ds[k].attrs.update(units=meta.units, description=meta.description)
    return ds

"""Validation and preparation of the data of a Markov-switching regression."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from regimecast.errors import ConfigError, DataError

log = logging.getLogger(__name__)

MIN_EFFECTIVE_OBS = 10


@dataclass(frozen=True, eq=False)
class SwitchingData:
    """Arrays the model is built from (full length T; the effective sample is ``[order:]``).

    ``y`` has missing values replaced by 0 (``observed`` marks the real ones); ``valid`` (n,) marks the
    effective rows whose emission is used (y_t and its ``order`` lags observed); ``design`` (T, m) holds
    the trend columns then the exogenous regressors; ``exog_tvtp`` (T, q) or None.
    """

    y: np.ndarray
    observed: np.ndarray
    valid: np.ndarray
    design: np.ndarray
    trend_names: tuple[str, ...]
    exog_names: tuple[str, ...]
    exog_tvtp: np.ndarray | None
    tvtp_names: tuple[str, ...]
    index: pd.Index
    order: int

    @property
    def n_obs_full(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_obs(self) -> int:
        """Length of the effective sample (rows of ``log_emission``)."""
        return self.n_obs_full - self.order

    @property
    def n_trend(self) -> int:
        return len(self.trend_names)

    @property
    def n_exog(self) -> int:
        return len(self.exog_names)

    @property
    def time_index(self) -> pd.Index:
        """Index of the effective sample (what the ``time`` coordinate holds)."""
        return self.index[self.order :]

    @property
    def y_mean(self) -> float:
        return float(self.y[self.observed].mean())

    @property
    def y_sd(self) -> float:
        sd = float(self.y[self.observed].std())
        return sd if sd > 0 else 1.0


def _as_frame(x, name: str, index: pd.Index, prefix: str) -> pd.DataFrame:
    if isinstance(x, pd.Series):
        x = x.to_frame(x.name if x.name is not None else f"{prefix}0")
    if isinstance(x, pd.DataFrame):
        frame = x.copy()
        frame.columns = [str(c) for c in frame.columns]
        if len(frame) != len(index):
            raise DataError(
                f"{name} has {len(frame)} rows but endog has {len(index)}: pass one row per "
                "observation of endog"
            )
        frame.index = index
    else:
        arr = np.asarray(x, dtype=float)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise DataError(f"{name} must be 1-D or 2-D, got shape {arr.shape}")
        if arr.shape[0] != len(index):
            raise DataError(
                f"{name} has {arr.shape[0]} rows but endog has {len(index)}: pass one row per "
                "observation of endog"
            )
        frame = pd.DataFrame(
            arr, index=index, columns=[f"{prefix}{i}" for i in range(arr.shape[1])]
        )
    try:
        frame = frame.astype(float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric: {exc}") from exc
    bad = ~np.isfinite(frame.to_numpy())
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"{name} column {frame.columns[col]!r} is missing or infinite at {frame.index[row]!r} "
            f"({int(bad.sum())} bad values): regressors must be complete; fill or drop those rows"
        )
    return frame


def prepare_data(endog, exog, exog_tvtp, spec) -> SwitchingData:
    """Check the inputs against ``spec`` and build :class:`SwitchingData`.

    Raises :class:`DataError` (bad or too short data) or :class:`~regimecast.errors.ConfigError`
    (data that do not match the spec, e.g. ``exog_tvtp`` passed to a constant-transition model).
    """
    if isinstance(endog, pd.DataFrame):
        if endog.shape[1] != 1:
            raise DataError(f"endog must be one series, got a frame with {endog.shape[1]} columns")
        endog = endog.iloc[:, 0]
    if isinstance(endog, pd.Series):
        index = endog.index
        y = pd.to_numeric(endog, errors="coerce").to_numpy(dtype=float)
    else:
        y = np.asarray(endog, dtype=float)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise DataError(f"endog must be one series (1-D), got shape {y.shape}")
        index = pd.RangeIndex(len(y))
    y = y.astype(float).copy()
    if np.isinf(y).any():
        t = int(np.flatnonzero(np.isinf(y))[0])
        raise DataError(f"endog is infinite at {index[t]!r}: remove or replace that value")
    observed = np.isfinite(y)
    p = spec.order
    n_eff = len(y) - p
    if n_eff < MIN_EFFECTIVE_OBS or observed[p:].sum() < MIN_EFFECTIVE_OBS:
        raise DataError(
            f"endog has {len(y)} values ({int(observed.sum())} observed); a Markov-switching model "
            f"of order {p} needs at least {MIN_EFFECTIVE_OBS} observed values after the first {p}"
        )
    y[~observed] = 0.0
    valid = np.ones(n_eff, dtype=bool)
    for j in range(p + 1):
        valid &= observed[p - j : len(y) - j]
    if valid.sum() < MIN_EFFECTIVE_OBS:
        raise DataError(
            f"only {int(valid.sum())} observations have all {p} lags observed; need at least "
            f"{MIN_EFFECTIVE_OBS} (too many missing values for an AR({p}) model)"
        )

    design, trend_names, exog_names = _design(len(y), index, exog, spec.trend)
    tvtp_arr, tvtp_names = _transition_covariates(exog_tvtp, index, spec.exog_tvtp)
    return SwitchingData(
        y=y,
        observed=observed,
        valid=valid,
        design=design,
        trend_names=tuple(trend_names),
        exog_names=exog_names,
        exog_tvtp=tvtp_arr,
        tvtp_names=tvtp_names,
        index=index,
        order=p,
    )


def _design(t_full: int, index: pd.Index, exog, trend: str):
    """(design (T, m): trend columns then regressors, trend names, regressor names)."""
    trend_cols, trend_names = [], []
    if "c" in trend:
        trend_cols.append(np.ones(t_full))
        trend_names.append("const")
    if "t" in trend:
        trend_cols.append(np.arange(1, t_full + 1, dtype=float))  # statsmodels: 1, 2, ..., T
        trend_names.append("trend")
    exog_frame = None if exog is None else _as_frame(exog, "exog", index, "x")
    blocks = [np.column_stack(trend_cols)] if trend_cols else []
    if exog_frame is not None:
        blocks.append(exog_frame.to_numpy())
    design = np.column_stack(blocks) if blocks else np.zeros((t_full, 0))
    exog_names = tuple(exog_frame.columns) if exog_frame is not None else ()
    clash = set(exog_names) & set(trend_names)
    if clash:
        raise DataError(
            f"exog column names {sorted(clash)} clash with the trend terms; rename them"
        )
    return design, tuple(trend_names), exog_names


def _transition_covariates(exog_tvtp, index: pd.Index, wanted: bool):
    """(exog_tvtp (T, q) or None, column names), checked against the spec's ``exog_tvtp``."""
    if wanted and exog_tvtp is None:
        raise ConfigError(
            "the spec has exog_tvtp=True but fit() got no exog_tvtp: pass the transition "
            "covariates (include a column of ones for the intercept)"
        )
    if not wanted and exog_tvtp is not None:
        raise ConfigError(
            "fit() got exog_tvtp but the spec has exog_tvtp=False: set exog_tvtp=True"
        )
    if exog_tvtp is None:
        return None, ()
    frame = _as_frame(exog_tvtp, "exog_tvtp", index, "tvtp")
    arr = frame.to_numpy()
    if not np.any(np.ptp(arr, axis=0) == 0):
        log.warning(
            "exog_tvtp has no constant column: transition probabilities have no intercept "
            "(statsmodels' convention: add a column of ones yourself)"
        )
    return arr, tuple(frame.columns)

"""Posterior results of a Markov-switching regression: regime probabilities, durations, paths, forecasts.

Everything here is computed per posterior draw with the engine's numba kernels from the NumPy version
of the model arrays (:mod:`regimecast.models.switching_arrays`), then summarised; the outputs shared
with the macro model (probabilities, durations, diagnostics) come from
:class:`~regimecast.models.hmm_results.HMMResults`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from regimecast.errors import DataError
from regimecast.hmm import hmm_filter, hmm_sample_paths
from regimecast.models.hmm_results import BAND, HMMResults, summarise
from regimecast.models.switching_arrays import (
    expanded_states,
    hmm_inputs,
    log_regime_transitions,
    marginal_regime,
    regression_means,
    tvtp_log_transition,
)
from regimecast.models.switching_data import SwitchingData, _as_frame

PARAMETER_VARIABLES = (
    "transition",
    "tvtp_coef",
    "init_probs",
    "const",
    "trend",
    "exog_coef",
    "sigma",
    "ar",
)


def predict_regime_probabilities(
    last_probs: np.ndarray, log_transition: np.ndarray, steps: int
) -> np.ndarray:
    """(steps, K) regime probabilities h = 1..steps ahead of a filtered distribution ``last_probs`` (K,).

    ``log_transition`` is (K, K) or (steps, K, K) (row = from; entry h-1 moves step h-1 to step h).
    """
    p = np.asarray(last_probs, dtype=float)
    p = p / p.sum()
    la = np.asarray(log_transition, dtype=float)
    out = np.empty((steps, p.size))
    for h in range(steps):
        p = p @ np.exp(la if la.ndim == 2 else la[h])
        out[h] = p
    return out


def summarise_forecast(fc: xr.Dataset, quantiles=BAND) -> xr.Dataset:
    """Summary of :meth:`MarkovSwitchingResults.forecast`: dims (stat, step[, regime]).

    ``regime_probability``: mean and quantiles over draws of the exact predicted probabilities;
    ``y``: mean and quantiles over draws and paths; ``regime_frequency``: share of simulated paths in
    each regime.
    """
    k = fc.sizes["regime"]
    freq = np.stack(
        [(fc["regime_path"] == r).mean(dim=("chain", "draw", "path")).values for r in range(k)],
        axis=-1,
    )
    return xr.Dataset(
        {
            "regime_probability": summarise(fc["regime_probability"], ("chain", "draw"), quantiles),
            "y": summarise(fc["y"], ("chain", "draw", "path"), quantiles),
            "regime_frequency": (("step", "regime"), freq),
        },
        coords={"step": fc["step"], "regime": fc["regime"]},
        attrs={"quantiles": tuple(quantiles)},
    )


class MarkovSwitchingResults(HMMResults):
    """The posterior of a :class:`~regimecast.models.switching.MarkovSwitchingRegression` fit.

    Attributes: ``spec`` (the model specification), ``data`` (:class:`SwitchingData`), ``idata``
    (ArviZ; dims ``regime`` and ``time`` = the effective sample's index).  Regime probabilities,
    durations, diagnostics and the summary follow :class:`~regimecast.models.hmm_results.HMMResults`
    (state dim ``regime``); regime paths and forecasts are computed for every posterior draw.
    """

    def __init__(self, spec, data: SwitchingData, idata: az.InferenceData):
        self.spec = spec
        self.data = data
        self.idata = idata

    # ---------------------------------------------------------------------------------- hooks
    @property
    def parameter_names(self) -> list[str]:
        return [v for v in PARAMETER_VARIABLES if v in self.idata.posterior]

    @property
    def summary_names(self) -> list[str]:
        extra = ["expected_duration"] if "expected_duration" in self._post else []
        return self.parameter_names + extra

    @property
    def regimes(self) -> list[str]:
        return list(self.spec.regimes)

    @property
    def time_index(self) -> pd.Index:
        return self.data.time_index

    def hmm_arrays(self, point: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log_init, log_transition, log_emission) on the expanded state space at ``point``."""
        return hmm_inputs(np, point, self.data, self.spec)

    def state_coords(self) -> dict[str, list[str]]:
        return {"regime": self.regimes}

    def marginal_probabilities(self, probs: np.ndarray) -> dict[str, np.ndarray]:
        return {"regime": marginal_regime(probs, self.spec.k_regimes, self.spec.order)}

    def duration_log_transitions(self, point: dict) -> np.ndarray:
        log_p = log_regime_transitions(np, point, self.data, self.spec)
        return log_p[self.spec.order :] if self.spec.exog_tvtp else log_p

    def duration_coords(self) -> tuple[str, list[str], pd.Index | None]:
        return "regime", self.regimes, self.data.time_index

    # ---------------------------------------------------------------------------------- helpers
    @property
    def _post(self) -> xr.Dataset:
        return self.idata.posterior

    def _iter_draws(self) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
        """Every draw as (chain position, draw position, point)."""
        n_draw = self._post.sizes["draw"]
        for i, point in enumerate(self.points()):
            yield (*divmod(i, n_draw), point)

    def _dims(self) -> dict[str, Any]:
        return {"chain": self._post["chain"].values, "draw": self._post["draw"].values}

    # ---------------------------------------------------------------------------------- outputs
    def sample_regime_paths(self, n_per_draw: int = 1, *, random_seed: int) -> xr.DataArray:
        """Regime paths drawn from p(S_1..n | y, theta) per posterior draw (FFBS).

        Returns int regime indices (positions in the ``regime`` coordinate, names in
        ``attrs["regimes"]``), dims (chain, draw, path, time).
        """
        k, p = self.spec.k_regimes, self.spec.order
        s0 = expanded_states(k, p)[:, 0]
        rng = np.random.default_rng(random_seed)
        nc, nd = self._post.sizes["chain"], self._post.sizes["draw"]
        out = np.empty((nc, nd, n_per_draw, self.data.n_obs), dtype=np.int64)
        for c, d, params in self._iter_draws():
            seed = int(rng.integers(2**63 - 1))
            out[c, d] = s0[hmm_sample_paths(*self.hmm_arrays(params), n_per_draw, random_seed=seed)]
        coords = {**self._dims(), "path": np.arange(n_per_draw), "time": self.data.time_index}
        return xr.DataArray(
            out,
            dims=("chain", "draw", "path", "time"),
            coords=coords,
            name="regime",
            attrs={"regimes": tuple(self.regimes)},
        )

    # ---------------------------------------------------------------------------------- forecast
    def _future_design(self, steps: int, exog) -> np.ndarray:
        t_full = self.data.n_obs_full
        cols = []
        for name in self.data.trend_names:
            cols.append(
                np.ones(steps)
                if name == "const"
                else np.arange(t_full + 1, t_full + steps + 1, dtype=float)
            )
        if self.data.n_exog:
            if exog is None:
                raise DataError(
                    f"the model has regressors {list(self.data.exog_names)}: pass their future "
                    f"values as exog with {steps} rows"
                )
            frame = _as_frame(exog, "future exog", pd.RangeIndex(steps), "x")
            if frame.shape[1] != self.data.n_exog:
                raise DataError(
                    f"future exog has {frame.shape[1]} columns, the model {self.data.n_exog}"
                )
            cols.extend(frame.to_numpy().T)
        return np.column_stack(cols) if cols else np.zeros((steps, 0))

    def _future_index(self, steps: int):
        idx = self.data.index
        if isinstance(idx, pd.DatetimeIndex) and len(idx) >= 3:
            freq = idx.freq or pd.infer_freq(idx)
            if freq is not None:
                return pd.date_range(idx[-1], periods=steps + 1, freq=freq)[1:]
        return None

    def forecast(
        self,
        steps: int,
        *,
        random_seed: int,
        n_paths_per_draw: int = 1,
        exog=None,
        exog_tvtp=None,
    ) -> xr.Dataset:
        """Out-of-sample forecast of the regimes and the series, per posterior draw.

        From the filtered distribution of the (expanded) state at the end of the sample, each draw
        gives the exact h-step regime probabilities and ``n_paths_per_draw`` simulated futures (regime
        path, then y from the model equation with Gaussian shocks).  Future regressors (``exog``,
        ``steps`` rows) are needed when the model has them, and ``exog_tvtp`` (``steps`` rows; row h-1
        drives the move into step h) with time-varying transitions.

        Returns a Dataset: ``regime_probability`` (chain, draw, step, regime), ``regime_path`` (chain,
        draw, path, step; int positions in the ``regime`` coordinate) and ``y`` (chain, draw, path, step); ``step`` = 1..steps
        with a ``date`` coordinate when the index is a dated one.  Summarise with
        :func:`summarise_forecast`.
        """
        if not (isinstance(steps, int | np.integer) and steps >= 1):
            raise DataError(f"steps must be an integer >= 1, got {steps!r}")
        spec, data = self.spec, self.data
        k, p = spec.k_regimes, spec.order
        if p and not data.observed[-p:].all():
            raise DataError(
                f"the last {p} values of endog must be observed to forecast an AR({p}) model "
                f"(missing at {list(data.index[-p:][~data.observed[-p:]])})"
            )
        tvtp_future = self._future_tvtp(steps, exog_tvtp)
        design_f = self._future_design(steps, exog)
        rng = np.random.default_rng(random_seed)
        nc, nd = self._post.sizes["chain"], self._post.sizes["draw"]
        n = int(n_paths_per_draw)
        probs = np.empty((nc, nd, steps, k))
        regimes = np.empty((nc, nd, n, steps), dtype=np.int64)
        ys = np.empty((nc, nd, n, steps))
        for c, d, params in self._iter_draws():
            filt = hmm_filter(*self.hmm_arrays(params)).filtered[-1]
            if spec.exog_tvtp:
                log_p = tvtp_log_transition(np, params["tvtp_coef"], tvtp_future)
            else:
                log_p = np.log(params["transition"])
            probs[c, d] = predict_regime_probabilities(marginal_regime(filt, k, p), log_p, steps)
            regimes[c, d], ys[c, d] = self._simulate(params, filt, log_p, design_f, n, rng)
        coords: dict[str, Any] = {
            **self._dims(),
            "path": np.arange(n),
            "step": np.arange(1, steps + 1),
            "regime": self.regimes,
        }
        future = self._future_index(steps)
        if future is not None:
            coords["date"] = ("step", future)
        return xr.Dataset(
            {
                "regime_probability": (("chain", "draw", "step", "regime"), probs),
                "regime_path": (("chain", "draw", "path", "step"), regimes),
                "y": (("chain", "draw", "path", "step"), ys),
            },
            coords=coords,
            attrs={"regimes": tuple(self.regimes)},
        )

    def _future_tvtp(self, steps: int, exog_tvtp) -> np.ndarray | None:
        """(steps, q) future transition covariates, checked; None for constant transitions."""
        if not self.spec.exog_tvtp:
            return None
        if exog_tvtp is None:
            raise DataError(f"time-varying transitions: pass exog_tvtp with {steps} future rows")
        future = _as_frame(exog_tvtp, "future exog_tvtp", pd.RangeIndex(steps), "tvtp").to_numpy()
        if future.shape[1] != len(self.data.tvtp_names):
            raise DataError(
                f"future exog_tvtp has {future.shape[1]} columns, the model "
                f"{len(self.data.tvtp_names)}"
            )
        return future

    def _simulate(self, params, filt, log_p, design_f, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """``n`` futures of one draw from the filtered expanded state ``filt``: (regimes, y), each
        (n, steps); ``log_p`` (K, K) or (steps, K, K)."""
        spec, data = self.spec, self.data
        k, p = spec.k_regimes, spec.order
        steps = design_f.shape[0]
        states = expanded_states(k, p)
        xb = regression_means(np, params, data, spec)  # (T, K)
        xb_f = self._future_means(params, design_f)  # (steps, K)
        sigma = params["sigma"] * np.ones(k)
        ar = None
        if p:
            ar = params["ar"] if spec.switching_ar else np.ones((k, 1)) * params["ar"][None]
        e = rng.choice(states.shape[0], size=n, p=filt / filt.sum())
        s = states[e, 0]
        # z_hist[:, j-1] = y_{T-j} - x_{T-j} b_{S_{T-j}}
        y_last = data.y[data.n_obs_full - p :][::-1]  # y_{T-1}, ..., y_{T-p}
        z_hist = np.empty((n, p))
        for j in range(1, p + 1):
            z_hist[:, j - 1] = y_last[j - 1] - xb[data.n_obs_full - j, states[e, j - 1]]
        p_mat = np.exp(log_p)
        regimes = np.empty((n, steps), dtype=np.int64)
        ys = np.empty((n, steps))
        for h in range(steps):
            ph = p_mat if p_mat.ndim == 2 else p_mat[h]
            cum = np.cumsum(ph[s], axis=1)
            u = rng.random(n)[:, None] * cum[:, -1:]
            s = np.minimum((u >= cum).sum(axis=1), k - 1)
            z = sigma[s] * rng.standard_normal(n)
            if p:
                z = z + np.sum(ar[s] * z_hist, axis=1)
                z_hist = np.concatenate([z[:, None], z_hist[:, :-1]], axis=1)
            regimes[:, h] = s
            ys[:, h] = xb_f[h, s] + z
        return regimes, ys

    def _future_means(self, params: dict[str, np.ndarray], design_f: np.ndarray) -> np.ndarray:
        """(steps, K) regression means at the future design rows."""
        fake = _DesignView(self.data, design_f)
        return regression_means(np, params, fake, self.spec)


class _DesignView:
    """Minimal stand-in for SwitchingData holding only a design matrix (for future means)."""

    def __init__(self, data: SwitchingData, design: np.ndarray):
        self.design = design
        self.trend_names = data.trend_names
        self.n_exog = data.n_exog
        self.n_obs_full = design.shape[0]

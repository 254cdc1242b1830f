"""Posterior results of a Markov-switching regression: regime probabilities, durations, paths, forecasts.

Everything here is computed per posterior draw with the engine's numba kernels from the NumPy version
of the model arrays (:mod:`regimecast.models.switching_arrays`), then summarised.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from regimecast.errors import DataError
from regimecast.hmm import hmm_filter, hmm_sample_paths, hmm_smoother
from regimecast.models.switching_arrays import (
    NP,
    expanded_states,
    hmm_inputs,
    log_regime_transitions,
    marginal_regime,
    regression_means,
    tvtp_log_transition,
)
from regimecast.models.switching_data import SwitchingData, _as_frame

if TYPE_CHECKING:
    from regimecast.models.switching import MarkovSwitchingRegression

STATS = ("mean", "lower", "upper")


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


def summarise(da: xr.DataArray, dims: tuple[str, ...], quantiles=(0.03, 0.97)) -> xr.DataArray:
    """Mean and two quantiles over ``dims``: a new leading ``stat`` dim (mean, lower, upper)."""
    q = da.quantile(list(quantiles), dim=list(dims)).rename(quantile="stat")
    out = xr.concat(
        [
            da.mean(dim=list(dims)).expand_dims(stat=["mean"]),
            q.assign_coords(stat=["lower", "upper"]),
        ],
        dim="stat",
    )
    out.attrs["quantiles"] = tuple(quantiles)
    return out


def summarise_forecast(fc: xr.Dataset, quantiles=(0.03, 0.97)) -> xr.Dataset:
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


class MarkovSwitchingResults:
    """The posterior of a :class:`~regimecast.models.switching.MarkovSwitchingRegression` fit.

    Attributes: ``spec``, ``data`` (:class:`SwitchingData`), ``idata`` (ArviZ; dims ``regime`` and
    ``time`` = the effective sample's index).  Methods compute regime probabilities, durations, regime
    paths and forecasts per posterior draw.
    """

    def __init__(
        self, spec: MarkovSwitchingRegression, data: SwitchingData, idata: az.InferenceData
    ):
        self.spec = spec
        self.data = data
        self.idata = idata

    # ---------------------------------------------------------------------------------- helpers
    @property
    def parameter_names(self) -> list[str]:
        from regimecast.models.switching import PARAMETER_VARIABLES

        return [v for v in PARAMETER_VARIABLES if v in self.idata.posterior]

    @property
    def regimes(self) -> list[str]:
        return list(self.spec.regimes)

    @property
    def _post(self) -> xr.Dataset:
        return self.idata.posterior

    def draw_params(self, chain: int, draw: int) -> dict[str, np.ndarray]:
        """Parameter values (NumPy) of one posterior draw, by position."""
        return {
            v: np.asarray(self._post[v].values[chain, draw], dtype=float)
            for v in self.parameter_names
        }

    def _iter_draws(self) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
        n_chain, n_draw = self._post.sizes["chain"], self._post.sizes["draw"]
        cache = {v: np.asarray(self._post[v].values, dtype=float) for v in self.parameter_names}
        for c in range(n_chain):
            for d in range(n_draw):
                yield c, d, {v: a[c, d] for v, a in cache.items()}

    def hmm_arrays(self, params: dict[str, np.ndarray]):
        """(log_init, log_transition, log_emission) on the expanded state space at ``params``."""
        return hmm_inputs(NP, params, self.data, self.spec)

    def _dims(self) -> dict[str, Any]:
        coords = {"chain": self._post["chain"].values, "draw": self._post["draw"].values}
        return coords

    # ---------------------------------------------------------------------------------- outputs
    @cached_property
    def regime_probability_draws(self) -> xr.Dataset:
        """Filtered and smoothed P(S_t = k | y) per draw: dims (chain, draw, time, regime)."""
        k, p = self.spec.k_regimes, self.spec.order
        nc, nd = self._post.sizes["chain"], self._post.sizes["draw"]
        n = self.data.n_obs
        filt = np.empty((nc, nd, n, k))
        smooth = np.empty((nc, nd, n, k))
        for c, d, params in self._iter_draws():
            res = hmm_smoother(*self.hmm_arrays(params))
            filt[c, d] = marginal_regime(res.filtered, k, p)
            smooth[c, d] = marginal_regime(res.smoothed, k, p)
        coords = {**self._dims(), "time": self.data.time_index, "regime": self.regimes}
        dims = ("chain", "draw", "time", "regime")
        return xr.Dataset({"filtered": (dims, filt), "smoothed": (dims, smooth)}, coords=coords)

    def regime_probabilities(self, quantiles=(0.03, 0.97)) -> xr.Dataset:
        """Posterior mean and credible band of the filtered and smoothed regime probabilities.

        Returns a Dataset with ``filtered`` and ``smoothed``, dims (stat, time, regime), stat in
        (mean, lower, upper) at ``quantiles`` (default 3% and 97%).
        """
        draws = self.regime_probability_draws
        return xr.Dataset(
            {
                name: summarise(draws[name], ("chain", "draw"), quantiles)
                for name in ("filtered", "smoothed")
            },
            attrs={"quantiles": tuple(quantiles)},
        )

    def expected_durations(self) -> xr.DataArray:
        """Posterior expected durations 1 / (1 - p_kk): (chain, draw, regime), or (chain, draw, time,
        regime) with time-varying transitions (the duration implied by each period's matrix)."""
        if not self.spec.exog_tvtp:
            return self._post["expected_duration"]
        k, p = self.spec.k_regimes, self.spec.order
        nc, nd = self._post.sizes["chain"], self._post.sizes["draw"]
        out = np.empty((nc, nd, self.data.n_obs, k))
        for c, d, params in self._iter_draws():
            lp = log_regime_transitions(NP, params, self.data, self.spec)[p:]
            out[c, d] = 1.0 / (1.0 - np.exp(np.diagonal(lp, axis1=1, axis2=2)))
        coords = {**self._dims(), "time": self.data.time_index, "regime": self.regimes}
        return xr.DataArray(
            out, dims=("chain", "draw", "time", "regime"), coords=coords, name="expected_duration"
        )

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

    def summary(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """ArviZ summary (mean, sd, HDI, ESS, r-hat) of the parameters and expected durations."""
        names = self.parameter_names + (
            ["expected_duration"] if "expected_duration" in self._post else []
        )
        return az.summary(self.idata, var_names=names, hdi_prob=hdi_prob)

    def diagnostics(self):
        """Convergence diagnostics of the parameters (:func:`regimecast.fit.diagnose`)."""
        from regimecast.fit import diagnose

        return diagnose(self.idata, var_names=self.parameter_names)

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
        tvtp_future = None
        if spec.exog_tvtp:
            if exog_tvtp is None:
                raise DataError(
                    f"time-varying transitions: pass exog_tvtp with {steps} future rows"
                )
            tvtp_future = _as_frame(
                exog_tvtp, "future exog_tvtp", pd.RangeIndex(steps), "tvtp"
            ).to_numpy()
            if tvtp_future.shape[1] != len(data.tvtp_names):
                raise DataError(
                    f"future exog_tvtp has {tvtp_future.shape[1]} columns, the model "
                    f"{len(data.tvtp_names)}"
                )
        design_f = self._future_design(steps, exog)
        states = expanded_states(k, p)
        rng = np.random.default_rng(random_seed)
        nc, nd = self._post.sizes["chain"], self._post.sizes["draw"]
        n = int(n_paths_per_draw)
        probs = np.empty((nc, nd, steps, k))
        regimes = np.empty((nc, nd, n, steps), dtype=np.int64)
        ys = np.empty((nc, nd, n, steps))
        y_last = data.y[data.n_obs_full - p :][::-1]  # y_{T-1}, ..., y_{T-p}
        for c, d, params in self._iter_draws():
            li, la, le = self.hmm_arrays(params)
            filt = hmm_filter(li, la, le).filtered[-1]
            if spec.exog_tvtp:
                log_p = tvtp_log_transition(NP, params["tvtp_coef"], tvtp_future)
            else:
                log_p = np.log(params["transition"])
            probs[c, d] = predict_regime_probabilities(marginal_regime(filt, k, p), log_p, steps)
            xb = regression_means(NP, params, data, spec)  # (T, K)
            xb_f = self._future_means(params, design_f)  # (steps, K)
            sigma = params["sigma"] * np.ones(k)
            ar = None
            if p:
                ar = params["ar"] if spec.switching_ar else np.ones((k, 1)) * params["ar"][None]
            e = rng.choice(states.shape[0], size=n, p=filt / filt.sum())
            s = states[e, 0]
            # z_hist[:, j-1] = y_{T-j} - x_{T-j} b_{S_{T-j}}
            z_hist = np.empty((n, p))
            for j in range(1, p + 1):
                z_hist[:, j - 1] = y_last[j - 1] - xb[data.n_obs_full - j, states[e, j - 1]]
            p_mat = np.exp(log_p)
            for h in range(steps):
                ph = p_mat if p_mat.ndim == 2 else p_mat[h]
                cum = np.cumsum(ph[s], axis=1)
                u = rng.random(n)[:, None] * cum[:, -1:]
                s = np.minimum((u >= cum).sum(axis=1), k - 1)
                z = sigma[s] * rng.standard_normal(n)
                if p:
                    z = z + np.sum(ar[s] * z_hist, axis=1)
                    z_hist = np.concatenate([z[:, None], z_hist[:, :-1]], axis=1)
                regimes[c, d, :, h] = s
                ys[c, d, :, h] = xb_f[h, s] + z
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

    def _future_means(self, params: dict[str, np.ndarray], design_f: np.ndarray) -> np.ndarray:
        """(steps, K) regression means at the future design rows."""
        fake = _DesignView(self.data, design_f)
        return regression_means(NP, params, fake, self.spec)


class _DesignView:
    """Minimal stand-in for SwitchingData holding only a design matrix (for future means)."""

    def __init__(self, data: SwitchingData, design: np.ndarray):
        self.design = design
        self.trend_names = data.trend_names
        self.n_exog = data.n_exog
        self.n_obs_full = design.shape[0]

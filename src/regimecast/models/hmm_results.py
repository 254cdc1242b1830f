"""Fitted hidden-Markov results: the API shared by the switching regression and the macro model.

A subclass says how to turn a posterior draw into the engine's three arrays (``hmm_arrays``), how to
sum the engine's states into the labelled states a user reads (``marginal_probabilities``), and which
transitions define the regime durations (``duration_log_transitions``).  This base then gives both
models the same outputs, with one convention:

* ``points(max_draws, random_seed=)``: posterior draws as parameter dicts; a subset is a seeded
  choice of positions in the (chain, draw)-stacked sample, kept in sample order.
* per-draw outputs have a ``sample`` dim (with ``chain`` and ``draw`` coordinates); summaries replace it
  by a leading ``stat`` dim ``("mean", "lower", "upper")``, lower/upper being the 3% and 97% posterior
  quantiles unless asked otherwise.
* ``regime_probabilities()``: ``smoothed_<dim>`` and ``filtered_<dim>`` for every state dim, each
  (stat, time, <dim>), from the public :func:`regimecast.hmm.hmm_smoother`; cached per argument set.
  An ``idata`` holding a ``regime_probabilities`` group (a saved run) answers the same request from it.
* ``expected_durations()``: (stat, [time,] <state>) of ``1 / (1 - p_kk)``; ``diagnostics`` (cached),
  ``convergence_problems(gate)`` and ``summary()`` over the sampled parameters.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from regimecast.config import GateSettings
from regimecast.fit import Diagnostics, convergence_problems, diagnose
from regimecast.hmm import hmm_smoother

STATS = ("mean", "lower", "upper")
BAND = (0.03, 0.97)
DEFAULT_MAX_DRAWS = 400
GROUP = "regime_probabilities"


def summarise(da: xr.DataArray, dims: tuple[str, ...], quantiles=BAND) -> xr.DataArray:
    """Mean and two quantiles over ``dims``: a new leading ``stat`` dim (mean, lower, upper)."""
    # NaN-aware quantiles only when there are NaNs (np.nanquantile is ~4x slower than np.quantile)
    skipna = bool(np.isnan(da.values).any())
    q = da.quantile(list(quantiles), dim=list(dims), skipna=skipna).rename(quantile="stat")
    out = xr.concat(
        [
            da.mean(dim=list(dims)).expand_dims(stat=[STATS[0]]),
            q.assign_coords(stat=list(STATS[1:])),
        ],
        dim="stat",
    )
    out.attrs["quantiles"] = tuple(quantiles)
    return out


class HMMResults:
    """Base of fitted-HMM results; subclasses set ``idata`` and implement the hooks below."""

    idata: az.InferenceData

    # ------------------------------------------------------------------------------------ hooks
    @property
    def parameter_names(self) -> list[str]:
        """Posterior variables that make up a parameter point (and that the gate checks)."""
        raise NotImplementedError

    def fixed_parameters(self) -> dict[str, np.ndarray]:
        """Parameters held fixed rather than sampled, added to every point."""
        return {}

    def hmm_arrays(self, point: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log_init, log_transition, log_emission) of the engine at a parameter point."""
        raise NotImplementedError

    @property
    def time_index(self) -> pd.Index:
        """Labels of the rows of ``log_emission`` (the ``time`` coordinate)."""
        raise NotImplementedError

    def state_coords(self) -> dict[str, list[str]]:
        """The labelled state dims of ``regime_probabilities`` and their labels."""
        raise NotImplementedError

    def marginal_probabilities(self, probs: np.ndarray) -> dict[str, np.ndarray]:
        """Engine-state probabilities (..., E) summed onto each state dim: {dim: (..., K_dim)}."""
        raise NotImplementedError

    def duration_log_transitions(self, point: dict) -> np.ndarray:
        """(K, K) or (n, K, K) log transitions of the states whose durations are reported."""
        raise NotImplementedError

    def duration_coords(self) -> tuple[str, list[str], pd.Index | None]:
        """(dim, labels, time labels of time-varying duration transitions or None)."""
        raise NotImplementedError

    @property
    def draw_seed(self) -> int:
        """Seed of the draw subset when a method is not given one."""
        return 0

    @property
    def gate(self) -> GateSettings:
        """The convergence gate ``convergence_problems`` applies by default."""
        return GateSettings()

    @property
    def summary_names(self) -> list[str]:
        return self.parameter_names

    # ------------------------------------------------------------------------------------ draws
    def draw_positions(self, max_draws: int | None = None, *, random_seed: int = 0) -> np.ndarray:
        """Positions in the (chain, draw)-stacked sample: all, or a seeded sorted subset."""
        n = self._n_samples()
        if max_draws is None or max_draws >= n:
            return np.arange(n)
        rng = np.random.default_rng(random_seed)
        return np.sort(rng.choice(n, max_draws, replace=False))

    def points(self, max_draws: int | None = None, *, random_seed: int = 0) -> list[dict]:
        """Posterior draws as parameter dicts (a seeded subset when ``max_draws`` is smaller)."""
        return self._points(self.draw_positions(max_draws, random_seed=random_seed))

    def _points(self, idx: np.ndarray) -> list[dict]:
        post = self.idata.posterior
        n_draw = post.sizes["draw"]
        arrays = {k: np.asarray(post[k].values, dtype=float) for k in self.parameter_names}
        fixed = self.fixed_parameters()
        return [
            {**fixed, **{k: a[i // n_draw, i % n_draw] for k, a in arrays.items()}} for i in idx
        ]

    def _sample_coords(self, idx: np.ndarray) -> dict[str, Any]:
        post = self.idata.posterior
        n_draw = post.sizes["draw"]
        return {
            "chain": ("sample", post["chain"].values[idx // n_draw]),
            "draw": ("sample", post["draw"].values[idx % n_draw]),
        }

    def _positions(self, max_draws: int | None, random_seed: int | None) -> tuple[np.ndarray, int]:
        seed = self.draw_seed if random_seed is None else random_seed
        return self.draw_positions(max_draws, random_seed=seed), seed

    def hmm_arrays_many(self, points: list[dict]):
        """Yield :meth:`hmm_arrays` for each point (a model may evaluate many draws at once)."""
        for point in points:
            yield self.hmm_arrays(point)

    # ------------------------------------------------------------------------------------ outputs
    def regime_probability_draws(
        self, max_draws: int | None = DEFAULT_MAX_DRAWS, *, random_seed: int | None = None
    ) -> xr.Dataset:
        """Smoothed and filtered state probabilities per draw: dims (sample, time, <dim>)."""
        idx, _ = self._positions(max_draws, random_seed)
        smoothed, filtered = [], []
        for arrays in self.hmm_arrays_many(self._points(idx)):
            res = hmm_smoother(*arrays)
            smoothed.append(res.smoothed)
            filtered.append(res.filtered)
        out = {}
        for kind, arr in (("smoothed", np.array(smoothed)), ("filtered", np.array(filtered))):
            for dim, marg in self.marginal_probabilities(arr).items():
                out[f"{kind}_{dim}"] = (("sample", "time", dim), marg)
        coords = {"time": np.asarray(self.time_index), **self.state_coords()}
        coords.update(self._sample_coords(idx))
        return xr.Dataset(out, coords=coords)

    def regime_probabilities(
        self,
        max_draws: int | None = DEFAULT_MAX_DRAWS,
        quantiles=BAND,
        *,
        random_seed: int | None = None,
    ) -> xr.Dataset:
        """Posterior mean and credible band of the smoothed and filtered state probabilities.

        ``smoothed_<dim>`` and ``filtered_<dim>`` for each state dim, dims (stat, time, <dim>), stat in
        (mean, lower, upper) at ``quantiles``; over at most ``max_draws`` draws (None: all), a subset
        seeded by ``random_seed`` (default: the fit's seed).  Cached per argument set.
        """
        idx, seed = self._positions(max_draws, random_seed)
        attrs = {
            "draws_used": int(idx.size),
            "draws_seed": -1 if idx.size == self._n_samples() else int(seed),
            "quantile_lower": float(quantiles[0]),
            "quantile_upper": float(quantiles[1]),
        }
        key = tuple(attrs.values())
        if key not in self._memo:
            ds = self._stored_probabilities(attrs)
            if ds is None:
                ds = self._compute_probabilities(max_draws, seed, quantiles, attrs)
            self._memo[key] = ds
        return self._memo[key]

    def _n_samples(self) -> int:
        post = self.idata.posterior
        return post.sizes["chain"] * post.sizes["draw"]

    def _compute_probabilities(self, max_draws, seed, quantiles, attrs) -> xr.Dataset:
        draws = self.regime_probability_draws(max_draws, random_seed=seed)
        ds = xr.Dataset({k: summarise(v, ("sample",), quantiles) for k, v in draws.items()})
        ds = ds.drop_vars(["chain", "draw"], errors="ignore")
        for v in ds.data_vars.values():
            v.attrs = {}
        band = f"{quantiles[0]:.0%}-{quantiles[1]:.0%} posterior quantiles"
        ds.attrs = {**attrs, "band": band}
        return ds

    def _stored_probabilities(self, attrs: dict) -> xr.Dataset | None:
        """The saved ``regime_probabilities`` group if it answers the request ``attrs``, else None."""
        if GROUP not in self.idata.groups():
            return None
        ds = self.idata[GROUP]
        ds = ds.to_dataset() if hasattr(ds, "to_dataset") else ds
        if "stat" not in ds.dims or any(ds.attrs.get(k) != v for k, v in attrs.items()):
            return None
        return ds

    @cached_property
    def _memo(self) -> dict:
        return {}

    def expected_duration_draws(
        self, max_draws: int | None = DEFAULT_MAX_DRAWS, *, random_seed: int | None = None
    ) -> xr.DataArray:
        """Expected durations ``1 / (1 - p_kk)`` per draw: (sample, <state>), or (sample, time,
        <state>) for time-varying transitions (the duration each period's matrix implies)."""
        idx, _ = self._positions(max_draws, random_seed)
        d = np.array(
            [
                1.0 / -np.expm1(np.diagonal(self.duration_log_transitions(p), axis1=-2, axis2=-1))
                for p in self._points(idx)
            ]
        )
        dim, labels, time = self.duration_coords()
        dims = ("sample", dim) if d.ndim == 2 else ("sample", "time", dim)
        coords: dict[str, Any] = {dim: labels, **self._sample_coords(idx)}
        if d.ndim == 3:
            coords["time"] = np.asarray(time)
        return xr.DataArray(d, dims=dims, coords=coords, name="expected_duration")

    def expected_durations(
        self,
        max_draws: int | None = DEFAULT_MAX_DRAWS,
        quantiles=BAND,
        *,
        random_seed: int | None = None,
    ) -> xr.DataArray:
        """Posterior mean and band of the expected durations: (stat, [time,] <state>)."""
        draws = self.expected_duration_draws(max_draws, random_seed=random_seed)
        out = summarise(draws, ("sample",), quantiles).drop_vars(["chain", "draw"], errors="ignore")
        return out.rename("expected_duration")

    # ------------------------------------------------------------------------------------ checks
    @cached_property
    def diagnostics(self) -> Diagnostics:
        """Convergence diagnostics of the parameters (:func:`regimecast.fit.diagnose`)."""
        return diagnose(self.idata, var_names=self.parameter_names)

    def convergence_problems(self, gate: GateSettings | None = None) -> list[str]:
        """What fails the convergence gate (``gate``, default :attr:`gate`); empty when it passes."""
        return convergence_problems(self.diagnostics, self.gate if gate is None else gate)

    def summary(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """ArviZ summary (mean, sd, HDI, ESS, r-hat) of the sampled parameters."""
        return az.summary(self.idata, var_names=self.summary_names, hdi_prob=hdi_prob)

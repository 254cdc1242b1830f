"""Model spec apart from fitted result: ``MacroRegimeModel(config).fit(panel) -> MacroFit``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from regimecast.config import RunConfig
from regimecast.fit import Diagnostics, convergence_problems, diagnose, sample_model
from regimecast.hmm.forward import as_3d, forward_backward
from regimecast.models.macro import (
    MacroData,
    build_macro_model,
    compile_matrices,
    inactive_params,
    prepare_data,
)

log = logging.getLogger(__name__)


class MacroRegimeModel:
    """The macro-regime x policy-state model as a specification; ``fit`` never mutates it."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config

    def fit(self, panel: pd.DataFrame, *, random_seed: int, progressbar: bool = True) -> MacroFit:
        cfg = self.config
        data = prepare_data(panel, cfg.model)
        model, _ = build_macro_model(data, cfg.model)
        log.info("sampling %d chains x (%d tune + %d draws), T = %d months, K = %d states",
                 cfg.sampler.chains, cfg.sampler.tune, cfg.sampler.draws, data.T,
                 cfg.model.n_macro * cfg.model.n_policy)
        idata = sample_model(model, cfg.sampler, random_seed=random_seed, progressbar=progressbar)
        return MacroFit(config=cfg, panel=panel, idata=idata, random_seed=random_seed)


@dataclass
class MacroFit:
    """A fitted model: posterior, regime probabilities, diagnostics; the input to ``forecast``."""

    config: RunConfig
    panel: pd.DataFrame
    idata: az.InferenceData
    random_seed: int
    _cache: dict = field(default_factory=dict, repr=False)

    @cached_property
    def data(self) -> MacroData:
        return prepare_data(self.panel, self.config.model)

    @cached_property
    def _matrices(self):
        model, handles = build_macro_model(self.data, self.config.model)
        names = [rv.name for rv in model.free_RVs]
        return compile_matrices(model, handles), names

    def matrices(self, point: dict):
        """(log_init, log_transition, log_emission) at a posterior point."""
        return self._matrices[0](point)

    def points(self, max_draws: int | None = None, *, random_seed: int = 0) -> list[dict]:
        """Posterior draws as parameter dicts (a seeded subset when ``max_draws`` is smaller)."""
        post = self.idata.posterior.stack(sample=("chain", "draw"))
        n = post.sizes["sample"]
        idx = np.arange(n)
        if max_draws is not None and max_draws < n:
            idx = np.sort(np.random.default_rng(random_seed).choice(n, max_draws, replace=False))
        names = self._matrices[1]
        arrays = {k: np.moveaxis(post[k].values, -1, 0) for k in names}
        fixed = inactive_params(self.data, self.config.model)
        return [{**fixed, **{k: arrays[k][i] for k in names}} for i in idx]

    @property
    def diagnostics(self) -> Diagnostics:
        if "diag" not in self._cache:
            self._cache["diag"] = diagnose(self.idata, var_names=self._matrices[1])
        return self._cache["diag"]

    def convergence_problems(self) -> list[str]:
        return convergence_problems(self.diagnostics, self.config.gate)

    def regime_probabilities(self, max_draws: int = 400) -> xr.Dataset:
        """Smoothed and filtered macro / policy probabilities: posterior mean and 3-97% band."""
        if "regimes" in self._cache:
            return self._cache["regimes"]
        if "regime_probabilities" in self.idata.groups():
            ds = self.idata["regime_probabilities"].to_dataset() if hasattr(
                self.idata["regime_probabilities"], "to_dataset") else self.idata["regime_probabilities"]
            self._cache["regimes"] = ds
            return ds
        m = self.config.model
        nS, nZ = m.n_macro, m.n_policy
        pts = self.points(max_draws, random_seed=self.random_seed)
        sm = np.empty((len(pts), self.data.T, nS * nZ))
        fl = np.empty_like(sm)
        for i, p in enumerate(pts):
            li, lt, le = self.matrices(p)
            _, filt, _, smoothed, _ = forward_backward(li, as_3d(lt), np.ascontiguousarray(le))
            sm[i], fl[i] = smoothed, filt
        out = {}
        for kind, arr in (("smoothed", sm), ("filtered", fl)):
            joint = arr.reshape(len(pts), self.data.T, nS, nZ)
            for name, marg, dim in (("macro", joint.sum(3), "macro"), ("policy", joint.sum(2), "policy")):
                out[f"{kind}_{name}"] = (("time", dim), marg.mean(0))
                out[f"{kind}_{name}_lo"] = (("time", dim), np.quantile(marg, 0.03, axis=0))
                out[f"{kind}_{name}_hi"] = (("time", dim), np.quantile(marg, 0.97, axis=0))
        ds = xr.Dataset(
            out,
            coords={"time": self.data.dates.values, "macro": list(m.macro_labels), "policy": list(m.policy_labels)},
            attrs={"draws_used": len(pts), "band": "3%-97% posterior quantiles"},
        )
        self._cache["regimes"] = ds
        return ds

    def regimes_frame(self) -> pd.DataFrame:
        """``date`` plus ``p_<label>`` columns: posterior-mean smoothed probabilities."""
        ds = self.regime_probabilities()
        df = pd.DataFrame({"date": pd.DatetimeIndex(ds.time.values).strftime("%Y-%m-%d")})
        for lab in ds.macro.values:
            df[f"p_{lab}"] = ds["smoothed_macro"].sel(macro=lab).values
        for lab in ds.policy.values:
            df[f"p_{lab}"] = ds["smoothed_policy"].sel(policy=lab).values
        return df

    def summary(self) -> pd.DataFrame:
        return az.summary(self.idata, var_names=self._matrices[1], kind="all")

    def expected_durations(self, max_draws: int = 400) -> pd.DataFrame:
        """Posterior mean and 3-97% band of the expected duration (months) of each joint state."""
        pts = self.points(max_draws, random_seed=self.random_seed)
        m = self.config.model
        d = []
        for p in pts:
            _, lt, _ = self.matrices(p)
            if lt.ndim == 3:  # time-varying transitions: durations implied at the last month
                lt = lt[-1]
            d.append(1.0 / (1.0 - np.exp(np.diag(lt))))
        d = np.array(d)
        labels = [f"{s}|{z}" for s in m.macro_labels for z in m.policy_labels]
        return pd.DataFrame(
            {"mean": d.mean(0), "q03": np.quantile(d, 0.03, 0), "q97": np.quantile(d, 0.97, 0)},
            index=pd.Index(labels, name="state"),
        )

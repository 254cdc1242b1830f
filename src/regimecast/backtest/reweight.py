"""Reach a later origin from a fit by importance reweighting its draws (leave-future-out, forwards).

Each draw's log weight is ``log p(y_new | theta) - log p(y_old | theta)``, both exact forward-filter
log-likelihoods under the same parameterisation (the volume trend keeps the fit's centre month, so a
draw means the same thing on both panels).  The log weights are Pareto-smoothed (ArviZ ``psislw``),
k-hat and the effective sample size ``1 / sum(w^2)`` are reported, and the draws are resampled
(systematic resampling, seeded) into an ordinary posterior, so nothing downstream can forget them.
"""

from __future__ import annotations

import dataclasses

import arviz as az
import numpy as np
import pandas as pd

from regimecast.hmm import hmm_filter
from regimecast.models.macro import inactive_params, log_matrices_np
from regimecast.results import MacroFit


def view_on(fit: MacroFit, panel: pd.DataFrame, idata=None) -> MacroFit:
    """``fit``'s posterior (or ``idata``) on another panel, with ``fit``'s volume-trend centre."""
    view = MacroFit(config=fit.config, panel=panel, idata=idata if idata is not None else fit.idata,
                    random_seed=fit.random_seed)
    d = view.data
    step = fit.data.trend[1] - fit.data.trend[0] if fit.data.T > 1 else 0.0
    trend = fit.data.trend[0] + step * np.arange(d.T)
    view.__dict__["data"] = dataclasses.replace(d, trend=trend)
    return view


def log_likelihoods(fit: MacroFit, points: list[dict]) -> np.ndarray:
    """Exact forward-filter log-likelihood per draw (NumPy matrices: no compile)."""
    d, cfg = fit.data, fit.config.model
    return np.array([hmm_filter(*log_matrices_np(p, d, cfg)).loglik for p in points])


def systematic_resample(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    cdf = np.cumsum(weights)
    cdf[-1] = 1.0
    u = (rng.uniform() + np.arange(n)) / n
    return np.searchsorted(cdf, u)


def reweight(
    fit: MacroFit, panel: pd.DataFrame, *, random_seed: int, max_draws: int | None = 1000
) -> tuple[MacroFit, float, float]:
    """(resampled fit on ``panel``, k-hat, ESS) from ``fit``'s draws."""
    post = fit.idata.posterior.stack(sample=("chain", "draw"))
    n_all = post.sizes["sample"]
    rng = np.random.default_rng(random_seed)
    idx = np.arange(n_all)
    if max_draws is not None and max_draws < n_all:
        idx = np.sort(rng.choice(n_all, max_draws, replace=False))
    names = [v for v in fit.idata.posterior.data_vars]
    arrays = {k: np.moveaxis(post[k].values, -1, 0)[idx] for k in names}
    new = view_on(fit, panel)
    cfg = fit.config.model
    if set(inactive_params(new.data, cfg)) != set(inactive_params(fit.data, cfg)):
        return new, float("inf"), 0.0  # the new data inform other parameters: only a refit will do
    free = [k for k in names if k in fit._matrices[1]]
    pts = [{k: arrays[k][i] for k in free} for i in range(len(idx))]
    log_w = log_likelihoods(new, pts) - log_likelihoods(fit, pts)
    smoothed, khat = az.psislw(log_w[None, :] - log_w.max(), reff=1.0)
    w = np.exp(np.asarray(smoothed).ravel())
    w /= w.sum()
    ess = float(1.0 / np.sum(w**2))
    pick = systematic_resample(w, len(idx), rng)
    resampled = az.from_dict(posterior={k: arrays[k][pick][None] for k in names})
    out = MacroFit(config=fit.config, panel=panel, idata=resampled, random_seed=fit.random_seed)
    out.__dict__["data"] = new.data
    out.__dict__["_matrices"] = (lambda p: log_matrices_np(p, new.data, cfg), free)  # no recompile
    return out, float(np.asarray(khat).ravel()[0]), ess

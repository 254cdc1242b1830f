"""A fitter for backtest tests: a small posterior around the reference parameters, no sampling.

Workers of a Dask cluster import it by name (``backtest_fixtures:pinned_fitter``), so the tests put
this folder on the workers' ``PYTHONPATH``.
"""

from __future__ import annotations

import arviz as az
import numpy as np

from regimecast.backtest.driver import FitAttempt
from regimecast.models.macro import build_macro_model, log_matrices_np, prepare_data
from regimecast.models.macro_sim import reference_point
from regimecast.results import MacroFit

N_DRAWS = 30
SPREAD = 0.002  # narrow enough that three months of news leave usable weights


def pinned_fitter(config, panel, seed: int) -> FitAttempt:
    data = prepare_data(panel, config.model)
    names = [rv.name for rv in build_macro_model(data, config.model)[0].free_RVs]
    ref = reference_point(config.model)
    rng = np.random.default_rng(seed)
    post = {}
    for k in names:
        v = np.asarray(ref[k], dtype=float)
        post[k] = (v * (1.0 + SPREAD * rng.standard_normal((1, N_DRAWS, *v.shape))))
    idata = az.from_dict(posterior=post)
    fit = MacroFit(config=config, panel=panel, idata=idata, random_seed=seed)
    # NumPy matrices instead of a compiled PyTensor function: same numbers, no compile per origin
    fit.__dict__["_matrices"] = (lambda p: log_matrices_np(p, fit.data, config.model), names)
    return FitAttempt(fit, [], 1)

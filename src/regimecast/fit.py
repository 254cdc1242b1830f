"""Sampling and the convergence gate.

``sample_model`` runs NUTS on a PyMC model with PyMC's own sampler or nutpie (``SamplerSettings.sampler``),
optionally starting every chain at the posterior mode.  Which is faster depends on the model: on 2 cores
PyMC's NUTS wins on small models (``benchmarks/bench_engine.py``) and nutpie from the mode wins on the
12-state macro model (``benchmarks/bench_fit.py``, the default config).  ``diagnose`` /
``convergence_problems`` implement the gate: r-hat, bulk and tail ESS, divergences.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import arviz as az
import numpy as np
import pymc as pm

from regimecast.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings.  ``sampler`` is "pymc" (default) or "nutpie"."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    cores: int | None = None
    target_accept: float = 0.9
    sampler: str = "pymc"
    init: str = "jitter+adapt_diag"
    max_treedepth: int = 10
    start: str = "prior"  # "map": start every chain at the posterior mode (then init = adapt_diag)
    retries: int = 1  # refits of a fit that failed the gate (workflow.fit_with_retries)
    retry_tune_factor: float = 2.0  # each retry tunes this many times longer than the previous try

    def __post_init__(self) -> None:
        if self.start not in {"prior", "map"}:
            raise ConfigError(f"sampler.start must be 'prior' or 'map', got {self.start!r}")
        if self.sampler not in {"pymc", "nutpie"}:
            raise ConfigError(f"sampler must be 'pymc' or 'nutpie', got {self.sampler!r}")
        if self.draws < 1 or self.tune < 0 or self.chains < 1:
            raise ConfigError("sampler draws and chains must be >= 1 and tune >= 0")
        if self.retries < 0 or self.retry_tune_factor < 1:
            raise ConfigError(
                f"sampler.retries must be >= 0 and retry_tune_factor >= 1, got {self.retries} and "
                f"{self.retry_tune_factor}"
            )
        if not 0.5 <= self.target_accept < 1:
            raise ConfigError(f"target_accept must be in [0.5, 1), got {self.target_accept}")


@dataclass(frozen=True)
class GateSettings:
    """Convergence gate thresholds."""

    max_rhat: float = 1.01
    min_ess_bulk: float = 400.0
    min_ess_tail: float = 200.0
    max_divergences: int = 0


@dataclass
class Diagnostics:
    r_hat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    sampling_seconds: float
    draws: int
    chains: int
    worst: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_model(
    model: pm.Model,
    settings: SamplerSettings = SamplerSettings(),
    *,
    random_seed: int,
    initvals: dict[str, np.ndarray] | None = None,
    progressbar: bool = True,
) -> az.InferenceData:
    """Sample ``model`` with NUTS; the wall time is stored in ``idata.posterior.attrs``."""
    cores = settings.cores or min(settings.chains, os.cpu_count() or 1)
    t0 = time.perf_counter()
    init = settings.init
    timings = {}
    if settings.start == "map":
        initvals = {**find_start(model), **(initvals or {})}
        init = "adapt_diag"
    timings["start_seconds"] = time.perf_counter() - t0
    with model:
        if settings.sampler == "nutpie":
            import nutpie

            compiled = nutpie.compile_pymc_model(
                model,
                backend="numba",
                initial_points=initvals or None,
                jitter_rvs=set() if settings.start == "map" else None,
            )
            timings["compile_seconds"] = time.perf_counter() - t0 - timings["start_seconds"]
            idata = nutpie.sample(
                compiled,
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                cores=cores,
                seed=random_seed,
                target_accept=settings.target_accept,
                progress_bar=progressbar,
            )
        else:
            idata = pm.sample(
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                cores=cores,
                random_seed=random_seed,
                target_accept=settings.target_accept,
                init=init,
                initvals=initvals,
                progressbar=progressbar,
                compute_convergence_checks=False,
                max_treedepth=settings.max_treedepth,
            )
    idata.posterior.attrs["sampling_wall_seconds"] = time.perf_counter() - t0
    idata.posterior.attrs["sampler"] = settings.sampler
    for k, v in timings.items():
        idata.posterior.attrs[k] = v
    return idata


def find_start(model: pm.Model, maxeval: int = 20000) -> dict[str, np.ndarray]:
    """Posterior mode (L-BFGS on the model's exact gradient) as a dict of free-variable values."""
    t0 = time.perf_counter()
    with model:
        mode = pm.find_MAP(progressbar=False, maxeval=maxeval, include_transformed=False)
    names = {rv.name for rv in model.free_RVs}
    log.info("posterior mode found in %.1f s", time.perf_counter() - t0)
    return {k: np.asarray(v) for k, v in mode.items() if k in names}


def diagnose(idata: az.InferenceData, var_names: list[str] | None = None) -> Diagnostics:
    """r-hat, bulk/tail ESS (minimum over all scalar parameters) and divergences."""
    post = idata.posterior
    if var_names is None:
        var_names = [v for v in post.data_vars if not v.endswith("__")]
    summ = az.summary(idata, var_names=var_names, kind="diagnostics", round_to="none")
    div = 0
    if "sample_stats" in idata and "diverging" in idata.sample_stats:
        div = int(idata.sample_stats["diverging"].sum())
    worst_rhat = summ["r_hat"].fillna(np.inf).idxmax() if len(summ) else ""
    worst_ess = summ["ess_bulk"].fillna(-np.inf).idxmin() if len(summ) else ""
    return Diagnostics(
        r_hat_max=float(summ["r_hat"].max()),
        ess_bulk_min=float(summ["ess_bulk"].min()),
        ess_tail_min=float(summ["ess_tail"].min()),
        divergences=div,
        sampling_seconds=float(post.attrs.get("sampling_wall_seconds", float("nan"))),
        draws=int(post.sizes["draw"]),
        chains=int(post.sizes["chain"]),
        worst={"r_hat": str(worst_rhat), "ess_bulk": str(worst_ess)},
    )


def convergence_problems(diag: Diagnostics, gate: GateSettings = GateSettings()) -> list[str]:
    """Plain-language list of gate failures (empty when the fit passes)."""
    problems = []
    if not np.isfinite(diag.r_hat_max) or diag.r_hat_max > gate.max_rhat:
        problems.append(
            f"r-hat {diag.r_hat_max:.3f} > {gate.max_rhat} (worst: {diag.worst.get('r_hat')}): "
            "chains disagree; run more tuning/draws or check the model"
        )
    if not diag.ess_bulk_min >= gate.min_ess_bulk:
        problems.append(
            f"bulk ESS {diag.ess_bulk_min:.0f} < {gate.min_ess_bulk:.0f} "
            f"(worst: {diag.worst.get('ess_bulk')}): too few effective samples; increase draws"
        )
    if not diag.ess_tail_min >= gate.min_ess_tail:
        problems.append(f"tail ESS {diag.ess_tail_min:.0f} < {gate.min_ess_tail:.0f}")
    if diag.divergences > gate.max_divergences:
        problems.append(
            f"{diag.divergences} divergent transitions (> {gate.max_divergences}): "
            "raise target_accept or reparameterise"
        )
    return problems

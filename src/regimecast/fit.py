"""Sampling and the convergence gate.

``sample_model`` runs NUTS on a PyMC model with PyMC's own sampler or nutpie (``SamplerSettings.sampler``),
optionally starting every chain at the posterior mode.  Which is faster depends on the model: on 2 cores
PyMC's NUTS wins on small models (``benchmarks/bench_engine.py``) and nutpie from the mode wins on the
12-state macro model (``benchmarks/bench_fit.py``, the default config).  ``diagnose`` /
``convergence_problems`` implement the gate: r-hat, bulk and tail ESS, divergences.  The settings
(:class:`SamplerSettings`, :class:`GateSettings`) live in :mod:`regimecast.config`, which imports no
sampler; they are re-exported here for convenience.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import threading
import time
import warnings
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any

import arviz as az
import numpy as np
import pymc as pm

from regimecast.config import GateSettings, SamplerSettings

log = logging.getLogger(__name__)

__all__ = [
    "Diagnostics",
    "GateSettings",
    "SamplerSettings",
    "convergence_problems",
    "diagnose",
    "find_start",
    "pymc_init",
    "sample_model",
]


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
    settings: SamplerSettings | None = None,
    *,
    random_seed: int,
    initvals: dict[str, np.ndarray] | None = None,
    map_start: dict[str, np.ndarray] | None = None,
    progressbar: bool = True,
) -> az.InferenceData:
    """Sample ``model`` with NUTS (``settings``: default :class:`SamplerSettings`); the wall time is
    stored in ``idata.posterior.attrs``.

    The progress bar is shown only on a terminal and the samplers' own log lines (their warnings
    about short chains are what the gate reports) only with ``--verbose`` (the ``regimecast``
    logger at INFO), so a failing command prints one line.  ``map_start``: where the mode search
    starts (``start = "map"``; default the model's initial point), e.g. a previous posterior's draw.
    """
    settings = settings or SamplerSettings()
    cores = settings.cores or min(settings.chains, os.cpu_count() or 1)
    progressbar = progressbar and sys.stderr.isatty()
    t0 = time.perf_counter()
    timings = {}
    if settings.start == "map":
        with _quiet_unless_verbose("pymc"):
            initvals = {**find_start(model, start=map_start), **(initvals or {})}
    timings["start_seconds"] = time.perf_counter() - t0
    with model, _quiet_unless_verbose("pymc", "nutpie", level=logging.ERROR):
        if settings.sampler == "nutpie":
            import nutpie

            compiled = nutpie_model(model, initvals, jitter_rvs=set() if settings.start == "map" else None)
            timings["compile_seconds"] = time.perf_counter() - t0 - timings["start_seconds"]
            idata = nutpie.sample(
                compiled,
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                cores=cores,
                seed=random_seed,
                target_accept=settings.target_accept,
                maxdepth=settings.max_treedepth,
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
                init=pymc_init(settings),
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


_COMPILED: dict[int, tuple] = {}  # id(pm.Model) -> (weakref to it, its compiled nutpie model)


def nutpie_model(model: pm.Model, initvals: dict | None, *, jitter_rvs: set | None = None):
    """``nutpie.compile_pymc_model(model, ...)``, compiled once per model object in this process.

    The compiled model reads the model's ``pm.Data`` as it was at compile time; a model refilled with
    ``pm.set_data`` since (another panel of the same structure, e.g. the next backtest origin) reuses
    the compiled code with the new values (nutpie's ``with_data``) and a start built from ``initvals``
    exactly as the compile would have built it.  Compiling the ``pm.Data`` graph of the macro model
    costs 68-84 s here, the swap milliseconds.  A model without ``pm.Data`` (constants only) cannot be
    refilled, so its compile is not kept.
    """
    import nutpie

    hit = _COMPILED.get(id(model))
    if hit is not None and hit[0]() is model and hasattr(hit[1], "with_data"):
        compiled = hit[1]
        fresh = compiled.with_data(**{name: model[name].get_value() for name in compiled.shared_data})
        return dataclasses.replace(fresh, initial_point_func=_flat_start(model, initvals, jitter_rvs))
    compiled = nutpie.compile_pymc_model(model, backend="numba", initial_points=initvals or None,
                                         jitter_rvs=jitter_rvs)
    if model.data_vars:
        if len(_COMPILED) > 16:
            _COMPILED.clear()
        _COMPILED[id(model)] = (weakref.ref(model), compiled)
    return compiled


def _flat_start(model: pm.Model, initvals: dict | None, jitter_rvs: set | None):
    """The seed -> flat start vector that ``nutpie.compile_pymc_model`` builds (same PyMC call, same
    order of the free variables, a lock because nutpie calls it from its chain threads)."""
    from pymc.initial_point import make_initial_point_fn

    fn = make_initial_point_fn(model=model, overrides=initvals or None, default_strategy="support_point",
                               jitter_rvs=set(model.free_RVs) if jitter_rvs is None else jitter_rvs,
                               return_transformed=True)
    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    lock = threading.Lock()

    def start(seed=None) -> np.ndarray:
        with lock:
            point = fn(seed)
        return np.concatenate([np.asarray(point[n], dtype="float64").ravel() for n in names])

    return start


@contextlib.contextmanager
def _quiet_unless_verbose(*loggers: str, level: int = logging.WARNING):
    """Hold third-party loggers at ``level`` unless the ``regimecast`` logger is at INFO."""
    if logging.getLogger("regimecast").isEnabledFor(logging.INFO):
        yield
        return
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, old in saved.items():
            logging.getLogger(name).setLevel(old)


def pymc_init(settings: SamplerSettings) -> str:
    """PyMC's ``init`` for ``settings``: as configured, without the jitter when chains start at the mode
    (``start = "map"``), so ``"jitter+adapt_diag"`` becomes ``"adapt_diag"`` and ``"adapt_full"`` stays."""
    if settings.start != "map":
        return settings.init
    init = "adapt_diag" if settings.init == "auto" else settings.init
    return init.removeprefix("jitter+")


def find_start(model: pm.Model, maxeval: int = 20000, *,
               start: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Posterior mode (L-BFGS on the model's exact gradient) as a dict of free-variable values, searched
    from ``start`` (values of some free variables; the rest from the model's initial point)."""
    t0 = time.perf_counter()
    with model:
        mode = pm.find_MAP(start=start, progressbar=False, maxeval=maxeval, include_transformed=False)
    names = {rv.name for rv in model.free_RVs}
    log.info("posterior mode found in %.1f s", time.perf_counter() - t0)
    return {k: np.asarray(v) for k, v in mode.items() if k in names}


def diagnose(idata: az.InferenceData, var_names: list[str] | None = None) -> Diagnostics:
    """r-hat, bulk/tail ESS (minimum over all scalar parameters) and divergences."""
    post = idata.posterior
    if var_names is None:
        var_names = [v for v in post.data_vars if not v.endswith("__")]
    # ArviZ's own warnings (short chains, NaN r-hat) are what the gate reports in plain language
    with warnings.catch_warnings(), _quiet_unless_verbose("arviz", level=logging.ERROR):
        warnings.simplefilter("ignore")
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


def convergence_problems(diag: Diagnostics, gate: GateSettings | None = None) -> list[str]:
    """Plain-language list of gate failures (empty when the fit passes; default gate: the config's)."""
    gate = gate or GateSettings()
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

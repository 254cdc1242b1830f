"""Run the quarterly forecast at every past origin, on Dask or in one process.

Origins are grouped into *blocks* of consecutive origins.  A block starts with a fit at its first
origin; every later origin of the block is reached by importance reweighting of that fit's draws
(PSIS, k-hat gate, see :func:`regimecast.update.reweight_to_panel`), and refitted when the weights cannot be
trusted.  Blocks are independent, so they are the unit of distribution: ``Client.map(run_block, ...)``
over plain data (the settings as a dict, the store path, origin months); each worker reads the store
itself, cut at each origin, compiles its own models and writes one result file per origin.

``--refit always``: every origin is its own block.  ``every:N``: a block every N origins.
``auto``: a new block wherever the model itself changes (``model_change_points``: new data free a
parameter or lift a pin, which no reweighting can carry, so that origin is a fit in any plan), and
segments longer than ``AUTO_BLOCK`` origins split into equal blocks (13 blocks over 1990-2023, enough
to keep two workers busy); refits inside a block only when the weights say so.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from regimecast.backtest.results import (
    EVENT_TARGETS,
    SERIES_TARGETS,
    OriginResult,
    done_origins,
    probabilities_from_events,
    write_origin,
)
from regimecast.errors import ConfigError

log = logging.getLogger(__name__)

AUTO_BLOCK = 24  # six years of quarterly origins
#: The events the backtest scores, by the model's state names.
BACKTEST_EVENTS: tuple[dict[str, Any], ...] = (
    {"name": "qe_start", "kind": "state_start", "state": "bs:QE"},
    {"name": "first_cut", "kind": "state_start", "state": "rate:cutting"},
    {"name": "first_hike", "kind": "state_start", "state": "rate:hiking"},
)


def origin_months(start: str, end: str, every: int = 3) -> list[str]:
    """``start``, ``start + every``, ... up to ``end`` (inclusive), as ``YYYY-MM``."""
    if every < 1:
        raise ConfigError(f"--every must be >= 1 month, got {every}")
    lo, hi = _month(start, "--start"), _month(end, "--end")
    if hi < lo:
        raise ConfigError(f"--end {end} is before --start {start}")
    return [str(p) for p in pd.period_range(lo, hi, freq="M")[::every]]


def _month(text: str, flag: str) -> pd.Period:
    import re

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", str(text)):
        raise ConfigError(f"{flag} {text!r} is not a month: write YYYY-MM, e.g. 2008-06")
    return pd.Period(text, freq="M")


def parse_refit(text: str) -> tuple[str, int]:
    """``auto`` | ``always`` | ``every:N`` -> (mode, block length)."""
    if text == "auto":
        return "auto", AUTO_BLOCK
    if text == "always":
        return "always", 1
    if text.startswith("every:") and text[6:].isdigit() and int(text[6:]) >= 1:
        return "every", int(text[6:])
    raise ConfigError(f"--refit {text!r}: use auto, always or every:N (N >= 1)")


def plan_blocks(origins: list[str], refit: str, starts: Iterable[str] = ()) -> list[list[str]]:
    """Consecutive origins grouped into blocks (each starts with a fit).

    ``every:N`` / ``always``: blocks of N / 1 origins.  ``auto``: a block starts at the first origin
    and at every origin in ``starts`` (where the model changes, :func:`model_change_points`); a
    segment longer than ``AUTO_BLOCK`` is split into the fewest blocks of at most that many origins,
    of equal length (+/- 1)."""
    mode, n = parse_refit(refit)
    if mode != "auto":
        return [origins[i : i + n] for i in range(0, len(origins), n)]
    cuts = sorted({0} | {origins.index(o) for o in starts if o in origins} | {len(origins)})
    blocks = []
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        parts = -(-(hi - lo) // n)  # ceil
        bounds = [lo + round(i * (hi - lo) / parts) for i in range(parts + 1)]
        blocks += [origins[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return blocks


def model_change_points(config, store: str | Path, origins: list[str]) -> list[str]:
    """The origins whose panel (cut there, as a worker cuts it) gives the model other free parameters
    or other evidence-driven prior scales than the origin before (``reweight.parameter_key``): there
    weights cannot carry a fit forward, so a refit is certain.  Reads the store once; about 0.4 s per
    origin (building the cut panel)."""
    from regimecast.data.panel import build_panel
    from regimecast.data.sources import read_store, resolve_store
    from regimecast.models.macro import prepare_data
    from regimecast.reweight import parameter_key

    root = resolve_store(store)
    raw = read_store(root)
    out, prev = [], None
    for origin in origins:
        panel = build_panel(raw, as_of=origin, store=root)
        key = parameter_key(prepare_data(panel, config.model), config.model)
        if prev is not None and key != prev:
            out.append(origin)
        prev = key
    return out


@dataclass(frozen=True)
class BacktestSpec:
    """Everything a worker needs, as plain data."""

    config: dict[str, Any]
    store: str
    out: str
    horizon: int = 24
    seed: int = 1
    refit: str = "auto"
    fitter: str = "regimecast.backtest.driver:sample_fit"
    max_draws: int = 1000


def _load(path: str) -> Callable:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass
class FitAttempt:
    fit: Any  # MacroFit
    problems: list[str]
    attempts: int = 1


def sample_fit(config, panel: pd.DataFrame, seed: int) -> FitAttempt:
    """The default fitter: :func:`regimecast.workflow.fit_panel` (a fit that fails the gate is retried
    with longer tuning and another seed, ``[sampler] retries`` times).  The worker compiles the model
    once per structure and refills it with each origin's panel (``reuse_compiled``): the same draws as
    a fresh compile, without its cost at every origin."""
    from regimecast.workflow import fit_panel

    out = fit_panel(config, panel, random_seed=seed, reuse_compiled=True)
    return FitAttempt(out.result, list(out.problems), len(out.attempts))


def origin_seed(seed: int, origin: str) -> int:
    p = pd.Period(origin, freq="M")
    return int(seed) * 100_000 + p.year * 12 + p.month


def _forecast_origin(fit, origin: str, spec: BacktestSpec) -> tuple[dict, dict, dict]:
    from regimecast.events import evaluate_events, load_events
    from regimecast.forecast import forecast, history_dataset

    cfg = fit.config
    fc = forecast(fit, horizon=spec.horizon, max_draws=spec.max_draws, random_seed=origin_seed(spec.seed, origin))
    events = load_events(BACKTEST_EVENTS, labels=cfg.model.chain_labels())
    res = evaluate_events(fc, history_dataset(fit), events)
    summary = {str(e): {f"p_within_{k}m": float(res[f"p_within_{k}m"].sel(event=e)) for k in (6, 12, 24)}
               for e in res["event"].values}
    ens = {}
    for target, (col, months) in SERIES_TARGETS.items():
        if col in fc and months <= spec.horizon:
            ens[target] = fc[col].sel(horizon=months).values.astype(float)
    panel = fit.panel
    last = {col: float(panel[col].dropna().iloc[-1]) if col in panel and panel[col].notna().any() else float("nan")
            for col, _ in SERIES_TARGETS.values()}
    return probabilities_from_events(summary), ens, last


def worker_config(cfg):
    """The settings a fit uses here: on a Dask worker, as many sampler threads as the worker has.

    nutpie otherwise runs its chains on every core of the host, so two single-threaded workers on two
    cores would run four sampler threads.  An explicit ``[sampler] cores`` is kept; outside a worker
    nothing changes.  The draws do not depend on it (nutpie seeds each chain, not each thread).
    """
    if cfg.sampler.cores is not None:
        return cfg
    try:
        from distributed import get_worker

        threads = int(get_worker().state.nthreads)
    except (ImportError, ValueError):  # not inside a Dask worker
        return cfg
    return cfg.replace(sampler={"cores": threads})


def run_block(spec: BacktestSpec, block: list[str]) -> list[dict[str, Any]]:
    """Fit at the block's first origin, reweight (or refit) to the others; write one file per origin.

    Origins already written are skipped (``--resume``), but the block's fits are redone so that the
    reweighted origins after them get the same numbers as in an uninterrupted run.
    """
    from regimecast.config import config_from_dict
    from regimecast.data import load_panel
    from regimecast.update import reweight_to_panel

    cfg = worker_config(config_from_dict(spec.config, source="backtest"))
    fitter = _load(spec.fitter)
    out = Path(spec.out)
    done = done_origins(out)
    base = None
    summaries = []
    for origin in block:
        t0 = time.perf_counter()
        panel = load_panel(spec.store, as_of=origin)
        res = OriginResult(origin=origin, method="refit", wall_seconds=0.0)
        fit = None
        if base is not None and spec.refit != "always":
            fit, khat, ess, reasons = reweight_to_panel(base, panel, seed=origin_seed(spec.seed, origin))
            res.khat, res.ess = khat, ess
            if reasons:
                fit = None
                res.problems = [f"refit: {r}" for r in reasons]
            else:
                res.method = "reweighted"
        if fit is None:
            attempt = fitter(cfg, panel, origin_seed(spec.seed, origin))
            res.attempts, res.problems = attempt.attempts, res.problems + list(attempt.problems)
            res.gate_passed = not attempt.problems
            base = fit = attempt.fit if not attempt.problems else None
            if fit is None:
                res.method = "failed"
        if origin in done:
            continue
        if fit is not None:
            res.prob, res.ensembles, res.last_obs = _forecast_origin(fit, origin, spec)
        res.wall_seconds = time.perf_counter() - t0
        write_origin(out, res)
        summaries.append({"origin": origin, "method": res.method, "khat": res.khat, "ess": res.ess,
                          "wall_seconds": res.wall_seconds})
    return summaries


def run_blocks(
    spec: BacktestSpec,
    blocks: list[list[str]],
    *,
    scheduler: str | None = "local",
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``blocks`` on a Dask cluster (``"local"`` or an address) or in this process (``None``)."""
    out: list[dict[str, Any]] = []
    total = sum(len(b) for b in blocks)
    if scheduler is None:
        for b in blocks:
            out += run_block(spec, b)
            if progress:
                progress(len(out), total)
        return out
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        # latest blocks first: their panels are longest and their fits cost about twice the 1990s'
        # (300 s against 150 s on one thread), so started last they would leave a worker idle at the end
        ordered = sorted(blocks, key=lambda b: b[0], reverse=True)
        futures = client.map(run_block, [spec] * len(ordered), ordered, pure=False)
        for fut in as_completed(futures):
            out += fut.result()
            if progress:
                progress(len(out), total)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return out


def pending_blocks(blocks: Iterable[list[str]], out: str | Path) -> list[list[str]]:
    """Blocks that still have an origin without a result file."""
    done = done_origins(Path(out))
    return [b for b in blocks if any(o not in done for o in b)]


__all__ = ["BACKTEST_EVENTS", "EVENT_TARGETS", "BacktestSpec", "origin_months", "plan_blocks", "run_block",
           "model_change_points",
           "run_blocks", "pending_blocks", "parse_refit", "sample_fit", "worker_config"]

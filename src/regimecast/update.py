"""``regimecast update``: take new prints into a run in seconds, and say what each print changed.

Data flow: parent run + data store -> news (:mod:`regimecast.news`) -> importance weights and news
attribution (:mod:`regimecast.attribution`) -> a reweighted posterior (systematic resampling, so downstream
code cannot forget the weights) or, when the weights cannot be trusted, a warm-started refit -> a new run
directory with the same files ``fit`` writes, the forecast files, ``news.csv``, ``changes.csv`` and
``changes.md``, and lineage in ``manifest.json``.  The parent run is never modified.

Warm refits search the posterior mode from the highest-weight draw of the parent (a short L-BFGS run
instead of the fresh fit's search from the model's initial point) and start every chain there.  The compiled model cannot be reused with the new data (nutpie's
``compiled.with_data``): the model's data are NumPy constants in the graph, not ``pm.Data``, so a refit
recompiles.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd

from regimecast.attribution import Reweighting, reweight_with_news
from regimecast.config import RunConfig
from regimecast.errors import RunExistsError, UpdateError, WeightsError
from regimecast.fit import Diagnostics, diagnose, sample_model
from regimecast.io import atomic_write_text, digest, sha256_file, staged_run_dir
from regimecast.models.macro import (
    build_macro_model,
    free_param_names,
    inactive_params,
    log_matrices_np,
    prepare_data,
)
from regimecast.news import find_news, news_table_text
from regimecast.results import MacroFit
from regimecast.reweight import (
    fit_filter_state,
    posterior_arrays,
    resampled_posterior,
    systematic_resample,
)
from regimecast.runs import MANIFEST, load_run, write_fit

log = logging.getLogger(__name__)

REFIT_MODES = ("auto", "always", "never")
NEWS_CSV, CHANGES_CSV, CHANGES_MD = "news.csv", "changes.csv", "changes.md"


@dataclass
class NumpyFit(MacroFit):
    """A :class:`MacroFit` whose model matrices come from the model's NumPy path (no PyTensor compile).

    ``diagnostics_override`` replaces the sampler diagnostics: a reweighted posterior carries its
    parent's chains' diagnostics (its resampled draws repeat, so r-hat and ESS of them mean nothing).
    """

    diagnostics_override: Diagnostics | None = None

    def matrices(self, point: dict):
        return log_matrices_np(point, self.data, self.config.model)

    def points(self, max_draws: int | None = None, *, random_seed: int = 0) -> list[dict]:
        arrays = posterior_arrays(self.idata)
        n = len(next(iter(arrays.values())))
        idx = np.arange(n)
        if max_draws is not None and max_draws < n:
            idx = np.sort(np.random.default_rng(random_seed).choice(n, max_draws, replace=False))
        fixed = inactive_params(self.data, self.config.model)
        return [{**fixed, **{k: v[i] for k, v in arrays.items()}} for i in idx]

    @property
    def diagnostics(self) -> Diagnostics:
        return self.diagnostics_override or super().diagnostics


@dataclass
class UpdateOutcome:
    """What ``update_run`` did: ``status`` is "updated" or "no new data" (then nothing was written)."""

    status: str
    news: pd.DataFrame
    run_dir: Path | None = None
    method: str = ""
    khat: float = float("nan")
    ess: float = float("nan")
    effective_draws: float = float("nan")
    refits: int = 0
    changes: pd.DataFrame = field(default_factory=pd.DataFrame)
    attribution: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    manifest: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


def default_update_dir(parent: Path, as_of: str) -> Path:
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return parent.parent / f"update-{as_of}-{stamp}"


def load_parent(from_run: str | Path, *, allow_unconverged: bool) -> tuple[NumpyFit, dict]:
    """The parent run (identity checked by ``load_run``) as a :class:`NumpyFit`; refuses a failed gate."""
    from regimecast.workflow import gate_error

    fit, manifest = load_run(from_run)
    if not manifest.get("gate_passed", True) and not allow_unconverged:
        raise gate_error(["the parent run failed its convergence gate"], Path(from_run))
    if manifest.get("demo"):
        raise UpdateError(
            f"{from_run} is a synthetic demo run; there are no new prints to take in. "
            "Fit a run on the data store (`regimecast fit`) and update that"
        )
    parent = NumpyFit(config=fit.config, panel=fit.panel, idata=fit.idata, random_seed=fit.random_seed,
                      diagnostics_override=_stored_diagnostics(Path(from_run)))
    return parent, manifest


def _stored_diagnostics(run_dir: Path) -> Diagnostics | None:
    path = run_dir / "diagnostics.json"
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    names = {f.name for f in dataclasses.fields(Diagnostics)}
    return Diagnostics(**{k: v for k, v in d.items() if k in names})


def new_panel(parent: MacroFit, manifest: dict, *, data, as_of: str | None) -> tuple[pd.DataFrame, dict]:
    """The store's panel cut at ``as_of`` (default: its latest month) and its vintage, checked against
    the parent: not older, not before the parent's as-of, no series the parent used missing."""
    from regimecast.data import data_vintage, resolve_store
    from regimecast.data.panel import load_panels
    from regimecast.data.validate import parse_month

    store = resolve_store(data)
    parent_as_of = pd.Timestamp(parent.panel.index.max())
    if as_of is not None and parse_month(as_of) < parent_as_of:
        raise UpdateError(
            f"--as-of {as_of} is before the parent run's as-of {parent_as_of:%Y-%m}; an update only moves "
            "forwards: pass a later --as-of or fit a new run with `regimecast fit --as-of`"
        )
    latest, panel = load_panels(store, as_of)
    if latest.index.max() < parent_as_of:
        raise UpdateError(
            f"the data store {store} ends in {latest.index.max():%Y-%m}, before the parent run's as-of "
            f"{parent_as_of:%Y-%m}: it is older than the run. Run `regimecast fetch --data {store}` first"
        )
    _check_series(parent.panel, panel, parent.config, store)
    return panel, data_vintage(store)


def _check_series(old: pd.DataFrame, new: pd.DataFrame, cfg: RunConfig, store) -> None:
    from regimecast.news import model_columns

    for col in model_columns(cfg.model):
        if col not in new.columns:
            raise UpdateError(f"the store's panel has no column {col!r} that the parent run used")
        had = old[col].notna()
        lost = had & new[col].reindex(old.index).isna()
        if lost.any():
            months = old.index[lost]
            raise UpdateError(
                f"the store {store} has no {col} for {months[0]:%Y-%m}..{months[-1]:%Y-%m} "
                f"({int(lost.sum())} months) that the parent run used: a series is missing from the "
                f"store; run `regimecast fetch --data {store}`"
            )


def update_run(
    from_run: str | Path,
    *,
    data: str | Path | None = None,
    as_of: str | None = None,
    out: str | Path | None = None,
    refit: str = "auto",
    seed: int = 1,
    force: bool = False,
    allow_unconverged: bool = False,
    progressbar: bool = False,
) -> UpdateOutcome:
    """Take the store's new prints into the run at ``from_run``; see the module docstring."""
    import time

    t0 = time.perf_counter()
    if refit not in REFIT_MODES:
        raise UpdateError(f"--refit must be one of {', '.join(REFIT_MODES)}, got {refit!r}")
    parent, manifest = load_parent(from_run, allow_unconverged=allow_unconverged)
    cfg = parent.config
    panel, vintage = new_panel(parent, manifest, data=data, as_of=as_of)
    news = find_news(parent.panel, panel, cfg.model)
    if news.empty:
        return UpdateOutcome("no new data", news)
    new_as_of = f"{panel.index.max():%Y-%m}"
    run_dir = Path(out) if out else default_update_dir(Path(from_run), new_as_of)
    if run_dir.exists() and not force:
        raise RunExistsError(f"run directory {run_dir} already exists; choose another --out or pass --force")
    timings = {"load_seconds": time.perf_counter() - t0}
    arrays = posterior_arrays(parent.idata)
    n_chains = parent.idata.posterior.sizes["chain"]
    rw = reweight_with_news(arrays, parent.panel, panel, news, cfg.model, n_chains=n_chains,
                            state_old=fit_filter_state(parent))
    timings["reweight_seconds"] = time.perf_counter() - t0 - timings["load_seconds"]
    reasons = _refit_reasons(rw, cfg, draw_efficiency(parent))
    method = "refitted" if refit == "always" or (reasons and refit == "auto") else "reweighted"
    if reasons and refit == "never":
        err = WeightsError(
            f"the importance weights cannot be trusted ({'; '.join(reasons)}); nothing was written. "
            "Run with --refit auto (or always) to refit on the new data"
        )
        err.khat, err.ess = rw.smoothed.khat, rw.smoothed.ess
        err.effective_draws = effective_draws(rw, draw_efficiency(parent))
        raise err
    t1 = time.perf_counter()
    if method == "reweighted":
        fit = _reweighted_fit(parent, panel, rw, seed, draw_efficiency(parent))
        problems = _parent_problems(manifest)
    else:
        fit = refit_from_parent(parent, panel, rw, seed=seed, progressbar=progressbar)
        problems = fit.convergence_problems()
    timings["posterior_seconds"] = time.perf_counter() - t1
    lineage = _lineage(Path(from_run), manifest, rw, method, reasons, vintage, parent)
    outcome = _write_update(parent, fit, run_dir, news, rw, lineage, vintage, problems, seed, force,
                            timings)
    outcome.refits = int(method == "refitted")
    timings["total_seconds"] = time.perf_counter() - t0
    if problems and not allow_unconverged:
        from regimecast.workflow import gate_error

        raise gate_error(problems, run_dir)
    return outcome


def reweight_to_panel(
    parent: MacroFit, panel: pd.DataFrame, *, seed: int
) -> tuple[NumpyFit | None, float, float, list[str]]:
    """``parent``'s posterior reweighted to ``panel`` (the backtest's step from one origin to the next).

    Returns (the resampled fit, or None when the new data change the model's free parameters or
    their evidence-driven priors; k-hat; ESS; the reasons to refit under ``[update]``, empty when
    the weights can be trusted; the floor of independent draws is ``[update] backtest_min_ess``).
    """
    cfg = parent.config
    news = find_news(parent.panel, panel, cfg.model)
    n_chains = parent.idata.posterior.sizes["chain"]
    rw = reweight_with_news(posterior_arrays(parent.idata), parent.panel, panel, news, cfg.model,
                            n_chains=n_chains, state_old=fit_filter_state(parent), attribute=False)
    efficiency = draw_efficiency(parent)
    reasons = _refit_reasons(rw, cfg, efficiency, floor="backtest_min_ess")
    if not rw.reweightable:
        return None, math.inf, 0.0, reasons
    base = parent if isinstance(parent, NumpyFit) else NumpyFit(
        config=cfg, panel=parent.panel, idata=parent.idata, random_seed=parent.random_seed)
    fit = _reweighted_fit(base, panel, rw, seed, efficiency)
    return fit, float(rw.smoothed.khat), float(rw.smoothed.ess), reasons


def draw_efficiency(fit: MacroFit) -> float:
    """Independent draws per stored draw of ``fit``'s posterior, at most 1.

    A sampled posterior: its minimum bulk ESS / draws (MCMC draws are correlated).  A reweighted one
    records its own effective draws (``effective_draws`` on the posterior), so a chain of updates
    compounds the loss.  Identical (pinned) draws have no ESS: they count as independent.
    """
    memo = fit._memo
    if "draw_efficiency" not in memo:
        post = fit.idata.posterior
        n = post.sizes["chain"] * post.sizes["draw"]
        eff = post.attrs.get("effective_draws")
        if eff is None:
            eff = fit.diagnostics.ess_bulk_min
        memo["draw_efficiency"] = min(1.0, float(eff) / n) if math.isfinite(float(eff)) else 1.0
    return memo["draw_efficiency"]


def effective_draws(rw: Reweighting, efficiency: float) -> float:
    """The reweighted posterior's independent draws: the weights' ESS x the parent's draw efficiency."""
    return float(rw.smoothed.ess) * efficiency


def _refit_reasons(rw: Reweighting, cfg: RunConfig, efficiency: float,
                   floor: str = "min_ess") -> list[str]:
    """Why the weights cannot be trusted under ``[update]`` (empty when they can).

    The ``[update]`` setting named by ``floor`` (``min_ess``, or the backtest's ``backtest_min_ess``)
    is compared with the *independent* draws the reweighted posterior keeps (weights' ESS x the
    parent's efficiency), the same quantity the convergence gate asks of a fit (bulk ESS)."""
    u = cfg.update
    least = getattr(u, floor)
    reasons = []
    if not rw.reweightable:
        reasons.append("the new data change which parameters the model estimates")
    if math.isfinite(rw.smoothed.khat) and rw.smoothed.khat > u.khat_threshold:
        reasons.append(f"Pareto k-hat {rw.smoothed.khat:.2f} > {u.khat_threshold} ([update] khat_threshold)")
    eff = effective_draws(rw, efficiency)
    if eff < least:
        reasons.append(f"effective sample {rw.smoothed.ess:.0f} weighted draws x parent efficiency "
                       f"{efficiency:.2f} = {eff:.0f} independent draws < {least:.0f} ([update] {floor})")
    return reasons


def _parent_problems(manifest: dict) -> list[str]:
    return [] if manifest.get("gate_passed", True) else ["the parent run failed its convergence gate"]


def _reweighted_fit(parent: NumpyFit, panel: pd.DataFrame, rw: Reweighting, seed: int,
                    efficiency: float) -> NumpyFit:
    """The parent's draws resampled with the smoothed weights, in the new panel's coordinates."""
    post = parent.idata.posterior
    n = post.sizes["chain"] * post.sizes["draw"]
    idx = systematic_resample(rw.smoothed.weights, n, seed)
    ds = resampled_posterior(parent.idata, idx, rw.vol_shift)
    ds.attrs.update({"method": "reweighted", "khat": rw.smoothed.khat, "ess": rw.smoothed.ess,
                     "effective_draws": effective_draws(rw, efficiency)})
    idata = az.InferenceData(posterior=ds)
    fit = NumpyFit(config=parent.config, panel=panel, idata=idata, random_seed=seed,
                   diagnostics_override=parent.diagnostics_override)
    st = rw.state_new  # the resampled draws' filter over the new panel: no refiltering downstream
    fit._memo["filter_state"] = st.take(idx)
    return fit


def warm_start(parent: NumpyFit, rw: Reweighting, names: list[str]) -> dict[str, np.ndarray]:
    """The highest-weight parent draw (in the new panel's coordinates), for the free parameters."""
    arrays = posterior_arrays(parent.idata)
    i = int(np.argmax(rw.log_weights))
    start = {k: np.asarray(arrays[k][i], dtype=float) for k in names if k in arrays}
    if "vol_level" in start:
        start["vol_level"] = start["vol_level"] + rw.vol_shift[i]
    return start


def refit_from_parent(parent: NumpyFit, panel: pd.DataFrame, rw: Reweighting, *, seed: int,
                      progressbar: bool = False) -> NumpyFit:
    """Sample the model on ``panel`` with every chain started at the parent's highest-weight draw."""
    cfg = parent.config
    d = prepare_data(panel, cfg.model)
    model, _ = build_macro_model(d, cfg.model)
    names = free_param_names(model)
    init = warm_start(parent, rw, names)
    # the mode search starts from the parent's best draw (a few L-BFGS steps), and every chain starts at
    # the mode unjittered, like a fresh fit: chains jittered around one draw of a 27-state posterior
    # (start = "prior") failed the gate on a 12-month update (r-hat 1.53)
    settings = dataclasses.replace(cfg.sampler, start="map")
    log.info("refitting on %d months from the parent's highest-weight draw", d.T)

    def once(s, seed_: int) -> NumpyFit:
        idata = sample_model(model, s, random_seed=seed_, map_start=init, progressbar=progressbar)
        return NumpyFit(config=cfg, panel=panel, idata=idata, random_seed=seed_,
                        diagnostics_override=diagnose(idata, var_names=names))

    from regimecast.workflow import fit_with_retries

    # a refit that fails its gate is retried with longer tuning and another seed ([sampler] retries)
    return fit_with_retries(once, settings, random_seed=seed).result


def _lineage(parent_dir: Path, manifest: dict, rw: Reweighting, method: str, reasons: list[str],
             vintage: dict, parent: NumpyFit) -> dict[str, Any]:
    return {
        "parent": str(parent_dir.resolve()),
        "parent_as_of": manifest.get("as_of"),
        "parent_config_digest": manifest.get("config_digest"),
        "parent_manifest_sha256": sha256_file(parent_dir / MANIFEST),
        "parent_lineage": manifest.get("lineage"),
        "method": method,
        "refit_reasons": reasons,
        "khat": None if not math.isfinite(rw.smoothed.khat) else round(rw.smoothed.khat, 4),
        "ess": round(rw.smoothed.ess, 1),
        "effective_draws": round(effective_draws(rw, draw_efficiency(parent)), 1),
        "draws": int(len(rw.log_weights)),
        "new_data_vintage": {k: vintage.get(k) for k in ("store", "source", "updated_utc")},
        "config_digest": digest(parent.config.to_dict()),
    }


def _write_update(parent, fit, run_dir, news, rw, lineage, vintage, problems, seed, force, timings):
    """Stage the whole run (fit files, forecast, changes) and move it into place at the end."""
    import time

    from regimecast.changes import (
        changes_markdown,
        changes_section,
        changes_table,
        forecast_summary,
    )

    t0 = time.perf_counter()
    new_as_of = f"{fit.panel.index.max():%Y-%m}"
    before = stored_summary(Path(lineage["parent"]), parent, seed)
    if before is None:
        before = forecast_summary(parent, seed=seed)
    with staged_run_dir(run_dir, force=force) as stage:
        manifest = write_fit(stage, fit, as_of=new_as_of, data_vintage=vintage, gate_problems=problems,
                             extra={"demo": False, "gate_passed": not problems, "lineage": lineage})
        def lead(after_summary: pd.DataFrame) -> list:
            from regimecast.report import Section

            title, paragraphs, table = changes_section(
                parent, changes_table(parent, fit, before, after_summary, rw), lineage)
            return [Section(title=title, paragraphs=paragraphs, table=table)]

        files, after = _forecast_outputs(stage, fit, manifest, seed, lead=lead)
        changes = changes_table(parent, fit, before, after, rw)
        atomic_write_text(stage / NEWS_CSV, news.to_csv(index=False))
        atomic_write_text(stage / CHANGES_CSV, changes.to_csv(index=False))
        atomic_write_text(stage / CHANGES_MD, changes_markdown(parent, fit, news, changes, rw, lineage))
    timings["forecast_and_write_seconds"] = time.perf_counter() - t0
    return UpdateOutcome("updated", news, run_dir, lineage["method"], rw.smoothed.khat, rw.smoothed.ess,
                         effective_draws=lineage["effective_draws"], changes=changes,
                         attribution=rw.attribution, summary=after, manifest=manifest, timings=timings)


def stored_summary(run_dir: Path, parent: MacroFit, seed: int) -> pd.DataFrame | None:
    """The parent's own ``event_summary.csv`` when its forecast used this seed and these settings (the
    forecast is deterministic given run, seed and settings, so recomputing it would give the same)."""
    import xarray as xr

    path, nc = run_dir / "event_summary.csv", run_dir / "forecast.nc"
    if not path.is_file() or not nc.is_file():
        return None
    with xr.open_dataset(nc, engine="h5netcdf") as fc:
        attrs, n_h = dict(fc.attrs), fc.sizes.get("horizon", 0) - 1
    f = parent.config.forecast
    n = parent.idata.posterior.sizes["chain"] * parent.idata.posterior.sizes["draw"]
    same = (int(attrs.get("random_seed", -1)) == seed and n_h == f.horizon and not attrs.get("scenario")
            and int(attrs.get("draws", -1)) == min(f.max_draws, n)
            and int(attrs.get("paths_per_draw", -1)) == f.paths_per_draw)
    return pd.read_csv(path) if same else None


def _forecast_outputs(target: Path, fit: MacroFit, manifest: dict, seed: int,
                      progress: Callable[[int, int], None] | None = None,
                      lead: Callable[[pd.DataFrame], list] | None = None):
    """The forecast files of ``forecast_run`` for ``fit`` (see ``workflow.write_forecast_outputs``)."""
    from regimecast.events import DEFAULT_EVENT_SPECS, load_events
    from regimecast.workflow import write_forecast_outputs

    cfg = fit.config
    events = load_events(cfg.events or DEFAULT_EVENT_SPECS, labels=cfg.model.chain_labels())
    files, summary, _ = write_forecast_outputs(target, fit, manifest, events, horizon=cfg.forecast.horizon,
                                               seed=seed, progress=progress, lead=lead)
    return files, summary


def print_summary(outcome: UpdateOutcome) -> str:
    """A short terminal text: news, method, k-hat / ESS, what changed."""
    from regimecast.changes import terminal_table

    if outcome.status != "updated":
        return "no new data in the store since the parent run's as-of month: nothing to update"
    head = news_table_text(outcome.news, max_rows=20)
    k = "n/a (equal weights)" if not math.isfinite(outcome.khat) else f"{outcome.khat:.2f}"
    line = (f"method: {outcome.method}; Pareto k-hat {k}; effective sample size {outcome.ess:.0f} "
            f"({outcome.effective_draws:.0f} independent draws)")
    return "\n".join([head, "", line, "", terminal_table(outcome.changes)])

"""The quarterly workflow: fit a run, forecast from it, write the report.  The CLI calls these.

Data flows one way: panel -> fit -> run directory -> forecast -> events / charts / report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from regimecast import __version__
from regimecast.config import RunConfig, load_config
from regimecast.data import columns as C
from regimecast.errors import ConvergenceError, DataError, RunExistsError
from regimecast.fit import SamplerSettings
from regimecast.io import atomic_path, staged_run_dir
from regimecast.results import MacroFit, MacroRegimeModel
from regimecast.runs import load_run, write_fit

log = logging.getLogger(__name__)

DEMO_SEED = 20231231
DEMO_AS_OF = "2023-12"
MODEL_COLUMNS = [C.CPI_MOM_ANN, C.POLICY_RATE, C.BALANCE_SHEET_GROWTH]


def default_run_dir(kind: str, as_of: str | None, demo: bool) -> Path:
    """``runs/<kind>-<as-of>[-demo]-<UTC time>``: a new directory on every run, never an old one."""
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{kind}-{as_of or 'latest'}{'-demo' if demo else ''}-{stamp}"


def demo_panel(config: RunConfig, as_of: str | None = None) -> pd.DataFrame:
    """A demo economy simulated from the default model's reference parameters (fixed seed)."""
    from regimecast.models.macro_sim import reference_point, simulate_panel

    panel, _ = simulate_panel(
        reference_point(config.model),
        config.model,
        start=config.model.start,
        end=as_of or DEMO_AS_OF,
        random_seed=DEMO_SEED,
    )
    return panel


def load_inputs(
    config: RunConfig, *, data: str | Path | None, as_of: str | None, demo: bool
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The panel (cut at ``as_of``) and its data vintage; the demo economy when ``demo``."""
    if demo:
        panel = demo_panel(config, as_of)
        return panel, {"demo": "synthetic demo data simulated from the default model", "seed": DEMO_SEED}
    from regimecast.data import data_vintage, load_panel, require_history, resolve_store

    store = resolve_store(data)
    panel = load_panel(store, as_of=as_of)
    require_history(panel, config.model.min_months, what="the macro model", columns=MODEL_COLUMNS)
    return panel, data_vintage(store)


@dataclass
class Attempt:
    """One try of a fit: its seed, tuning length, diagnostics and gate problems (empty = passed)."""

    seed: int
    tune: int
    diagnostics: dict[str, Any]
    problems: list[str]


@dataclass
class RetryOutcome:
    """The last fit tried (the first one that passed the gate, else the last failure) and every try."""

    result: Any
    attempts: list[Attempt]

    @property
    def passed(self) -> bool:
        return not self.attempts[-1].problems

    @property
    def problems(self) -> list[str]:
        return self.attempts[-1].problems

    @property
    def retries_used(self) -> int:
        return len(self.attempts) - 1

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "retries_used": self.retries_used,
                "attempts": [asdict(a) for a in self.attempts]}


def fit_with_retries(
    fit_once: Callable[[SamplerSettings, int], Any],
    settings: SamplerSettings,
    *,
    random_seed: int,
    retries: int | None = None,
    raise_on_failure: bool = False,
) -> RetryOutcome:
    """Fit, and refit a fit that fails its convergence gate with longer tuning and another seed.

    ``fit_once(settings, seed)`` returns a fit with ``diagnostics`` and ``convergence_problems()``
    (a :class:`~regimecast.results.MacroFit` or anything shaped like it).  Retry ``a`` (1, 2, ...)
    tunes ``tune * retry_tune_factor ** a`` steps with seed ``random_seed + 1000 * a``; at most
    ``retries`` retries (default ``settings.retries``).  A fit that still fails is returned with all
    its attempts (``outcome.passed`` is False) unless ``raise_on_failure``, which raises
    :class:`~regimecast.errors.ConvergenceError`: nothing that fits many times uses a failed fit
    without seeing it.
    """
    retries = settings.retries if retries is None else retries
    attempts: list[Attempt] = []
    result = None
    for a in range(retries + 1):
        tune = int(round(settings.tune * settings.retry_tune_factor**a))
        seed = random_seed + 1000 * a
        result = fit_once(replace(settings, tune=tune), seed)
        problems = list(result.convergence_problems())
        attempts.append(Attempt(seed, tune, result.diagnostics.to_dict(), problems))
        if not problems:
            break
        # INFO, not WARNING: the CLI prints one error line; every try is in manifest.json
        log.info("fit (seed %d, tune %d) failed the gate: %s", seed, tune, "; ".join(problems))
    outcome = RetryOutcome(result, attempts)
    if raise_on_failure and not outcome.passed:
        raise ConvergenceError(
            f"fit failed its convergence gate {len(attempts)} time(s) (seeds "
            f"{', '.join(str(x.seed) for x in attempts)}): {'; '.join(outcome.problems)}"
        )
    return outcome


def fit_panel(
    config: RunConfig, panel: pd.DataFrame, *, random_seed: int, progressbar: bool = False,
    reuse_compiled: bool = False,
) -> RetryOutcome:
    """Fit the macro model on ``panel`` with the configured retries (see :func:`fit_with_retries`);
    ``reuse_compiled``: see :meth:`~regimecast.results.MacroRegimeModel.fit`."""

    def once(settings: SamplerSettings, seed: int) -> MacroFit:
        cfg = config.replace(sampler=settings)
        return MacroRegimeModel(cfg).fit(panel, random_seed=seed, progressbar=progressbar,
                                         reuse_compiled=reuse_compiled)

    tried = fit_with_retries(once, config.sampler, random_seed=random_seed)
    tried.result.config = config  # the run keeps the user's config; each try's tune is in attempts
    return tried


@dataclass
class FitOutcome:
    fit: MacroFit
    run_dir: Path
    manifest: dict[str, Any]
    problems: list[str]
    attempts: list[Attempt] = field(default_factory=list)


def fit_run(
    config: RunConfig,
    *,
    out: str | Path,
    data: str | Path | None = None,
    as_of: str | None = None,
    seed: int = 1,
    force: bool = False,
    demo: bool = False,
    progressbar: bool = True,
) -> FitOutcome:
    """Fit the model and write a run directory (even when the gate fails; the caller decides)."""
    _check_out(Path(out), force)
    panel, vintage = load_inputs(config, data=data, as_of=as_of, demo=demo)
    return _fit_and_write(config, panel, vintage, out=Path(out), as_of=as_of, seed=seed,
                          force=force, demo=demo, progressbar=progressbar)


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise RunExistsError(f"run directory {out} already exists; choose another --out or pass --force")


def _fit_and_write(config: RunConfig, panel: pd.DataFrame, vintage: dict[str, Any], *, out: Path,
                   as_of: str | None, seed: int, force: bool, demo: bool,
                   progressbar: bool) -> FitOutcome:
    tried = fit_panel(config, panel, random_seed=seed, progressbar=progressbar)
    fit, problems = tried.result, tried.problems
    with staged_run_dir(out, force=force) as stage:
        manifest = write_fit(
            stage,
            fit,
            as_of=as_of or f"{panel.index.max():%Y-%m}",
            data_vintage=vintage,
            gate_problems=problems,
            extra={"demo": demo, "gate_passed": not problems, "fit_attempts": tried.to_dict()},
        )
    return FitOutcome(fit, out, manifest, problems, tried.attempts)


def gate_error(problems: list[str], run_dir: Path) -> ConvergenceError:
    return ConvergenceError(
        f"fit did not converge ({'; '.join(problems)}); the run is saved in {run_dir} for inspection. "
        "Pass --allow-unconverged to use it anyway, or raise [sampler] draws/tune in the config"
    )


@dataclass
class ForecastOutcome:
    run_dir: Path
    files: dict[str, Path]
    summary: pd.DataFrame
    fit: MacroFit
    meta: dict[str, Any] | None = None


SERIES_END_COLUMNS = (C.CPI_MOM_ANN, C.CPI_YOY, C.POLICY_RATE, C.BALANCE_SHEET, C.SMALLCAP_VOLUME)


def series_ends(panel: pd.DataFrame, columns=SERIES_END_COLUMNS) -> dict[str, str | None]:
    """``{series: last observed month (YYYY-MM), or None}`` up to the as-of: the panel's ragged edge."""
    out: dict[str, str | None] = {}
    for col in columns:
        if col in panel:
            last = panel[col].last_valid_index()
            out[col] = None if last is None else f"{pd.Timestamp(last):%Y-%m}"
    return out


def forecast_run(
    *,
    config: RunConfig | None = None,
    config_path: str | Path | None = None,
    out: str | Path | None = None,
    data: str | Path | None = None,
    as_of: str | None = None,
    horizon: int | None = None,
    from_run: str | Path | None = None,
    seed: int = 1,
    force: bool = False,
    allow_unconverged: bool = False,
    scenario: str | None = None,
    demo: bool = False,
    progressbar: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> ForecastOutcome:
    """Fit (or reuse ``from_run``), simulate the months ahead, evaluate events, write the report."""
    explicit_config = config is not None or config_path is not None
    config = config or load_config(config_path)
    if from_run is not None:
        fit, manifest = load_run(from_run, expected_config=config if explicit_config else None)
        config = fit.config
        demo = bool(manifest.get("demo", False))
        if as_of and as_of != manifest.get("as_of"):
            raise DataError(
                f"--as-of {as_of} differs from the run's as-of {manifest.get('as_of')}; "
                "drop --from-run to refit at the new as-of"
            )
        if not manifest.get("gate_passed", True) and not allow_unconverged:
            raise gate_error(["the run failed its convergence gate"], Path(from_run))
        run_dir = Path(out) if out else Path(from_run) / ("forecast" if not scenario else "forecast-scenario")
        events = _check_before_sampling(config, fit.panel, manifest.get("as_of"), scenario, run_dir,
                                        force, horizon)
    else:
        run_dir = Path(out) if out else default_run_dir("forecast", as_of, demo)
        _check_out(run_dir, force)
        panel, vintage = load_inputs(config, data=data, as_of=as_of, demo=demo)
        events = _check_before_sampling(config, panel, as_of, scenario, run_dir, force, horizon)
        outcome = _fit_and_write(config, panel, vintage, out=run_dir, as_of=as_of, seed=seed,
                                 force=force, demo=demo, progressbar=progressbar)
        fit, manifest = outcome.fit, outcome.manifest
        if outcome.problems and not allow_unconverged:
            raise gate_error(outcome.problems, run_dir)

    files, summary, meta = write_forecast_outputs(
        run_dir, fit, manifest, events, horizon=horizon or config.forecast.horizon, seed=seed,
        scenario=scenario, demo=demo, progress=progress)
    return ForecastOutcome(run_dir, files, summary, fit, meta)


def write_forecast_outputs(
    target: Path,
    fit: MacroFit,
    manifest: dict[str, Any],
    events,
    *,
    horizon: int,
    seed: int,
    scenario: str | None = None,
    demo: bool = False,
    progress: Callable[[int, int], None] | None = None,
    lead: Callable[[pd.DataFrame], list] | None = None,
) -> tuple[dict[str, Path], pd.DataFrame, dict[str, Any]]:
    """Simulate, evaluate ``events`` and write forecast.nc, the event tables, charts and the report
    into ``target``: the forecast files of ``forecast_run`` and of ``update``.

    ``lead(event_summary) -> [report.Section, ...]`` builds sections the report opens with from the
    new event summary (the update's "What changed since <parent as-of>").  Returns (files, the event
    summary as written, the report's metadata).
    """
    import io

    from regimecast.events import evaluate_events, event_summary_table
    from regimecast.forecast import forecast, history_dataset
    from regimecast.report import write_outputs

    cfg = fit.config
    fc = forecast(fit, horizon=horizon, max_draws=cfg.forecast.max_draws,
                  paths_per_draw=cfg.forecast.paths_per_draw, scenario=scenario,
                  random_seed=seed, demo=demo, progress=progress)
    hist = history_dataset(fit)
    meta = {
        "as_of": fc.attrs["as_of"],
        "horizon": horizon,
        "data_vintage": manifest.get("data_vintage", {}),
        "diagnostics": fit.diagnostics.to_dict(),
        "config": cfg.to_dict(),
        "scenario": scenario or "",
        "demo": demo,
        "package_version": __version__,
        "series_ends": series_ends(fit.panel.loc[: fit.data.dates[-1]]),
    }
    target.mkdir(parents=True, exist_ok=True)
    with atomic_path(target / "forecast.nc") as tmp:
        fc.to_netcdf(tmp, engine="h5netcdf")
    sections = []
    if lead is not None:  # the summary as event_summary.csv will hold it (CSV round trip)
        summary = event_summary_table(evaluate_events(fc, hist, events))
        sections = lead(pd.read_csv(io.StringIO(summary.to_csv(index=False))))
    files = write_outputs(target, fc, hist, events, meta=meta, lead_sections=sections)
    files["forecast.nc"] = target / "forecast.nc"
    return files, pd.read_csv(files["event_summary.csv"]), meta


def _default_event_specs():
    from regimecast.events import DEFAULT_EVENT_SPECS

    return DEFAULT_EVENT_SPECS


def _check_before_sampling(
    config: RunConfig,
    panel: pd.DataFrame,
    as_of: str | None,
    scenario: str | None,
    out: str | Path,
    force: bool,
    horizon: int | None = None,
):
    """Everything a forecast can check before minutes of sampling; returns the parsed events.

    The events parse against the model's labels, every data-relative threshold resolves against the
    observed history up to the as-of (a ``mean_of`` window that ends after the as-of is a
    :class:`ConfigError`), the scenario prints lie in the forecast window, and the output directory
    is free (or ``force``).
    """
    from regimecast.events import check_events, load_events
    from regimecast.forecast import FORECAST_SERIES, parse_scenario

    as_of_ts = pd.Timestamp(as_of + "-01") if as_of else pd.Timestamp(panel.index.max())
    events = load_events(config.events or _default_event_specs(),
                         labels=config.model.chain_labels())
    hist = panel.loc[(panel.index >= pd.Timestamp(config.model.start)) & (panel.index <= as_of_ts)]
    history = xr.Dataset({k: ("time", hist[k].to_numpy(dtype=float))
                          for k in FORECAST_SERIES if k in hist},
                         coords={"time": pd.DatetimeIndex(hist.index).values})
    check_events(events, history, as_of_ts)
    parse_scenario(scenario, as_of_ts, horizon or config.forecast.horizon)
    _check_out(Path(out), force)
    return events

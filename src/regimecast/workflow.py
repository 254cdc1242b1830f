"""The quarterly workflow: fit a run, forecast from it, write the report.  The CLI calls these.

Data flows one way: panel -> fit -> run directory -> forecast -> events / charts / report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from regimecast import __version__
from regimecast.config import RunConfig, load_config
from regimecast.data import columns as C
from regimecast.errors import ConvergenceError, DataError, RunExistsError
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
class FitOutcome:
    fit: MacroFit
    run_dir: Path
    manifest: dict[str, Any]
    problems: list[str]


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
    out = Path(out)
    if out.exists() and not force:
        raise RunExistsError(f"run directory {out} already exists; choose another --out or pass --force")
    panel, vintage = load_inputs(config, data=data, as_of=as_of, demo=demo)
    fit = MacroRegimeModel(config).fit(panel, random_seed=seed, progressbar=progressbar)
    problems = fit.convergence_problems()
    with staged_run_dir(out, force=force) as stage:
        manifest = write_fit(
            stage,
            fit,
            as_of=as_of or f"{panel.index.max():%Y-%m}",
            data_vintage=vintage,
            gate_problems=problems,
            extra={"demo": demo, "gate_passed": not problems},
        )
    return FitOutcome(fit, out, manifest, problems)


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
    from regimecast.events import load_events
    from regimecast.forecast import forecast, history_dataset
    from regimecast.report import write_outputs

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
        if run_dir.exists() and not force:
            raise RunExistsError(f"{run_dir} already exists; choose another --out or pass --force")
    else:
        run_dir = Path(out) if out else default_run_dir("forecast", as_of, demo)
        outcome = fit_run(config, out=run_dir, data=data, as_of=as_of, seed=seed, force=force,
                          demo=demo, progressbar=progressbar)
        fit, manifest = outcome.fit, outcome.manifest
        if outcome.problems and not allow_unconverged:
            raise gate_error(outcome.problems, run_dir)

    h = horizon or config.forecast.horizon
    fc = forecast(fit, horizon=h, max_draws=config.forecast.max_draws,
                  paths_per_draw=config.forecast.paths_per_draw, scenario=scenario,
                  random_seed=seed, demo=demo, progress=progress)
    hist = history_dataset(fit)
    events = load_events(config.events or _default_event_specs(), macro_labels=config.model.macro_labels,
                         policy_labels=config.model.policy_labels)
    diag = fit.diagnostics.to_dict()
    meta = {
        "as_of": fc.attrs["as_of"],
        "horizon": h,
        "data_vintage": manifest.get("data_vintage", {}),
        "diagnostics": diag,
        "config": config.to_dict(),
        "scenario": scenario or "",
        "demo": demo,
        "package_version": __version__,
        "series_ends": series_ends(fit.panel.loc[: fit.data.dates[-1]]),
    }
    target = run_dir
    target.mkdir(parents=True, exist_ok=True)
    with atomic_path(target / "forecast.nc") as tmp:
        fc.to_netcdf(tmp, engine="h5netcdf")
    files = write_outputs(target, fc, hist, events, meta=meta)
    files["forecast.nc"] = target / "forecast.nc"
    summary = pd.read_csv(files["event_summary.csv"])
    return ForecastOutcome(target, files, summary, fit, meta)


def _default_event_specs():
    from regimecast.events import DEFAULT_EVENT_SPECS

    return DEFAULT_EVENT_SPECS

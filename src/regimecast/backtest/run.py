"""``regimecast backtest``: plan, run (Dask or one process), score and report a track record."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from regimecast import __version__
from regimecast.backtest import report as R
from regimecast.backtest import scoring as S
from regimecast.backtest.chronology import load_chronology
from regimecast.backtest.driver import (
    BacktestSpec,
    model_change_points,
    origin_months,
    parse_refit,
    pending_blocks,
    plan_blocks,
    run_blocks,
)
from regimecast.backtest.results import SERIES_TARGETS, read_origins
from regimecast.backtest.score import (
    add_outcomes_and_baselines,
    brier_components,
    score_events,
    score_series,
)
from regimecast.errors import RunExistsError, RunMismatchError
from regimecast.io import atomic_write_json, atomic_write_text, digest

log = logging.getLogger(__name__)
MANIFEST = "backtest.json"


@dataclass
class BacktestOutcome:
    out: Path
    origins: pd.DataFrame
    scores: pd.DataFrame
    files: dict[str, Path]


def _check_out(out: Path, spec_digest: str, *, resume: bool, force: bool) -> None:
    manifest = out / MANIFEST
    if not out.exists():
        return
    if resume:
        if not manifest.is_file():
            raise RunMismatchError(f"{out} holds no {MANIFEST}: nothing to resume; choose a new --out")
        old = json.loads(manifest.read_text())
        if old.get("spec_digest") != spec_digest:
            raise RunMismatchError(
                f"{out} was started with other settings (config, data, origins or seed); resume it "
                "with the same arguments, or choose a new --out"
            )
        return
    if not force:
        raise RunExistsError(f"backtest directory {out} already exists; pass --resume to continue it, "
                             "--force to start again, or choose another --out")


def run_backtest(
    config,
    *,
    store: str | Path,
    out: str | Path,
    start: str,
    end: str,
    every: int = 3,
    horizon: int = 24,
    refit: str = "auto",
    scheduler: str | None = "local",
    workers: int = 2,
    seed: int = 1,
    resume: bool = False,
    force: bool = False,
    fitter: str | None = None,
    chronology: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestOutcome:
    from regimecast.data import data_vintage, resolve_store

    store = resolve_store(store)
    out = Path(out)
    parse_refit(refit)
    origins = origin_months(start, end, every)
    spec = BacktestSpec(
        config=config.to_dict(), store=str(store), out=str(out), horizon=horizon, seed=seed, refit=refit,
        max_draws=config.forecast.max_draws,
        **({"fitter": fitter} if fitter else {}),
    )
    chron = load_chronology(chronology)
    vintage = data_vintage(store)
    spec_digest = digest({"spec": {k: v for k, v in asdict(spec).items() if k != "out"},
                          "origins": origins, "every": every, "vintage": vintage})
    _check_out(out, spec_digest, resume=resume, force=force)
    if out.exists() and force and not resume:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / MANIFEST, {"package_version": __version__, "spec_digest": spec_digest,
                                       "start": start, "end": end, "every": every, "refit": refit,
                                       "horizon": horizon, "seed": seed, "data_vintage": vintage,
                                       "config_digest": digest(spec.config)})
    starts = model_change_points(config, store, origins) if parse_refit(refit)[0] == "auto" else []
    blocks = plan_blocks(origins, refit, starts)
    todo = pending_blocks(blocks, out) if resume else blocks
    log.info("%d origins in %d blocks, %d blocks to run", len(origins), len(blocks), len(todo))
    run_blocks(spec, todo, scheduler=scheduler, workers=workers, progress=progress)
    return score_run(out, store=store, chron=chron, every=every, origins=origins)


def score_run(out: Path, *, store, chron, every: int, origins: list[str]) -> BacktestOutcome:
    from regimecast.data import load_panel

    df, ens = read_origins(out)
    df = df[df["origin"].isin(origins)].reset_index(drop=True)
    panel = load_panel(store)
    df, rw = add_outcomes_and_baselines(df, ens, chron, panel)
    scores = pd.concat([score_events(df, every=every), score_series(df, ens, rw, every=every)],
                       ignore_index=True)
    comps = brier_components(df)
    files = {
        "origins.csv": atomic_write_text(out / "origins.csv", df.to_csv(index=False, float_format="%.6g")),
        "scores.csv": atomic_write_text(out / "scores.csv", scores.to_csv(index=False, float_format="%.6g")),
        "brier_decomposition.csv": atomic_write_text(out / "brier_decomposition.csv",
                                                     comps.to_csv(index=False, float_format="%.6g")),
    }
    pits = _pits(df, ens)
    files.update(R.write_charts(out, df, pits, chron))
    files.update(R.render(out, "regimecast track record", _sections(df, scores, comps, files)))
    return BacktestOutcome(out, df, scores, files)


def _pits(df: pd.DataFrame, ens: dict) -> dict[str, np.ndarray]:
    out = {}
    for target in SERIES_TARGETS:
        y = df[f"y_{target}"].to_numpy(dtype=float)
        vals = []
        for i, o in enumerate(df["origin"]):
            x = np.asarray(ens.get(o, {}).get(target, []), dtype=float)
            x = x[np.isfinite(x)]
            if np.isfinite(y[i]) and x.size:
                vals.append(S.pit(y[[i]], x[None, :], random_seed=i)[0])
        out[target] = np.array(vals)
    return out


def _sections(df, scores, comps, files) -> list[R.Section]:
    methods = df["method"].value_counts().to_dict()
    first = R.Section("Summary", [
        f"{len(df)} origins from {df['origin'].min()} to {df['origin'].max()}: "
        + ", ".join(f"{n} {m}" for m, n in sorted(methods.items()))
        + f"; median wall time per origin {df['wall_seconds'].median():.1f} s.",
        "Scores: lower is better. Skill = 1 - score / baseline score; DM = Diebold-Mariano statistic "
        "(HAC variance over the overlapping windows, Harvey-Leybourne-Newbold correction; positive "
        "favours the model) with its two-sided p-value. A p-value above 0.05 means the record cannot "
        "tell the model from the baseline.",
    ])
    cols = [c for c in scores.columns if c in ("target", "score", "forecaster", "mean", "n", "event_rate")
            or c.startswith(("skill_vs_", "p_vs_"))]
    out = [first, R.Section("Scores", table=scores[cols])]
    if len(comps):
        out.append(R.Section("Brier decomposition (model)", [
            "Brier = reliability - resolution + uncertainty: reliability near 0 is good calibration, "
            "resolution above 0 is information beyond the base rate."], table=comps))
    out.append(R.Section("Timeline", image="timeline.png"))
    for name in sorted(files):
        if name.startswith(("reliability_", "pit_")):
            out.append(R.Section(name.removesuffix(".png").replace("_", " "), image=name))
    out.append(R.Section("Limitations", [
        "The data are today's vintage: revisions (for example the CPI seasonal factors of 2019-2023) "
        "were not known at the origins.",
        "The chronology's pre-1994 dates are discount-rate changes (before 1982-10) and the funds-rate "
        "target series reconstructed from FOMC records (1982-10 to 1994-01): the FOMC did not announce "
        "its decisions then.",
        "Four QE programmes in 66 years: QE-timing scores rest on very few events; read their tests as such.",
        "The rule-of-thumb baseline uses NBER recession dates as known today, an advantage no "
        "real-time user had.",
    ]))
    return out


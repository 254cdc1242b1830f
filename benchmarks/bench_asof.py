"""Fit and forecast the default model at many as-of months and print one row per origin.

    REGIMECAST_DATA=../shared/data python benchmarks/bench_asof.py [--every-months 3|6|12]
        [--start 1990-01] [--end 2025-10] [--origins 2008-06 2008-09 ...] [--workers N]
        [--seed 1] [--config FILE] [--out DIR] [--keep-late-events]

Each origin runs what a user runs, ``regimecast.workflow.forecast_run`` (fit with the configured
retries, gate, forecast, events, report) in its own run directory under ``--out`` (default: a
temporary directory).  Columns: the gate verdict of the first try and in the end, retries used, the
worst r-hat and its parameter, min bulk / tail ESS, divergences, wall time, P(QT) at the as-of and the
balance sheet's 12-month log change (median [5%, 95%] of the paths), and what failed.

``--workers N`` runs origins in parallel on a ``dask.distributed.LocalCluster`` of N single-thread
worker processes when dask is installed (else one after another).  Threshold events whose
``mean_of`` window ends after an origin's as-of are dropped for that origin (and counted) unless
``--keep-late-events``: with them the forecast refuses to run before sampling.
Timing never decides a test; this only reports.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")

HEADER = ("as-of", "gate 1st", "gate", "retries", "max r-hat", "worst r-hat", "min bulk ESS",
          "min tail ESS", "div", "wall s", "P(QT)", "bs 12m median [5%, 95%]", "late events dropped", "error")


def origins(start: str, end: str, every: int) -> list[str]:
    months = pd.period_range(start, end, freq="M")
    return [m.strftime("%Y-%m") for m in months[::every]]


def _events_for(config, as_of: str, keep_late: bool):
    from regimecast.events import DEFAULT_EVENT_SPECS

    specs = list(config.events or DEFAULT_EVENT_SPECS)
    if keep_late:
        return specs, 0
    cut = pd.Period(as_of, freq="M")
    kept = [e for e in specs if not (e.get("mean_of") and pd.Period(e["mean_of"][1], freq="M") > cut)]
    return kept, len(specs) - len(kept)


def run_origin(as_of: str, *, config_path: str | None, data: str | None, seed: int, out: str,
               keep_late: bool) -> dict:
    """Forecast at one as-of month; a plain function of plain data (runs on a Dask worker)."""
    from regimecast.config import load_config
    from regimecast.errors import RegimecastError
    from regimecast.workflow import forecast_run

    config = load_config(config_path)
    events, dropped = _events_for(config, as_of, keep_late)
    config = config.replace(events=tuple(events))
    run_dir = Path(out) / f"forecast-{as_of}"
    t0 = time.perf_counter()
    error = ""
    try:
        forecast_run(config=config, out=run_dir, data=data, as_of=as_of, seed=seed, force=True,
                     progressbar=False)
    except RegimecastError as err:
        error = f"{type(err).__name__}: {str(err)[:120]}"
    row = {"as-of": as_of, "wall s": round(time.perf_counter() - t0), "late events dropped": dropped,
           "error": error}
    manifest = run_dir / "manifest.json"
    if manifest.is_file():
        tried = json.loads(manifest.read_text()).get("fit_attempts", {})
        attempts = tried.get("attempts", [])
        first, last = attempts[0], attempts[-1]
        diag = last["diagnostics"]
        row |= {
            "gate 1st": "pass" if not first["problems"] else "FAIL",
            "gate": "pass" if not last["problems"] else "FAIL",
            "retries": len(attempts) - 1,
            "max r-hat": round(diag["r_hat_max"], 3),
            "worst r-hat": diag["worst"].get("r_hat", ""),
            "min bulk ESS": round(diag["ess_bulk_min"]),
            "min tail ESS": round(diag["ess_tail_min"]),
            "div": diag["divergences"],
            "first try": first,
        }
    if (run_dir / "forecast.nc").is_file():
        row |= balance_sheet_columns(run_dir / "forecast.nc")
    return row


def balance_sheet_columns(path: Path) -> dict:
    """P(QT) at the as-of (share of paths starting in QT) and the 12-month log change of the balance
    sheet, median [5%, 95%] over the simulated paths (percent)."""
    import numpy as np
    import xarray as xr

    from regimecast.schema import labels_attr

    with xr.open_dataset(path, engine="h5netcdf") as fc:
        bs = fc["balance_sheet"].values
        states = fc["bs_state"].values
        labels = [str(x) for x in np.atleast_1d(fc.attrs[labels_attr("bs")])]
    h = min(12, bs.shape[1] - 1)
    change = 100 * np.log(bs[:, h] / bs[:, 0])
    q5, q50, q95 = np.percentile(change, [5, 50, 95])
    return {"P(QT)": round(float((states[:, 0] == labels.index("QT")).mean()), 2),
            "bs 12m median [5%, 95%]": f"{q50:+.1f}% [{q5:+.1f}, {q95:+.1f}]"}


def _print_row(row: dict) -> None:
    print(" | ".join(str(row.get(h, "")) for h in HEADER), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every-months", type=int, choices=(3, 6, 12), default=3)
    ap.add_argument("--start", default="1990-01")
    ap.add_argument("--end", default="2025-10")
    ap.add_argument("--origins", nargs="+", default=None, help="explicit as-of months (override)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--config", default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default=None, help="run directories (default: a temporary directory)")
    ap.add_argument("--keep-late-events", action="store_true", default=True,
                    help="kept for old commands: the default events are defined at every as-of")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args()

    todo = args.origins or origins(args.start, args.end, args.every_months)
    out = args.out or tempfile.mkdtemp(prefix="bench-asof-")
    kw = dict(config_path=args.config, data=args.data, seed=args.seed, out=out,
              keep_late=args.keep_late_events)
    print(f"# {len(todo)} origins {todo[0]}..{todo[-1]}, seed {args.seed}, {args.workers} worker(s), "
          f"{os.cpu_count()} cores; runs in {out}")
    print(" | ".join(HEADER))
    print("|".join("---" for _ in HEADER))
    rows = []
    for row in _run_all(todo, kw, args.workers):
        _print_row(row)
        rows.append(row)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    _print_summary(rows)


def _run_all(todo: list[str], kw: dict, workers: int):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        workers = 1
    if workers <= 1:
        for as_of in todo:
            yield run_origin(as_of, **kw)
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster, \
            Client(cluster) as client:
        futures = client.map(run_origin, todo, **kw, pure=False)
        for fut in as_completed(futures):
            yield fut.result()


def _print_summary(rows: list[dict]) -> None:
    first = sum(r.get("gate 1st") == "pass" for r in rows)
    final = sum(r.get("gate") == "pass" and not r["error"] for r in rows)
    print(f"# passed first time: {first}/{len(rows)}; forecast done (after retries): {final}/{len(rows)}; "
          f"total wall {sum(r['wall s'] for r in rows)} s")


if __name__ == "__main__":
    main()

"""Time ``regimecast update`` against the full fit + forecast it replaces; print a table.

Usage (real data store in ``REGIMECAST_DATA``; parent runs made with ``regimecast fit``)::

    python benchmarks/bench_update.py --parent runs/fit-2023-09 --parent runs/fc-2023-12 \\
        --months 1 3 6 12 [--full-fit-seconds 665] [--full]

For every parent and update length it runs the update (``--refit never``: when the weights cannot be
trusted the row says so and counts a refit; with ``--time-refits`` it then times the warm-started
refit and forecast that ``--refit auto`` runs) and prints: the update's wall time
(fast path, forecast and report included; its CPU time beside it, which is what an idle machine would
take since the update is single-threaded), the reweighting's share, k-hat, ESS, and the
speed-up over a full fit + forecast.  The full fit's wall time is measured with ``--full`` (one
``forecast_run`` per row: slow) or given by ``--full-fit-seconds`` (a measured ``regimecast forecast``).
Timing never decides a test; this script only prints.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import pandas as pd


def months_after(as_of: str, k: int) -> str:
    p = pd.Period(as_of, freq="M") + k
    return p.strftime("%Y-%m")


def one_row(parent: Path, months: int, full: bool, full_seconds: float | None,
            time_refits: bool = False) -> dict:
    import json

    from regimecast.errors import WeightsError
    from regimecast.update import update_run

    as_of = json.loads((parent / "manifest.json").read_text())["as_of"]
    target = months_after(as_of, months)
    row = {"parent": parent.name, "as_of": as_of, "to": target, "months": months}
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            out = update_run(parent, as_of=target, out=Path(tmp) / "u", refit="never", seed=1)
            row.update(update_s=time.perf_counter() - t0, update_cpu_s=time.process_time() - c0,
                       reweight_s=out.timings["reweight_seconds"], khat=out.khat, ess=out.ess,
                       independent=out.effective_draws, refits=0)
        except WeightsError as err:  # --refit auto would refit here: the row counts one
            row.update(update_s=math.nan, update_cpu_s=math.nan, reweight_s=math.nan, khat=err.khat,
                       ess=err.ess, independent=err.effective_draws, refits=1)
            if time_refits:  # what `--refit auto` takes instead: the warm-started refit and forecast
                t0, c0 = time.perf_counter(), time.process_time()
                update_run(parent, as_of=target, out=Path(tmp) / "r", refit="auto", seed=1)
                row.update(update_s=time.perf_counter() - t0, update_cpu_s=time.process_time() - c0)
        if full:
            from regimecast.workflow import forecast_run

            t1 = time.perf_counter()
            forecast_run(out=Path(tmp) / "full", as_of=target, seed=1, progressbar=False)
            full_seconds = time.perf_counter() - t1
    row["full_fit_forecast_s"] = full_seconds if full_seconds is not None else math.nan
    row["speedup"] = row["full_fit_forecast_s"] / row["update_s"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parent", action="append", required=True, help="parent run directory (repeatable)")
    ap.add_argument("--months", nargs="+", type=int, default=[1, 3, 6, 12])
    ap.add_argument("--full", action="store_true", help="also time a full fit + forecast per row")
    ap.add_argument("--full-fit-seconds", type=float, default=None,
                    help="measured wall time of a full fit + forecast on this machine")
    ap.add_argument("--warm-up", action="store_true", help="run one untimed update first (JIT, imports)")
    ap.add_argument("--time-refits", action="store_true",
                    help="when the weights cannot be trusted, time the refit --refit auto runs instead")
    args = ap.parse_args()
    rows = []
    if args.warm_up:
        one_row(Path(args.parent[0]), args.months[0], False, None)
    for parent in args.parent:
        for k in args.months:
            rows.append(one_row(Path(parent), k, args.full, args.full_fit_seconds, args.time_refits))
            print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format=lambda v: f"{v:.3g}"), flush=True)
    df = pd.DataFrame(rows)
    print()
    print(df.to_markdown(index=False, floatfmt=".3g") if _has_tabulate() else df.to_string(index=False))


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()

"""Time a real-data backtest and print a table: wall time, refits, reweighted origins, per-origin cost.

    REGIMECAST_DATA=../shared/data python benchmarks/bench_backtest.py --start 1990-01 --end 2023-10 \
        --workers 1 2 [--refit auto] [--every 3] [--out-root runs/bench-backtest]

Each worker count runs the whole backtest from scratch into its own directory (``--keep`` keeps them) on a
Dask ``LocalCluster`` of that many single-threaded workers (each fit samples on its worker's one thread);
``0`` runs it in this process instead, where each fit samples its chains on every core.  The scores of the
last run are printed after the timing table.  Timing never decides a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--start", default="1990-01")
    ap.add_argument("--end", default="2023-10")
    ap.add_argument("--every", type=int, default=3)
    ap.add_argument("--refit", default="auto")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out-root", default="runs/bench-backtest")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    from regimecast.backtest.run import run_backtest
    from regimecast.config import load_config
    from regimecast.data import resolve_store

    cfg = load_config(args.config)
    store = resolve_store(args.data)
    header = ("workers", "origins", "wall s", "refit", "reweighted", "failed", "s/origin (sum)",
              "median refit s", "median reweight s", "max k-hat", "speed-up")
    rows, base = [], None
    outcome = None
    for w in args.workers:
        out = Path(args.out_root) / f"workers-{w}"
        if out.exists():
            shutil.rmtree(out)
        t0 = time.perf_counter()
        outcome = run_backtest(cfg, store=store, out=out, start=args.start, end=args.end, every=args.every,
                               refit=args.refit, scheduler="local" if w > 0 else None, workers=max(w, 1))
        wall = time.perf_counter() - t0
        o = outcome.origins
        base = base or wall
        m = o["method"]
        rows.append((w or "in-process", len(o), f"{wall:.0f}", int((m == "refit").sum()), int((m == "reweighted").sum()),
                     int((m == "failed").sum()), f"{o['wall_seconds'].sum() / len(o):.1f}",
                     f"{o.loc[m == 'refit', 'wall_seconds'].median():.1f}",
                     f"{o.loc[m == 'reweighted', 'wall_seconds'].median():.1f}",
                     f"{o['khat'].max():.2f}", f"{base / wall:.2f}x"))
        print(f"workers={w}: {wall:.0f} s", flush=True)
    widths = [max(len(h), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    print(" | ".join(h.rjust(wd) for h, wd in zip(header, widths, strict=True)))
    print("-|-".join("-" * wd for wd in widths))
    for r in rows:
        print(" | ".join(str(c).rjust(wd) for c, wd in zip(r, widths, strict=True)))
    if outcome is not None:
        s = outcome.scores
        cols = [c for c in s.columns if c in ("target", "score", "forecaster", "mean", "n")
                or c.startswith(("skill_vs_", "p_vs_"))]
        print(s[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if not args.keep:
        for w in args.workers[:-1]:
            shutil.rmtree(Path(args.out_root) / f"workers-{w}", ignore_errors=True)


if __name__ == "__main__":
    main()

"""Time the default macro-model fit on the real panel and print a table.

    REGIMECAST_DATA=../shared/data python benchmarks/bench_fit.py [--config models/default.toml]
        [--as-of YYYY-MM] [--seeds 1 2] [--chains N --draws N --tune N]

Columns: wall time of the whole fit, time to find the posterior mode (the chains' start), compile
time (nutpie's numba compile; with PyMC's sampler it is inside the wall time), sampling time, min bulk / tail ESS, bulk ESS per wall second, max r-hat, divergences, and peak resident
memory of the parent and of the sampling workers.  Timing never decides a test; this only reports.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--as-of", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--chains", type=int, default=None)
    ap.add_argument("--draws", type=int, default=None)
    ap.add_argument("--tune", type=int, default=None)
    args = ap.parse_args()

    from regimecast.config import load_config
    from regimecast.data import load_panel, resolve_store
    from regimecast.results import MacroRegimeModel

    cfg = load_config(args.config)
    over = {k: v for k, v in {"chains": args.chains, "draws": args.draws, "tune": args.tune}.items() if v}
    if over:
        cfg = cfg.replace(sampler=over)
    panel = load_panel(resolve_store(args.data), as_of=args.as_of)
    s = cfg.sampler
    print(f"# default fit on the real panel: {panel.index[0]:%Y-%m}..{panel.index[-1]:%Y-%m}, "
          f"{s.chains} chains x ({s.tune} tune + {s.draws} draws), sampler={s.sampler}, start={s.start}, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    header = ("seed", "wall s", "mode s", "compile s", "sampling s", "min bulk ESS", "min tail ESS", "ESS/s",
              "max r-hat", "divergences", "peak RSS parent MB", "peak RSS worker MB")
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        fit = MacroRegimeModel(cfg).fit(panel, random_seed=seed, progressbar=False)
        wall = time.perf_counter() - t0
        d = fit.diagnostics
        attrs = fit.idata.posterior.attrs
        start_s = float(attrs.get("start_seconds", 0.0))
        compile_s = float(attrs.get("compile_seconds", float("nan")))
        sampling = float(fit.idata.sample_stats.attrs.get("sampling_time", float("nan")))
        if not np.isfinite(sampling):
            sampling = wall - start_s - (compile_s if np.isfinite(compile_s) else 0.0)
        self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rows.append((seed, f"{wall:.0f}", f"{start_s:.0f}", f"{compile_s:.0f}", f"{sampling:.0f}", f"{d.ess_bulk_min:.0f}",
                     f"{d.ess_tail_min:.0f}", f"{d.ess_bulk_min / wall:.2f}", f"{d.r_hat_max:.3f}",
                     str(d.divergences), f"{self_mb:.0f}", f"{child_mb:.0f}"))
        gate = fit.convergence_problems()
        print(f"seed {seed}: gate {'passed' if not gate else 'FAILED: ' + '; '.join(gate)}")
    widths = [max(len(h), *(len(r[i]) if isinstance(r[i], str) else len(str(r[i])) for r in rows))
              for i, h in enumerate(header)]
    print(" | ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()

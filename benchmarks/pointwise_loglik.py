"""Write one model's one-step-ahead log predictive densities, per posterior draw and month.

    REGIMECAST_DATA=../shared/data python benchmarks/pointwise_loglik.py --out ll_27.nc [--seed 1]
        [--draws 400] [--run RUNDIR] [--config FILE]

Fits the model of the checked-out code on the real panel (or loads ``--run``), then stores
log p(y_t | y_1..t-1, theta) for ``--draws`` posterior draws (the forward filter's normalisers) with
the months as coordinates.  Written against the API both the 4-state model (main before issue 9) and
the 27-state model share, so the same file runs on either checkout; compare two outputs with
``benchmarks/compare_structures.py``.  Both models score the same observations (CPI, rate change,
balance-sheet growth, volume), so their predictive densities are comparable.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import xarray as xr

from regimecast.hmm.reference import _forward


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--run", default=None, help="a run directory to score instead of fitting")
    ap.add_argument("--config", default=None)
    args = ap.parse_args()
    from regimecast.config import load_config
    from regimecast.data import load_panel
    from regimecast.results import MacroRegimeModel
    from regimecast.runs import load_run

    t0 = time.perf_counter()
    if args.run:
        fit, _ = load_run(args.run)
    else:
        fit = MacroRegimeModel(load_config(args.config)).fit(load_panel(), random_seed=args.seed,
                                                             progressbar=False)
    d = fit.diagnostics
    print(f"fit {time.perf_counter() - t0:.0f} s, r-hat {d.r_hat_max:.3f}, min ESS {d.ess_bulk_min:.0f}, "
          f"divergences {d.divergences}, gate {'passed' if not fit.convergence_problems() else 'FAILED'}")
    rows = [_forward(*fit.matrices(p))[3] for p in fit.points(args.draws, random_seed=args.seed)]
    K = fit.matrices(fit.points(1)[0])[2].shape[1]
    ds = xr.Dataset({"log_lik": (("draw", "time"), np.array(rows))},
                    coords={"time": np.asarray(fit.data.dates)}, attrs={"states": K})
    ds.to_netcdf(args.out)
    print(f"wrote {args.out}: {len(rows)} draws x {ds.sizes['time']} months, {K} joint states")


if __name__ == "__main__":
    main()

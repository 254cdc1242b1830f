"""Compare two models by WAIC on their one-step-ahead log predictive densities.

    python benchmarks/compare_structures.py ll_27.nc ll_4.nc [--names 27-state 4-state]

Each file is written by ``benchmarks/pointwise_loglik.py`` (run once on each checkout).  Both must
score the same months (same ``model.start`` and as-of).  Prints ArviZ ``compare`` (elpd_waic, its
difference to the best model and the standard error of that difference) and the elpd difference per
decade, to see where one structure wins (e.g. the QT years 2017-19 and 2022-25).
"""

from __future__ import annotations

import argparse

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr


def _idata(ds: xr.Dataset) -> az.InferenceData:
    ll = ds["log_lik"].values[None]  # (chain=1, draw, time)
    return az.from_dict(posterior={"dummy": np.zeros(ll.shape[:2])}, log_likelihood={"y": ll})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs=2)
    ap.add_argument("--names", nargs=2, default=None)
    args = ap.parse_args()
    names = args.names or [f.rsplit("/", 1)[-1].removesuffix(".nc") for f in args.files]
    data = [xr.load_dataset(f) for f in args.files]
    if not np.array_equal(data[0].time.values, data[1].time.values):
        raise SystemExit("the two files score different months: fit both with the same start and as-of")
    print(az.compare({n: _idata(d) for n, d in zip(names, data, strict=True)}, ic="waic").to_string())
    # per-month pointwise WAIC contributions: lppd_t - p_waic_t
    contrib = []
    for d in data:
        ll = d["log_lik"].values
        m = ll.max(0)
        lppd = m + np.log(np.mean(np.exp(ll - m), axis=0))
        contrib.append(lppd - ll.var(0, ddof=1))
    diff = pd.Series(contrib[0] - contrib[1], index=pd.DatetimeIndex(data[0].time.values))
    by_decade = diff.groupby((diff.index.year // 10) * 10).agg(["sum", "count"])
    print(f"\nelpd_waic difference {names[0]} - {names[1]} by decade:")
    print(by_decade.to_string())
    for lo, hi in (("2017-10", "2019-07"), ("2022-06", "2025-11"), ("2008-12", "2014-10")):
        print(f"{lo}..{hi}: {diff.loc[lo:hi].sum():+.1f}")


if __name__ == "__main__":
    main()

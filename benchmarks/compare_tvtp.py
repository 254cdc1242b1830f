"""Does the time-varying instrument transition (``model.tvtp``) earn its place?  Fit both, compare.

    REGIMECAST_DATA=../shared/data python benchmarks/compare_tvtp.py [--seed 1] [--draws 400]

For each fit, the one-step-ahead log predictive density of every month, log p(y_t | y_1..t-1, theta),
is computed per posterior draw (the forward filter's normalisers), and the models are compared by
WAIC on those terms (ArviZ ``compare``): a sequential, predictive yardstick that suits a time series.
Also prints the gate diagnostics and the posterior of the ``rate_tvtp`` / ``bs_tvtp`` effects.
"""

from __future__ import annotations

import argparse
import time

import arviz as az
import numpy as np

from regimecast.config import load_config
from regimecast.data import load_panel
from regimecast.hmm.reference import _forward
from regimecast.results import MacroRegimeModel


def pointwise(fit, draws: int, seed: int) -> az.InferenceData:
    rows = []
    for p in fit.points(draws, random_seed=seed):
        li, lt, le = fit.matrices(p)
        rows.append(_forward(li, lt, le)[3])
    ll = np.array(rows)[None]  # (chain=1, draw, time)
    return az.from_dict(posterior={"dummy": np.zeros(ll.shape[:2])}, log_likelihood={"y": ll})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--draws", type=int, default=400)
    args = ap.parse_args()
    base = load_config()
    panel = load_panel()
    results = {}
    for name, cfg in (("constant", base), ("tvtp", base.replace(model={"tvtp": True}))):
        t0 = time.perf_counter()
        fit = MacroRegimeModel(cfg).fit(panel, random_seed=args.seed, progressbar=False)
        d = fit.diagnostics
        print(f"{name}: {time.perf_counter() - t0:.0f} s, r-hat {d.r_hat_max:.3f}, "
              f"min ESS {d.ess_bulk_min:.0f}, divergences {d.divergences}, "
              f"gate {'passed' if not fit.convergence_problems() else 'FAILED'}")
        if name == "tvtp":
            print(az.summary(fit.idata, var_names=["rate_tvtp", "bs_tvtp"], kind="stats").to_string())
        results[name] = pointwise(fit, args.draws, args.seed)
    print(az.compare(results, ic="waic").to_string())


if __name__ == "__main__":
    main()

"""Prior predictive check of the default macro model: implied durations and series ranges.

    REGIMECAST_DATA=../shared/data python benchmarks/prior_predictive.py [--draws 500]

Draws parameter sets from the prior, computes the expected duration of each macro regime (averaged
over the instruments' states) and of each rate / balance-sheet state (under the moderate regime, the
other instrument averaged), and simulates 50-year paths to show the range of CPI inflation, the policy
rate and balance-sheet growth.
"""

from __future__ import annotations

import argparse

import numpy as np
import pymc as pm

from regimecast.config import load_config
from regimecast.data import columns as C
from regimecast.data import load_panel
from regimecast.models.macro import (
    build_macro_model,
    joint_log_transition,
    numpy_params,
    prepare_data,
)
from regimecast.models.macro_sim import simulate_series, simulate_states

START = {C.CPI_MOM_ANN: 2.0, C.POLICY_RATE: 4.0, C.BALANCE_SHEET: 1000.0, C.SMALLCAP_VOLUME_LOG: 17.0}


def _fmt(x: np.ndarray) -> str:
    return f"{np.median(x):.0f} [{np.quantile(x, 0.1):.0f}, {np.quantile(x, 0.9):.0f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    cfg = load_config().model
    nS = cfg.n_macro
    model, _ = build_macro_model(prepare_data(load_panel(), cfg), cfg)
    free = [rv.name for rv in model.free_RVs]
    values = pm.draw([model[n] for n in free], draws=args.draws, random_seed=args.seed)
    rng = np.random.default_rng(args.seed)
    dur_s, dur_z, ranges = [], [], []
    for i in range(args.draws):
        point = {n: v[i] for n, v in zip(free, values, strict=True)}
        lt = joint_log_transition(np, numpy_params(point, cfg), cfg)
        P = np.exp(lt).reshape(nS, 3, 3, nS, 3, 3)
        stay_s = np.array([P[s, :, :, s].sum((-2, -1)).mean() for s in range(nS)])
        m = nS // 2
        stay_r = np.array([P[m, r, :, :, r].sum((-2, -1)).mean() for r in range(3)])
        stay_b = np.array([P[m, :, b, :, :, b].sum((-2, -1)).mean() for b in range(3)])
        dur_s.append(1 / (1 - stay_s))
        dur_z.append(1 / (1 - np.concatenate([stay_r, stay_b])))
        states = simulate_states(lt, np.array([(m * 3 + 1) * 3 + 1]), 600, rng)
        sims = simulate_series(point, cfg, states, initial=START, trend0=5.0, rng=rng)
        growth = 100 * np.diff(np.log(sims[C.BALANCE_SHEET][0]))
        ranges.append([np.quantile(sims[C.CPI_MOM_ANN], [0.05, 0.95]),
                       np.quantile(sims[C.POLICY_RATE], [0.05, 0.95]),
                       np.quantile(growth, [0.05, 0.95])])
    dur_s, dur_z, ranges = np.array(dur_s), np.array(dur_z), np.array(ranges)
    print(f"# prior predictive, {args.draws} draws; durations in months: median [10%, 90%] over draws")
    for i, lab in enumerate(cfg.macro_labels):
        print(f"macro {lab:>13}: {_fmt(dur_s[:, i])}")
    for i, lab in enumerate((*cfg.rate_labels, *cfg.bs_labels)):
        chain = "rate" if i < 3 else "bs"
        print(f"{chain:>6} {lab:>12}: {_fmt(dur_z[:, i])}")
    print("# 5% / 95% quantiles of simulated 50-year paths (median over draws) [10%-90% of the 95% q]")
    for j, name in enumerate(("cpi_mom_ann (%)", "policy_rate (%)", "bs growth (%/month)")):
        lo, hi = np.median(ranges[:, j, :], axis=0)
        spread = np.quantile(ranges[:, j, 1], [0.1, 0.9])
        print(f"{name:>20}: {lo:7.2f} {hi:7.2f}   [{spread[0]:.1f}, {spread[1]:.1f}]")


if __name__ == "__main__":
    main()

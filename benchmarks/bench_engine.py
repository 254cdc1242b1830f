"""Time the HMM engine and a two-regime fit; print tables (never asserts timing).

Usage::

    NUMBA_CACHE_DIR=.cache/numba OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/bench_engine.py [--quick] [--skip-scan] [--skip-fit] [--seeds 1 2]

Part 1, logp + gradient per call of a realistic model graph (one Gaussian series; means, log-sigmas and
softmax transition logits as parameters; emissions built symbolically) for
  * ``op``       the ``hmm_logp`` Op, compiled ``pytensor.function`` of value and gradients (C backend),
  * ``op_numba`` the same graph compiled with ``mode="NUMBA"``,
  * ``scan``     a normalised PyTensor ``scan`` forward filter, gradient by ``pytensor.grad`` (C backend),
  * ``numpy``    the NumPy reference ``smoother_np`` (value and all gradients of the HMM part),
  * ``fwd``      one plain numba forward pass ``forward_loglik`` (the floor; HMM part only).
Median of repeated timings.  ``numpy`` and ``fwd`` start from precomputed log-emissions and transitions.

Part 2, a two-regime switching-mean model of Hamilton's US real GNP growth (statsmodels' shipped copy,
T = 135; simulated data if it is unavailable), 4 chains x (1000 tune + 1000 draws): PyMC NUTS with the Op
(cores=2), nutpie (numba backend) with the Op, and PyMC NUTS on the scan path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytensor  # noqa: E402
import pytensor.tensor as pt  # noqa: E402
from _scan_reference import scan_loglik  # noqa: E402

from regimecast.hmm import hmm_logp  # noqa: E402
from regimecast.hmm.forward import as_3d, forward_loglik  # noqa: E402
from regimecast.hmm.reference import smoother_np  # noqa: E402

warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")


# --- part 1: logp + gradient per call ---------------------------------------------------------------


def _model_graph(loglik_fn):
    """Inputs (y, mu, log_sigma, logits) -> [value, d/dmu, d/dlog_sigma, d/dlogits]."""
    y = pt.dvector("y")
    mu = pt.dvector("mu")
    log_sigma = pt.dvector("log_sigma")
    logits = pt.dmatrix("logits")
    sigma = pt.exp(log_sigma)
    z = (y[:, None] - mu[None, :]) / sigma[None, :]
    le = -0.5 * z**2 - log_sigma[None, :] - 0.5 * np.log(2 * np.pi)
    log_trans = logits - pt.logsumexp(logits, axis=1, keepdims=True)
    log_init = -pt.log(pt.cast(mu.shape[0], "float64")) * pt.ones_like(mu)
    value = loglik_fn(log_init, log_trans, le)
    params = [mu, log_sigma, logits]
    return [y, *params], [value, *pytensor.grad(value, params)]


def _problem(K, T, seed=0):
    rng = np.random.default_rng(seed + 31 * K + T)
    mu = np.linspace(-2.0, 2.0, K)
    stay = 0.95
    P = np.full((K, K), (1 - stay) / (K - 1))
    np.fill_diagonal(P, stay)
    s = np.empty(T, dtype=int)
    s[0] = rng.integers(K)
    for t in range(1, T):
        s[t] = rng.choice(K, p=P[s[t - 1]])
    y = rng.normal(mu[s], 0.6)
    params = [mu + 0.1, np.full(K, np.log(0.7)), np.log(P)]
    # the HMM part's numeric inputs for the numpy reference and the forward-pass floor
    le = -0.5 * ((y[:, None] - params[0]) / 0.7) ** 2 - np.log(0.7) - 0.5 * np.log(2 * np.pi)
    lt = params[2] - np.log(np.exp(params[2]).sum(axis=1, keepdims=True))
    li = np.full(K, -np.log(K))
    return y, params, (li, lt, le)


def _time_call(fn, budget):
    """Median seconds per call over 7 repeats, each of enough calls to take about ``budget`` s."""
    fn()  # warm-up (JIT, caches)
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(budget / one))
    reps = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        reps.append((time.perf_counter() - t0) / n)
    return statistics.median(reps)


def bench_calls(quick: bool, skip_scan: bool) -> list[dict]:
    Ks = [2, 9] if quick else [2, 4, 9]
    Ts = [200, 800] if quick else [200, 800, 3200]
    budget = 0.03 if quick else 0.1

    compile_s = {}
    fns = {}
    for name, fn, mode in [
        ("op", hmm_logp, None),
        ("op_numba", hmm_logp, "NUMBA"),
        ("scan", scan_loglik, None),
    ]:
        if name == "scan" and skip_scan:
            continue
        t0 = time.perf_counter()
        inputs, outputs = _model_graph(fn)
        fns[name] = pytensor.function(inputs, outputs, mode=mode)
        y, params, _ = _problem(2, 50)
        fns[name](y, *params)  # first call (numba JIT for NUMBA mode)
        compile_s[name] = time.perf_counter() - t0

    rows = []
    for K in Ks:
        for T in Ts:
            y, params, (li, lt, le) = _problem(K, T)
            lt3 = as_3d(lt)
            # all implementations agree before we time them
            ref = smoother_np(li, lt, le).loglik
            for name, f in fns.items():
                got = float(f(y, *params)[0])
                assert abs(got - ref) < 1e-8 * max(1.0, abs(ref)), (name, K, T, got, ref)
            row = {"K": K, "T": T}
            for name, f in fns.items():
                row[name] = _time_call(lambda f=f, a=(y, *params): f(*a), budget)
            row["numpy"] = _time_call(
                lambda a=(li, lt, le): smoother_np(*a), budget if T < 3200 else 0.3
            )
            row["fwd"] = _time_call(lambda a=(li, lt3, le): forward_loglik(*a), budget)
            rows.append(row)
    _print_calls(rows, compile_s)
    return rows


def _print_calls(rows, compile_s):
    cols = [c for c in ("op", "op_numba", "scan", "numpy", "fwd") if c in rows[0]]
    head = "|  K |    T | " + " | ".join(f"{c + ' ms':>11}" for c in cols)
    head += " | op/fwd | op_numba/fwd | scan/op |"
    print("\nlogp + gradient per call (median of 7 repeats; ms)\n")
    print(head)
    print("|" + "|".join("-" * len(part) for part in head.split("|")[1:-1]) + "|")
    for r in rows:
        cells = " | ".join(f"{r[c] * 1e3:11.3f}" for c in cols)
        scan_ratio = f"{r['scan'] / r['op']:7.1f}" if "scan" in r else "    n/a"
        print(
            f"| {r['K']:2d} | {r['T']:4d} | {cells} | {r['op'] / r['fwd']:6.2f} | "
            f"{r['op_numba'] / r['fwd']:12.2f} | {scan_ratio} |"
        )
    print("\nfirst compile + call (s): " + ", ".join(f"{k} {v:.1f}" for k, v in compile_s.items()))


# --- part 2: a two-regime fit -----------------------------------------------------------------------


def _gnp_data():
    try:
        from statsmodels.tsa.regime_switching.tests.test_markov_autoregression import rgnp

        return np.asarray(rgnp, dtype=float), "Hamilton rgnp (statsmodels), T = 135"
    except Exception:  # pragma: no cover - statsmodels test data missing
        rng = np.random.default_rng(0)
        s = np.zeros(300, dtype=int)
        for t in range(1, 300):
            s[t] = s[t - 1] if rng.random() < 0.9 else 1 - s[t - 1]
        return rng.normal(np.array([-0.4, 1.2])[s], 0.8), "simulated switching mean, T = 300"


def _switching_model(y, use_scan: bool):
    import pymc as pm

    with pm.Model() as model:
        mu = pm.Normal(
            "mu",
            mu=[-0.5, 1.0],
            sigma=2.0,
            shape=2,
            transform=pm.distributions.transforms.ordered,  # label-switching guard
            initval=np.array([-0.3, 1.0]),
        )
        sigma = pm.HalfNormal("sigma", 2.0, initval=0.8)
        p = pm.Dirichlet(
            "p", a=np.array([[4.0, 1.0], [1.0, 4.0]]), initval=np.array([[0.8, 0.2], [0.1, 0.9]])
        )
        le = pm.logp(pm.Normal.dist(mu[None, :], sigma), y[:, None])
        log_init = pt.as_tensor_variable(np.log([0.5, 0.5]))
        fn = scan_loglik if use_scan else hmm_logp
        pm.Potential("loglik", fn(log_init, pt.log(p), le))
    return model


def _summarise(idata, wall, compile_s):
    import arviz as az

    post = idata.posterior[["mu", "sigma", "p"]]
    ess = az.ess(post, method="bulk")
    rhat = az.rhat(post)
    min_ess = min(float(ess[v].min()) for v in ess.data_vars)
    max_rhat = max(float(rhat[v].max()) for v in rhat.data_vars)
    div = int(idata.sample_stats["diverging"].sum())
    means = {
        v: np.round(post[v].mean(("chain", "draw")).values, 3).tolist() for v in ("mu", "sigma")
    }
    return {
        "wall": wall,
        "compile": compile_s,
        "min_ess": min_ess,
        "ess_s": min_ess / wall,
        "rhat": max_rhat,
        "div": div,
        "means": means,
    }


def fit_pymc(y, use_scan, seed, draws, tune, chains):
    import pymc as pm

    t0 = time.perf_counter()
    model = _switching_model(y, use_scan)
    model.logp_dlogp_function(ravel_inputs=True)  # the compile PyMC's NUTS will do (cached after)
    compile_s = time.perf_counter() - t0
    with model:
        idata = pm.sample(
            draws,
            tune=tune,
            chains=chains,
            cores=2,
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
        )
    wall = time.perf_counter() - t0
    return _summarise(idata, wall, compile_s)


def fit_nutpie(y, seed, draws, tune, chains):
    import nutpie

    t0 = time.perf_counter()
    model = _switching_model(y, use_scan=False)
    compiled = nutpie.compile_pymc_model(model, backend="numba")
    compile_s = time.perf_counter() - t0
    idata = nutpie.sample(
        compiled, draws=draws, tune=tune, chains=chains, cores=2, seed=seed, progress_bar=False
    )
    wall = time.perf_counter() - t0
    return _summarise(idata, wall, compile_s)


def bench_fit(skip_scan: bool, seeds: list[int], quick: bool) -> dict:
    y, label = _gnp_data()
    draws = tune = 300 if quick else 1000
    chains = 4
    print(
        f"\nTwo-regime switching mean: {label}; {chains} chains x ({tune} tune + {draws} draws)\n"
    )
    results = {}
    for seed in seeds:
        results[("pymc-op", seed)] = fit_pymc(y, False, seed, draws, tune, chains)
        results[("nutpie-op", seed)] = fit_nutpie(y, seed, draws, tune, chains)
    if not skip_scan:
        results[("pymc-scan", seeds[0])] = fit_pymc(y, True, seeds[0], draws, tune, chains)
    head = (
        "| sampler   | seed | wall s | compile s | min bulk ESS | ESS/s | max r-hat | divergences |"
    )
    print(head)
    print(
        "|-----------|------|--------|-----------|--------------|-------|-----------|-------------|"
    )
    for (name, seed), r in results.items():
        print(
            f"| {name:9s} | {seed:4d} | {r['wall']:6.1f} | {r['compile']:9.1f} | "
            f"{r['min_ess']:12.0f} | {r['ess_s']:5.1f} | {r['rhat']:9.3f} | {r['div']:11d} |"
        )
    print(
        "\nposterior means: " + "; ".join(f"{k[0]}/{k[1]} {r['means']}" for k, r in results.items())
    )
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced grid and a short fit")
    parser.add_argument("--skip-scan", action="store_true", help="skip the slow scan fit")
    parser.add_argument("--skip-fit", action="store_true", help="timing table only")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="seeds of the Op fits")
    args = parser.parse_args(argv)

    rows = bench_calls(args.quick, skip_scan=False)
    target = next((r for r in rows if r["K"] == 9 and r["T"] == 800), None)
    fits = None if args.skip_fit else bench_fit(args.skip_scan, args.seeds, args.quick)

    print("\nTargets")
    if target is not None:
        ratio_fwd = target["op"] / target["fwd"]
        ratio_scan = target["scan"] / target["op"]
        print(
            f"  K=9, T=800: op / forward pass = {ratio_fwd:.2f} (target <= 3): "
            f"{'met' if ratio_fwd <= 3 else 'NOT met'}"
        )
        print(
            f"  K=9, T=800: scan / op = {ratio_scan:.1f} (target >= 10): "
            f"{'met' if ratio_scan >= 10 else 'NOT met'}"
        )
    if fits and ("pymc-scan", args.seeds[0]) in fits:
        scan = fits[("pymc-scan", args.seeds[0])]
        for name in ("pymc-op", "nutpie-op"):
            runs = [r for (n, _), r in fits.items() if n == name]
            worst = min(r["ess_s"] for r in runs)
            div = sum(r["div"] for r in runs)
            ok = worst >= 5 * scan["ess_s"] and div == 0
            print(
                f"  fit {name}: worst ESS/s {worst:.1f} vs scan {scan['ess_s']:.1f} "
                f"= {worst / scan['ess_s']:.1f}x (target >= 5x), divergences {div}: "
                f"{'met' if ok else 'NOT met'}"
            )
    print("\n(timings are wall-clock on a shared machine; other processes may have used the CPU)")


if __name__ == "__main__":
    main()

"""Fast checks of the Markov-switching regression: statsmodels at the same parameters, brute force on
tiny cases, NumPy vs PyTensor arrays, priors, ordering, results and forecasts (no sampling)."""

from __future__ import annotations

import ast
import dataclasses
import itertools
import re
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from optional import optional_import, require
from scipy import integrate, stats

from regimecast.errors import ConfigError, DataError
from regimecast.hmm import hmm_filter, hmm_smoother
from regimecast.models import (
    MarkovSwitchingRegression,
    MarkovSwitchingResults,
    SwitchingPrior,
    build_switching_model,
    duration_concentrations,
    predict_regime_probabilities,
    summarise_forecast,
    switching_data,
)
from regimecast.models.switching_arrays import (
    expanded_mask,
    expanded_states,
    hmm_inputs,
    marginal_regime,
)

# statsmodels is a test dependency: the tests that use it call require() (fail under CI=true)
sm_ms = optional_import("statsmodels.tsa.regime_switching")
if sm_ms is not None:
    from statsmodels.tools import add_constant
    from statsmodels.tsa.regime_switching.markov_autoregression import MarkovAutoregression
    from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

TOL = 1e-8
SM_TESTS = Path(sm_ms.__file__).parent / "tests" if sm_ms is not None else None


def sm_test_array(module: str, name: str) -> np.ndarray:
    """A data array defined at the top of an installed statsmodels test module (parsed, not imported:
    importing it would register statsmodels' own pytest markers)."""
    tree = ast.parse((SM_TESTS / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == name for t in node.targets
        ):
            expr = compile(ast.Expression(node.value), str(SM_TESTS / module), "eval")
            return np.asarray(eval(expr, {"np": np}), dtype=float)  # installed statsmodels source
    raise KeyError(f"{name} not found in statsmodels' {module}.py")


class _Data:
    def __getattr__(self, name):
        module = (
            "test_markov_autoregression" if name in {"rgnp", "rec"} else "test_markov_regression"
        )
        return sm_test_array(module, name)


sm_reg = sm_ar = _Data()


# --------------------------------------------------------------------------------------------------
# statsmodels parameters -> our parameter dict


def sm_params_to_ours(mod, params, spec: MarkovSwitchingRegression) -> dict[str, np.ndarray]:
    """Map a statsmodels parameter vector (by its param_names) to our variables."""
    k = spec.k_regimes
    names = list(mod.param_names)
    params = np.asarray(params, dtype=float)
    out: dict[str, np.ndarray] = {}
    trans = np.zeros((k, k))
    tvtp: dict[tuple[int, int, int], float] = {}
    const, sigma2, exog, ar = {}, {}, {}, {}
    for name, v in zip(names, params, strict=True):
        if m := re.fullmatch(r"p\[(\d+)->(\d+)\](?:\.tvtp(\d+))?", name):
            i, j = int(m[1]), int(m[2])
            if m[3] is None:
                trans[i, j] = v
            else:
                tvtp[(i, j, int(m[3]))] = v
        elif m := re.fullmatch(r"const(?:\[(\d+)\])?", name):
            const[int(m[1] or 0)] = v
        elif m := re.fullmatch(r"sigma2(?:\[(\d+)\])?", name):
            sigma2[int(m[1] or 0)] = v
        elif m := re.fullmatch(r"ar\.L(\d+)(?:\[(\d+)\])?", name):
            ar[(int(m[2] or 0), int(m[1]) - 1)] = v
        elif m := re.fullmatch(r"x(\d+)(?:\[(\d+)\])?", name):
            exog[(int(m[2] or 0), int(m[1]) - 1)] = v
        else:  # pragma: no cover
            raise AssertionError(f"unmapped statsmodels parameter {name}")
    if tvtp:
        q = max(c for _, _, c in tvtp) + 1
        coef = np.zeros((k, k - 1, q))
        for (i, j, c), v in tvtp.items():
            coef[i, j, c] = v
        out["tvtp_coef"] = coef
    else:
        trans[:, k - 1] = 1.0 - trans[:, : k - 1].sum(axis=1)
        out["transition"] = trans
    if const:
        c = np.array([const[i] for i in sorted(const)])
        out["const"] = c if spec.switching_trend else c[0]
    s = np.sqrt(np.array([sigma2[i] for i in sorted(sigma2)]))
    out["sigma"] = s if spec.switching_variance else s[0]
    for name, d, switching in (
        ("ar", ar, spec.switching_ar),
        ("exog_coef", exog, spec.switching_exog),
    ):
        if d:
            nk = max(r for r, _ in d) + 1
            arr = np.zeros((nk, max(j for _, j in d) + 1))
            for (r, j), v in d.items():
                arr[r, j] = v
            out[name] = arr if switching else arr[0]
    return out


def _filardo():
    path = SM_TESTS / "results" / "mar_filardo.csv"
    frame = pd.read_csv(path)
    endog = frame["dlip"].iloc[1:].to_numpy()
    exog_tvtp = add_constant(frame["dmdlleading"].iloc[:-1].to_numpy())
    return endog, exog_tvtp


def _case(name):
    """(statsmodels model, its parameters, our spec, endog, exog, exog_tvtp) from statsmodels' tests."""
    ff, ogap, inf = np.asarray(sm_reg.fedfunds), np.asarray(sm_reg.ogap), np.asarray(sm_reg.inf)
    rgnp, rec = np.asarray(sm_ar.rgnp), np.asarray(sm_ar.rec)
    if name == "fedfunds_switching_mean":
        p = np.r_[0.9820939, 0.0503587, 3.70877, 9.556793, 2.107562**2]
        return MarkovRegression(ff, k_regimes=2), p, MarkovSwitchingRegression(2), ff, None, None
    if name == "fedfunds_3regimes_exog":
        p = np.r_[
            0.7253684,
            0.1641252,
            0.6178282,
            0.2564055,
            0.7994204,
            0.3821718,
            0.5261292,
            -0.0034106,
            0.6015991,
            0.8464551,
            0.9690088,
            0.4178913,
            0.1201952,
            0.0464136,
            0.1075357,
            -0.0425603,
            0.1298906,
            0.9099168,
            0.438375**2,
        ]
        exog = np.c_[ff[3:-1], ogap[4:], inf[4:]]
        return (
            MarkovRegression(ff[4:], k_regimes=3, exog=exog),
            p,
            MarkovSwitchingRegression(3, switching_exog=True),
            ff[4:],
            exog,
            None,
        )
    if name == "areturns_switching_variance":
        ar_ = np.asarray(sm_reg.areturns)
        p = np.r_[
            0.7530865,
            0.6825357,
            0.7641424,
            1.972771,
            0.0790744,
            0.527953,
            0.5895792**2,
            1.605333**2,
        ]
        mod = MarkovRegression(ar_[1:], k_regimes=2, exog=ar_[:-1], switching_variance=True)
        spec = MarkovSwitchingRegression(2, switching_exog=True, switching_variance=True)
        return mod, p, spec, ar_[1:], ar_[:-1], None
    if name == "mumpspc_variance_only":
        mu = np.asarray(sm_reg.mumpspc)
        p = np.r_[0.762733, 0.1473767, 0.420275, 0.9847369, 0.0562405**2, 0.2611362**2]
        mod = MarkovRegression(
            mu[1:], k_regimes=2, trend="n", exog=mu[:-1], switching_variance=True
        )
        spec = MarkovSwitchingRegression(2, trend="n", switching_exog=True, switching_variance=True)
        return mod, p, spec, mu[1:], mu[:-1], None
    if name == "hamilton_ar4":
        p = np.r_[
            0.754673,
            0.095915,
            -0.358811,
            1.163516,
            np.exp(-0.262658) ** 2,
            0.013486,
            -0.057521,
            -0.246983,
            -0.212923,
        ]
        return (
            MarkovAutoregression(rgnp, k_regimes=2, order=4, switching_ar=False),
            p,
            MarkovSwitchingRegression(2, order=4),
            rgnp,
            None,
            None,
        )
    if name == "hamilton_ar2_switching_ar":
        p = np.r_[
            0.3812383,
            0.3564492,
            -0.0055216,
            1.195482,
            0.6677098**2,
            0.3710719,
            0.4621503,
            0.7002937,
            -0.3206652,
        ]
        return (
            MarkovAutoregression(rgnp, k_regimes=2, order=2),
            p,
            MarkovSwitchingRegression(2, order=2, switching_ar=True),
            rgnp,
            None,
            None,
        )
    if name == "hamilton_ar1_tvtp":
        p = np.r_[
            6.564923,
            7.846371,
            -8.064123,
            -15.37636,
            1.027190,
            -0.719760,
            np.exp(-0.217003) ** 2,
            0.161489,
            0.022536,
        ]
        x = np.c_[np.ones(len(rgnp)), rec]
        return (
            MarkovAutoregression(rgnp, k_regimes=2, order=1, exog_tvtp=x),
            p,
            MarkovSwitchingRegression(2, order=1, switching_ar=True, exog_tvtp=True),
            rgnp,
            None,
            x,
        )
    if name == "filardo_ar4_tvtp":
        endog, x = _filardo()
        p = np.r_[
            4.35941747,
            -1.6493936,
            1.7702123,
            0.9945672,
            0.517298,
            -0.865888,
            np.exp(-0.362469) ** 2,
            0.189474,
            0.079344,
            0.110944,
            0.122251,
        ]
        return (
            MarkovAutoregression(endog, k_regimes=2, order=4, switching_ar=False, exog_tvtp=x),
            p,
            MarkovSwitchingRegression(2, order=4, exog_tvtp=True),
            endog,
            None,
            x,
        )
    raise KeyError(name)


CASES = [
    "fedfunds_switching_mean",
    "fedfunds_3regimes_exog",
    "areturns_switching_variance",
    "mumpspc_variance_only",
    "hamilton_ar4",
    "hamilton_ar2_switching_ar",
    "hamilton_ar1_tvtp",
    "filardo_ar4_tvtp",
]


@pytest.mark.parametrize("name", CASES)
def test_matches_statsmodels_at_same_parameters(name):
    require("statsmodels")
    mod, sm_p, spec, endog, exog, exog_tvtp = _case(name)
    res = mod.smooth(sm_p)
    data = spec.prepare(endog, exog, exog_tvtp)
    params = sm_params_to_ours(mod, sm_p, spec)
    sm_out = hmm_smoother(*hmm_inputs(np, params, data, spec))
    k, p = spec.k_regimes, spec.order
    assert data.n_obs == mod.nobs
    assert abs(sm_out.loglik - res.llf) < TOL * max(1.0, abs(res.llf))
    np.testing.assert_allclose(
        marginal_regime(sm_out.filtered, k, p),
        res.filtered_marginal_probabilities,
        atol=TOL,
        rtol=0,
    )
    np.testing.assert_allclose(
        marginal_regime(sm_out.smoothed, k, p),
        res.smoothed_marginal_probabilities,
        atol=TOL,
        rtol=0,
    )


def test_numpy_and_pytensor_arrays_agree():
    require("statsmodels")
    for name in ("fedfunds_3regimes_exog", "hamilton_ar2_switching_ar", "filardo_ar4_tvtp"):
        mod, sm_p, spec, endog, exog, exog_tvtp = _case(name)
        data = spec.prepare(endog, exog, exog_tvtp)
        params = sm_params_to_ours(mod, sm_p, spec)
        sym = {k: pt.as_tensor_variable(np.asarray(v)).type() for k, v in params.items()}
        outs = hmm_inputs(pt, sym, data, spec)
        fn = pytensor.function(list(sym.values()), list(outs))
        got = fn(*[np.asarray(v) for v in params.values()])
        for a, b in zip(got, hmm_inputs(np, params, data, spec), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-12, rtol=1e-12)


def test_model_potential_equals_statsmodels_llf_and_gradient_finite():
    require("statsmodels")
    mod, sm_p, spec, endog, exog, exog_tvtp = _case("hamilton_ar4")
    model = build_switching_model(endog, spec)
    params = sm_params_to_ours(mod, sm_p, spec)
    repl = {model[name]: pt.as_tensor_variable(v) for name, v in params.items()}
    pot = pytensor.graph.replace.graph_replace(model.potentials[0], repl, strict=False)
    assert abs(float(pot.eval()) - mod.smooth(sm_p).llf) < 1e-8
    ip = model.initial_point()
    assert np.isfinite(model.compile_logp()(ip))
    assert np.all(np.isfinite(model.compile_dlogp()(ip)))


# --------------------------------------------------------------------------------------------------
# expanded state space vs brute force


def _brute_force(y, spec, params, exog_tvtp=None):
    """Enumerate every regime path of the original series (K**T paths) straight from the model."""
    k, p = spec.k_regimes, spec.order
    t_full = len(y)
    if spec.exog_tvtp:
        eta = np.einsum("tq,ijq->tij", exog_tvtp, params["tvtp_coef"])
        eta = np.concatenate([eta, np.zeros((t_full, k, 1))], axis=2)
        trans = np.exp(eta - np.log(np.exp(eta).sum(axis=2, keepdims=True)))
    else:
        trans = np.repeat(params["transition"][None], t_full, axis=0)
    w, v = np.linalg.eig(trans[0].T)
    pi0 = np.real(v[:, np.argmin(np.abs(w - 1))])
    pi0 = pi0 / pi0.sum()
    mu = params["const"] * np.ones(k)
    sig = params["sigma"] * np.ones(k)
    ar = params.get("ar")
    ar = None if ar is None else (ar if spec.switching_ar else np.tile(ar, (k, 1)))
    paths = np.array(list(itertools.product(range(k), repeat=t_full)))
    score = np.log(pi0[paths[:, 0]])
    for s in range(1, t_full):
        score = score + np.log(trans[s, paths[:, s - 1], paths[:, s]])
    per_time = np.zeros((len(paths), t_full - p))
    for t in range(p, t_full):
        st = paths[:, t]
        m = mu[st].copy()
        for j in range(1, p + 1):
            m = m + ar[st, j - 1] * (y[t - j] - mu[paths[:, t - j]])
        if np.isfinite(y[t]) and all(np.isfinite(y[t - j]) for j in range(1, p + 1)):
            per_time[:, t - p] = stats.norm.logpdf(y[t], m, sig[st])
    score = score + per_time.sum(axis=1)
    ll = np.logaddexp.reduce(score)
    wts = np.exp(score - ll)
    smoothed = np.zeros((t_full - p, k))
    for t in range(p, t_full):
        np.add.at(smoothed[t - p], paths[:, t], wts)
    return ll, smoothed


@pytest.mark.parametrize(
    "spec,tvtp",
    [
        (MarkovSwitchingRegression(2, order=2, switching_variance=True), False),
        (MarkovSwitchingRegression(3, order=1, switching_ar=True), False),
        (MarkovSwitchingRegression(2, order=2, exog_tvtp=True), True),
    ],
)
def test_expanded_state_filter_matches_brute_force(spec, tvtp, monkeypatch):
    monkeypatch.setattr(switching_data, "MIN_EFFECTIVE_OBS", 3)  # tiny series on purpose
    rng = np.random.default_rng(3)
    k, p = spec.k_regimes, spec.order
    t_full = 8 if k == 2 else 6
    y = rng.normal(size=t_full) + np.linspace(0, 2, t_full)
    y[4] = np.nan  # missing: the emissions that use y[4] are dropped
    params = {
        "const": np.sort(rng.normal(size=k)) * 2,
        "sigma": 0.5 + rng.random(k) if spec.switching_variance else 0.8,
    }
    params["ar"] = rng.uniform(-0.5, 0.5, size=(k, p) if spec.switching_ar else p)
    x = None
    if tvtp:
        x = np.c_[np.ones(t_full), rng.normal(size=t_full)]
        params["tvtp_coef"] = rng.normal(size=(k, k - 1, 2))
    else:
        trans = rng.dirichlet(np.ones(k) * 2, size=k) + 2 * np.eye(k)
        params["transition"] = trans / trans.sum(axis=1, keepdims=True)
    data = spec.prepare(y, exog_tvtp=x)
    ll, smoothed = _brute_force(y, spec, params, x)
    out = hmm_smoother(*hmm_inputs(np, params, data, spec))
    assert abs(out.loglik - ll) < 1e-10
    np.testing.assert_allclose(marginal_regime(out.smoothed, k, p), smoothed, atol=1e-10)


def test_expanded_states_and_mask():
    s = expanded_states(3, 2)
    assert s.shape == (27, 3) and np.array_equal(s[5], [0, 1, 2])
    mask = expanded_mask(3, 2)
    allowed = np.isfinite(mask)
    assert np.all(allowed.sum(axis=1) == 3)  # one successor per next regime
    for e, f in zip(*np.nonzero(allowed), strict=True):
        assert np.array_equal(s[f, 1:], s[e, :-1])


def test_missing_values_zero_the_emissions_that_use_them():
    y = np.sin(np.arange(30.0))
    y[10] = np.nan
    spec = MarkovSwitchingRegression(2, order=2)
    data = spec.prepare(y)
    params = {
        "transition": np.array([[0.9, 0.1], [0.2, 0.8]]),
        "const": np.array([-1.0, 1.0]),
        "sigma": 1.0,
        "ar": np.array([0.3, -0.1]),
    }
    le = hmm_inputs(np, params, data, spec)[2]
    zero_rows = np.flatnonzero(np.all(le == 0, axis=1))
    assert list(zero_rows + 2) == [10, 11, 12]  # y_10 and the two observations that lag it
    assert np.isfinite(hmm_filter(*hmm_inputs(np, params, data, spec)).loglik)


# --------------------------------------------------------------------------------------------------
# priors and ordering


def test_duration_prior_mapping():
    alpha = duration_concentrations((24, 6), strength=20.0)
    np.testing.assert_allclose(alpha.sum(axis=1), 20.0)
    for k, d in enumerate((24, 6)):
        a, b = alpha[k, k], alpha[k].sum() - alpha[k, k]
        # E[1 / (1 - p_kk)] with 1 - p_kk ~ Beta(b, a)
        mean_dur = integrate.quad(lambda x, a=a, b=b: stats.beta.pdf(x, b, a) / x, 0, 1)[0]
        assert mean_dur == pytest.approx(d, rel=1e-6)
    three = duration_concentrations((10, 5, 2))
    assert three[0, 1] == three[0, 2]
    prior = SwitchingPrior(expected_duration=(24, 6))
    np.testing.assert_allclose(prior.transition_alpha(2), alpha)
    model = build_switching_model(
        np.random.default_rng(0).normal(size=50), MarkovSwitchingRegression(2, prior=prior)
    )
    np.testing.assert_allclose(model["transition"].owner.inputs[-1].eval(), alpha)


@pytest.mark.parametrize(
    "spec,var",
    [
        (MarkovSwitchingRegression(3), "const"),
        (MarkovSwitchingRegression(2, switching_trend=False, switching_variance=True), "sigma"),
    ],
)
def test_ordering_constraint(spec, var):
    assert spec.ordered_parameter == var
    model = build_switching_model(np.random.default_rng(0).normal(size=60), spec)
    fn = model.compile_fn(
        model.replace_rvs_by_values([model[var]])[0],
        inputs=model.value_vars,
        on_unused_input="ignore",
        point_fn=False,
    )
    rng = np.random.default_rng(1)
    ip = model.initial_point()
    for _ in range(50):
        vals = [rng.normal(scale=1.5, size=np.shape(ip[v.name])) for v in model.value_vars]
        out = fn(*vals)
        assert np.all(np.diff(out) > 0)
        if var == "sigma":
            assert np.all(out > 0)


def test_no_ordering_when_nothing_suitable_switches():
    spec = MarkovSwitchingRegression(2, order=1, switching_trend=False, switching_ar=True)
    assert spec.ordered_parameter is None


# --------------------------------------------------------------------------------------------------
# results and forecasts on a hand-made posterior (no sampling)


def fake_results(spec, endog, draws, exog=None, exog_tvtp=None) -> MarkovSwitchingResults:
    """Results whose 'posterior' is the given list of parameter dicts (one chain)."""
    data = spec.prepare(endog, exog, exog_tvtp)
    model = build_switching_model(data, spec)
    post = {
        name: np.stack([np.asarray(d[name], dtype=float) for d in draws])[None] for name in draws[0]
    }
    if "transition" in post:
        post["expected_duration"] = 1 / (1 - np.diagonal(post["transition"], axis1=-2, axis2=-1))
    dims = {k: list(v) for k, v in model.named_vars_to_dims.items() if k in post}
    idata = az.from_dict(posterior=post, coords=model.coords, dims=dims)
    return MarkovSwitchingResults(spec, data, idata)


def _series(n=120, seed=0):
    rng = np.random.default_rng(seed)
    s = (np.arange(n) // 30) % 2
    idx = pd.date_range("2000-01-31", periods=n, freq="ME")
    return pd.Series(np.where(s == 1, 3.0, -1.0) + rng.normal(size=n), index=idx, name="y")


def test_results_probabilities_match_statsmodels_when_draws_coincide():
    require("statsmodels")
    mod, sm_p, spec, endog, exog, exog_tvtp = _case("hamilton_ar1_tvtp")
    params = sm_params_to_ours(mod, sm_p, spec)
    res = fake_results(spec, endog, [params, params], exog, exog_tvtp)
    smres = mod.smooth(sm_p)
    probs = res.regime_probabilities()
    assert probs["smoothed_regime"].dims == ("stat", "time", "regime")
    for stat in ("mean", "lower", "upper"):
        np.testing.assert_allclose(
            probs["smoothed_regime"].sel(stat=stat),
            smres.smoothed_marginal_probabilities,
            atol=1e-8,
        )
        np.testing.assert_allclose(
            probs["filtered_regime"].sel(stat=stat),
            smres.filtered_marginal_probabilities,
            atol=1e-8,
        )
    dur = res.expected_duration_draws()
    assert dur.dims == ("sample", "time", "regime")
    np.testing.assert_allclose(dur.values[0], smres.expected_durations, rtol=1e-8)
    band = res.expected_durations()
    assert band.dims == ("stat", "time", "regime")
    np.testing.assert_allclose(band.sel(stat="upper"), smres.expected_durations, rtol=1e-8)


def test_results_outputs_shapes_and_summary():
    y = _series()
    spec = MarkovSwitchingRegression(2, regime_names=("low", "high"))
    draws = [
        {
            "transition": np.array([[0.95, 0.05], [0.1, 0.9]]),
            "const": np.array([-1.0, 3.0]),
            "sigma": 1.0,
        },
        {
            "transition": np.array([[0.9, 0.1], [0.05, 0.95]]),
            "const": np.array([-0.8, 2.9]),
            "sigma": 1.1,
        },
    ]
    res = fake_results(spec, y, draws)
    probs = res.regime_probabilities()
    assert list(probs["regime"].values) == ["low", "high"]
    assert (probs["time"].values == y.index.values).all()
    np.testing.assert_allclose(probs["smoothed_regime"].sel(stat="mean").sum("regime"), 1.0)
    dur = res.expected_duration_draws()
    np.testing.assert_allclose(dur.values[:, 0], [20.0, 10.0])
    np.testing.assert_allclose(res.expected_durations().sel(stat="mean"), [15.0, 15.0])
    paths = res.sample_regime_paths(200, random_seed=5)
    assert paths.dims == ("chain", "draw", "path", "time") and paths.shape == (1, 2, 200, len(y))
    freq = (paths.values[0, 0] == 1).mean(axis=0)
    sm = res.regime_probability_draws()["smoothed_regime"].values[0, :, 1]
    assert np.all(np.abs(freq - sm) <= 4 * np.sqrt(sm * (1 - sm) / 200) + 1e-9)
    assert np.array_equal(paths, res.sample_regime_paths(200, random_seed=5))
    summ = res.summary()
    assert isinstance(summ, pd.DataFrame) and "transition[low, high]" in summ.index


def test_forecast_shapes_probabilities_and_reproducibility():
    y = _series()
    spec = MarkovSwitchingRegression(2, order=1)
    draws = [
        {
            "transition": np.array([[0.95, 0.05], [0.1, 0.9]]),
            "const": np.array([-1.0, 3.0]),
            "sigma": 1.0,
            "ar": np.array([0.2]),
        }
    ] * 3
    res = fake_results(spec, y, draws)
    fc = res.forecast(12, random_seed=7, n_paths_per_draw=50)
    assert fc["regime_probability"].shape == (1, 3, 12, 2)
    assert fc["y"].shape == fc["regime_path"].shape == (1, 3, 50, 12)
    assert fc["date"].values[0] == pd.Timestamp("2010-01-31")
    np.testing.assert_allclose(fc["regime_probability"].sum("regime"), 1.0)
    fc2 = res.forecast(12, random_seed=7, n_paths_per_draw=50)
    xr_equal = all(np.array_equal(fc[v].values, fc2[v].values) for v in fc.data_vars)
    assert xr_equal
    assert not np.array_equal(
        res.forecast(12, random_seed=8, n_paths_per_draw=50)["y"].values, fc["y"].values
    )
    summ = summarise_forecast(fc)
    assert summ["y"].dims == ("stat", "step") and summ["regime_probability"].dims == (
        "stat",
        "step",
        "regime",
    )
    np.testing.assert_allclose(summ["regime_frequency"].sum("regime"), 1.0)


def test_forecast_step_one_from_degenerate_state_is_transition_row():
    p = np.array([[0.7, 0.2, 0.1], [0.05, 0.9, 0.05], [0.3, 0.3, 0.4]])
    out = predict_regime_probabilities(np.array([0.0, 0.0, 1.0]), np.log(p), 3)
    np.testing.assert_allclose(out[0], p[2])
    np.testing.assert_allclose(out[2], p[2] @ p @ p)
    # through the results: the last observation pins regime "high" (means far apart, small sigma)
    y = np.r_[np.zeros(20), 10.0 * np.ones(20)]
    spec = MarkovSwitchingRegression(2)
    trans = np.array([[0.8, 0.2], [0.3, 0.7]])
    res = fake_results(
        spec, y, [{"transition": trans, "const": np.array([0.0, 10.0]), "sigma": 0.1}]
    )
    fc = res.forecast(2, random_seed=1, n_paths_per_draw=4000)
    np.testing.assert_allclose(fc["regime_probability"].values[0, 0, 0], trans[1], atol=1e-12)
    share = (fc["regime_path"].values[0, 0, :, 0] == 1).mean()
    assert abs(share - 0.7) < 4 * np.sqrt(0.21 / 4000)
    ys = fc["y"].values[0, 0, :, 0]
    assert abs(ys.mean() - (0.3 * 0 + 0.7 * 10)) < 0.5


def test_forecast_tvtp_and_exog_need_future_values():
    y = _series(80)
    rng = np.random.default_rng(2)
    x = pd.DataFrame({"x": rng.normal(size=80)}, index=y.index)
    z = np.c_[np.ones(80), rng.normal(size=80)]
    spec = MarkovSwitchingRegression(2, exog_tvtp=True, switching_exog=False)
    draw = {
        "tvtp_coef": np.array([[[3.0, 0.5]], [[-3.0, 0.2]]]),
        "const": np.array([-1.0, 3.0]),
        "exog_coef": np.array([0.5]),
        "sigma": 1.0,
    }
    res = fake_results(spec, y, [draw], exog=x, exog_tvtp=z)
    with pytest.raises(DataError, match="exog_tvtp"):
        res.forecast(3, random_seed=0, exog=np.zeros((3, 1)))
    with pytest.raises(DataError, match="regressors"):
        res.forecast(3, random_seed=0, exog_tvtp=np.c_[np.ones(3), np.zeros(3)])
    fc = res.forecast(
        3, random_seed=0, exog=np.zeros((3, 1)), exog_tvtp=np.c_[np.ones(3), np.zeros(3)]
    )
    np.testing.assert_allclose(fc["regime_probability"].sum("regime"), 1.0)


# --------------------------------------------------------------------------------------------------
# spec and input validation


def test_spec_is_frozen_and_fit_inputs_do_not_mutate_it():
    spec = MarkovSwitchingRegression(2, order=1)
    before = dataclasses.replace(spec)
    build_switching_model(_series(), spec)
    assert spec == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.order = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"k_regimes": 1}, "k_regimes must be >= 2"),
        ({"k_regimes": 2, "order": -1}, "order"),
        ({"k_regimes": 2, "trend": "x"}, "trend"),
        ({"k_regimes": 2, "ordering": "sigma"}, "switching_variance"),
        ({"k_regimes": 2, "switching_ar": True}, "order >= 1"),
        ({"k_regimes": 3, "prior": SwitchingPrior(expected_duration=(10, 5))}, "expected_duration"),
        (
            {"k_regimes": 2, "exog_tvtp": True, "prior": SwitchingPrior(expected_duration=(10, 5))},
            "exog_tvtp",
        ),
    ],
)
def test_bad_spec_raises_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        MarkovSwitchingRegression(**kwargs)


def test_bad_prior_raises_config_error():
    with pytest.raises(ConfigError, match="> 1 period"):
        SwitchingPrior(expected_duration=(0.5, 4))
    with pytest.raises(ConfigError, match="initial"):
        SwitchingPrior(initial="uniform")


def test_bad_data_raises_data_error():
    spec = MarkovSwitchingRegression(2, order=2)
    with pytest.raises(DataError, match="at least 10"):
        spec.prepare(np.arange(8.0))
    y = _series(60)
    x = pd.DataFrame({"oil": np.ones(60)}, index=y.index)
    x.iloc[7, 0] = np.nan
    with pytest.raises(DataError, match=r"'oil'.*2000-08-31"):
        spec.prepare(y, exog=x)
    with pytest.raises(DataError, match="rows"):
        spec.prepare(y, exog=np.ones(59))
    with pytest.raises(ConfigError, match="exog_tvtp"):
        spec.prepare(y, exog_tvtp=np.ones(60))
    with pytest.raises(ConfigError, match="exog_tvtp"):
        MarkovSwitchingRegression(2, exog_tvtp=True).prepare(y)
    with pytest.raises(DataError, match="infinite"):
        spec.prepare(np.r_[np.inf, np.arange(20.0)])

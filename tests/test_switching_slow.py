"""Slow checks of the Markov-switching regression: NUTS fits (simulation recovery, statsmodels' MLE)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import arviz as az
import numpy as np
import pytest
from optional import optional_import, require

from regimecast.config import SamplerSettings
from regimecast.models import MarkovSwitchingRegression, summarise_forecast

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

sm_ms = optional_import("statsmodels.tsa.regime_switching")  # required per test (fails under CI)
SM_TESTS = Path(sm_ms.__file__).parent / "tests" if sm_ms is not None else None


def _fedfunds() -> np.ndarray:
    tree = ast.parse((SM_TESTS / "test_markov_regression.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "fedfunds" for t in node.targets
        ):
            return np.asarray(ast.literal_eval(node.value), dtype=float)
    raise KeyError("fedfunds")


def _check_convergence(idata, names):
    rhat = az.rhat(idata, var_names=names)
    rhat_max = max(float(rhat[v].max()) for v in names)
    divergences = int(idata.sample_stats["diverging"].sum())
    assert rhat_max < 1.01, f"r-hat {rhat_max:.4f}"
    assert divergences == 0, f"{divergences} divergences"
    return rhat_max


def _simulate(t_full=400, seed=20240601):
    """Two regimes, AR(1) in Hamilton's form, switching mean, common sigma."""
    rng = np.random.default_rng(seed)
    trans = np.array([[0.95, 0.05], [0.10, 0.90]])
    mu, phi, sigma = np.array([-1.0, 2.0]), 0.4, 1.0
    s = np.empty(t_full, dtype=int)
    s[0] = rng.choice(2, p=[2 / 3, 1 / 3])  # stationary distribution
    for t in range(1, t_full):
        s[t] = rng.choice(2, p=trans[s[t - 1]])
    y = np.empty(t_full)
    y[0] = mu[s[0]] + sigma * rng.normal()
    for t in range(1, t_full):
        y[t] = mu[s[t]] + phi * (y[t - 1] - mu[s[t - 1]]) + sigma * rng.normal()
    truth = {"transition": trans, "const": mu, "ar": np.array([phi]), "sigma": sigma}
    return y, s, truth


def test_simulation_recovery_truth_inside_94pct_interval():
    y, s, truth = _simulate()
    spec = MarkovSwitchingRegression(2, order=1)
    settings = SamplerSettings(
        draws=1000, tune=1000, chains=2, cores=2, sampler="pymc", start="prior"
    )
    res = spec.fit(y, random_seed=11, sampler_settings=settings)
    log.warning("simulated AR(1) fit: %.1f s", res.idata.posterior.attrs["sampling_wall_seconds"])
    _check_convergence(res.idata, res.parameter_names)
    post = res.idata.posterior
    for name, value in truth.items():
        draws = post[name].values.reshape(-1, *np.shape(value))
        lo, hi = np.quantile(draws, [0.03, 0.97], axis=0)
        assert np.all((lo <= value) & (value <= hi)), f"{name}: truth {value} outside [{lo}, {hi}]"
    # the smoothed regimes recover the simulated path (first observation only conditions the AR term)
    smoothed = res.regime_probabilities()["smoothed_regime"].sel(stat="mean").values
    accuracy = np.mean(smoothed.argmax(axis=1) == s[1:])
    assert accuracy > 0.9
    fc = res.forecast(6, random_seed=3, n_paths_per_draw=2)
    summ = summarise_forecast(fc)
    np.testing.assert_allclose(summ["regime_probability"].sel(stat="mean").sum("regime"), 1.0)


def test_fedfunds_posterior_means_near_statsmodels_mle():
    require("statsmodels")
    from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

    y = _fedfunds()
    mle = MarkovRegression(y, k_regimes=2).fit(disp=False)
    p = dict(zip(mle.model.param_names, mle.params, strict=True))
    bse = dict(zip(mle.model.param_names, np.sqrt(np.diag(mle.cov_params_approx)), strict=True))
    spec = MarkovSwitchingRegression(2)
    settings = SamplerSettings(
        draws=1000, tune=1000, chains=4, cores=2, sampler="pymc", start="prior"
    )
    res = spec.fit(y, random_seed=5, sampler_settings=settings)
    log.warning("fed funds fit: %.1f s", res.idata.posterior.attrs["sampling_wall_seconds"])
    _check_convergence(res.idata, res.parameter_names)
    post = res.idata.posterior
    pairs = {
        "p00": (post["transition"].values[..., 0, 0], p["p[0->0]"], bse["p[0->0]"]),
        "p10": (post["transition"].values[..., 1, 0], p["p[1->0]"], bse["p[1->0]"]),
        "const0": (post["const"].values[..., 0], p["const[0]"], bse["const[0]"]),
        "const1": (post["const"].values[..., 1], p["const[1]"], bse["const[1]"]),
        "sigma": (post["sigma"].values, np.sqrt(p["sigma2"]), None),
    }
    for name, (draws, mle_value, mle_se) in pairs.items():
        # With a weak prior and T = 226 the posterior is close to the likelihood: its mean sits within
        # two posterior sd of the MLE (transition probabilities are skewed near 1, hence not tighter),
        # and its sd is within a factor 2 of the MLE's standard error.
        mean, sd = draws.mean(), draws.std()
        log.warning("%s: posterior %.4f (sd %.4f), MLE %.4f", name, mean, sd, mle_value)
        assert abs(mean - mle_value) < 2 * sd, name
        if mle_se is not None:
            assert 0.5 < sd / mle_se < 2.0, name

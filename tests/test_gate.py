"""The convergence gate: thresholds on hand-made diagnostics, and ``diagnose`` against ArviZ itself."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from regimecast.fit import Diagnostics, GateSettings, convergence_problems, diagnose

GATE = GateSettings(max_rhat=1.01, min_ess_bulk=400.0, min_ess_tail=200.0, max_divergences=0)


def _diag(**kw) -> Diagnostics:
    base = {"r_hat_max": 1.002, "ess_bulk_min": 900.0, "ess_tail_min": 700.0, "divergences": 0,
            "sampling_seconds": 1.0, "draws": 500, "chains": 4,
            "worst": {"r_hat": "cpi_ref", "ess_bulk": "policy_tau"}}
    return Diagnostics(**{**base, **kw})


def test_a_good_fit_passes():
    assert convergence_problems(_diag(), GATE) == []


@pytest.mark.parametrize(
    ("field", "value", "passes", "fragment"),
    [
        ("r_hat_max", 1.01, True, None),  # at the threshold
        ("r_hat_max", 1.0101, False, "r-hat 1.010 > 1.01 (worst: cpi_ref)"),
        ("r_hat_max", 1.5, False, "chains disagree"),
        ("r_hat_max", float("nan"), False, "r-hat nan"),
        ("r_hat_max", float("inf"), False, "r-hat inf"),
        ("ess_bulk_min", 400.0, True, None),
        ("ess_bulk_min", 399.9, False, "bulk ESS 400 < 400 (worst: policy_tau)"),
        ("ess_bulk_min", 12.0, False, "increase draws"),
        ("ess_bulk_min", float("nan"), False, "bulk ESS nan"),
        ("ess_tail_min", 200.0, True, None),
        ("ess_tail_min", 150.0, False, "tail ESS 150 < 200"),
        ("ess_tail_min", float("nan"), False, "tail ESS nan"),
        ("divergences", 0, True, None),
        ("divergences", 1, False, "1 divergent transitions (> 0)"),
    ],
)
def test_each_threshold(field, value, passes, fragment):
    problems = convergence_problems(_diag(**{field: value}), GATE)
    if passes:
        assert problems == []
    else:
        assert len(problems) == 1, problems
        assert fragment in problems[0], problems


def test_divergence_allowance_and_every_failure_listed():
    assert convergence_problems(_diag(divergences=3), GateSettings(max_divergences=3)) == []
    assert len(convergence_problems(_diag(divergences=4), GateSettings(max_divergences=3))) == 1
    bad = _diag(r_hat_max=1.2, ess_bulk_min=10.0, ess_tail_min=5.0, divergences=7)
    problems = convergence_problems(bad, GATE)
    assert len(problems) == 4
    assert [p.split()[0] for p in problems] == ["r-hat", "bulk", "tail", "7"]


def test_gate_thresholds_come_from_the_settings():
    d = _diag(r_hat_max=1.03, ess_bulk_min=250.0, ess_tail_min=120.0)
    assert len(convergence_problems(d, GATE)) == 3
    assert convergence_problems(d, GateSettings(max_rhat=1.05, min_ess_bulk=200, min_ess_tail=100)) == []


# --------------------------------------------------------------------------------------------------
# diagnose() on real posteriors
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_posterior() -> az.InferenceData:
    """A real NUTS posterior of a tiny model (a scalar, a vector and a positive scale), seeded."""
    import pymc as pm

    rng = np.random.default_rng(0)
    y = rng.normal([1.0, -2.0, 0.5], 1.3, size=(25, 3))
    with pm.Model():
        mu = pm.Normal("mu", 0.0, 5.0, shape=3)
        shift = pm.Normal("shift", 0.0, 1.0)
        sigma = pm.HalfNormal("sigma", 2.0)
        pm.Normal("y", mu + shift, sigma, observed=y)
        idata = pm.sample(draws=300, tune=300, chains=2, cores=1, random_seed=3, progressbar=False,
                          compute_convergence_checks=False)
    return idata


def test_diagnose_matches_arviz_on_a_real_posterior(small_posterior):
    idata = small_posterior
    d = diagnose(idata)
    post = idata.posterior
    rhat = az.rhat(idata)
    bulk = az.ess(idata, method="bulk")
    tail = az.ess(idata, method="tail")
    names = ["mu", "shift", "sigma"]
    assert d.r_hat_max == pytest.approx(max(float(rhat[v].max()) for v in names), rel=1e-12)
    assert d.ess_bulk_min == pytest.approx(min(float(bulk[v].min()) for v in names), rel=1e-12)
    assert d.ess_tail_min == pytest.approx(min(float(tail[v].min()) for v in names), rel=1e-12)
    assert d.divergences == int(idata.sample_stats["diverging"].values.sum())
    assert (d.chains, d.draws) == (2, 300) == (post.sizes["chain"], post.sizes["draw"])
    worst = min(((v, i) for v in names for i in range(bulk[v].size)),
                key=lambda vi: float(np.ravel(bulk[vi[0]].values)[vi[1]]))
    assert d.worst["ess_bulk"].startswith(worst[0])
    # restricted to named variables, only they count
    only = diagnose(idata, var_names=["sigma"])
    assert only.ess_bulk_min == pytest.approx(float(bulk["sigma"]), rel=1e-12)


def test_diagnose_counts_divergences(small_posterior):
    idata = small_posterior.copy()
    div = np.zeros_like(idata.sample_stats["diverging"].values)
    div[0, [3, 10]] = True
    div[1, 50] = True
    idata.sample_stats["diverging"] = (("chain", "draw"), div)
    d = diagnose(idata)
    assert d.divergences == 3
    assert "3 divergent transitions" in convergence_problems(d, GATE)[-1]


def test_chains_stuck_apart_fail_the_gate_naming_the_parameter():
    """Two chains sampling different modes: r-hat far above 1, the stuck parameter named."""
    rng = np.random.default_rng(1)
    good = rng.normal(size=(2, 500))
    stuck = rng.normal(size=(2, 500)) * 0.1 + np.array([[0.0], [3.0]])
    idata = az.from_dict(posterior={"good": good, "stuck": stuck})
    d = diagnose(idata)
    assert d.r_hat_max == pytest.approx(float(az.rhat(idata)["stuck"]), rel=1e-12) and d.r_hat_max > 1.5
    assert d.worst["r_hat"] == "stuck"
    problems = convergence_problems(d, GateSettings())
    assert any("worst: stuck" in p and p.startswith("r-hat") for p in problems), problems


def test_constant_chains_give_nan_diagnostics_and_fail():
    """A posterior that never moved (a pinned run): ArviZ returns NaN r-hat; the gate must refuse it."""
    idata = az.from_dict(posterior={"a": np.ones((2, 50))})
    d = diagnose(idata)
    assert not np.isfinite(d.r_hat_max)
    assert convergence_problems(d, GateSettings())

"""The numba HMM kernels against independent oracles: brute-force enumeration and the NumPy reference.

Shapes (row = from): ``log_init`` (K,), ``log_transition`` (K, K) or (T-1, K, K), ``log_emission`` (T, K)
with a zero row for a missing observation.
"""

from __future__ import annotations

import numpy as np
import pytest
from optional import require

from regimecast.hmm import hmm_filter, hmm_sample_paths, hmm_smoother
from regimecast.hmm.forward import (
    _backward_log,
    _backward_prob,
    _forward_log,
    _forward_prob,
    as_3d,
    forward_backward,
    forward_loglik,
)
from regimecast.hmm.reference import brute_force, filter_np, sample_paths_np, smoother_np

RTOL = 1e-10
ATOL = 1e-12


def _random_hmm(rng, K, T, *, tv=False, normalised=True, missing=(), scale=1.0):
    """Random log-inputs; unnormalised ones are shifted by arbitrary constants per row / step."""
    li = np.log(rng.dirichlet(np.ones(K)))
    shape = (T - 1, K, K) if tv else (K, K)
    la = np.log(rng.dirichlet(np.ones(K), size=shape[:-1]))
    le = rng.normal(scale=scale, size=(T, K)) - 1.0
    if not normalised:
        li = li + 3.7
        la = la + rng.normal(scale=2.0, size=shape[:-1] + (1,))
        le = le + rng.normal(scale=5.0, size=(T, 1))
    for t in missing:
        le[t] = 0.0
    return li, la, le


def _brute_filtered(li, la, le):
    """p(S_t | y_1..t) and p(S_t | y_1..t-1) by enumerating the paths of the first t + 1 steps."""
    T, K = le.shape
    filt = np.empty((T, K))
    pred = np.empty((T, K))
    for t in range(T):
        la_t = la if la.ndim == 2 else la[:t]
        filt[t] = brute_force(li, la_t, le[: t + 1])[1][-1]
        le_pred = le[: t + 1].copy()
        le_pred[t] = 0.0  # y_t not yet seen
        pred[t] = brute_force(li, la_t, le_pred)[1][-1]
    return filt, pred


CASES = [
    pytest.param(dict(K=2, T=1), id="K2-T1"),
    pytest.param(dict(K=2, T=2), id="K2-T2"),
    pytest.param(dict(K=3, T=5), id="K3-T5"),
    pytest.param(dict(K=3, T=6, missing=(2,)), id="K3-T6-missing"),
    pytest.param(dict(K=4, T=5, missing=(0, 4)), id="K4-T5-missing-ends"),
    pytest.param(dict(K=2, T=6, normalised=False), id="K2-T6-unnormalised"),
    pytest.param(dict(K=3, T=5, normalised=False, missing=(1,)), id="K3-T5-unnormalised-missing"),
]


@pytest.mark.parametrize("tv", [False, True], ids=["const", "tv"])
@pytest.mark.parametrize("case", CASES)
def test_kernels_match_brute_force(case, tv):
    rng = np.random.default_rng(hash((tuple(sorted(case.items())), tv)) % 2**32)
    case = dict(case)
    li, la, le = _random_hmm(rng, case.pop("K"), case.pop("T"), tv=tv, **case)
    T, K = le.shape
    bf_loglik, bf_smoothed, bf_pair = brute_force(li, la, le)
    bf_filt, bf_pred = _brute_filtered(li, la, le)

    f = hmm_filter(li, la, le)
    assert f.loglik == pytest.approx(bf_loglik, rel=RTOL, abs=ATOL)
    np.testing.assert_allclose(f.filtered, bf_filt, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(f.predicted, bf_pred, rtol=RTOL, atol=ATOL)

    s = hmm_smoother(li, la, le)
    assert s.loglik == pytest.approx(bf_loglik, rel=RTOL, abs=ATOL)
    np.testing.assert_allclose(s.filtered, bf_filt, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(s.smoothed, bf_smoothed, rtol=RTOL, atol=ATOL)
    expected = bf_pair if tv else bf_pair.sum(axis=0)
    assert s.expected_transitions.shape == la.shape
    np.testing.assert_allclose(s.expected_transitions, expected, rtol=RTOL, atol=ATOL)

    # the NumPy reference is itself checked against enumeration
    r = smoother_np(li, la, le)
    assert r.loglik == pytest.approx(bf_loglik, rel=RTOL, abs=ATOL)
    np.testing.assert_allclose(r.smoothed, bf_smoothed, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(r.expected_transitions, expected, rtol=RTOL, atol=ATOL)
    rf = filter_np(li, la, le)
    np.testing.assert_allclose(rf.filtered, bf_filt, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(rf.predicted, bf_pred, rtol=RTOL, atol=ATOL)


def test_brute_force_oracle_sanity():
    """The oracle itself: with uninformative emissions the smoothed marginals are the prior marginals."""
    A = np.array([[0.9, 0.1], [0.3, 0.7]])
    p0 = np.array([0.25, 0.75])
    loglik, smoothed, pair = brute_force(np.log(p0), np.log(A), np.zeros((4, 2)))
    assert loglik == pytest.approx(0.0, abs=1e-14)
    marg = p0
    for t in range(4):
        np.testing.assert_allclose(smoothed[t], marg, atol=1e-14)
        if t < 3:
            np.testing.assert_allclose(pair[t], marg[:, None] * A, atol=1e-14)
        marg = marg @ A


@pytest.mark.parametrize("tv", [False, True], ids=["const", "tv"])
@pytest.mark.parametrize("K", [2, 5, 12])
def test_kernels_match_reference(K, tv):
    rng = np.random.default_rng(100 + K + 7 * tv)
    for T in (3, 57, 500):
        li, la, le = _random_hmm(rng, K, T, tv=tv, missing=(1,), scale=3.0)
        r = smoother_np(li, la, le)
        s = hmm_smoother(li, la, le)
        f = hmm_filter(li, la, le)
        assert s.loglik == pytest.approx(r.loglik, rel=1e-12)
        assert f.loglik == pytest.approx(r.loglik, rel=1e-12)
        np.testing.assert_allclose(f.filtered, r.filtered, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(s.smoothed, r.smoothed, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(
            s.expected_transitions, r.expected_transitions, rtol=1e-9, atol=1e-11
        )
        np.testing.assert_allclose(s.smoothed.sum(axis=1), 1.0, rtol=1e-12)
        assert s.expected_transitions.sum() == pytest.approx(T - 1, rel=1e-12)


# --- the log-space fallback -------------------------------------------------------------------------


def _extreme_cases():
    """Inputs that the probability-space pass cannot carry; each is (name, log_init, log_trans, log_em)."""
    sticky = np.array([[0.0, -1000.0], [-1000.0, 0.0]])
    return [
        # the data demand a switch the transitions price at exp(-1000): in one step ...
        (
            "switch-one-step",
            np.log([0.5, 0.5]),
            sticky,
            np.array([[0.0, -800.0]] + [[-2000.0, 0.0]] * 3),
        ),
        # ... or gradually (no single step's normaliser is small)
        (
            "switch-gradual",
            np.array([0.0, -np.inf]),
            sticky,
            np.array([[0.0, -5.0]] + [[-400.0, 0.0]] * 4),
        ),
        # an initial probability that underflows, then data that favour that state
        (
            "init-underflow",
            np.array([0.0, -750.0]),
            np.array([[0.0, -640.0], [-640.0, 0.0]]),
            np.array([[-570.0, 0.0]] + [[-100.0, 0.0]] * 3),
        ),
        # a structural zero (left-to-right chain) with an emission that underflows a filtered probability
        (
            "structural-zero",
            np.log([0.5, 0.5]),
            np.array([[np.log(0.9), np.log(0.1)], [-np.inf, 0.0]]),
            np.array([[-800.0, 0.0]] + [[0.0, -400.0]] * 4),
        ),
        # the same, reversed in time (the backward pass loses the mass)
        (
            "structural-zero-reversed",
            np.log([0.5, 0.5]),
            np.array([[0.0, -np.inf], [np.log(0.1), np.log(0.9)]]),
            np.array([[-400.0, 0.0]] * 4 + [[0.0, -800.0]]),
        ),
    ]


@pytest.mark.parametrize("case", _extreme_cases(), ids=lambda c: c[0])
def test_fallback_matches_brute_force(case):
    _, li, la, le = case
    bf_loglik, bf_smoothed, bf_pair = brute_force(li, la, le)
    f = hmm_filter(li, la, le)
    s = hmm_smoother(li, la, le)
    r = smoother_np(li, la, le)
    for value in (f.loglik, s.loglik, r.loglik):
        assert np.isfinite(value)
        assert value == pytest.approx(bf_loglik, rel=1e-12)
    np.testing.assert_allclose(s.smoothed, bf_smoothed, atol=1e-12)
    np.testing.assert_allclose(s.smoothed, r.smoothed, atol=1e-12)
    np.testing.assert_allclose(s.expected_transitions, bf_pair.sum(axis=0), atol=1e-12)
    assert np.all(np.isfinite(f.filtered)) and np.all(np.isfinite(s.smoothed))


@pytest.mark.parametrize("case", _extreme_cases()[:3], ids=lambda c: c[0])
def test_extreme_inputs_take_the_log_space_path(case):
    """The probability-space pass must refuse these inputs (else it silently loses the switching path)."""
    _, li, la, le = case
    ok, *_ = _forward_prob(li, as_3d(la), le)
    assert not ok


def test_fallback_at_emission_scale_1e4():
    rng = np.random.default_rng(5)
    K, T = 4, 300
    li, la, le = _random_hmm(rng, K, T, missing=(10, 11))
    le = -np.abs(le) * 1e4  # log-densities of order -1e4; the missing rows stay 0
    for tv_la in (la, np.broadcast_to(la, (T - 1, K, K)).copy()):
        r = smoother_np(li, tv_la, le)
        s = hmm_smoother(li, tv_la, le)
        f = hmm_filter(li, tv_la, le)
        assert np.isfinite(s.loglik) and s.loglik < -1e5
        assert s.loglik == pytest.approx(r.loglik, rel=1e-12)
        assert f.loglik == pytest.approx(r.loglik, rel=1e-12)
        np.testing.assert_allclose(s.smoothed, r.smoothed, atol=1e-10)
        np.testing.assert_allclose(s.expected_transitions, r.expected_transitions, atol=1e-9)
        assert np.all(np.isfinite(s.smoothed)) and np.all(np.isfinite(s.expected_transitions))


@pytest.mark.parametrize("tv", [False, True], ids=["const", "tv"])
def test_probability_and_log_paths_agree(tv):
    """On ordinary inputs both internal paths run and give the same numbers."""
    rng = np.random.default_rng(11)
    li, la, le = _random_hmm(rng, 5, 200, tv=tv, missing=(3,), scale=4.0)
    la3 = as_3d(la)
    ok, loglik, filt, pred = _forward_prob(li, la3, le)
    assert ok
    loglik_l, log_filt, log_pred = _forward_log(li, la3, le)
    assert loglik == pytest.approx(loglik_l, rel=1e-13)
    np.testing.assert_allclose(filt, np.exp(log_filt), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(pred, np.exp(log_pred), rtol=1e-10, atol=1e-14)
    ok_b, smoothed, xi = _backward_prob(filt, la3, le)
    assert ok_b
    smoothed_l, xi_l = _backward_log(log_filt, la3, le)
    np.testing.assert_allclose(smoothed, smoothed_l, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(xi, xi_l, rtol=1e-10, atol=1e-13)
    # and the public low-level entry points agree with both
    fb = forward_backward(li, la3, le)
    assert fb[0] == pytest.approx(loglik, rel=1e-14)
    assert forward_loglik(li, la3, le)[0] == pytest.approx(loglik, rel=1e-14)


def test_fuzz_extreme_inputs_against_brute_force():
    """Random tiny HMMs with extreme scales and structural zeros (the regime where underflow bites)."""
    rng = np.random.default_rng(2024)
    checked = 0
    for _ in range(600):
        K = int(rng.integers(2, 4))
        T = int(rng.integers(2, 6))
        li = rng.normal(size=K) * rng.choice([1.0, 300.0, 800.0])
        la = rng.normal(size=(K, K)) * rng.choice([1.0, 300.0, 800.0])
        la[rng.random((K, K)) < 0.2] = -np.inf
        if rng.random() < 0.5:
            la = la + rng.normal(size=(T - 1, K, 1)) * 50.0
        le = rng.normal(size=(T, K)) * rng.choice([1.0, 100.0, 400.0, 900.0])
        with np.errstate(divide="ignore", invalid="ignore"):  # impossible draws give -inf
            bf_loglik, bf_smoothed, bf_pair = brute_force(li, la, le)
        if not np.isfinite(bf_loglik):
            continue
        checked += 1
        f = hmm_filter(li, la, le)
        s = hmm_smoother(li, la, le)
        tol = 1e-10 * max(1.0, abs(bf_loglik))
        assert abs(f.loglik - bf_loglik) < tol, (li, la, le)
        assert abs(s.loglik - bf_loglik) < tol, (li, la, le)
        np.testing.assert_allclose(s.smoothed, bf_smoothed, atol=1e-9)
        expected = bf_pair if la.ndim == 3 else bf_pair.sum(axis=0)
        np.testing.assert_allclose(s.expected_transitions, expected, atol=1e-9)
    assert checked > 300


# --- forward-filter backward-sample -------------------------------------------------------------------


@pytest.mark.parametrize("tv", [False, True], ids=["const", "tv"])
def test_ffbs_frequencies_match_smoother(tv):
    rng = np.random.default_rng(3 + tv)
    li, la, le = _random_hmm(rng, 3, 6, tv=tv, missing=(2,), scale=1.5)
    n = 20_000
    paths = hmm_sample_paths(li, la, le, n, random_seed=42)
    T, K = le.shape
    assert paths.shape == (n, T) and paths.dtype == np.int64
    assert paths.min() >= 0 and paths.max() < K
    _, smoothed, pair = brute_force(li, la, le)

    freq = np.stack([np.bincount(paths[:, t], minlength=K) / n for t in range(T)])
    se = np.sqrt(smoothed * (1 - smoothed) / n) + 1e-12
    assert np.all(np.abs(freq - smoothed) < 4 * se + 1e-4)

    pair_freq = np.zeros((T - 1, K, K))
    for t in range(T - 1):
        np.add.at(pair_freq[t], (paths[:, t], paths[:, t + 1]), 1.0 / n)
    se_pair = np.sqrt(pair * (1 - pair) / n) + 1e-12
    assert np.all(np.abs(pair_freq - pair) < 4 * se_pair + 1e-4)
    # summed over time: the expected transition counts of the smoother
    if not tv:
        np.testing.assert_allclose(
            pair_freq.sum(axis=0), hmm_smoother(li, la, le).expected_transitions, atol=0.03
        )


def test_ffbs_extreme_inputs_follow_the_forced_path():
    _, li, la, le = _extreme_cases()[1]  # switch-gradual: the only plausible path is 0, 1, 1, 1, 1
    paths = hmm_sample_paths(li, la, le, 200, random_seed=0)
    np.testing.assert_array_equal(paths, np.tile([0, 1, 1, 1, 1], (200, 1)))


def test_ffbs_seeding():
    rng = np.random.default_rng(8)
    li, la, le = _random_hmm(rng, 3, 40)
    a = hmm_sample_paths(li, la, le, 50, random_seed=123)
    b = hmm_sample_paths(li, la, le, 50, random_seed=123)
    c = hmm_sample_paths(li, la, le, 50, random_seed=124)
    g = hmm_sample_paths(li, la, le, 50, random_seed=np.random.default_rng(123))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, g)
    assert not np.array_equal(a, c)


def test_ffbs_agrees_with_reference_sampler_in_distribution():
    rng = np.random.default_rng(9)
    li, la, le = _random_hmm(rng, 2, 5)
    fast = hmm_sample_paths(li, la, le, 4000, random_seed=1)
    ref = sample_paths_np(li, la, le, 4000, random_seed=2)
    # state-1 frequencies per step: two independent samples of the same law
    p = (fast.mean(axis=0) + ref.mean(axis=0)) / 2
    se = np.sqrt(2 * p * (1 - p) / 4000) + 1e-12
    assert np.all(np.abs(fast.mean(axis=0) - ref.mean(axis=0)) < 4.5 * se)


# --- errors and edge cases ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("li", "la", "le", "match"),
    [
        (np.zeros(3), np.zeros((2, 2)), np.zeros((5, 2)), "log_init must be"),
        (np.zeros(2), np.zeros((3, 3)), np.zeros((5, 2)), "log_transition must be"),
        (np.zeros(2), np.zeros((5, 2, 2)), np.zeros((5, 2)), "log_transition must be"),
        (np.zeros(2), np.zeros((2, 2)), np.zeros(5), "log_emission must be"),
        (np.zeros(2), np.zeros((2, 2)), np.zeros((0, 2)), "at least one time step"),
    ],
)
@pytest.mark.parametrize("fn", [hmm_filter, hmm_smoother, lambda *a: hmm_sample_paths(*a, 2, 0)])
def test_shape_errors_are_clear(fn, li, la, le, match):
    with pytest.raises(ValueError, match=match):
        fn(li, la, le)


def test_single_time_step():
    li = np.log([0.2, 0.8])
    le = np.array([[-1.0, -3.0]])
    expected = np.log(0.2 * np.exp(-1.0) + 0.8 * np.exp(-3.0))
    for la in (np.log(np.full((2, 2), 0.5)), np.zeros((0, 2, 2))):
        s = hmm_smoother(li, la, le)
        assert s.loglik == pytest.approx(expected, rel=1e-14)
        assert s.expected_transitions.shape == la.shape
        assert hmm_filter(li, la, le).loglik == pytest.approx(expected, rel=1e-14)
        assert hmm_sample_paths(li, la, le, 3, random_seed=0).shape == (3, 1)


def _hamilton_rgnp() -> np.ndarray:
    """Hamilton's GNP growth as shipped in statsmodels' test module (read, not imported: the module
    registers pytest markers this suite does not know)."""
    import ast
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("statsmodels.tsa.regime_switching.tests")
    if spec is None or not spec.submodule_search_locations:
        require("statsmodels.tsa.regime_switching.tests")
    path = Path(next(iter(spec.submodule_search_locations))) / "test_markov_autoregression.py"
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "rgnp":
            return np.asarray(ast.literal_eval(node.value), dtype=float)
    pytest.skip("rgnp not found in statsmodels' test module")


def test_matches_statsmodels_markov_regression_on_hamilton_gnp():
    """A trusted peer: statsmodels' MarkovRegression (switching mean) at the same parameters."""
    sm = require("statsmodels.api")
    y = _hamilton_rgnp()
    model = sm.tsa.MarkovRegression(y, k_regimes=2)
    params = np.array([0.75, 0.1, -0.4, 1.2, 0.6])  # p[0->0], p[1->0], const[0], const[1], sigma2
    res = model.smooth(params)
    P = np.array([[0.75, 0.25], [0.1, 0.9]])  # row = from
    stationary = np.array([P[1, 0], P[0, 1]]) / (P[1, 0] + P[0, 1])
    le = -0.5 * (y[:, None] - params[2:4]) ** 2 / params[4] - 0.5 * np.log(2 * np.pi * params[4])
    s = hmm_smoother(np.log(stationary), np.log(P), le)
    assert s.loglik == pytest.approx(model.loglike(params), rel=1e-10)
    np.testing.assert_allclose(s.filtered, res.filtered_marginal_probabilities, atol=1e-9)
    np.testing.assert_allclose(s.smoothed, res.smoothed_marginal_probabilities, atol=1e-9)

"""The PyTensor Op ``hmm_logp``: value and backward-pass gradient against independent oracles
(the NumPy reference, finite differences, a normalised ``scan`` filter), the NUMBA backend, pickling,
and a PyMC sampling smoke test.
"""

from __future__ import annotations

import importlib.util
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

from regimecast.hmm import HMMLogp, hmm_logp
from regimecast.hmm.op import hmm_logp_op
from regimecast.hmm.reference import brute_force, smoother_np

REPO = Path(__file__).resolve().parents[1]
# Python-level ops for graphs compiled only to be checked: skips a C compile that dominates a cold run
# (the Op itself runs the same numba kernel in every mode).
_FAST = "FAST_COMPILE"


def _load_scan_reference():
    spec = importlib.util.spec_from_file_location(
        "_scan_reference", REPO / "benchmarks" / "_scan_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.scan_loglik


scan_loglik = _load_scan_reference()


def _inputs(rng, K, T, *, tv=False, missing=(), normalised=False):
    li = np.log(rng.dirichlet(np.ones(K)))
    shape = (T - 1, K, K) if tv else (K, K)
    la = np.log(rng.dirichlet(np.ones(K), size=shape[:-1]))
    le = rng.normal(scale=2.0, size=(T, K)) - 1.0
    if not normalised:
        li = li + 0.3
        la = la + rng.normal(size=shape[:-1] + (1,))
    for t in missing:
        le[t] = 0.0
    return li, la, le


def _symbolic(tv):
    return pt.dvector("li"), (pt.dtensor3("la") if tv else pt.dmatrix("la")), pt.dmatrix("le")


def _value_and_grads(mode=None, tv=False):
    li, la, le = _symbolic(tv)
    v = hmm_logp(li, la, le)
    return pytensor.function([li, la, le], [v, *pytensor.grad(v, [li, la, le])], mode=mode)


@pytest.mark.parametrize("tv", [False, True], ids=["const", "tv"])
def test_value_and_gradient_match_reference(tv):
    rng = np.random.default_rng(1 + tv)
    li, la, le = _inputs(rng, 4, 60, tv=tv, missing=(0, 30))
    value, g_li, g_la, g_le = _value_and_grads(tv=tv)(li, la, le)
    r = smoother_np(li, la, le)
    assert value == pytest.approx(r.loglik, rel=1e-13)
    np.testing.assert_allclose(g_li, r.smoothed[0], atol=1e-12)
    np.testing.assert_allclose(g_la, r.expected_transitions, atol=1e-11)
    np.testing.assert_allclose(g_le, r.smoothed, atol=1e-12)


def test_value_and_gradient_share_one_forward_backward():
    li, la, le = _symbolic(False)
    v = hmm_logp(li, la, le)
    f = pytensor.function([li, la, le], [v, *pytensor.grad(v, [li, la, le])])
    nodes = [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, HMMLogp)]
    assert len(nodes) == 1


@pytest.mark.parametrize("tv", [False, True], ids=["const", "tv"])
def test_verify_grad_with_missing_observations(tv):
    rng = np.random.default_rng(7 + tv)
    K, T = 3, 9
    li, la, le = _inputs(rng, K, T, tv=tv)
    keep = np.ones((T, 1))
    keep[[0, 4]] = 0.0  # missing observations: zero emission rows

    def fun(log_init, log_trans, log_em):
        return hmm_logp(log_init, log_trans, log_em * keep)

    verify_grad(fun, [li, la, le], n_tests=3, rng=np.random.default_rng(0), mode=_FAST)


def test_verify_grad_through_softmax_transitions_and_gaussian_emissions():
    rng = np.random.default_rng(3)
    K, T = 3, 25
    y = rng.normal(size=T)

    def fun(logits, mu, log_sigma):
        log_trans = logits - pt.logsumexp(logits, axis=1, keepdims=True)
        sigma = pt.exp(log_sigma)
        le = (
            -0.5 * ((y[:, None] - mu[None, :]) / sigma) ** 2
            - pt.log(sigma)
            - 0.5 * np.log(2 * np.pi)
        )
        return hmm_logp(np.log(np.full(K, 1.0 / K)), log_trans, le)

    verify_grad(
        fun,
        [rng.normal(size=(K, K)) + 2 * np.eye(K), np.array([-1.0, 0.0, 1.0]), np.zeros(K)],
        n_tests=3,
        rng=np.random.default_rng(1),
        mode=_FAST,
    )


def _gaussian_hmm_graph(y, K):
    """Symbolic parameters -> (T, K) log-emissions of independent Gaussian series -> marginal loglik."""
    n = y.shape[1]
    mu = pt.dmatrix("mu")  # (K, n)
    log_sigma = pt.dvector("log_sigma")  # (K,)
    logits = pt.dmatrix("logits")  # (K, K)
    sigma = pt.exp(log_sigma)[None, :, None]
    z = (y[:, None, :] - mu[None, :, :]) / sigma
    le = (-0.5 * z**2 - pt.log(sigma) - 0.5 * np.log(2 * np.pi)).sum(axis=2)
    log_trans = logits - pt.logsumexp(logits, axis=1, keepdims=True)
    log_init = pt.as_tensor_variable(np.full(K, -np.log(K)))
    params = [mu, log_sigma, logits]
    values = [np.linspace(-1, 1, K)[:, None] * np.ones((1, n)), np.zeros(K), 3 * np.eye(K)]
    return params, values, log_init, log_trans, le


def _far_below_graph():
    rng = np.random.default_rng(10)
    K, T, n = 4, 3000, 10
    states = np.repeat(rng.integers(0, K, size=T // 100), 100)
    y = rng.normal(loc=np.linspace(-2, 2, K)[states][:, None], scale=1.3, size=(T, n))
    return _gaussian_hmm_graph(y, K)


def test_finite_value_and_gradient_far_below_minus_710():
    params, values, log_init, log_trans, le = _far_below_graph()
    v = hmm_logp(log_init, log_trans, le)
    f = pytensor.function(params, [v, *pytensor.grad(v, params), le, log_trans])
    value, *grads, le_val, lt_val = f(*values)
    assert np.isfinite(value) and value < -1e4
    assert all(np.all(np.isfinite(g)) for g in grads)
    assert any(np.abs(g).max() > 1.0 for g in grads)
    assert value == pytest.approx(
        smoother_np(np.full(4, -np.log(4)), lt_val, le_val).loglik, rel=1e-12
    )


@pytest.mark.slow
def test_gradient_far_below_minus_710_matches_scan_gradient():
    """The scan's value and gradient (traced by pytensor.grad) as a second oracle.

    Slow only for the scan's C compile (about 20 s on a cold cache; under a second when warm).
    """
    params, values, log_init, log_trans, le = _far_below_graph()
    v = hmm_logp(log_init, log_trans, le)
    vs = scan_loglik(log_init, log_trans, le)
    f = pytensor.function(params, [v, *pytensor.grad(v, params)])
    fs = pytensor.function(params, [vs, *pytensor.grad(vs, params)])
    for a, b in zip(f(*values), fs(*values), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-8)


def test_scan_reference_agrees_on_time_varying_transitions():
    rng = np.random.default_rng(12)
    li, la, le = _inputs(rng, 3, 40, tv=True, missing=(5,))
    a, b, c = _symbolic(True)
    f = pytensor.function([a, b, c], [scan_loglik(a, b, c), hmm_logp(a, b, c)])
    v_scan, v_op = f(li, la, le)
    assert v_op == pytest.approx(v_scan, rel=1e-12)


@pytest.mark.parametrize("tv", [False, True], ids=["const", "tv"])
def test_numba_mode_matches_default_mode_without_object_mode(tv):
    rng = np.random.default_rng(20 + tv)
    li, la, le = _inputs(rng, 5, 80, tv=tv, missing=(3,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f_numba = _value_and_grads(mode="NUMBA", tv=tv)
        out_numba = f_numba(li, la, le)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "object mode" in m], messages
    out_c = _value_and_grads(tv=tv)(li, la, le)
    for a, b in zip(out_numba, out_c, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("mode", [None, "NUMBA"])
def test_op_takes_the_log_space_path_on_extreme_inputs(mode):
    """Data that need a switch priced at exp(-640) after an underflowing start (every backend)."""
    li = np.array([0.0, -750.0])
    la = np.array([[0.0, -640.0], [-640.0, 0.0]])
    le = np.array([[-570.0, 0.0]] + [[-100.0, 0.0]] * 3)
    bf_loglik, bf_smoothed, bf_pair = brute_force(li, la, le)
    value, g_li, g_la, g_le = _value_and_grads(mode=mode)(li, la, le)
    assert value == pytest.approx(bf_loglik, rel=1e-12)  # -750; the lost-mass answer was -870
    np.testing.assert_allclose(g_le, bf_smoothed, atol=1e-12)
    np.testing.assert_allclose(g_la, bf_pair.sum(axis=0), atol=1e-12)
    np.testing.assert_allclose(g_li, bf_smoothed[0], atol=1e-12)


def test_numba_mode_single_step_time_varying():
    li, la, le = _symbolic(True)
    v = hmm_logp(li, la, le)
    f = pytensor.function([li, la, le], [v, pytensor.grad(v, la)], mode="NUMBA")
    value, g_la = f(np.log([0.2, 0.8]), np.zeros((0, 2, 2)), np.array([[-1.0, -3.0]]))
    assert value == pytest.approx(np.log(0.2 * np.exp(-1.0) + 0.8 * np.exp(-3.0)), rel=1e-14)
    assert g_la.shape == (0, 2, 2)


def test_op_and_compiled_function_pickle():
    op = pickle.loads(pickle.dumps(hmm_logp_op))
    assert isinstance(op, HMMLogp) and op == hmm_logp_op
    assert b"regimecast.hmm.op" in pickle.dumps(hmm_logp_op)  # by reference to an importable module

    f = _value_and_grads()
    f2 = pickle.loads(pickle.dumps(f))
    rng = np.random.default_rng(4)
    li, la, le = _inputs(rng, 3, 20)
    for a, b in zip(f(li, la, le), f2(li, la, le), strict=True):
        np.testing.assert_array_equal(a, b)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="log_init must be a vector"):
        hmm_logp(pt.dmatrix(), pt.dmatrix(), pt.dmatrix())
    with pytest.raises(ValueError, match="log_transition must be"):
        hmm_logp(pt.dvector(), pt.dvector(), pt.dmatrix())
    with pytest.raises(ValueError, match="log_emission must be"):
        hmm_logp(pt.dvector(), pt.dmatrix(), pt.dvector())
    li, la, le = _symbolic(False)
    f = pytensor.function([li, la, le], hmm_logp(li, la, le))
    with pytest.raises(ValueError, match="shapes disagree"):
        f(np.zeros(3), np.zeros((2, 2)), np.zeros((5, 2)))


@pytest.mark.parametrize("mode", [None, "NUMBA"])
@pytest.mark.parametrize(
    ("li", "la", "le"),
    [
        (np.zeros(2), np.zeros((7, 2, 2)), np.zeros((10, 2))),  # too few transitions: was garbage
        (np.zeros(2), np.zeros((12, 2, 2)), np.zeros((10, 2))),
        (np.zeros(3), np.zeros((9, 2, 2)), np.zeros((10, 3))),
        (np.zeros(2), np.zeros((9, 2, 2)), np.zeros((10, 3))),
        (np.zeros(2), np.zeros((0, 2, 2)), np.zeros((0, 2))),
    ],
)
def test_runtime_shape_mismatch_raises_in_every_mode(mode, li, la, le):
    a, b, c = _symbolic(True)
    f = pytensor.function([a, b, c], hmm_logp(a, b, c), mode=mode)
    with pytest.raises(ValueError, match="shapes disagree"):
        f(li, la, le)


@pytest.mark.parametrize(
    ("li", "la", "le"),
    [
        (np.zeros(3), np.zeros((2, 2)), np.zeros((5, 2))),
        (np.zeros(2), np.zeros((2, 2)), np.zeros((5, 3))),
        (np.zeros(2), np.zeros((2, 2)), np.zeros((0, 2))),
    ],
)
def test_runtime_shape_mismatch_raises_in_numba_mode_constant_transitions(li, la, le):
    a, b, c = _symbolic(False)
    f = pytensor.function([a, b, c], hmm_logp(a, b, c), mode="NUMBA")
    with pytest.raises(ValueError, match="shapes disagree"):
        f(li, la, le)


def test_gradient_of_auxiliary_outputs_is_refused():
    li, la, le = _symbolic(False)
    _, g_init, _, _ = hmm_logp_op(li, la, le)
    with pytest.raises(Exception, match="(?i)not implemented|NullType"):
        pytensor.grad(g_init.sum(), li)


def test_pymc_potential_samples_two_state_switching_mean():
    pm = pytest.importorskip("pymc")
    rng = np.random.default_rng(2)
    T, mu_true, sigma_true, stay = 200, np.array([-1.0, 1.5]), 0.7, 0.95
    s = np.zeros(T, dtype=int)
    for t in range(1, T):
        s[t] = s[t - 1] if rng.random() < stay else 1 - s[t - 1]
    y = rng.normal(mu_true[s], sigma_true)

    with pm.Model():
        mu = pm.Normal(
            "mu",
            0.0,
            3.0,
            shape=2,
            transform=pm.distributions.transforms.ordered,
            initval=[-0.5, 0.5],
        )
        sigma = pm.HalfNormal("sigma", 2.0)
        p = pm.Dirichlet("p", a=np.array([[8.0, 1.0], [1.0, 8.0]]))
        le = pm.logp(pm.Normal.dist(mu[None, :], sigma), y[:, None])
        pm.Potential("loglik", hmm_logp(np.log([0.5, 0.5]), pt.log(p), le))
        idata = pm.sample(
            300,
            tune=300,
            chains=2,
            cores=1,
            random_seed=3,
            progressbar=False,
            compute_convergence_checks=False,
        )
    post = idata.posterior
    np.testing.assert_allclose(post["mu"].mean(("chain", "draw")), mu_true, atol=0.25)
    assert float(post["sigma"].mean()) == pytest.approx(sigma_true, abs=0.15)
    assert float(post["p"].mean(("chain", "draw"))[0, 0]) > 0.85
    assert int(idata.sample_stats["diverging"].sum()) == 0

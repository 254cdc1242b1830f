"""NumPy reference implementations of the HMM kernels (the test oracle for the fast kernels).

Conventions shared by every kernel in :mod:`regimecast.hmm`:

* ``log_init``: (K,) log initial probabilities of the state at t = 0.
* ``log_transition``: (K, K) constant, or (T-1, K, K) time-varying; **row = from, column = to**;
  ``log_transition[t]`` moves the chain from month t to month t + 1.
* ``log_emission``: (T, K) log p(y_t | S_t = k); a missing observation contributes 0.

The marginal log-likelihood is ``log sum_paths exp(log_init[s_0] + sum_t log_transition[s_t, s_t+1]
+ sum_t log_emission[t, s_t])``; the inputs need not be normalised, and every quantity is computed
with a per-step log-sum-exp so it stays finite for any finite input and any length.

This module is independent of the fast kernels (:mod:`regimecast.hmm.forward`), which never import
it: it shares only the result types and input checks of :mod:`regimecast.hmm.types`.
"""

from __future__ import annotations

import numpy as np

from regimecast.hmm.types import HMMFiltered, HMMSmoothed, check_inputs


def _lse(a: np.ndarray, axis: int | None = None, keepdims: bool = False) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _at(log_transition: np.ndarray, t: int) -> np.ndarray:
    return log_transition if log_transition.ndim == 2 else log_transition[t]


def _forward(log_init, log_transition, log_emission):
    T, K = log_emission.shape
    log_filt = np.empty((T, K))
    log_pred = np.empty((T, K))
    c = np.empty(T)
    lp = log_init - _lse(log_init)
    for t in range(T):
        log_pred[t] = lp
        a = lp + log_emission[t]
        c[t] = _lse(a)
        log_filt[t] = a - c[t]
        if t < T - 1:
            lp = _lse(log_filt[t][:, None] + _at(log_transition, t), axis=0)
    # the init normalisation constant belongs to the likelihood of unnormalised inputs
    loglik = float(np.sum(c) + _lse(log_init))
    return loglik, log_filt, log_pred, c


def filter_np(log_init, log_transition, log_emission) -> HMMFiltered:
    """Forward filter (NumPy reference).  Shapes as in the module docstring."""
    log_init, log_transition, log_emission = check_inputs(log_init, log_transition, log_emission)
    loglik, log_filt, log_pred, _ = _forward(log_init, log_transition, log_emission)
    # normalise: with unnormalised transition rows the propagated vector does not sum to one
    log_pred = log_pred - _lse(log_pred, axis=1, keepdims=True)
    return HMMFiltered(loglik, np.exp(log_filt), np.exp(log_pred))


def smoother_np(log_init, log_transition, log_emission) -> HMMSmoothed:
    """Forward-backward smoother (NumPy reference).

    ``expected_transitions[i, j] = sum_t p(S_t = i, S_t+1 = j | y)`` for constant transitions, or the
    per-step (T-1, K, K) array for time-varying ones.  These are also the gradient of the
    log-likelihood with respect to ``log_transition``; ``smoothed`` is its gradient with respect to
    ``log_emission`` and ``smoothed[0]`` with respect to ``log_init``.
    """
    log_init, log_transition, log_emission = check_inputs(log_init, log_transition, log_emission)
    T, K = log_emission.shape
    loglik, log_filt, _, c = _forward(log_init, log_transition, log_emission)
    log_beta = np.zeros((T, K))
    xi = np.zeros((T - 1, K, K))
    for t in range(T - 2, -1, -1):
        m = _at(log_transition, t) + (log_emission[t + 1] + log_beta[t + 1])[None, :] - c[t + 1]
        log_beta[t] = _lse(m, axis=1)
        xi[t] = np.exp(log_filt[t][:, None] + m)
    smoothed = np.exp(log_filt + log_beta)
    expected = xi if log_transition.ndim == 3 else xi.sum(axis=0)
    return HMMSmoothed(loglik, np.exp(log_filt), smoothed, expected)


def sample_paths_np(
    log_init, log_transition, log_emission, n: int, random_seed: int | np.random.Generator | None
) -> np.ndarray:
    """Forward-filter backward-sample ``n`` regime paths, (n, T) int (NumPy reference)."""
    log_init, log_transition, log_emission = check_inputs(log_init, log_transition, log_emission)
    rng = np.random.default_rng(random_seed)
    T, K = log_emission.shape
    _, log_filt, _, _ = _forward(log_init, log_transition, log_emission)
    paths = np.empty((n, T), dtype=np.int64)
    for i in range(n):
        p = np.exp(log_filt[T - 1])
        s = rng.choice(K, p=p / p.sum())
        paths[i, T - 1] = s
        for t in range(T - 2, -1, -1):
            w = log_filt[t] + _at(log_transition, t)[:, s]
            p = np.exp(w - _lse(w))
            s = rng.choice(K, p=p / p.sum())
            paths[i, t] = s
    return paths


def brute_force(log_init, log_transition, log_emission):
    """Enumerate all K**T paths (tiny T only): (loglik, smoothed (T, K), pair marginals (T-1, K, K))."""
    import itertools

    log_init, log_transition, log_emission = check_inputs(log_init, log_transition, log_emission)
    T, K = log_emission.shape
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    score = log_init[paths[:, 0]] + log_emission[np.arange(T), paths].sum(axis=1)
    for t in range(T - 1):
        score = score + _at(log_transition, t)[paths[:, t], paths[:, t + 1]]
    loglik = float(_lse(score))
    w = np.exp(score - loglik)
    smoothed = np.zeros((T, K))
    pair = np.zeros((max(T - 1, 0), K, K))
    for t in range(T):
        np.add.at(smoothed[t], paths[:, t], w)
        if t < T - 1:
            np.add.at(pair[t], (paths[:, t], paths[:, t + 1]), w)
    return loglik, smoothed, pair

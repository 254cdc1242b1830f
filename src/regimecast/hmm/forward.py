"""Fast, stable forward-backward kernels (numba).

Shapes (row = from): ``log_init`` (K,), ``log_transition`` (K, K) or (T-1, K, K) with
``log_transition[t]`` moving month t to month t+1, ``log_emission`` (T, K) where a missing observation
contributes 0.

Each kernel first runs in probability space with per-step scaling (K^2 multiply-adds per step and K
exponentials for the emissions).  Underflow there loses mass that later data could amplify, so the whole
computation is redone in log space with a log-sum-exp at every step when (i) a step's normaliser falls
below 1e-20 (the data put almost no predicted mass on the state they favour), (ii) a finite transition
entry lies more than 600 below the matrix maximum (so not every state is refilled by the transitions), or
(iii) the transitions have structural zeros (-inf) and a component that should be positive has
underflowed below 1e-270.  These conditions arise only with extreme inputs (e.g. a transition of
log-probability -1000 that the data insist on).  Either way the result is finite for any finite
input and any series length.  Quantities are exact (not approximated): the two paths agree to rounding.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from regimecast.hmm.types import HMMFiltered, HMMSmoothed, check_inputs

_TINY = 1e-20  # smallest per-step normaliser accepted by the probability-space passes
_MIN_LOG_A = -600.0  # finite transition entries further below the maximum force the log-space path
_FLOOR = 1e-270  # with structural zeros: a should-be-positive component below this forces log space


@njit(cache=True, nogil=True)
def _lse_vec(a):
    m = a.max()
    if not np.isfinite(m):
        return m
    s = 0.0
    for i in range(a.shape[0]):
        s += np.exp(a[i] - m)
    return m + np.log(s)


@njit(cache=True, nogil=True)
def _has_neg_inf(a):
    for t in range(a.shape[0]):
        for i in range(a.shape[1]):
            for j in range(a.shape[2]):
                if a[t, i, j] == -np.inf:
                    return True
    return False


@njit(cache=True, nogil=True)
def _forward_prob(log_init, logA, log_em):
    """Scaled forward pass.  Returns (ok, loglik, filtered, predicted)."""
    T, K = log_em.shape
    tv = logA.shape[0] > 1
    filt = np.empty((T, K))
    predicted = np.empty((T, K))
    A = np.empty((K, K))
    mA = 0.0
    has_zero = tv and _has_neg_inf(logA)
    if not tv:
        mA = logA[0].max()
        for i in range(K):
            for j in range(K):
                d = logA[0, i, j] - mA
                if d < _MIN_LOG_A and d != -np.inf:
                    return False, 0.0, filt, predicted
                A[i, j] = np.exp(d)
                if A[i, j] == 0.0:
                    has_zero = True
    m0 = log_init.max()
    pred = np.empty(K)
    s0 = 0.0
    for k in range(K):
        pred[k] = np.exp(log_init[k] - m0)
        s0 += pred[k]
    loglik = m0 + np.log(s0)
    for k in range(K):
        pred[k] /= s0
        if pred[k] < _FLOOR and log_init[k] != -np.inf:
            return False, loglik, filt, predicted
    u = np.empty(K)
    for t in range(T):
        if t > 0:
            if tv:
                mA = logA[t - 1].max()
                for i in range(K):
                    for j in range(K):
                        d = logA[t - 1, i, j] - mA
                        if d < _MIN_LOG_A and d != -np.inf:
                            return False, loglik, filt, predicted
                        A[i, j] = np.exp(d)
            for j in range(K):
                pred[j] = 0.0
            for i in range(K):
                fi = filt[t - 1, i]
                if fi == 0.0:
                    continue
                for j in range(K):
                    pred[j] += fi * A[i, j]
            sp = pred.sum()
            if not (sp > _TINY) or not np.isfinite(sp):
                return False, loglik, filt, predicted
            if has_zero:
                for j in range(K):
                    if pred[j] < _FLOOR:
                        for i in range(K):
                            if filt[t - 1, i] > 0.0 and A[i, j] > 0.0:
                                return False, loglik, filt, predicted
            for j in range(K):
                pred[j] /= sp
            loglik += mA + np.log(sp)
        me = log_em[t].max()
        s = 0.0
        for k in range(K):
            predicted[t, k] = pred[k]
            u[k] = pred[k] * np.exp(log_em[t, k] - me)
            s += u[k]
        if not (s > _TINY) or not np.isfinite(s):
            return False, loglik, filt, predicted
        if has_zero:
            for k in range(K):
                if u[k] < _FLOOR and pred[k] > 0.0 and log_em[t, k] != -np.inf:
                    return False, loglik, filt, predicted
        for k in range(K):
            filt[t, k] = u[k] / s
        loglik += me + np.log(s)
    return True, loglik, filt, predicted


@njit(cache=True, nogil=True)
def _forward_log(log_init, logA, log_em):
    """Log-space forward pass.  Returns (loglik, log_filtered, log_predicted)."""
    T, K = log_em.shape
    tv = logA.shape[0] > 1
    log_filt = np.empty((T, K))
    log_pred = np.empty((T, K))
    c0 = _lse_vec(log_init)
    lp = log_init - c0
    loglik = c0
    a = np.empty(K)
    col = np.empty(K)
    for t in range(T):
        if t > 0:
            At = logA[t - 1] if tv else logA[0]
            for j in range(K):
                for i in range(K):
                    col[i] = log_filt[t - 1, i] + At[i, j]
                lp[j] = _lse_vec(col)
            cp = _lse_vec(lp)
            for j in range(K):
                lp[j] -= cp
            loglik += cp
        for k in range(K):
            log_pred[t, k] = lp[k]
            a[k] = lp[k] + log_em[t, k]
        c = _lse_vec(a)
        for k in range(K):
            log_filt[t, k] = a[k] - c
        loglik += c
    return loglik, log_filt, log_pred


@njit(cache=True, nogil=True)
def _backward_prob(filt, logA, log_em):
    """Scaled backward pass.  Returns (ok, smoothed (T, K), xi (T-1 or 1, K, K))."""
    T, K = log_em.shape
    tv = logA.shape[0] > 1
    smoothed = np.empty((T, K))
    xi = np.zeros((logA.shape[0] if tv else 1, K, K))
    A = np.empty((K, K))
    has_zero = tv and _has_neg_inf(logA)
    if not tv:
        mA = logA[0].max()
        for i in range(K):
            for j in range(K):
                d = logA[0, i, j] - mA
                if d < _MIN_LOG_A and d != -np.inf:
                    return False, smoothed, xi
                A[i, j] = np.exp(d)
                if A[i, j] == 0.0:
                    has_zero = True
    beta = np.ones(K)
    nb = np.empty(K)
    w = np.empty(K)
    for k in range(K):
        smoothed[T - 1, k] = filt[T - 1, k]
    for t in range(T - 2, -1, -1):
        if tv:
            mA = logA[t].max()
            for i in range(K):
                for j in range(K):
                    d = logA[t, i, j] - mA
                    if d < _MIN_LOG_A and d != -np.inf:
                        return False, smoothed, xi
                    A[i, j] = np.exp(d)
        me = log_em[t + 1].max()
        for j in range(K):
            w[j] = np.exp(log_em[t + 1, j] - me) * beta[j]
        Z = 0.0
        for i in range(K):
            acc = 0.0
            for j in range(K):
                acc += A[i, j] * w[j]
            nb[i] = acc
            Z += filt[t, i] * acc
        if not (Z > _TINY) or not np.isfinite(Z):
            return False, smoothed, xi
        if has_zero:
            for i in range(K):
                if nb[i] < _FLOOR:
                    for j in range(K):
                        if A[i, j] > 0.0 and beta[j] > 0.0 and log_em[t + 1, j] != -np.inf:
                            return False, smoothed, xi
        x = xi[t] if tv else xi[0]
        for i in range(K):
            fi = filt[t, i] / Z
            smoothed[t, i] = fi * nb[i]
            if fi == 0.0:
                continue
            for j in range(K):
                x[i, j] += fi * A[i, j] * w[j]
        mb = nb.max()
        for i in range(K):
            beta[i] = nb[i] / mb
    return True, smoothed, xi


@njit(cache=True, nogil=True)
def _backward_log(log_filt, logA, log_em):
    """Log-space backward pass.  Returns (smoothed, xi)."""
    T, K = log_em.shape
    tv = logA.shape[0] > 1
    smoothed = np.empty((T, K))
    xi = np.zeros((logA.shape[0] if tv else 1, K, K))
    log_beta = np.zeros(K)
    nb = np.empty(K)
    row = np.empty(K)
    m = np.empty((K, K))
    for k in range(K):
        smoothed[T - 1, k] = np.exp(log_filt[T - 1, k])
    for t in range(T - 2, -1, -1):
        At = logA[t] if tv else logA[0]
        for i in range(K):
            for j in range(K):
                m[i, j] = At[i, j] + log_em[t + 1, j] + log_beta[j]
                row[j] = m[i, j]
            nb[i] = _lse_vec(row)
        for i in range(K):
            row[i] = log_filt[t, i] + nb[i]
        lz = _lse_vec(row)
        x = xi[t] if tv else xi[0]
        for i in range(K):
            smoothed[t, i] = np.exp(log_filt[t, i] + nb[i] - lz)
            for j in range(K):
                x[i, j] += np.exp(log_filt[t, i] + m[i, j] - lz)
        mb = nb.max()
        for i in range(K):
            log_beta[i] = nb[i] - mb
    return smoothed, xi


@njit(cache=True, nogil=True)
def forward_backward(log_init, logA, log_em):
    """Fused forward-backward.  ``logA`` is (1, K, K) for constant or (T-1, K, K) transitions.

    Returns (loglik, filtered, predicted, smoothed, xi) where ``xi`` has ``logA``'s shape and holds the
    expected transition counts (summed over t for constant transitions).  These are the gradient of
    ``loglik`` with respect to ``log_emission`` (smoothed), ``log_transition`` (xi) and ``log_init``
    (smoothed[0]).
    """
    ok, loglik, filt, pred = _forward_prob(log_init, logA, log_em)
    if ok:
        ok, smoothed, xi = _backward_prob(filt, logA, log_em)
        if ok:
            return loglik, filt, pred, smoothed, xi
    loglik, log_filt, log_pred = _forward_log(log_init, logA, log_em)
    smoothed, xi = _backward_log(log_filt, logA, log_em)
    return loglik, np.exp(log_filt), np.exp(log_pred), smoothed, xi


@njit(cache=True, nogil=True)
def forward_loglik(log_init, logA, log_em):
    """Forward pass only: (loglik, filtered, predicted)."""
    ok, loglik, filt, pred = _forward_prob(log_init, logA, log_em)
    if ok:
        return loglik, filt, pred
    loglik, log_filt, log_pred = _forward_log(log_init, logA, log_em)
    return loglik, np.exp(log_filt), np.exp(log_pred)


@njit(cache=True, nogil=True)
def _sample_paths(log_init, logA, log_em, uniforms):
    """Backward sampling from the scaled (probability-space) filter; the log-space filter only when
    the scaled one under- or overflows (as in :func:`forward_loglik`)."""
    ok, _, filt, _ = _forward_prob(log_init, logA, log_em)
    if ok:
        log_filt = np.log(filt)  # -inf where 0 (numba's log warns about nothing)
    else:
        _, log_filt, _ = _forward_log(log_init, logA, log_em)
    n, T = uniforms.shape
    K = log_em.shape[1]
    tv = logA.shape[0] > 1
    A = np.exp(logA)
    paths = np.empty((n, T), dtype=np.int64)
    w = np.empty(K)
    lw = np.empty(K)
    work = np.empty(K)
    for r in range(n):
        # last state from the final filtered distribution
        s = _draw(log_filt[T - 1].copy(), uniforms[r, T - 1], work)
        paths[r, T - 1] = s
        for t in range(T - 2, -1, -1):
            At = A[t] if tv else A[0]
            tot = 0.0
            if ok:
                for i in range(K):
                    w[i] = filt[t, i] * At[i, s]
                    tot += w[i]
            if tot > 0.0 and np.isfinite(tot):
                s = _draw_prob(w, uniforms[r, t] * tot)
            else:  # probabilities too small to multiply: the same draw in log space
                lA = logA[t] if tv else logA[0]
                for i in range(K):
                    lw[i] = log_filt[t, i] + lA[i, s]
                s = _draw(lw, uniforms[r, t], work)
            paths[r, t] = s
    return paths


@njit(cache=True, nogil=True)
def _draw_prob(w, target):
    """First state whose cumulative weight exceeds ``target`` (weights unnormalised, sum > target)."""
    K = w.shape[0]
    acc = 0.0
    for k in range(K):
        acc += w[k]
        if target < acc:
            return k
    for k in range(K - 1, -1, -1):  # rounding: last state with positive weight
        if w[k] > 0.0:
            return k
    return K - 1


@njit(cache=True, nogil=True)
def _draw(logw, u, work):
    K = logw.shape[0]
    m = logw.max()
    tot = 0.0
    for k in range(K):
        work[k] = np.exp(logw[k] - m)
        tot += work[k]
    return _draw_prob(work, u * tot)


def as_3d(log_transition: np.ndarray) -> np.ndarray:
    """(K, K) -> (1, K, K); (T-1, K, K) unchanged.  The kernels' transition layout."""
    log_transition = np.ascontiguousarray(log_transition, dtype=np.float64)
    return log_transition[None] if log_transition.ndim == 2 else log_transition


def _prepare(log_init, log_transition, log_emission):
    log_init, log_transition, log_emission = check_inputs(log_init, log_transition, log_emission)
    if log_emission.shape[0] < 1:
        raise ValueError("log_emission must have at least one time step")
    la = as_3d(log_transition)
    if la.shape[0] == 0:  # T = 1 with time-varying transitions: no transition is ever used
        la = np.zeros((1,) + la.shape[1:])
    return (
        np.ascontiguousarray(log_init),
        la,
        np.ascontiguousarray(log_emission),
        log_transition.ndim,
    )


def hmm_filter(log_init, log_transition, log_emission) -> HMMFiltered:
    """Forward filter: marginal log-likelihood, filtered and one-step predicted probabilities.

    Parameters
    ----------
    log_init : (K,) array
    log_transition : (K, K) or (T-1, K, K) array, row = from
    log_emission : (T, K) array, 0 where the observation is missing

    Returns
    -------
    HMMFiltered(loglik, filtered (T, K), predicted (T, K))
    """
    li, la, le, _ = _prepare(log_init, log_transition, log_emission)
    loglik, filt, pred = forward_loglik(li, la, le)
    return HMMFiltered(float(loglik), filt, pred)


def hmm_smoother(log_init, log_transition, log_emission) -> HMMSmoothed:
    """Forward-backward smoother.

    Returns HMMSmoothed(loglik, filtered (T, K), smoothed (T, K), expected_transitions) with the
    expected transition counts in the shape of ``log_transition``: (K, K) summed over t, or
    (T-1, K, K).
    """
    li, la, le, ndim = _prepare(log_init, log_transition, log_emission)
    loglik, filt, _, smoothed, xi = forward_backward(li, la, le)
    if ndim == 2:
        expected = xi[0]
    else:
        expected = xi[: le.shape[0] - 1]
    return HMMSmoothed(float(loglik), filt, smoothed, expected)


def hmm_sample_paths(
    log_init,
    log_transition,
    log_emission,
    n: int,
    random_seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Forward-filter backward-sample ``n`` regime paths from p(S_1..T | y): (n, T) int64."""
    li, la, le, _ = _prepare(log_init, log_transition, log_emission)
    rng = np.random.default_rng(random_seed)
    uniforms = rng.random((int(n), le.shape[0]))
    return _sample_paths(li, la, le, uniforms)

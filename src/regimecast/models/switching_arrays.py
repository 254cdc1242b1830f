"""HMM inputs of the Markov-switching regression, written once for NumPy and PyTensor.

Every function takes the array module ``xp`` first (``numpy`` or ``pytensor.tensor``, the convention of
:mod:`regimecast.models.backend`), so the same code builds the NumPy arrays that the tests compare with
statsmodels and the symbolic arrays that PyMC samples.

State space.  With AR order ``p`` the hidden state at (effective) time t is the tuple
``(S_t, S_{t-1}, ..., S_{t-p})``; its flat index is the C-order ravel of that tuple (so ``S_t`` is the
slowest index, as in statsmodels' ``conditional_loglikelihoods``).  ``E = K**(p+1)`` states.  The move from
``(a_0, ..., a_p)`` to ``(b_0, ..., b_p)`` has probability ``P[a_0, b_0]`` if ``b_j = a_{j-1}`` for
``j = 1..p`` and 0 (log -inf) otherwise.

Timing (statsmodels' convention).  ``P_s`` (from ``exog_tvtp[s]``) moves the regime from original time
``s - 1`` to ``s``.  Like statsmodels, the first ``p`` observations only condition the AR terms: the
effective sample is ``y[p:]`` (``n = T - p`` rows of ``log_emission``).  The initial distribution is the
stationary distribution ``pi_0`` of ``P_0`` for ``S_0`` (or a free Dirichlet vector), then
``p(S_p, ..., S_0) = pi_0(S_0) prod_{s=1..p} P_s[S_{s-1}, S_s]``.

Emissions (Hamilton's mean-adjusted form)::

    y_t - x_t b_{S_t} = sum_j phi_{S_t, j} (y_{t-j} - x_{t-j} b_{S_{t-j}}) + sigma_{S_t} e_t

A row of ``log_emission`` is 0 (no information) when ``y_t`` or any of its ``p`` lags is missing.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from regimecast.models import backend as B

_LOG_2PI = float(np.log(2.0 * np.pi))


# --------------------------------------------------------------------------------------------------
# expanded state space (pure NumPy: it depends on K and p only)


def expanded_states(k_regimes: int, order: int) -> np.ndarray:
    """(E, order + 1) int array: row e is the tuple (S_t, S_{t-1}, ..., S_{t-order}) of state e."""
    return np.array(list(itertools.product(range(k_regimes), repeat=order + 1)), dtype=np.int64)


def expanded_mask(k_regimes: int, order: int) -> np.ndarray:
    """(E, E) log mask: 0 where state e can move to state f (f's lags are e's shifted), -inf elsewhere."""
    s = expanded_states(k_regimes, order)
    if order == 0:
        return np.zeros((k_regimes, k_regimes))
    allowed = np.all(s[None, :, 1:] == s[:, None, :-1], axis=-1)
    return np.where(allowed, 0.0, -np.inf)


def _flat_pairs(k_regimes: int, order: int) -> np.ndarray:
    """(E, E) index into a flattened (K*K) matrix: entry [e, f] = S_t(e) * K + S_t(f)."""
    s0 = expanded_states(k_regimes, order)[:, 0]
    return s0[:, None] * k_regimes + s0[None, :]


def expand_log_transition(xp, log_p, k_regimes: int, order: int):
    """(K, K) -> (E, E) or (n, K, K) -> (n, E, E) transitions on the expanded state space."""
    if order == 0:
        return log_p
    idx = _flat_pairs(k_regimes, order)
    mask = expanded_mask(k_regimes, order)
    if log_p.ndim == 2:
        return log_p.reshape((k_regimes * k_regimes,))[idx] + mask
    n = log_p.shape[0]
    return log_p.reshape((n, k_regimes * k_regimes))[:, idx] + mask[None]


def marginal_regime(probs: np.ndarray, k_regimes: int, order: int) -> np.ndarray:
    """Sum expanded-state probabilities (..., E) over the lagged regimes: (..., K) for S_t."""
    e = k_regimes ** (order + 1)
    return probs.reshape(probs.shape[:-1] + (k_regimes, e // k_regimes)).sum(axis=-1)


# --------------------------------------------------------------------------------------------------
# transitions


def stationary_distribution(xp, p):
    """Stationary distribution pi of a (K, K) row-stochastic matrix: pi P = pi, sum(pi) = 1."""
    k = p.shape[0]
    a = (xp.eye(k) - p + xp.ones((k, k))).T
    return B.solve(xp, a, xp.ones(k))


def tvtp_log_transition(xp, coef, exog_tvtp):
    """Logistic (softmax) time-varying transitions, statsmodels' parametrisation.

    ``coef`` (K, K-1, q): ``coef[i, j]`` are the covariate weights of moving from regime i to regime j
    relative to the last regime (whose linear predictor is 0).  ``exog_tvtp`` (T, q).  Returns
    (T, K, K) log transition matrices, row = from; entry s moves the regime from time s-1 to s.
    """
    k, km1, q = coef.shape
    n = exog_tvtp.shape[0]
    eta = (exog_tvtp @ coef.reshape((k * km1, q)).T).reshape((n, k, km1))
    eta = xp.concatenate([eta, xp.zeros((n, k, 1))], axis=2)
    return B.log_softmax(xp, eta, axis=2)


# --------------------------------------------------------------------------------------------------
# the three HMM inputs


def _per_regime(xp, value, k_regimes: int, switching: bool):
    """A switching parameter (K, ...) as is; a common one (...) repeated to (K, ...)."""
    if switching:
        return value
    return xp.ones((k_regimes,) + (1,) * value.ndim) * value[None]


def regression_means(xp, params: dict[str, Any], data, spec) -> Any:
    """(T, K) regime-conditional regression means x_t b_k (zeros when there are no regressors)."""
    k = spec.k_regimes
    blocks = []
    for name in data.trend_names:  # "const" and/or "trend", each () or (K,)
        blocks.append(_per_regime(xp, params[name], k, spec.switching_trend)[:, None])
    if data.n_exog:
        blocks.append(_per_regime(xp, params["exog_coef"], k, spec.switching_exog))
    if not blocks:
        return xp.zeros((data.n_obs_full, k))
    b = blocks[0] if len(blocks) == 1 else xp.concatenate(blocks, axis=1)  # (K, m)
    return data.design @ b.T


def log_emission(xp, params: dict[str, Any], data, spec):
    """(n, E) Gaussian log densities of y_t given the expanded state, 0 where a value is missing."""
    k, p = spec.k_regimes, spec.order
    states = expanded_states(k, p)
    s0 = states[:, 0]
    z = data.y[:, None] - regression_means(xp, params, data, spec)  # (T, K)
    n_full = data.n_obs_full
    resid = z[p:][:, s0]
    if p:
        ar = _per_regime(xp, params["ar"], k, spec.switching_ar)  # (K, p)
        for j in range(1, p + 1):
            resid = resid - ar[s0, j - 1][None, :] * z[p - j : n_full - j][:, states[:, j]]
    sigma = params["sigma"]
    sigma = sigma if spec.switching_variance else xp.ones(k) * sigma
    sig = sigma[s0][None, :]
    logpdf = -0.5 * _LOG_2PI - B.log(xp, sig) - 0.5 * (resid / sig) ** 2
    return xp.where(data.valid[:, None], logpdf, 0.0)


def log_regime_transitions(xp, params: dict[str, Any], data, spec):
    """Regime (K x K) log transitions: (K, K) constant, or (T, K, K) with entry s moving s-1 -> s."""
    if spec.exog_tvtp:
        return tvtp_log_transition(xp, params["tvtp_coef"], data.exog_tvtp)
    return B.log(xp, params["transition"])


def hmm_inputs(xp, params: dict[str, Any], data, spec):
    """(log_init (E,), log_transition (E, E) or (n-1, E, E), log_emission (n, E)) for the engine."""
    k, p = spec.k_regimes, spec.order
    log_p = log_regime_transitions(xp, params, data, spec)
    tv = spec.exog_tvtp
    if spec.prior.initial == "dirichlet":
        log_pi0 = B.log(xp, params["init_probs"])
    else:
        p0 = xp.exp(log_p[0]) if tv else params["transition"]
        log_pi0 = B.log(xp, stationary_distribution(xp, p0))
    states = expanded_states(k, p)
    log_init = log_pi0[states[:, p]]
    for j in range(1, p + 1):
        # move from S_{p-j} (tuple slot j) to S_{p-j+1} (slot j-1), at original time p-j+1
        lp = log_p[p - j + 1] if tv else log_p
        log_init = log_init + lp.reshape((k * k,))[states[:, j] * k + states[:, j - 1]]
    log_trans = expand_log_transition(xp, log_p[p + 1 :] if tv else log_p, k, p)
    return log_init, log_trans, log_emission(xp, params, data, spec)

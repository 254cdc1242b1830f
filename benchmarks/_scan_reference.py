"""A PyTensor ``scan`` forward filter: the stock way to write an HMM likelihood in PyMC.

Used only as a yardstick (by ``bench_engine.py``) and as an independent oracle in ``tests/test_hmm_op.py``.
The log filtered probabilities are renormalised at every step and the step's log-sum-exp is accumulated
into the log-likelihood, so the value and the gradient that ``pytensor.grad`` traces through the scan stay
finite at any length (an unnormalised log-alpha gives a NaN gradient once it passes about -745).

Shapes as in :mod:`regimecast.hmm`: ``log_init`` (K,), ``log_transition`` (K, K) or (T-1, K, K) with
row = from, ``log_emission`` (T, K); T >= 2.
"""

from __future__ import annotations

import pytensor
import pytensor.tensor as pt


def scan_loglik(log_init, log_transition, log_emission):
    """Symbolic marginal log-likelihood of a discrete HMM by a normalised ``scan`` forward filter."""
    log_init = pt.as_tensor_variable(log_init)
    log_transition = pt.as_tensor_variable(log_transition)
    log_emission = pt.as_tensor_variable(log_emission)
    c_init = pt.logsumexp(log_init)
    a0 = log_init - c_init + log_emission[0]
    c0 = pt.logsumexp(a0)

    def step_const(le_t, log_alpha, log_a):
        a = pt.logsumexp(log_alpha[:, None] + log_a, axis=0) + le_t
        c = pt.logsumexp(a)
        return a - c, c

    def step_tv(le_t, log_a, log_alpha):
        return step_const(le_t, log_alpha, log_a)

    if log_transition.ndim == 2:
        outs = pytensor.scan(
            step_const,
            sequences=[log_emission[1:]],
            outputs_info=[a0 - c0, None],
            non_sequences=[log_transition],
            return_updates=False,
        )
    else:
        outs = pytensor.scan(
            step_tv,
            sequences=[log_emission[1:], log_transition],
            outputs_info=[a0 - c0, None],
            return_updates=False,
        )
    _, cs = outs
    return c_init + c0 + cs.sum()

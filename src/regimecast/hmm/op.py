"""The HMM marginal log-likelihood as a PyTensor Op with an exact, backward-pass gradient.

``hmm_logp(log_init, log_transition, log_emission)`` returns the scalar marginal log-likelihood.  Its
gradient is not traced through a ``scan``: one fused numba forward-backward pass computes the value and
all three gradients at once,

* d loglik / d log_emission[t, k]  = p(S_t = k | y)                    (smoothed marginals)
* d loglik / d log_transition[i, j] = sum_t p(S_t = i, S_t+1 = j | y)   (expected counts; per t if
  the transitions vary in time)
* d loglik / d log_init[k]        = p(S_0 = k | y)

The Op has four outputs (value and the three gradients); ``grad`` reuses the same node, so PyTensor's
merge pass computes the forward-backward once per logp+gradient evaluation.  A numba implementation is
registered with PyTensor's numba dispatcher so the Op also runs in ``mode="NUMBA"`` and under nutpie.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from regimecast.hmm import forward as _forward_module
from regimecast.hmm.forward import forward_backward


def _as3d(log_transition: np.ndarray, T: int) -> np.ndarray:
    if log_transition.ndim == 2:
        return np.ascontiguousarray(log_transition)[None]
    if log_transition.shape[0] == 0 or T == 1:
        return np.zeros((1,) + log_transition.shape[1:])
    return np.ascontiguousarray(log_transition)


class HMMLogp(Op):
    """Marginal log-likelihood of a discrete HMM and its gradients (four outputs)."""

    __props__ = ()

    def make_node(self, log_init, log_transition, log_emission):
        log_init = pt.as_tensor_variable(log_init).astype("float64")
        log_transition = pt.as_tensor_variable(log_transition).astype("float64")
        log_emission = pt.as_tensor_variable(log_emission).astype("float64")
        if log_init.ndim != 1:
            raise ValueError(f"log_init must be a vector (K,), got ndim={log_init.ndim}")
        if log_transition.ndim not in (2, 3):
            raise ValueError(
                f"log_transition must be (K, K) or (T-1, K, K), got ndim={log_transition.ndim}"
            )
        if log_emission.ndim != 2:
            raise ValueError(f"log_emission must be (T, K), got ndim={log_emission.ndim}")
        outputs = [
            pt.dscalar(),
            log_init.type(),
            log_transition.type(),
            log_emission.type(),
        ]
        return Apply(self, [log_init, log_transition, log_emission], outputs)

    def perform(self, node, inputs, output_storage):
        log_init, log_transition, log_emission = inputs
        T, K = log_emission.shape
        if (
            T < 1
            or log_init.shape != (K,)
            or log_transition.shape[-2:] != (K, K)
            or (log_transition.ndim == 3 and log_transition.shape[0] != T - 1)
        ):
            raise ValueError(
                f"HMMLogp shapes disagree: log_init {log_init.shape}, log_transition "
                f"{log_transition.shape}, log_emission {log_emission.shape}"
            )
        la = _as3d(log_transition, T)
        loglik, _, _, smoothed, xi = forward_backward(
            np.ascontiguousarray(log_init), la, np.ascontiguousarray(log_emission)
        )
        output_storage[0][0] = np.asarray(loglik, dtype=np.float64)
        output_storage[1][0] = smoothed[0].copy()
        if log_transition.ndim == 2:
            output_storage[2][0] = xi[0]
        else:
            output_storage[2][0] = xi[: T - 1].reshape(log_transition.shape)
        output_storage[3][0] = smoothed

    def infer_shape(self, fgraph, node, input_shapes):
        return [(), input_shapes[0], input_shapes[1], input_shapes[2]]

    def grad(self, inputs, output_grads):
        g_value = output_grads[0]
        for og in output_grads[1:]:
            if not isinstance(og.type, DisconnectedType):
                return [grad_not_implemented(self, i, inp) for i, inp in enumerate(inputs)]
        if isinstance(g_value.type, DisconnectedType):
            return [inp.zeros_like() for inp in inputs]
        _, g_init, g_trans, g_em = self(*inputs)
        return [g_value * g_init, g_value * g_trans, g_value * g_em]

    def connection_pattern(self, node):
        return [[True, True, True, True]] * 3


hmm_logp_op = HMMLogp()


def hmm_logp(log_init, log_transition, log_emission):
    """Symbolic marginal log-likelihood (scalar) of a discrete HMM.

    Parameters
    ----------
    log_init : (K,) tensor
    log_transition : (K, K) or (T-1, K, K) tensor, row = from
    log_emission : (T, K) tensor; 0 where the observation is missing
    """
    return hmm_logp_op(log_init, log_transition, log_emission)[0]


def _numba_impl_version() -> int:
    """Salt for PyTensor's on-disk numba cache key: changes whenever this file or the kernels change.

    PyTensor caches the compiled Op under a key made of the Op type, its props and this integer; numba
    does not notice edits to the kernels the cached function calls, so a fixed integer would keep
    running stale kernels after an upgrade.
    """
    digest = hashlib.sha256()
    for path in (Path(__file__), Path(_forward_module.__file__)):
        digest.update(path.read_bytes())
    return int(digest.hexdigest()[:15], 16)


def _register_numba() -> None:
    try:
        from pytensor.link.numba.dispatch.basic import (
            numba_njit,
            register_funcify_default_op_cache_key,
        )
    except ImportError:  # pragma: no cover - older PyTensor
        return

    @register_funcify_default_op_cache_key(HMMLogp)
    def _funcify_hmm_logp(op, node=None, **kwargs):
        trans_ndim = node.inputs[1].ndim if node is not None else 2

        if trans_ndim == 2:

            @numba_njit
            def hmm_logp_numba(log_init, log_transition, log_emission):
                K = log_transition.shape[0]
                if (
                    log_emission.shape[0] < 1
                    or log_transition.shape[1] != K
                    or log_init.shape[0] != K
                    or log_emission.shape[1] != K
                ):
                    raise ValueError("HMMLogp shapes disagree: need (K,), (K, K), (T, K)")
                la = np.ascontiguousarray(log_transition).reshape((1, K, K))
                loglik, _, _, smoothed, xi = forward_backward(
                    np.ascontiguousarray(log_init), la, np.ascontiguousarray(log_emission)
                )
                return np.asarray(loglik), smoothed[0].copy(), xi[0].copy(), smoothed

        else:

            @numba_njit
            def hmm_logp_numba(log_init, log_transition, log_emission):
                T = log_emission.shape[0]
                K = log_emission.shape[1]
                if (
                    T < 1
                    or log_init.shape[0] != K
                    or log_transition.shape[0] != T - 1
                    or log_transition.shape[1] != K
                    or log_transition.shape[2] != K
                ):
                    raise ValueError("HMMLogp shapes disagree: need (K,), (T-1, K, K), (T, K)")
                if T == 1:
                    la = np.zeros((1, K, K))
                else:
                    la = np.ascontiguousarray(log_transition)
                loglik, _, _, smoothed, xi = forward_backward(
                    np.ascontiguousarray(log_init), la, np.ascontiguousarray(log_emission)
                )
                return np.asarray(loglik), smoothed[0].copy(), xi[: T - 1].copy(), smoothed

        return hmm_logp_numba, _numba_impl_version()


_register_numba()

"""Model code written once for NumPy and PyTensor: pass the array module ``xp`` (``numpy`` or
``pytensor.tensor``) first.

Where both modules spell an operation the same way (``xp.exp``, ``xp.where``, ``xp.zeros``,
``xp.concatenate``, ...) the model calls ``xp`` directly; the few that differ live here, so the NumPy
path (the one tests compare with statsmodels and the simulator uses) and the symbolic path (the one PyMC
samples) run the same lines.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt


def is_symbolic(xp) -> bool:
    """True for PyTensor, False for NumPy."""
    return xp is pt


def stack(xp, items, axis: int = 0):
    return pt.stack(items, axis=axis) if xp is pt else np.stack(items, axis=axis)


def concat(xp, items, axis: int = 0):
    return pt.concatenate(items, axis=axis) if xp is pt else np.concatenate(items, axis=axis)


def log(xp, x):
    """Natural log; on NumPy log(0) = -inf quietly (an impossible transition is valid input)."""
    if xp is pt:
        return pt.log(x)
    with np.errstate(divide="ignore"):
        return np.log(x)


def logsumexp(xp, x, axis: int = -1, keepdims: bool = False):
    if xp is pt:
        return pt.logsumexp(x, axis=axis, keepdims=keepdims)
    return _np_logsumexp(x, axis=axis, keepdims=keepdims)


def _np_logsumexp(x, axis: int = -1, keepdims: bool = False):
    """log(sum(exp(x))) along ``axis``; -inf where every term is -inf.  (scipy's version costs ~70 us
    of argument handling per call, which dominated the per-draw loops of the update.)"""
    x = np.asarray(x, dtype=float)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def log_softmax(xp, x, axis: int = -1):
    """``x - logsumexp(x, axis)``: log probabilities along ``axis``."""
    return x - logsumexp(xp, x, axis=axis, keepdims=True)


def solve(xp, a, b):
    return pt.linalg.solve(a, b) if xp is pt else np.linalg.solve(a, b)

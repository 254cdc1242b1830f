"""Result types and input checks shared by the fast kernels and the NumPy reference.

Both :mod:`regimecast.hmm.forward` and the test oracle :mod:`regimecast.hmm.reference` import from
here; neither imports the other.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class HMMFiltered(NamedTuple):
    """Forward-filter output."""

    loglik: float
    filtered: np.ndarray  # (T, K): p(S_t | y_1..t)
    predicted: np.ndarray  # (T, K): p(S_t | y_1..t-1); predicted[0] = normalised init


class HMMSmoothed(NamedTuple):
    """Forward-backward output."""

    loglik: float
    filtered: np.ndarray  # (T, K)
    smoothed: np.ndarray  # (T, K): p(S_t | y_1..T)
    expected_transitions: np.ndarray  # (K, K) summed over t, or (T-1, K, K) if transitions vary


def check_inputs(log_init, log_transition, log_emission):
    """The three inputs as float arrays, or ValueError naming the input whose shape is wrong."""
    log_init = np.asarray(log_init, dtype=float)
    log_transition = np.asarray(log_transition, dtype=float)
    log_emission = np.asarray(log_emission, dtype=float)
    if log_emission.ndim != 2:
        raise ValueError(f"log_emission must be (T, K), got shape {log_emission.shape}")
    T, K = log_emission.shape
    if log_init.shape != (K,):
        raise ValueError(f"log_init must be ({K},), got shape {log_init.shape}")
    if log_transition.shape not in {(K, K), (T - 1, K, K)}:
        raise ValueError(
            f"log_transition must be ({K}, {K}) or ({T - 1}, {K}, {K}), got {log_transition.shape}"
        )
    return log_init, log_transition, log_emission

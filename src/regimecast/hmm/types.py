"""Result types of the HMM kernels (shared by the fast kernels and the NumPy reference)."""

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

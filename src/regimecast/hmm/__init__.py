"""The Markov-switching engine: stable forward-backward kernels, FFBS, and the PyTensor likelihood Op.

Shapes (row = from): ``log_init`` (K,), ``log_transition`` (K, K) or (T-1, K, K), ``log_emission``
(T, K) with 0 for a missing observation.
"""

from regimecast.hmm.forward import hmm_filter, hmm_sample_paths, hmm_smoother
from regimecast.hmm.op import HMMLogp, hmm_logp
from regimecast.hmm.types import HMMFiltered, HMMSmoothed

__all__ = [
    "HMMFiltered",
    "HMMLogp",
    "HMMSmoothed",
    "hmm_filter",
    "hmm_logp",
    "hmm_sample_paths",
    "hmm_smoother",
]

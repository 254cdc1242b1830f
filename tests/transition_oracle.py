"""The 27-state transition of the macro x rate x bs model written out as explicit loops (a test oracle
independent of the vectorised code in regimecast.models.macro)."""

from __future__ import annotations

import numpy as np


def joint_index(s, r, b):
    """Joint state index ``k = (s * 3 + r) * 3 + b``."""
    return (np.asarray(s) * 3 + np.asarray(r)) * 3 + np.asarray(b)


def _softmax_row(own: int, off_logits) -> np.ndarray:
    """Softmax over 3 targets: logit 0 for staying at ``own``, ``off_logits`` (the other two targets in
    order) for moving."""
    others = [j for j in range(3) if j != own]
    logits = np.zeros(3)
    logits[others] = off_logits
    return np.exp(logits) / np.exp(logits).sum()


def oracle_transition(p: dict, x: float = 0.0) -> np.ndarray:
    """The factorised transition P(s'|s,r,b) P(r'|r,b,s') P(b'|b,r,s') as explicit loops."""
    P = np.empty((27, 27))
    sd, tr, tb = float(p["macro_policy_sd"]), float(p["rate_tau"]), float(p["bs_tau"])
    g_r, g_b = p.get("rate_tvtp", np.zeros(3)), p.get("bs_tvtp", np.zeros(3))
    for s, r, b in np.ndindex(3, 3, 3):
        ps = _softmax_row(s, [p["macro_offdiag"][s, c] + sd * (p["macro_rate_raw"][r, j]
                                                             + p["macro_bs_raw"][b, j])
                              for c, j in enumerate(j for j in range(3) if j != s)])
        for s2 in range(3):
            pr = _softmax_row(r, [p["rate_base"][r, c] + g_r[j] * x
                                  + tr * (p["rate_dev_bs"][b, r, c] + p["rate_dev_macro"][s2, r, c])
                                  for c, j in enumerate(j for j in range(3) if j != r)])
            pb = _softmax_row(b, [p["bs_base"][b, c] + g_b[j] * x
                                  + tb * (p["bs_dev_rate"][r, b, c] + p["bs_dev_macro"][s2, b, c])
                                  for c, j in enumerate(j for j in range(3) if j != b)])
            for r2, b2 in np.ndindex(3, 3):
                P[(s * 3 + r) * 3 + b, (s2 * 3 + r2) * 3 + b2] = ps[s2] * pr[r2] * pb[b2]
    return P

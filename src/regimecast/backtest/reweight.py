"""Reach a later origin from a fit by importance reweighting its draws (see :mod:`regimecast.reweight`
and :func:`regimecast.update.reweight_to_panel`: exact forward-filter weights, PSIS, resampling)."""

from __future__ import annotations

import math

import pandas as pd

from regimecast.results import MacroFit


def reweight(fit: MacroFit, panel: pd.DataFrame, *, random_seed: int) -> tuple[MacroFit | None, float, float,
                                                                                list[str]]:
    """(resampled fit on ``panel`` or None, k-hat, ESS, reasons to refit instead)."""
    from regimecast.update import reweight_to_panel

    out, khat, ess, reasons = reweight_to_panel(fit, panel, seed=random_seed)
    return out, (khat if math.isfinite(khat) else float("inf")), ess, reasons

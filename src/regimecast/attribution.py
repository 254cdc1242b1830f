"""Reweight a run's posterior with the news, one release at a time: weights, k-hat, ESS, attribution.

:func:`reweight_with_news` runs the exact computation of :mod:`regimecast.reweight` for every release of
:func:`regimecast.news.release_steps` and returns the final weights (for the updated run) and the news
attribution: P(policy state starts within ``h`` months) for QE and the first cut after each release,
computed exactly per draw and averaged with that release's Pareto-smoothed weights.

How the rows add up.  Row 0 is the parent's own number, measured from *its* as-of month.  Row 1
("time passes") moves the forecast origin to the new as-of month with no data at all (the filtered state
propagated through the months in between, uniform weights).  Every later row releases one group of prints
(revisions first, then month by month in release order) and is measured from the *new* as-of month, so
the changes of rows 1.. telescope: their sum is exactly the total change from the parent's number to the
updated one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from regimecast.config import ModelConfig
from regimecast.errors import UpdateError
from regimecast.models.macro import MacroData, inactive_params, prepare_data
from regimecast.news import RELEASE_GROUPS, Step, base_panel, release_steps
from regimecast.reweight import (
    FilterState,
    NewMonths,
    Smoothed,
    continue_filter,
    extend_window,
    filter_draws,
    never_enters,
    new_month_parts,
    psis,
    same_parameters,
    tail_data,
    vol_prior_term,
)

#: The instrument states whose start the attribution tracks: (column prefix, chain, role index):
#: QE is the balance-sheet chain's state 2, the first cut the rate chain's state 0.
TRACKED = (("qe", "bs", 2), ("cut", "rate", 0))
ATTRIBUTION_COLUMNS = ("step", "p_qe", "p_cut", "change_qe", "change_cut", "khat", "ess")


@dataclass
class Reweighting:
    """The outcome of reweighting a run with new data."""

    log_weights: np.ndarray  # (N,) raw
    smoothed: Smoothed  # final Pareto-smoothed weights, k-hat, ESS
    vol_shift: np.ndarray  # (N,) vol_level shift into the new panel's coordinates
    reweightable: bool  # False when the new data change the model's free parameters
    attribution: pd.DataFrame  # ATTRIBUTION_COLUMNS, one row per release (empty without attribution)
    horizon: int
    state_new: FilterState | None = None  # per draw: the filter over the new panel (new coordinates)


def head_data(d: MacroData, t: int, trend: np.ndarray) -> MacroData:
    from dataclasses import fields

    kw = {f.name: getattr(d, f.name)[:t] for f in fields(d)}
    kw["trend"] = np.asarray(trend, dtype=float)
    return MacroData(**kw)


def reweight_with_news(
    arrays: dict, old: pd.DataFrame, new: pd.DataFrame, news: pd.DataFrame, cfg: ModelConfig,
    *, n_chains: int, horizon: int = 12, state_old: FilterState | None = None, attribute: bool = True,
) -> Reweighting:
    """Weights of every draw for the ``new`` panel and the news attribution (see the module docstring).

    ``state_old``: the draws' filter over ``old`` when already known (a run stores it); computed
    otherwise.  ``attribute=False`` skips the release-by-release attribution (the backtest needs only
    the final weights): the table is then empty.
    """
    d_old, d_new = prepare_data(old, cfg), prepare_data(new, cfg)
    t_old = d_old.T
    if d_new.T < t_old or not d_new.dates[:t_old].equals(d_old.dates):
        raise UpdateError(
            f"the store's panel does not extend the run's months ({d_old.dates[0]:%Y-%m}.."
            f"{d_old.dates[-1]:%Y-%m}); update from a run with the same model.start"
        )
    steps = release_steps(old, new, news, cfg)
    if state_old is None:
        state_old = filter_draws(arrays, d_old, cfg)
    n_rev = sum(1 for s in steps if not s.month)
    state_rev = state_old
    if n_rev:
        d_rev = prepare_data(steps[n_rev - 1].panel, cfg)
        state_rev = filter_draws(arrays, head_data(d_rev, t_old, d_old.trend), cfg)
    fixed = inactive_params(d_old, cfg)
    months = NewMonths({}, np.empty((len(state_old.loglik), 0)), state_rev.log_a)
    if d_new.T > t_old:
        months = new_month_parts(arrays, tail_data(d_new, t_old, d_old.trend), cfg, fixed,
                                 state_old.log_a)
    comps = cfg.state_components()
    targets = {name: np.asarray(comps[chain]) == j for name, chain, j in TRACKED}

    def probs(alpha, stay_out, w):  # stay_out: never_enters per target, shared by every step
        return {n: float(np.sum(w * (1.0 - np.einsum("nk,nk->n", alpha, stay_out[n])))) for n in targets}

    def stay_out_of(log_a):
        return {n: never_enters(log_a, t, horizon) for n, t in targets.items()}

    n = len(state_old.loglik)
    rows = [("parent, from its as-of month", probs(state_old.alpha, stay_out_of(state_old.log_a),
                                                  np.full(n, 1 / n)), float("nan"), float(n))]
    ahead = stay_out_of(months.log_a_future)
    labelled = [("time passes: origin moves to the new as-of month, no news",
                 Step("", "", "", base_panel(old, new, cfg)), 0)]
    labelled += [(s.label, s, i + 1) for i, s in enumerate(steps)]
    if not attribute:
        labelled = labelled[-1:]
    for label, step, k in labelled:
        log_w, sm, shift, alpha_end, loglik, window = _step_weights(
            arrays, d_old, step, steps[:k], state_old, state_rev, months, cfg, n_chains
        )
        rows.append((label, probs(alpha_end, ahead, sm.weights), sm.khat, sm.ess))
    table = _attribution_table(rows) if attribute else pd.DataFrame(columns=list(ATTRIBUTION_COLUMNS))
    state_new = FilterState(loglik, alpha_end, months.log_a_future, window)
    return Reweighting(log_w, sm, shift, same_parameters(d_old, d_new, cfg), table, horizon, state_new)


def _step_weights(arrays, d_old, step: Step, released: list[Step], state_old: FilterState,
                  state_rev: FilterState, months: NewMonths, cfg, n_chains: int):
    """Raw and smoothed log weights, vol shift, filtered state at the new as-of after ``released``, the
    log-likelihood of the data released so far and the last months' filtered states (per draw, in the
    new coordinates)."""
    revised = any(not s.month for s in released)
    start = state_rev if revised else state_old
    n_new = months.log_a.shape[1]
    if n_new:
        first = pd.Timestamp(d_old.dates[-1]) + pd.DateOffset(months=1)
        index = pd.date_range(first, periods=n_new, freq="MS").strftime("%Y-%m").tolist()
        em = np.zeros(months.parts[RELEASE_GROUPS[0][0]].shape)
        for s in released:
            if s.month:
                t = index.index(s.month)
                em[:, t] += months.parts[s.group][:, t]
        inc, alphas = continue_filter(start.alpha, months.log_a, em)
        alpha_end, window = alphas[:, -1], extend_window(start.window, alphas)
    else:
        inc, alpha_end, window = np.zeros(len(start.loglik)), start.alpha, start.window
    d_step = prepare_data(step.panel, cfg)
    prior, shift = vol_prior_term(arrays, d_old, d_step, cfg)
    log_w = (start.loglik - state_old.loglik) + inc + prior
    return log_w, psis(log_w, n_chains), shift, alpha_end, start.loglik + inc, window


def _attribution_table(rows) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "step": [r[0] for r in rows],
            "p_qe": [r[1]["qe"] for r in rows],
            "p_cut": [r[1]["cut"] for r in rows],
            "khat": [r[2] for r in rows],
            "ess": [r[3] for r in rows],
        }
    )
    df["change_qe"] = df["p_qe"].diff()
    df["change_cut"] = df["p_cut"].diff()
    return df[list(ATTRIBUTION_COLUMNS)]

"""Importance reweighting of a posterior with new data (leave-future-out importance sampling, run forwards).

Each posterior draw ``theta_i`` of a run gets the log weight

    log w_i = log p_new(theta_i*) - log p_old(theta_i)
            = [log prior_new(theta_i*) - log prior_old(theta_i)] + [log L_new(theta_i*) - log L_old(theta_i)]

computed exactly with the engine's forward filter (Bürkner, Gabry and Vehtari 2020).  ``theta*`` is the
draw in the new panel's coordinates: the model centres its small-cap volume trend on the months with
volume data, so appending months moves the centre by ``delta`` (in trend units) and ``vol_level`` means
something slightly different; ``theta*`` has ``vol_level + vol_trend * delta`` and every other parameter
unchanged (a shear with unit Jacobian), which makes the volume emission of every old month identical
under (old data, theta) and (new data, theta*).  Hence:

* without revisions, ``log L_new(theta*) - log L_old(theta)`` is the sum of the one-step predictive
  log densities of the new months, continuing the filter from its state at the run's as-of month;
* with revisions of past months, the filter over the revised history is recomputed per draw;
* the only prior that depends on the data is ``vol_level``'s (its centre and scale come from the volume
  data, ``models.macro.data_scales``); the prior term is that density's ratio (zero otherwise).

The continuation works month by month on all draws at once, from per-series emission parts of the new
months, so the news attribution (one release at a time) costs one vectorised pass per release.  Weights
are Pareto-smoothed with ArviZ's PSIS (``az.psislw``; k-hat, ESS = 1 / sum w^2), and the exact
probability that a policy state *starts* within ``h`` months (the ``state_start`` event rule: an
episode running at the as-of month does not count) comes from the filtered state at the as-of month and
the transition matrix with the entries into the state removed: ``1 - alpha @ A_blocked^h @ 1``.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import arviz as az
import numpy as np
import xarray as xr
from scipy.stats import norm

from regimecast.config import ModelConfig
from regimecast.hmm import hmm_filter
from regimecast.models.macro import (
    MacroData,
    data_scales,
    inactive_params,
    joint_log_emission,
    joint_log_emission_batch,
    joint_log_transition,
    numpy_params,
    prior_sds,
    transition_drivers,
)

#: MacroData fields observed by each release group (news.RELEASE_GROUPS), blanked to isolate a group.
#: The policy-rate group also owns ``rate``: a month at the zero lower bound (rate below the floor this
#: month and last) is itself a rate observation (models.macro.at_zero_lower_bound).
GROUP_FIELDS: dict[str, tuple[str, ...]] = {
    "small-cap volume": ("vol",),
    "policy rate": ("rate_change", "rate"),
    "balance sheet": ("bs_growth",),
    "CPI": ("cpi",),
}


def posterior_arrays(idata) -> dict[str, np.ndarray]:
    """Every posterior variable stacked over (chain, draw) into a leading sample axis (N, ...)."""
    post = idata.posterior.stack(sample=("chain", "draw"))
    return {k: np.moveaxis(post[k].values, -1, 0) for k in post.data_vars}


def point_at(arrays: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    return {k: v[i] for k, v in arrays.items()}


@dataclass
class FilterState:
    """Per draw: log-likelihood, filtered joint state at the last month, transition used beyond it, and
    the filtered states of the last months (``window``, the last row is ``alpha``; None when unknown):
    a ragged-edge forecast backward-samples its missing months from them instead of refiltering."""

    loglik: np.ndarray  # (N,)
    alpha: np.ndarray  # (N, K)
    log_a: np.ndarray  # (N, K, K)
    window: np.ndarray | None = None  # (N, W, K), W <= FILTER_WINDOW

    def take(self, idx: np.ndarray) -> FilterState:
        """The state of draws ``idx`` (a resampled posterior)."""
        w = None if self.window is None else self.window[idx]
        return FilterState(self.loglik[idx], self.alpha[idx], self.log_a[idx], w)


#: Months of filtered states a run keeps before its as-of (the deepest ragged edge it can nowcast
#: without refiltering: small-cap volume and CPI run at most a month or two behind the rates).
FILTER_WINDOW = 6


def extend_window(window: np.ndarray | None, alphas: np.ndarray) -> np.ndarray:
    """The last (up to :data:`FILTER_WINDOW`) filtered states after the months ``alphas`` (N, n, K)
    followed ``window`` (N, W, K; None for a run stored without one: then the new months only)."""
    both = alphas if window is None else np.concatenate([window, alphas], axis=1)
    return both[:, -FILTER_WINDOW:]


def filter_draws(arrays: dict, d: MacroData, cfg: ModelConfig) -> FilterState:
    """Forward filter of every draw over ``d`` (NumPy model matrices, numba filter)."""
    n = len(next(iter(arrays.values())))
    K = cfg.n_states
    ll, alpha, log_a = np.empty(n), np.empty((n, K)), np.empty((n, K, K))
    W = min(FILTER_WINDOW, d.T)
    window = np.empty((n, W, K))
    fixed = inactive_params(d, cfg)
    drivers = transition_drivers(d, cfg)
    li = np.full(K, -np.log(K))
    for i in range(n):
        p = numpy_params({**fixed, **point_at(arrays, i)}, cfg)
        lt = joint_log_transition(np, p, cfg, drivers=drivers)
        r = hmm_filter(li, lt, joint_log_emission(np, p, d, cfg))
        ll[i], alpha[i], window[i] = r.loglik, r.filtered[-1], r.filtered[-W:]
        log_a[i] = lt if lt.ndim == 2 else lt[-1]
    return FilterState(ll, alpha, log_a, window)


#: The InferenceData group that holds a run's per-draw filter state at its as-of month.
FILTER_GROUP = "filter_state"


def data_digest(d: MacroData) -> str:
    """SHA-256 of every array of ``d``: a stored filter state belongs to exactly these data."""
    import hashlib

    h = hashlib.sha256()
    for f in dataclasses.fields(d):
        v = getattr(d, f.name)
        if v is None:
            continue
        a = v.asi8 if f.name == "dates" else np.ascontiguousarray(v, dtype=float)
        h.update(f.name.encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def filter_state_dataset(state: FilterState, idata, d: MacroData) -> xr.Dataset:
    """``state`` as a Dataset on the posterior's (chain, draw) grid, tagged with the data's digest."""
    post = idata.posterior
    n_c, n_d = post.sizes["chain"], post.sizes["draw"]
    K = state.alpha.shape[1]
    data = {
        "loglik": (("chain", "draw"), state.loglik.reshape(n_c, n_d)),
        "alpha": (("chain", "draw", "joint_state"), state.alpha.reshape(n_c, n_d, K)),
        "log_a": (("chain", "draw", "joint_from", "joint_to"), state.log_a.reshape(n_c, n_d, K, K)),
    }
    if state.window is not None:  # months as-of - W + 1 .. as-of
        W = state.window.shape[1]
        data["alpha_window"] = (("chain", "draw", "window_month", "joint_state"),
                                state.window.reshape(n_c, n_d, W, K))
    return xr.Dataset(
        data,
        coords={"chain": post["chain"].values, "draw": post["draw"].values},
        attrs={"data_digest": data_digest(d), "months": int(d.T)},
    )


def stored_filter_state(idata, d: MacroData) -> FilterState | None:
    """The filter state saved with a run, when it was computed on exactly ``d`` (else None)."""
    if FILTER_GROUP not in idata.groups():
        return None
    ds = idata[FILTER_GROUP]
    if ds.attrs.get("data_digest") != data_digest(d):
        return None
    K = ds.sizes["joint_state"]
    window = None
    if "alpha_window" in ds:
        window = np.asarray(ds["alpha_window"].values, dtype=float).reshape(-1, ds.sizes["window_month"], K)
    return FilterState(
        np.asarray(ds["loglik"].values, dtype=float).reshape(-1),
        np.asarray(ds["alpha"].values, dtype=float).reshape(-1, K),
        np.asarray(ds["log_a"].values, dtype=float).reshape(-1, K, K),
        window,
    )


def fit_filter_state(fit) -> FilterState:
    """Per draw of ``fit`` (in :func:`posterior_arrays` order), the filter over its own data: from the
    fit's memo, else the run's stored group, else computed (and memoised)."""
    memo = fit._memo
    if "filter_state" not in memo:
        memo["filter_state"] = stored_filter_state(fit.idata, fit.data) or filter_draws(
            posterior_arrays(fit.idata), fit.data, fit.config.model)
    return memo["filter_state"]


def with_trend(d: MacroData, trend: np.ndarray) -> MacroData:
    return dataclasses.replace(d, trend=np.asarray(trend, dtype=float))


def tail_data(d_new: MacroData, t_old: int, trend_old: np.ndarray) -> MacroData:
    """Rows ``t_old - 1 ..`` of ``d_new`` (the run's as-of month and the new months), on the old trend."""
    n = d_new.T - t_old + 1
    step = trend_old[1] - trend_old[0] if len(trend_old) > 1 else 0.0
    fields = {f.name: getattr(d_new, f.name)[t_old - 1 :] for f in dataclasses.fields(d_new)}
    fields["trend"] = trend_old[-1] + step * np.arange(n)
    return MacroData(**fields)


def _only(d: MacroData, group: str) -> MacroData:
    """``d`` with every release group but ``group`` unobserved."""
    blank = {f: np.full(d.T, np.nan) for g, fs in GROUP_FIELDS.items() if g != group for f in fs}
    return dataclasses.replace(d, **blank)


@dataclass
class NewMonths:
    """Per draw, for the months past the run's as-of: emission parts by group and transitions."""

    parts: dict[str, np.ndarray]  # group -> (N, n, K)
    log_a: np.ndarray  # (N, n, K, K): transition into each new month
    log_a_future: np.ndarray  # (N, K, K): transition used beyond the new as-of


def _stacked(tail: MacroData) -> MacroData:
    """The tail repeated once per release group, each copy observing only its group: one emission call
    gives every group's part (rows are independent given their lags and trend values)."""
    copies = [_only(tail, g) for g in GROUP_FIELDS]
    kw = {f.name: np.concatenate([getattr(c, f.name) for c in copies]) for f in dataclasses.fields(tail)
          if f.name != "dates"}
    return MacroData(dates=tail.dates.append([tail.dates] * (len(copies) - 1)), **kw)


def new_month_parts(arrays: dict, tail: MacroData, cfg: ModelConfig, fixed: dict,
                    log_a_old: np.ndarray | None = None) -> NewMonths:
    """Emission parts of the new months (rows 1.. of ``tail``), one per release group, per draw.

    ``log_a_old`` (N, K, K): the draws' transition beyond the old as-of (the run's filter state).
    Without time-varying transitions it is every new month's transition too, so it is not recomputed.
    """
    n_draws = len(next(iter(arrays.values())))
    n, K = tail.T - 1, cfg.n_states
    G = len(GROUP_FIELDS)
    stacked = _stacked(tail)
    em = np.empty((n_draws, G, n, K))
    known = log_a_old is not None and not cfg.tvtp
    log_a = np.broadcast_to(log_a_old[:, None], (n_draws, n, K, K)) if known else np.empty((n_draws, n, K, K))
    drivers = transition_drivers(tail, cfg)
    ps = [numpy_params({**fixed, **point_at(arrays, i)}, cfg) for i in range(n_draws)]
    for lo in range(0, n_draws, 1000):  # batches of draws bound the (draws, rows, K) temporaries
        batch = ps[lo : lo + 1000]
        em[lo : lo + len(batch)] = joint_log_emission_batch(batch, stacked, cfg).reshape(
            len(batch), G, n + 1, K)[:, :, 1:]
    if not known:
        for i, p in enumerate(ps):
            lt = joint_log_transition(np, p, cfg, drivers=drivers)
            log_a[i] = lt if lt.ndim == 3 else np.broadcast_to(lt, (n, K, K))
    parts = {g: em[:, j] for j, g in enumerate(GROUP_FIELDS)}
    return NewMonths(parts, log_a, log_a[:, -1].copy())


def continue_filter(alpha: np.ndarray, log_a: np.ndarray, log_em: np.ndarray):
    """Continue the forward filter of every draw over new months (vectorised over draws).

    ``alpha`` (N, K) filtered state at the last old month; ``log_a`` (N, n, K, K) transitions into the new
    months; ``log_em`` (N, n, K) their log emissions (0 = unobserved).  Returns the summed one-step
    predictive log densities (N,) and the filtered states (N, n, K).  Scaled probability space: each
    month's emissions are shifted by their row maximum before exponentiating, so nothing under- or
    overflows; a transition that is the same every month (a broadcast array) is exponentiated once.
    """
    n_draws, n = log_em.shape[:2]
    inc = np.zeros(n_draws)
    out = np.empty_like(log_em)
    a = np.asarray(alpha, dtype=float)
    constant = n > 0 and log_a.strides[1] == 0
    A = np.exp(log_a[:, 0]) if constant else None
    for t in range(n):
        At = A if constant else np.exp(log_a[:, t])
        pred = np.einsum("nk,nkj->nj", a, At)
        pred /= pred.sum(axis=1, keepdims=True)
        m = log_em[:, t].max(axis=1, keepdims=True)
        w = pred * np.exp(log_em[:, t] - m)
        c = w.sum(axis=1)
        with np.errstate(divide="ignore"):
            inc += np.log(c) + m[:, 0]
        a = w / c[:, None]
        out[:, t] = a
    return inc, out


def vol_prior_term(arrays: dict, d_old: MacroData, d_new: MacroData, cfg: ModelConfig) -> tuple:
    """(log prior ratio (N,), vol_level shift (N,)) of the move from ``d_old`` to ``d_new`` coordinates."""
    n = len(next(iter(arrays.values())))
    if "vol_level" not in arrays:
        return np.zeros(n), np.zeros(n)
    delta = float(d_old.trend[0] - d_new.trend[0])
    shift = arrays["vol_trend"] * delta
    so, sn = data_scales(d_old), data_scales(d_new)
    level = arrays["vol_level"]
    old = norm.logpdf(level, so["vol_mean"], 2.0 * so["vol_sd"] + 0.5)
    new = norm.logpdf(level + shift, sn["vol_mean"], 2.0 * sn["vol_sd"] + 0.5)
    return new - old, shift


def parameter_key(d: MacroData, cfg: ModelConfig) -> tuple:
    """What importance weights cannot carry from one panel to another: the model's free parameters
    and its evidence-driven prior scales (``models.macro.prior_sds``) on ``d``.  Two panels with the
    same key can be reached from each other by reweighting; otherwise the model must be refitted."""
    sds = prior_sds(d, cfg)
    return (tuple(sorted(inactive_params(d, cfg))),
            tuple((k, np.asarray(sds[k]).shape, np.asarray(sds[k], dtype=float).tobytes()) for k in sorted(sds)))


def same_parameters(d_old: MacroData, d_new: MacroData, cfg: ModelConfig) -> bool:
    """Whether both panels give the model the same free parameters and the same evidence-driven prior
    scales (``models.macro.prior_sds``: a state whose pin the new months lift has another prior); if
    not, reweighting is impossible and the run must be refitted."""
    return parameter_key(d_old, cfg) == parameter_key(d_new, cfg)


@dataclass
class Smoothed:
    weights: np.ndarray  # (N,) normalised, Pareto-smoothed
    khat: float  # NaN when all raw weights are equal
    ess: float


def psis(log_w: np.ndarray, n_chains: int) -> Smoothed:
    """Pareto-smoothed importance weights (``az.psislw``), k-hat and ESS = 1 / sum(w^2)."""
    lw = np.asarray(log_w, dtype=float) - np.max(log_w)
    n = lw.size
    if np.ptp(lw) < 1e-12:
        return Smoothed(np.full(n, 1.0 / n), float("nan"), float(n))
    raw = np.exp(lw).reshape(n_chains, -1) if n % n_chains == 0 else np.exp(lw)[None]
    reff = float(az.ess(raw)) / n if raw.shape[0] > 1 else 1.0
    with warnings.catch_warnings(), np.errstate(over="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # exp overflow in ArviZ's tail fit: harmless
        smoothed, khat = az.psislw(lw.copy(), max(reff, 1e-3))
    w = np.exp(smoothed - smoothed.max())
    w /= w.sum()
    return Smoothed(w, float(khat), float(1.0 / np.sum(w**2)))


def systematic_resample(weights: np.ndarray, n: int, random_seed: int) -> np.ndarray:
    """Indices of ``n`` draws by systematic resampling, in a seeded random order."""
    rng = np.random.default_rng(random_seed)
    cum = np.cumsum(weights)
    cum[-1] = 1.0
    idx = np.searchsorted(cum, (rng.random() + np.arange(n)) / n)
    return rng.permutation(np.minimum(idx, len(weights) - 1))


def resampled_posterior(idata, idx: np.ndarray, shift: np.ndarray) -> xr.Dataset:
    """The posterior of ``idata`` at draws ``idx`` (same chain x draw shape), each draw's ``vol_level``
    shifted by its own ``shift`` (N,), indexed like the original draws."""
    post = idata.posterior
    n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    arrays = posterior_arrays(idata)
    if "vol_level" in arrays:
        arrays["vol_level"] = arrays["vol_level"] + shift
    data = {}
    for k, v in arrays.items():
        pick = v[idx].reshape(n_chains, n_draws, *v.shape[1:])
        dims = post[k].dims
        data[k] = (dims, pick)
    coords = {k: post.coords[k] for k in post.coords if k not in ("chain", "draw")}
    ds = xr.Dataset(data, coords={**coords, "chain": np.arange(n_chains), "draw": np.arange(n_draws)})
    return ds


def p_start_within(alpha: np.ndarray, log_a: np.ndarray, target: np.ndarray, h: int) -> np.ndarray:
    """Per draw, P(the chain enters ``target`` at some month 1..h) from the state ``alpha`` (N, K).

    ``log_a`` (N, K, K) row = from; ``target`` (K,) bool.  Entries from outside into ``target`` are
    removed from the transition matrix; what mass survives ``h`` steps never entered.
    """
    return 1.0 - np.einsum("nk,nk->n", alpha, never_enters(log_a, target, h))


def never_enters(log_a: np.ndarray, target: np.ndarray, h: int) -> np.ndarray:
    """Per draw and starting state, P(the chain stays out of ``target`` for months 1..h): (N, K).

    It does not depend on the starting distribution, so one call serves every ``alpha`` that shares
    ``log_a`` (the news attribution's steps)."""
    A = np.exp(log_a)
    A[:, ~target[:, None] & target[None, :]] = 0.0
    v = np.ones(A.shape[:2])
    for _ in range(h):
        v = np.einsum("nij,nj->ni", A, v)
    return v

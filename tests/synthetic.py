"""Synthetic forecast / history Datasets with known answers, for the events, plots and report tests.

They follow the contract of ``regimecast.forecast``: a forecast has dims ``sample`` x ``horizon``
(0..H, ``date`` coordinate of month starts), state indices ``macro_state``/``rate_state``/``bs_state``
and the simulated series; a history has dim ``time`` with the observed series and ``p_macro``/``p_rate``/
``p_bs``.

Tests write policy paths in the four codes QE / CUTTING / HOLD / TIGHTENING, which map onto the two
instruments as QE -> (hold, QE), CUTTING -> (cutting, steady), HOLD -> (hold, steady), TIGHTENING ->
(hiking, steady); ``rate=`` / ``bs=`` give the instruments' paths directly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

MACRO = ["deflationary", "moderate", "inflationary"]
POLICY = ["QE", "cutting", "hold", "tightening"]  # the test codes below (not a model chain)
QE, CUTTING, HOLD, TIGHTENING = range(4)
RATE = ["cutting", "hold", "hiking"]
BS = ["QT", "steady", "QE"]
R_CUT, R_HOLD, R_HIKE = range(3)
B_QT, B_STEADY, B_QE = range(3)
#: policy code -> (rate stance, balance-sheet stance)
TO_RATE = np.array([R_HOLD, R_CUT, R_HOLD, R_HIKE])
TO_BS = np.array([B_QE, B_STEADY, B_STEADY, B_STEADY])
DEFLATIONARY, MODERATE, INFLATIONARY = range(3)
SERIES = ["cpi_yoy", "cpi_mom_ann", "policy_rate", "balance_sheet", "smallcap_volume"]


def month_starts(as_of: str, periods: int) -> pd.DatetimeIndex:
    return pd.period_range(as_of, periods=periods, freq="M").to_timestamp()


def make_forecast(
    policy: np.ndarray | None = None,
    macro: np.ndarray | None = None,
    *,
    rate: np.ndarray | None = None,
    bs: np.ndarray | None = None,
    series: dict[str, np.ndarray] | None = None,
    as_of: str = "2026-03",
    demo: int = 0,
    scenario: str = "",
    seed: int = 0,
) -> xr.Dataset:
    """A forecast Dataset from hand-made state paths ``policy`` (N, H+1) in the test codes (or the
    instruments' paths ``rate`` and ``bs``); other parts filled in."""
    if policy is not None:
        policy = np.asarray(policy, dtype=np.int64)
        rate = TO_RATE[policy] if rate is None else rate
        bs = TO_BS[policy] if bs is None else bs
    rate, bs = np.asarray(rate, dtype=np.int64), np.asarray(bs, dtype=np.int64)
    n, n_h = rate.shape
    macro = (
        np.full((n, n_h), MODERATE, dtype=np.int64)
        if macro is None
        else np.asarray(macro, np.int64)
    )
    rng = np.random.default_rng(seed)
    given = dict(series or {})
    base = {
        "cpi_yoy": 3.0,
        "cpi_mom_ann": 3.0,
        "policy_rate": 4.0,
        "balance_sheet": 7000.0,
        "smallcap_volume": 3.0e7,
    }
    scale = {
        "cpi_yoy": 0.3,
        "cpi_mom_ann": 1.0,
        "policy_rate": 0.2,
        "balance_sheet": 60.0,
        "smallcap_volume": 2.0e6,
    }
    data_vars = {
        "macro_state": (("sample", "horizon"), macro),
        "rate_state": (("sample", "horizon"), rate),
        "bs_state": (("sample", "horizon"), bs),
    }
    for name in SERIES:
        if name in given:
            values = np.asarray(given[name], dtype=float)
        else:  # random walks from a common last observation
            steps = rng.normal(0.0, scale[name], size=(n, n_h))
            steps[:, 0] = 0.0
            values = base[name] + np.cumsum(steps, axis=1)
        data_vars[name] = (("sample", "horizon"), values)
    return xr.Dataset(
        data_vars,
        coords={
            "sample": np.arange(n),
            "horizon": np.arange(n_h),
            "date": ("horizon", month_starts(as_of, n_h)),
        },
        attrs={
            "as_of": as_of,
            "demo": demo,
            "scenario": scenario,
            "chains": ["macro", "rate", "bs"],
            "macro_labels": list(MACRO),
            "rate_labels": list(RATE),
            "bs_labels": list(BS),
        },
    )


def make_history(
    *,
    as_of: str = "2026-03",
    start: str = "2005-01",
    volume_2021: float = 3.5e7,
    seed: int = 1,
) -> xr.Dataset:
    """A history Dataset up to ``as_of`` whose small-cap volume averages exactly ``volume_2021``
    over 2021 (values alternate +-10% around it in 2021)."""
    rng = np.random.default_rng(seed)
    time = pd.period_range(start, as_of, freq="M").to_timestamp()
    t = time.size
    volume = 2.5e7 + rng.normal(0, 1e6, t)
    in_2021 = np.asarray(time.year == 2021)
    volume[in_2021] = volume_2021 * np.where(np.arange(in_2021.sum()) % 2 == 0, 0.9, 1.1)
    volume[:3] = np.nan  # an unobserved stretch
    data = {
        "cpi_yoy": 2.5 + np.cumsum(rng.normal(0, 0.2, t)),
        "cpi_mom_ann": 2.5 + rng.normal(0, 1.5, t),
        "policy_rate": np.clip(2.0 + np.cumsum(rng.normal(0, 0.15, t)), 0.05, None),
        "balance_sheet": 900.0 + np.cumsum(np.abs(rng.normal(30, 20, t))),
        "smallcap_volume": volume,
    }
    p_macro = rng.dirichlet(np.ones(3), size=t)
    ds = xr.Dataset(
        {name: ("time", values) for name, values in data.items()},
        coords={"time": time, "macro": MACRO, "rate": RATE, "bs": BS},
    )
    ds["p_macro"] = (("time", "macro"), p_macro)
    ds["p_rate"] = (("time", "rate"), rng.dirichlet(np.ones(3), size=t))
    ds["p_bs"] = (("time", "bs"), rng.dirichlet(np.ones(3), size=t))
    return ds


def random_chain(
    n: int, n_h: int, transition: np.ndarray, start: int, rng: np.random.Generator
) -> np.ndarray:
    """(n, n_h) Markov-chain paths starting from state ``start``."""
    k = transition.shape[0]
    out = np.empty((n, n_h), dtype=np.int64)
    out[:, 0] = start
    cum = np.cumsum(transition, axis=1)
    for h in range(1, n_h):
        u = rng.random(n)
        out[:, h] = np.minimum((u[:, None] > cum[out[:, h - 1]]).sum(axis=1), k - 1)
    return out


def make_random_forecast(
    n: int = 400, horizon: int = 24, *, as_of: str = "2026-03", demo: int = 0, seed: int = 2
) -> xr.Dataset:
    """A realistic-looking forecast: Markov-chain policy and macro paths plus random-walk series."""
    rng = np.random.default_rng(seed)
    p_policy = np.array(
        [
            [0.85, 0.05, 0.05, 0.05],
            [0.10, 0.75, 0.10, 0.05],
            [0.03, 0.07, 0.85, 0.05],
            [0.01, 0.04, 0.10, 0.85],
        ]
    )
    p_macro = np.array([[0.85, 0.15, 0.0], [0.05, 0.85, 0.10], [0.0, 0.15, 0.85]])
    policy = random_chain(n, horizon + 1, p_policy, HOLD, rng)
    macro = random_chain(n, horizon + 1, p_macro, MODERATE, rng)
    return make_forecast(policy, macro, as_of=as_of, demo=demo, seed=seed)

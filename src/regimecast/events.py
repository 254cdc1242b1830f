"""Events on simulated paths: when QE starts, how long the window it opens lasts, when volume returns.

An event is a small frozen dataclass built from a dict (as parsed from a TOML ``[[events]]`` table) by
:func:`load_events`.  Each kind is one class with its own ``parse`` and ``evaluate``, registered in
:data:`EVENT_KINDS`, so users add events in TOML without code and a new kind is one class.  A state is
written ``"<chain>:<label>"`` for any chain the forecast declares (:mod:`regimecast.schema`), e.g.
``"bs:QE"``, ``"rate:cutting"`` or ``"macro:inflationary"``.

``state_start``
    ``state = "bs:QE"``.  The event happens at the first month ``h >= 1`` at which the chain
    *enters* the state: ``S_h = target`` and ``S_{h-1} != target``.  An episode already running at the
    as-of month (``h = 0``) is not a start, so a path that is in QE at ``h = 0`` only starts QE after
    leaving and re-entering it.  With ``allow_ongoing = true`` a path already in the state at
    ``h = 0`` counts as a start at ``h = 0``.

``state_end``
    ``state = "bs:QT"``.  The first month ``h >= 1`` at which the chain *leaves* the state:
    ``S_{h-1} = target`` and ``S_h != target`` (e.g. ``qt_end``: the balance sheet stops shrinking).
    A path not in the state at ``h = 0`` must enter it first.

``duration``
    ``start = "bs:QE"``, ``end = "rate:hiking"`` or a list of states
    (``end = ["rate:hiking", "bs:QT"]``: the window closes at the first month in *any* of
    them, here the first hike or the start of QT, whichever comes first).  On paths where the start (a ``state_start`` of ``start``, same ``allow_ongoing`` rule)
    happens at month ``s``, the duration is ``e - s`` where ``e`` is the first month ``e >= s`` in an
    end state.  When no such ``e <= H`` exists the duration is *right-censored*: the window was
    still open at the horizon end and its length is only known to be at least ``H - s + 1`` months.

``threshold``
    ``variable = "smallcap_volume"``, ``above = true`` and exactly one threshold rule:

    * ``level = <number>`` (in the series' units);
    * ``percentile = <0-100>`` of the variable's observed history up to the as-of month;
    * ``mean_of = ["YYYY-MM", "YYYY-MM"]``: the mean of the observed history over that inclusive
      window, which must end by the as-of month (a window after the as-of is a ``DataError``);
    * ``reference = "prior_peak"``: the last peak, the highest ``peak_months``-month average
      (default 12) among the windows inside the ``peak_years`` years (default 5) up to and including
      the as-of month.  Defined in real time: it uses only history up to the as-of.

    ``mean_months = k`` (default 1) compares the trailing ``k``-month mean of each path (observed
    history for the months before the as-of) instead of the month's value.  The event happens at the
    first month ``h >= 1`` with the compared value strictly above (``above = true``) or strictly
    below the threshold.  Missing (NaN) simulated values never cross.

    Start condition ``if_met_at_as_of``: what to do when the compared value is already past the
    threshold at the as-of month (``h = 0``; reported as ``met_at_as_of``, the share of paths):

    * ``"ignore"`` (default): as above; such paths count at ``h = 1`` if still past the threshold;
    * ``"report"``: the event needs a new crossing, from the other side of the threshold at
      ``h - 1`` to past it at ``h``, so a series already above its last peak must first fall back
      below it; the report says "already above ... at the as-of" instead of a trivial 100% in
      month one;
    * ``"count_at_0"``: such paths count as occurring at ``h = 0``.

Conventions of :func:`evaluate_events`
--------------------------------------
* ``probability[e, h]`` is P(first occurrence at month ``h``) over *all* ``N`` paths and
  ``cumulative[e, h]`` its running sum, P(occurred by month ``h``).  For a duration event the
  occurrence on the date axis is the *end* of a window (e.g. "tightening returns after QE").
* Quantiles (median, 10%, 90%) are computed only on the paths where the event happens within the
  horizon (for durations: windows that opened *and* closed), with ``method="inverted_cdf"`` so they
  are months that actually occur.  ``p_never`` beside them gives the mass they leave out: for
  ``state_start`` and ``threshold`` events P(no occurrence within the horizon); for ``duration``
  events P(censored | start within the horizon).
* Every duration probability (``p_within_*``, ``p_never``, ``p_censored``, ``p_at_least``,
  ``duration_probability``) is *conditional on the start happening within the horizon*; ``p_start``
  gives P(start within the horizon).  ``p_at_least`` = P(duration >= ``at_least`` months) counts a
  censored window as long enough when its known lower bound ``H - s + 1`` already reaches
  ``at_least``; the censored windows it cannot classify count as shorter, so it is a lower bound.
  Likewise ``p_within_km`` counts censored windows as not closed (a lower bound).
* ``p_within_6m``/``12m``/``24m`` use month ``min(k, H)`` when the horizon ``H`` is shorter than ``k``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from regimecast import schema
from regimecast.data.columns import (
    BALANCE_SHEET,
    COLUMN_META,
    CPI_MOM_ANN,
    CPI_YOY,
    POLICY_RATE,
    SMALLCAP_VOLUME,
)
from regimecast.errors import ConfigError, DataError
from regimecast.schema import DATE, DURATION, EVENT, HORIZON, SAMPLE, TIME

log = logging.getLogger(__name__)

#: Series simulated by the forecast, the variables a threshold event may refer to.
FORECAST_VARIABLES: tuple[str, ...] = (
    CPI_YOY,
    CPI_MOM_ANN,
    POLICY_RATE,
    BALANCE_SHEET,
    SMALLCAP_VOLUME,
)
#: Words for a series in report sentences.
SUBJECTS: dict[str, str] = {
    CPI_YOY: "CPI inflation",
    CPI_MOM_ANN: "monthly CPI inflation",
    POLICY_RATE: "the policy rate",
    BALANCE_SHEET: "the Fed balance sheet",
    SMALLCAP_VOLUME: "small-cap volume",
}
#: The months ``k`` of the ``p_within_{k}m`` summary columns.
WITHIN_MONTHS: tuple[int, ...] = (6, 12, 24)

STATE_START = "state_start"
STATE_END = "state_end"
DURATION_KIND = "duration"
THRESHOLD = "threshold"
IF_MET_OPTIONS: tuple[str, ...] = ("ignore", "report", "count_at_0")
PRIOR_PEAK = "prior_peak"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MONTH_RE = re.compile(r"^\d{4}-\d{2}$")

#: The events shipped by default (the same dicts ``models/default.toml``'s ``[[events]]`` parse to,
#: plus their labels).  Every one is defined at every as-of month with volume history.
DEFAULT_EVENT_SPECS: tuple[dict[str, Any], ...] = (
    {"name": "qe_start", "kind": STATE_START, "state": "bs:QE", "label": "QE starts"},
    {"name": "first_cut", "kind": STATE_START, "state": "rate:cutting", "label": "first rate cut"},
    {"name": "first_hike", "kind": STATE_START, "state": "rate:hiking", "label": "first rate hike"},
    {"name": "qt_end", "kind": STATE_END, "state": "bs:QT",
     "label": "QT ends (the balance sheet stops shrinking)"},
    {
        "name": "bullish_window",
        "kind": DURATION_KIND,
        "start": "bs:QE",
        "end": ["rate:hiking", "bs:QT"],
        "label": "bullish window (QE until the first hike or QT)",
    },
    {
        "name": "inflation_after_qe",
        "kind": DURATION_KIND,
        "start": "bs:QE",
        "end": "macro:inflationary",
        "label": "time from QE to inflation's return",
    },
    {
        "name": "volume_return",
        "kind": THRESHOLD,
        "variable": SMALLCAP_VOLUME,
        "above": True,
        "reference": PRIOR_PEAK,
        "peak_years": 5,
        "peak_months": 12,
        "mean_months": 3,
        "if_met_at_as_of": "report",
        "label": "small-cap volume back above its last peak",
    },
)

#: Named events that are not defaults: add them to ``[[events]]`` when they fit the as-of.
#: ``volume_above_2021`` needs the 2021 average, so it is defined only at as-of months from 2021-12.
NAMED_EVENT_SPECS: dict[str, dict[str, Any]] = {
    "volume_above_2021": {
        "name": "volume_above_2021",
        "kind": THRESHOLD,
        "variable": SMALLCAP_VOLUME,
        "above": True,
        "mean_of": ["2021-01", "2021-12"],
        "mean_months": 3,
        "if_met_at_as_of": "report",
        "label": "small-cap volume back above its 2021 average",
    },
}


# --------------------------------------------------------------------------------------------------
# parsing helpers
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParseContext:
    """What a kind's ``parse`` needs: where the spec is, the chains' labels, the known variables."""

    where: str
    labels: Mapping[str, Sequence[str]]
    variables: Sequence[str]


@dataclass(frozen=True)
class StateRef:
    """A state of one chain, written ``"bs:QE"`` or ``"macro:inflationary"``."""

    chain: str
    label: str

    def __str__(self) -> str:
        return f"{self.chain}:{self.label}"

    @property
    def variable(self) -> str:
        """The forecast variable holding this chain's state index."""
        return schema.state_variable(self.chain)


def _parse_state(value: Any, name: str, ctx: ParseContext) -> StateRef:
    chains = sorted(ctx.labels)
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(
            f"{ctx.where}: field {name!r} must be a string '<chain>:<label>' with chain one of "
            f"{chains}, got {value!r}"
        )
    chain, _, label = (s.strip() for s in value.partition(":"))
    if chain not in ctx.labels:
        raise ConfigError(
            f"{ctx.where}: field {name!r} = {value!r} names unknown chain {chain!r}; use one of {chains}"
        )
    if label not in ctx.labels[chain]:
        raise ConfigError(
            f"{ctx.where}: field {name!r} = {value!r} names unknown {chain} state label {label!r}; "
            f"known labels: {list(ctx.labels[chain])}"
        )
    return StateRef(chain, label)


def _parse_bool(value: Any, name: str, ctx: ParseContext) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{ctx.where}: field {name!r} must be true or false, got {value!r}")
    return value


def _parse_number(value: Any, name: str, ctx: ParseContext) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{ctx.where}: field {name!r} must be a finite number, got {value!r}")
    return float(value)


def _parse_count(value: Any, name: str, ctx: ParseContext) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{ctx.where}: field {name!r} must be a positive integer, got {value!r}")
    return value


def _parse_choice(value: Any, name: str, options: Sequence[str], ctx: ParseContext) -> str:
    if value not in options:
        raise ConfigError(
            f"{ctx.where}: field {name!r} = {value!r} is unknown; use one of {list(options)}"
        )
    return str(value)


# --------------------------------------------------------------------------------------------------
# evaluation helpers
# --------------------------------------------------------------------------------------------------
def _first_true(mask: np.ndarray) -> np.ndarray:
    """Index of the first True along axis 1 as float, NaN where none."""
    first = np.argmax(mask, axis=1).astype(float)
    first[~mask.any(axis=1)] = np.nan
    return first


def state_end_months(in_state: np.ndarray) -> np.ndarray:
    """First month ``h >= 1`` leaving the state (in it at ``h - 1``, not at ``h``), per path.

    ``in_state`` (N, H+1) bool; returns (N,) float, NaN where the state is not left within the horizon.
    """
    leave = np.zeros_like(in_state, dtype=bool)
    leave[:, 1:] = in_state[:, :-1] & ~in_state[:, 1:]
    return _first_true(leave)


def state_start_months(in_state: np.ndarray, *, allow_ongoing: bool = False) -> np.ndarray:
    """First month ``h >= 1`` entering the state, per path.

    Parameters
    ----------
    in_state : (N, H+1) bool
        Whether each path is in the target state at each month.
    allow_ongoing : bool
        Count a path already in the state at ``h = 0`` as starting at ``h = 0``.

    Returns
    -------
    (N,) float, NaN where the state is not entered within the horizon.
    """
    entry = np.zeros_like(in_state, dtype=bool)
    entry[:, 1:] = in_state[:, 1:] & ~in_state[:, :-1]
    if allow_ongoing:
        entry[:, 0] = in_state[:, 0]
    return _first_true(entry)


def duration_months(
    start: np.ndarray, in_end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Durations from ``start`` month to the first end-state month at or after it.

    Parameters
    ----------
    start : (N,) float
        Start month per path, NaN where no start.
    in_end : (N, H+1) bool
        Whether each path is in (any of) the end state(s).

    Returns
    -------
    end : (N,) float
        End month, NaN when not started or censored.
    duration : (N,) float
        ``end - start``, NaN when not started or censored.
    censored : (N,) bool
        Started but the end state is not reached by ``H``.
    """
    n_h = in_end.shape[1]
    started = np.isfinite(start)
    s = np.where(started, start, n_h).astype(int)
    after = np.arange(n_h)[None, :] >= s[:, None]
    end = _first_true(in_end & after)
    censored = started & ~np.isfinite(end)
    return end, end - start, censored


def _quantiles(values: np.ndarray) -> tuple[float, float, float]:
    """Median, 10% and 90% quantiles (inverted CDF) of the finite ``values``."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (math.nan, math.nan, math.nan)
    med, q10, q90 = np.quantile(values, (0.5, 0.1, 0.9), method="inverted_cdf")
    return float(med), float(q10), float(q90)


def _hit_probabilities(first: np.ndarray, n_h: int) -> np.ndarray:
    """P(first == h) for h in 0..n_h-1 over all paths (NaN = never)."""
    hits = first[np.isfinite(first)].astype(int)
    return np.bincount(hits, minlength=n_h)[:n_h] / first.size


def _within(n_h: int) -> list[int]:
    return [min(k, n_h - 1) for k in WITHIN_MONTHS]


def _in_state(forecast: xr.Dataset, ref: StateRef, name: str) -> np.ndarray:
    """(N, H+1) bool: whether each path is in state ``ref``."""
    labels = schema.chain_labels(forecast)
    if ref.chain not in labels:
        raise ConfigError(
            f"event {name!r}: state {str(ref)!r} names chain {ref.chain!r}, which the forecast does "
            f"not declare (chains: {sorted(labels)}); fix the event or the model"
        )
    if ref.label not in labels[ref.chain]:
        raise ConfigError(
            f"event {name!r}: state {str(ref)!r} is not among the forecast's {ref.chain} labels "
            f"{labels[ref.chain]}; fix the event or the model's state labels"
        )
    if ref.variable not in forecast:
        raise DataError(f"forecast has no variable {ref.variable!r} needed by event {name!r}")
    states = forecast[ref.variable].transpose(SAMPLE, HORIZON).values
    return states == labels[ref.chain].index(ref.label)


def forecast_as_of(forecast: xr.Dataset) -> pd.Period:
    """The as-of month of ``forecast`` (its ``date`` at horizon 0, else its ``as_of`` attr)."""
    if DATE in forecast.coords:
        return pd.Timestamp(forecast[DATE].values[0]).to_period("M")
    return pd.Period(str(forecast.attrs[schema.AS_OF_ATTR]), freq="M")


def observed_series(
    history: xr.Dataset | pd.DataFrame, variable: str, as_of: pd.Period | str, *, event: str
) -> pd.Series:
    """The observed monthly ``variable`` up to and including ``as_of``, indexed by month (Period).

    ``history`` is a history Dataset (dim ``time``) or a panel DataFrame (DatetimeIndex).
    """
    if variable not in history:
        raise DataError(
            f"event {event!r}: history has no variable {variable!r} to compute its threshold from; "
            "pass a history with that series or use `level = <number>`"
        )
    if isinstance(history, xr.Dataset):
        values, index = history[variable].values, history[variable][TIME].values
    else:
        values, index = history[variable].to_numpy(), history.index
    series = pd.Series(
        np.asarray(values, dtype=float), index=pd.DatetimeIndex(index).to_period("M")
    )
    return series[series.index <= pd.Period(as_of, freq="M")]


@dataclass
class EventResult:
    """What one event's ``evaluate`` returns; :func:`_assemble` stacks these into the Dataset.

    ``first`` (N,) is the month of first occurrence (NaN = not within the horizon); ``summary``
    holds the :data:`SUMMARY_FIELDS` the event defines (others are NaN); ``text`` holds the string
    coordinates (``units``, ``threshold_rule``, ``met_text``).
    """

    first: np.ndarray
    summary: dict[str, float]
    dated: bool = True
    start: np.ndarray | None = None
    duration: np.ndarray | None = None
    censored: np.ndarray | None = None
    duration_probability: np.ndarray | None = None
    text: dict[str, str] = field(default_factory=dict)


def _dated_summary(first: np.ndarray, n_h: int) -> dict[str, float]:
    """Summary of a dated event from its first-occurrence months."""
    cum = np.cumsum(_hit_probabilities(first, n_h))
    med, q10, q90 = _quantiles(first)
    out = {"median": med, "q10": q10, "q90": q90, "p_never": 1.0 - float(cum[-1])}
    for k, m in zip(WITHIN_MONTHS, _within(n_h), strict=True):
        out[f"p_within_{k}m"] = float(cum[m])
    return out


# --------------------------------------------------------------------------------------------------
# event kinds
# --------------------------------------------------------------------------------------------------
#: kind name -> event class; :func:`register` adds to it.
EVENT_KINDS: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: register an event kind under its ``kind``."""
    EVENT_KINDS[cls.kind] = cls
    return cls


class _EventKind:
    """Shared behaviour of the event kinds (no state)."""

    kind: ClassVar[str]
    REQUIRED: ClassVar[frozenset[str]]
    OPTIONAL: ClassVar[frozenset[str]]
    name: str
    label: str

    def check(self, history: xr.Dataset | pd.DataFrame, as_of: pd.Period | str) -> None:
        """Raise the error evaluation would raise for ``history`` at ``as_of``; nothing to check."""


@register
@dataclass(frozen=True)
class StateStartEvent(_EventKind):
    """First month ``h >= 1`` at which the chain enters ``state`` (see the module docstring)."""

    name: str
    state: StateRef
    allow_ongoing: bool = False
    label: str = ""
    kind: ClassVar[str] = STATE_START
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"state"})
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"allow_ongoing"})

    @classmethod
    def parse(cls, spec: Mapping[str, Any], ctx: ParseContext) -> StateStartEvent:
        return cls(
            name=spec["name"],
            state=_parse_state(spec["state"], "state", ctx),
            allow_ongoing=_parse_bool(spec.get("allow_ongoing", False), "allow_ongoing", ctx),
            label=spec.get("label", ""),
        )

    def default_label(self) -> str:
        return f"{self.state.label} starts"

    def evaluate(self, forecast: xr.Dataset, history: xr.Dataset) -> EventResult:
        in_state = _in_state(forecast, self.state, self.name)
        first = state_start_months(in_state, allow_ongoing=self.allow_ongoing)
        return EventResult(first, _dated_summary(first, in_state.shape[1]))


@register
@dataclass(frozen=True)
class StateEndEvent(_EventKind):
    """First month ``h >= 1`` at which the chain leaves ``state`` (see the module docstring)."""

    name: str
    state: StateRef
    label: str = ""
    kind: ClassVar[str] = STATE_END
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"state"})
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def parse(cls, spec: Mapping[str, Any], ctx: ParseContext) -> StateEndEvent:
        return cls(name=spec["name"], state=_parse_state(spec["state"], "state", ctx),
                   label=spec.get("label", ""))

    def default_label(self) -> str:
        return f"{self.state.label} ends"

    def evaluate(self, forecast: xr.Dataset, history: xr.Dataset) -> EventResult:
        in_state = _in_state(forecast, self.state, self.name)
        first = state_end_months(in_state)
        return EventResult(first, _dated_summary(first, in_state.shape[1]))


@register
@dataclass(frozen=True)
class DurationEvent(_EventKind):
    """Months from entering ``start`` until the first month at or after it in any ``end`` state
    (right-censored at the horizon)."""

    name: str
    start: StateRef
    end: tuple[StateRef, ...]
    allow_ongoing: bool = False
    at_least: int = 6
    label: str = ""
    kind: ClassVar[str] = DURATION_KIND
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"start", "end"})
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"allow_ongoing", "at_least"})

    @classmethod
    def parse(cls, spec: Mapping[str, Any], ctx: ParseContext) -> DurationEvent:
        at_least = spec.get("at_least", 6)
        if isinstance(at_least, bool) or not isinstance(at_least, int) or at_least < 1:
            raise ConfigError(
                f"{ctx.where}: field 'at_least' must be a positive integer (months), got {at_least!r}"
            )
        raw_end = spec["end"]
        ends = list(raw_end) if isinstance(raw_end, list | tuple) else [raw_end]
        if not ends:
            raise ConfigError(f"{ctx.where}: field 'end' must name at least one state")
        return cls(
            name=spec["name"],
            start=_parse_state(spec["start"], "start", ctx),
            end=tuple(_parse_state(e, "end", ctx) for e in ends),
            allow_ongoing=_parse_bool(spec.get("allow_ongoing", False), "allow_ongoing", ctx),
            at_least=at_least,
            label=spec.get("label", ""),
        )

    def default_label(self) -> str:
        return f"{self.start.label} until {' or '.join(e.label for e in self.end)}"

    def evaluate(self, forecast: xr.Dataset, history: xr.Dataset) -> EventResult:
        in_start = _in_state(forecast, self.start, self.name)
        start = state_start_months(in_start, allow_ongoing=self.allow_ongoing)
        in_end = np.zeros_like(in_start)
        for ref in self.end:
            in_end |= _in_state(forecast, ref, self.name)
        first, dur, censored = duration_months(start, in_end)
        summary, dur_prob = self._summary(start, dur, censored, in_end.shape[1])
        return EventResult(
            first,
            summary,
            dated=False,
            start=start,
            duration=dur,
            censored=censored,
            duration_probability=dur_prob,
        )

    def _summary(
        self, start: np.ndarray, dur: np.ndarray, censored: np.ndarray, n_h: int
    ) -> tuple[dict[str, float], np.ndarray]:
        """Duration summary (conditional on the start) and P(duration = d | start), d = 0..H."""
        started = np.isfinite(start)
        n_started = int(started.sum())
        med, q10, q90 = _quantiles(dur)
        out = {"median": med, "q10": q10, "q90": q90, "p_start": n_started / start.size,
               "at_least_months": float(self.at_least)}
        if not n_started:
            return out, np.zeros(n_h)
        d_obs = dur[np.isfinite(dur)]
        dur_prob = np.bincount(d_obs.astype(int), minlength=n_h)[:n_h] / n_started
        out["p_censored"] = out["p_never"] = float(censored.sum()) / n_started
        lower_bound = (n_h - 1) - start[censored] + 1
        long = (d_obs >= self.at_least).sum() + (lower_bound >= self.at_least).sum()
        out["p_at_least"] = float(long) / n_started
        dur_cum = np.cumsum(dur_prob)
        for k, m in zip(WITHIN_MONTHS, _within(n_h), strict=True):
            out[f"p_within_{k}m"] = float(dur_cum[m])
        return out, dur_prob


@register
@dataclass(frozen=True)
class ThresholdEvent(_EventKind):
    """First month ``h >= 1`` at which ``variable`` (its trailing ``mean_months``-month mean) is
    strictly above (or below) a threshold; exactly one of ``level``, ``percentile``, ``mean_of``,
    ``reference`` sets the threshold (see the module docstring)."""

    name: str
    variable: str
    above: bool = True
    level: float | None = None
    percentile: float | None = None
    mean_of: tuple[str, str] | None = None
    reference: str | None = None
    peak_years: int = 5
    peak_months: int = 12
    mean_months: int = 1
    if_met_at_as_of: str = "ignore"
    label: str = ""
    kind: ClassVar[str] = THRESHOLD
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"variable"})
    OPTIONAL: ClassVar[frozenset[str]] = frozenset(
        {"above", "level", "percentile", "mean_of", "reference", "peak_years", "peak_months",
         "mean_months", "if_met_at_as_of"}
    )
    RULES: ClassVar[tuple[str, ...]] = ("level", "percentile", "mean_of", "reference")

    @classmethod
    def parse(cls, spec: Mapping[str, Any], ctx: ParseContext) -> ThresholdEvent:
        if spec["variable"] not in ctx.variables:
            raise ConfigError(
                f"{ctx.where}: field 'variable' = {spec['variable']!r} is unknown; "
                f"use one of {list(ctx.variables)}"
            )
        given = [f for f in cls.RULES if f in spec]
        if len(given) != 1:
            raise ConfigError(
                f"{ctx.where}: a threshold event needs exactly one of the fields 'level', "
                f"'percentile', 'mean_of', 'reference' (got {given or 'none'})"
            )
        if given[0] != "reference" and ({"peak_years", "peak_months"} & set(spec)):
            bad = sorted({"peak_years", "peak_months"} & set(spec))[0]
            raise ConfigError(f"{ctx.where}: field {bad!r} needs `reference = \"{PRIOR_PEAK}\"`")
        return cls(
            name=spec["name"],
            variable=spec["variable"],
            above=_parse_bool(spec.get("above", True), "above", ctx),
            **_parse_rule(spec, ctx),
            mean_months=_parse_count(spec.get("mean_months", 1), "mean_months", ctx),
            if_met_at_as_of=_parse_choice(
                spec.get("if_met_at_as_of", "ignore"), "if_met_at_as_of", IF_MET_OPTIONS, ctx
            ),
            label=spec.get("label", ""),
        )

    # ---- the threshold ---------------------------------------------------------------------------
    def threshold(self, history: xr.Dataset | pd.DataFrame, as_of: pd.Period | str | None = None) -> float:
        """Resolve the threshold from the observed ``history`` up to ``as_of`` (default: its last
        month), in the series' units."""
        if self.level is not None:
            return float(self.level)
        if as_of is None:
            index = history[TIME].values if isinstance(history, xr.Dataset) else history.index
            as_of = pd.Timestamp(pd.DatetimeIndex(index).max()).to_period("M")
        series = observed_series(history, self.variable, as_of, event=self.name)
        if self.percentile is not None:
            values = series.to_numpy()[np.isfinite(series.to_numpy())]
            if values.size == 0:
                raise DataError(
                    f"event {self.name!r}: history of {self.variable!r} has no observed values, "
                    "so its percentile is undefined; use `level = <number>`"
                )
            return float(np.percentile(values, self.percentile))
        if self.mean_of is not None:
            return self._mean_of(series, pd.Period(as_of, freq="M"))
        return self._prior_peak(series, pd.Period(as_of, freq="M"))

    def _mean_of(self, series: pd.Series, as_of: pd.Period) -> float:
        assert self.mean_of is not None
        lo, hi = (pd.Period(m, freq="M") for m in self.mean_of)
        if hi > as_of:
            raise DataError(
                f"event {self.name!r}: mean_of = [{self.mean_of[0]!r}, {self.mean_of[1]!r}] ends "
                f"after the as-of month {as_of}, so its threshold uses data not yet observed; "
                f"choose a window ending by {as_of} or use `reference = \"{PRIOR_PEAK}\"`"
            )
        window = series[(series.index >= lo) & (series.index <= hi)].to_numpy()
        window = window[np.isfinite(window)]
        if window.size == 0:
            raise DataError(
                f"event {self.name!r}: history of {self.variable!r} has no observed values in "
                f"mean_of = [{self.mean_of[0]!r}, {self.mean_of[1]!r}]; choose a window with data "
                "or use `level = <number>`"
            )
        return float(window.mean())

    def peak_window(self, as_of: pd.Period) -> tuple[pd.Period, pd.Period]:
        """First and last month of the look-back of ``reference = "prior_peak"``."""
        return as_of - (12 * self.peak_years - 1), as_of

    def _prior_peak(self, series: pd.Series, as_of: pd.Period) -> float:
        lo, hi = self.peak_window(as_of)
        full = series.reindex(pd.period_range(lo, hi, freq="M"))
        means = full.rolling(self.peak_months, min_periods=self.peak_months).mean()
        if not np.isfinite(means.to_numpy()).any():
            raise DataError(
                f"event {self.name!r}: the last peak of {self.variable!r} needs {self.peak_months} "
                f"consecutive observed months in {lo}..{hi} (the {self.peak_years} years up to the "
                f"as-of month); the history has none. Use a later as-of, a smaller peak_months, "
                "or `level = <number>`"
            )
        return float(means.max())

    def describe_threshold(self) -> str:
        """Human description of the threshold rule, e.g. ``"mean of 2021-01..2021-12"``."""
        if self.level is not None:
            return f"level {self.level:g}"
        if self.percentile is not None:
            return f"{self.percentile:g}th percentile of history"
        if self.mean_of is not None:
            return f"mean of {self.mean_of[0]}..{self.mean_of[1]}"
        return (
            f"highest {self.peak_months}-month average in the {self.peak_years} years to the as-of"
        )

    def reference_phrase(self) -> str:
        """The threshold in words for sentences: ``"its last peak"``, ``"its 2021 average"``."""
        if self.reference is not None:
            return "its last peak"
        if self.mean_of is not None:
            a, b = self.mean_of
            return f"its {a[:4]} average" if (a[:4] == b[:4] and a[5:] == "01" and b[5:] == "12") \
                else f"its {a}..{b} average"
        return self.describe_threshold()

    def default_label(self) -> str:
        side = "above" if self.above else "below"
        if self.mean_of is not None:
            return f"{self.variable} {side} its {self.mean_of[0]}..{self.mean_of[1]} average"
        if self.reference is not None:
            return f"{self.variable} {side} its last peak"
        return f"{self.variable} {side} {self.describe_threshold()}"

    def check(self, history: xr.Dataset | pd.DataFrame, as_of: pd.Period | str) -> None:
        """Resolve the threshold at ``as_of``: raises the error evaluation would raise."""
        self.threshold(history, as_of)

    # ---- evaluation ------------------------------------------------------------------------------
    def compared_values(
        self, forecast: xr.Dataset, history: xr.Dataset | pd.DataFrame, as_of: pd.Period
    ) -> np.ndarray:
        """(N, H+1) values compared with the threshold: the trailing ``mean_months``-month mean of
        each path, with observed history for the months before the as-of (and for the as-of month
        where the path has no value); mean of the available months, NaN when none."""
        if self.variable not in forecast:
            raise DataError(
                f"forecast has no variable {self.variable!r} needed by event {self.name!r}"
            )
        x = forecast[self.variable].transpose(SAMPLE, HORIZON).values.astype(float)
        k = self.mean_months
        if self.variable not in history:
            prefix, at_as_of = np.full(k - 1, np.nan), math.nan
        else:
            obs = observed_series(history, self.variable, as_of, event=self.name)
            months = pd.period_range(as_of - (k - 1), as_of, freq="M")
            vals = obs.reindex(months).to_numpy(dtype=float)
            prefix, at_as_of = vals[:-1], vals[-1]
        x[:, 0] = np.where(np.isfinite(x[:, 0]), x[:, 0], at_as_of)
        return trailing_mean(np.hstack([np.broadcast_to(prefix, (x.shape[0], k - 1)), x]), k)[
            :, k - 1 :
        ]

    def evaluate(self, forecast: xr.Dataset, history: xr.Dataset | pd.DataFrame) -> EventResult:
        as_of = forecast_as_of(forecast)
        thr = self.threshold(history, as_of)
        values = self.compared_values(forecast, history, as_of)
        with np.errstate(invalid="ignore"):
            past = values > thr if self.above else values < thr
        met = past[:, 0].copy()
        if self.if_met_at_as_of == "report":
            past = np.hstack([past[:, :1], past[:, 1:] & ~past[:, :-1]])  # a new crossing
        if self.if_met_at_as_of != "count_at_0":
            past[:, 0] = False
        first = _first_true(past)
        summary = _dated_summary(first, past.shape[1])
        summary.update(
            threshold=thr,
            met_at_as_of=float(met.mean()),
            value_at_as_of=float(np.nanmedian(values[:, 0])) if np.isfinite(values[:, 0]).any()
            else math.nan,
        )
        return EventResult(first, summary, text=self._text(history, as_of, float(met.mean())))

    def _text(self, history: Any, as_of: pd.Period, met: float) -> dict[str, str]:
        units = ""
        if self.variable in history:
            units = str(history[self.variable].attrs.get("units", "")) if isinstance(
                history, xr.Dataset) else ""
        if not units and self.variable in COLUMN_META:
            units = COLUMN_META[self.variable].units
        rule = self.describe_threshold()
        if self.reference is not None:
            lo, hi = self.peak_window(as_of)
            rule = f"highest {self.peak_months}-month average in {lo}..{hi}"
        if self.mean_months > 1:
            rule += f"; compared with the {self.mean_months}-month average"
        side = "above" if self.above else "below"
        subject = SUBJECTS.get(self.variable, self.variable)
        met_text = ""
        if self.if_met_at_as_of == "report" and met >= 0.5:
            met_text = f"{subject} already {side} {self.reference_phrase()} at the as-of"
        return {"variable": self.variable, "units": units, "threshold_rule": rule,
                "met_text": met_text}


def _parse_rule(spec: Mapping[str, Any], ctx: ParseContext) -> dict[str, Any]:
    """The threshold rule fields of a threshold spec (exactly one rule is present)."""
    if "level" in spec:
        return {"level": _parse_number(spec["level"], "level", ctx)}
    if "percentile" in spec:
        pct = _parse_number(spec["percentile"], "percentile", ctx)
        if not 0.0 <= pct <= 100.0:
            raise ConfigError(f"{ctx.where}: field 'percentile' must lie in [0, 100], got {pct!r}")
        return {"percentile": pct}
    if "reference" in spec:
        return {
            "reference": _parse_choice(spec["reference"], "reference", (PRIOR_PEAK,), ctx),
            "peak_years": _parse_count(spec.get("peak_years", 5), "peak_years", ctx),
            "peak_months": _parse_count(spec.get("peak_months", 12), "peak_months", ctx),
        }
    raw = spec["mean_of"]
    if (
        not isinstance(raw, list | tuple)
        or len(raw) != 2
        or not all(isinstance(m, str) and _MONTH_RE.match(m) for m in raw)
    ):
        raise ConfigError(
            f'{ctx.where}: field \'mean_of\' must be two months ["YYYY-MM", "YYYY-MM"], got {raw!r}'
        )
    if raw[0] > raw[1]:
        raise ConfigError(f"{ctx.where}: field 'mean_of' = {raw!r} ends before it starts")
    return {"mean_of": (raw[0], raw[1])}


def trailing_mean(x: np.ndarray, k: int) -> np.ndarray:
    """(N, T) trailing ``k``-column mean of the finite values (NaN where none; fewer columns at the
    start)."""
    if k == 1:
        return x.copy()
    finite = np.isfinite(x)
    csum = np.cumsum(np.where(finite, x, 0.0), axis=1)
    ccount = np.cumsum(finite, axis=1)
    pad = np.zeros((x.shape[0], 1))
    csum = np.hstack([pad, csum])
    ccount = np.hstack([pad, ccount])
    lo = np.maximum(np.arange(1, x.shape[1] + 1) - k, 0)
    total = csum[:, 1:] - csum[:, lo]
    count = ccount[:, 1:] - ccount[:, lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


Event = StateStartEvent | StateEndEvent | DurationEvent | ThresholdEvent


def _spec_key(spec: Mapping[str, Any]) -> str:
    """A canonical key of an event definition, ignoring its label."""
    items = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.items() if k != "label"}
    return repr(sorted(items.items()))


_DEFAULT_LABELS: dict[str, str] = {
    _spec_key(s): s["label"] for s in (*DEFAULT_EVENT_SPECS, *NAMED_EVENT_SPECS.values())
}


def event_label(event: Event) -> str:
    """The human label of ``event``: its ``label`` field, else one built from the definition
    (``"QE starts"``, ``"QE until tightening"``, ``"smallcap_volume above its last peak"``)."""
    return event.label or event.default_label()


# --------------------------------------------------------------------------------------------------
# loading and validation
# --------------------------------------------------------------------------------------------------
def _where(i: int, spec: Mapping[str, Any]) -> str:
    name = spec.get("name")
    return f"events[{i}]" + (f" (name = {name!r})" if isinstance(name, str) else "")


def _check_fields(spec: Mapping[str, Any], cls: type, where: str) -> None:
    required = {"name", "kind", *cls.REQUIRED}
    optional = {"label", *cls.OPTIONAL}
    missing = sorted(required - set(spec))
    if missing:
        raise ConfigError(
            f"{where}: missing field {missing[0]!r} (a {cls.kind} event needs {sorted(required)})"
        )
    unknown = sorted(set(spec) - required - optional)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field {unknown[0]!r} for a {cls.kind} event; "
            f"allowed fields: {sorted(required | optional)}"
        )
    name = spec["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            f"{where}: field 'name' must be an identifier (letters, digits, underscores), got {name!r}"
        )
    if not isinstance(spec.get("label", ""), str):
        raise ConfigError(f"{where}: field 'label' must be a string, got {spec['label']!r}")


def _parse_one(i: int, spec: Any, ctx: ParseContext) -> Event:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"events[{i}] must be a table of fields, got {type(spec).__name__}")
    where = _where(i, spec)
    kinds = list(EVENT_KINDS)
    if "kind" not in spec:
        raise ConfigError(f"{where}: missing field 'kind'; use one of {kinds}")
    cls = EVENT_KINDS.get(spec["kind"]) if isinstance(spec["kind"], str) else None
    if cls is None:
        raise ConfigError(f"{where}: field 'kind' = {spec['kind']!r} is unknown; use one of {kinds}")
    _check_fields(spec, cls, where)
    if not spec.get("label"):  # a shipped event written without its label keeps the shipped label
        spec = {**spec, "label": _DEFAULT_LABELS.get(_spec_key(spec), "")}
    return cls.parse(spec, ParseContext(where, ctx.labels, ctx.variables))


def config_labels() -> dict[str, list[str]]:
    """``{chain: labels}`` of the default model configuration."""
    from regimecast.config import ModelConfig

    return schema.model_chain_labels(ModelConfig())


def load_events(
    specs: Iterable[Mapping[str, Any]],
    *,
    labels: Mapping[str, Sequence[str]] | None = None,
    macro_labels: Sequence[str] | None = None,
    variables: Sequence[str] = FORECAST_VARIABLES,
) -> tuple[Event, ...]:
    """Build validated event definitions from dicts (a TOML ``[[events]]`` list).

    ``labels`` maps each chain to its state labels, from the model config
    (:func:`regimecast.schema.model_chain_labels`) or a forecast
    (:func:`regimecast.schema.chain_labels`); without it, the default config's chains.
    ``macro_labels`` replaces that chain's labels.

    Raises :class:`~regimecast.errors.ConfigError` naming the event and the field at fault: unknown
    kind, missing or unknown field, unknown chain, state label or variable, or a duplicated name.
    """
    chains = {k: list(v) for k, v in (labels if labels is not None else config_labels()).items()}
    if macro_labels is not None:
        chains["macro"] = list(macro_labels)
    ctx = ParseContext("events", chains, tuple(variables))
    events: list[Event] = []
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        event = _parse_one(i, spec, ctx)
        if event.name in seen:
            raise ConfigError(
                f"events[{i}]: field 'name' = {event.name!r} is used by an earlier event"
            )
        seen.add(event.name)
        events.append(event)
    return tuple(events)


def default_events(labels: Mapping[str, Sequence[str]] | None = None) -> tuple[Event, ...]:
    """The events shipped by default: ``qe_start``, ``first_cut``, ``bullish_window``,
    ``inflation_after_qe``, ``volume_return``."""
    return load_events(DEFAULT_EVENT_SPECS, labels=labels)


def check_events(
    events: Sequence[Event],
    history: xr.Dataset | pd.DataFrame,
    as_of: pd.Period | str | pd.Timestamp,
) -> None:
    """Check ``events`` against the observed ``history`` (a history Dataset or a panel DataFrame)
    at ``as_of`` before any sampling: raises the error evaluation would raise (a threshold window
    after the as-of, a threshold without history).  State labels are checked by :func:`load_events`.
    """
    if not events:
        raise ConfigError("no events to evaluate; define at least one [[events]] table")
    month = pd.Period(as_of, freq="M")
    for ev in events:
        ev.check(history, month)


# --------------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------------
#: Per-event summary fields (floats) that ``evaluate_events`` returns with dim ``event``.
SUMMARY_FIELDS: tuple[str, ...] = (
    "median",
    "q10",
    "q90",
    *(f"p_within_{k}m" for k in WITHIN_MONTHS),
    "p_never",
    "p_start",
    "p_censored",
    "at_least_months",
    "p_at_least",
    "threshold",
    "met_at_as_of",
    "value_at_as_of",
)
#: Per-event text coordinates (on dim ``event``), empty where they do not apply.
TEXT_FIELDS: tuple[str, ...] = ("variable", "units", "threshold_rule", "met_text")


def evaluate_events(
    forecast: xr.Dataset,
    history: xr.Dataset,
    events: Sequence[Event],
) -> xr.Dataset:
    """Evaluate ``events`` on the simulated paths of ``forecast``.

    Parameters
    ----------
    forecast : Dataset following :mod:`regimecast.schema` (dims ``sample`` x ``horizon``, chains'
        state indices, simulated series).
    history : Dataset
        dim ``time``; the observed series up to the as-of month, used to resolve thresholds.
    events : sequence of events (see :func:`load_events`).

    Returns
    -------
    Dataset with coordinates ``event`` (names; plus ``kind``, ``label``, ``variable``, ``units``,
    ``threshold_rule`` and ``met_text`` on ``event``, empty for non-threshold events), ``horizon`` (with ``date``), ``sample`` and
    ``duration`` (0..H months), and variables

    * ``first_month`` (event, sample): month of first occurrence (duration events: month the window
      closes), NaN when it does not occur within the horizon;
    * ``start_month``, ``duration_months`` (event, sample) float and ``censored`` (event, sample)
      bool, for duration events (NaN / False elsewhere);
    * ``probability``, ``cumulative`` (event, horizon): P(first occurrence at / by month h);
    * ``duration_probability`` (event, duration): P(duration == d | start), observed windows only
      (sums to ``1 - p_censored``);
    * summaries (event): ``median``, ``q10``, ``q90`` (months ahead, or duration months),
      ``median_date``, ``q10_date``, ``q90_date`` (NaT for durations), ``p_within_6m``,
      ``p_within_12m``, ``p_within_24m``, ``p_never``, ``p_start``, ``p_censored``,
      ``at_least_months``, ``p_at_least``, ``threshold`` (series' units), ``met_at_as_of`` (share
      of paths past the threshold at the as-of), ``value_at_as_of`` (the compared value at the
      as-of), ``n_occurred``.

    The conventions (conditioning, censoring, quantiles) are in the module docstring.
    """
    if not events:
        raise ConfigError("no events to evaluate; define at least one [[events]] table")
    schema.validate_forecast(forecast)
    results = []
    for ev in events:
        res = ev.evaluate(forecast, history)
        log.info("event %s: P(within horizon)=%.3f", ev.name, float(np.isfinite(res.first).mean()))
        results.append(res)
    return _assemble(forecast, events, results)


def _stack(results: Sequence[EventResult], attr: str, fill: Any, size: int) -> np.ndarray:
    rows = [getattr(r, attr) for r in results]
    return np.vstack([np.full(size, fill) if v is None else v for v in rows])


def _to_dates(months: np.ndarray, dated: np.ndarray, dates: pd.DatetimeIndex) -> np.ndarray:
    out = np.full(months.size, np.datetime64("NaT"), dtype="datetime64[ns]")
    for i, m in enumerate(months):
        if dated[i] and np.isfinite(m):
            out[i] = dates[int(m)].to_datetime64()
    return out


def _assemble(
    forecast: xr.Dataset, events: Sequence[Event], results: Sequence[EventResult]
) -> xr.Dataset:
    """Stack the per-event results into the result Dataset (see :func:`evaluate_events`)."""
    n, n_h = forecast.sizes[SAMPLE], forecast.sizes[HORIZON]
    dates = pd.DatetimeIndex(forecast[DATE].values)
    dated = np.array([r.dated for r in results])
    probability = np.vstack([_hit_probabilities(r.first, n_h) for r in results])
    summary = {k: np.array([r.summary.get(k, math.nan) for r in results], dtype=float)
               for k in SUMMARY_FIELDS}
    data_vars: dict[str, Any] = {
        "first_month": ((EVENT, SAMPLE), np.vstack([r.first for r in results])),
        "start_month": ((EVENT, SAMPLE), _stack(results, "start", np.nan, n)),
        "duration_months": ((EVENT, SAMPLE), _stack(results, "duration", np.nan, n)),
        "censored": ((EVENT, SAMPLE), _stack(results, "censored", False, n).astype(bool)),
        "probability": ((EVENT, HORIZON), probability),
        "cumulative": ((EVENT, HORIZON), np.cumsum(probability, axis=1)),
        "duration_probability": (
            (EVENT, DURATION), _stack(results, "duration_probability", np.nan, n_h)
        ),
        **{f"{q}_date": ((EVENT,), _to_dates(summary[q], dated, dates))
           for q in ("median", "q10", "q90")},
        **{k: ((EVENT,), v) for k, v in summary.items()},
        "n_occurred": ((EVENT,), np.array([np.isfinite(r.first).sum() for r in results], np.int64)),
    }
    coords = {
        EVENT: [ev.name for ev in events],
        "kind": (EVENT, [ev.kind for ev in events]),
        "label": (EVENT, [event_label(ev) for ev in events]),
        **{t: (EVENT, [r.text.get(t, "") for r in results]) for t in TEXT_FIELDS},
        HORIZON: np.arange(n_h),
        DATE: (HORIZON, dates.values),
        SAMPLE: forecast[SAMPLE].values if SAMPLE in forecast.coords else np.arange(n),
        DURATION: np.arange(n_h),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=_result_attrs(forecast, dates, n))


def _result_attrs(forecast: xr.Dataset, dates: pd.DatetimeIndex, n: int) -> dict[str, Any]:
    return {
        "as_of": str(forecast.attrs.get("as_of", pd.Timestamp(dates[0]).strftime("%Y-%m"))),
        "demo": int(forecast.attrs.get("demo", 0)),
        "scenario": str(forecast.attrs.get("scenario", "")),
        "n_paths": int(n),
        "horizon_months": len(dates) - 1,
        "conventions": (
            "probability/cumulative: P(first occurrence at/by month h) over all paths; "
            "quantiles over paths where the event occurs (inverted CDF), p_never beside them; "
            "duration statistics conditional on the start within the horizon, censored "
            "windows reported as p_censored"
        ),
    }


# --------------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------------
EVENTS_TABLE_COLUMNS: tuple[str, ...] = ("event", "date", "probability", "cumulative")
SUMMARY_COLUMNS: tuple[str, ...] = (
    "event",
    "label",
    "kind",
    "unit",
    "median",
    "q10",
    "q90",
    "median_months",
    "q10_months",
    "q90_months",
    *(f"p_within_{k}m" for k in WITHIN_MONTHS),
    "p_never",
    "p_start",
    "p_censored",
    "at_least_months",
    "p_at_least",
    "threshold",
    "threshold_units",
    "threshold_rule",
    "met_at_as_of",
    "met_text",
    "value_at_as_of",
    "n_occurred",
    "n_paths",
)


def events_table(result: xr.Dataset) -> pd.DataFrame:
    """Long table of ``event, date, probability, cumulative`` (one row per event and month)."""
    frames = []
    dates = pd.DatetimeIndex(result[DATE].values)
    for name in result[EVENT].values:
        sub = result.sel({EVENT: name})
        frames.append(
            pd.DataFrame(
                {
                    "event": str(name),
                    "date": dates,
                    "probability": sub["probability"].values,
                    "cumulative": sub["cumulative"].values,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[list(EVENTS_TABLE_COLUMNS)]


def _summary_record(result: xr.Dataset, i: int) -> dict[str, Any]:
    kind = str(result["kind"].values[i])
    is_dur = kind == DURATION_KIND
    rec: dict[str, Any] = {
        "event": str(result[EVENT].values[i]),
        "label": str(result["label"].values[i]),
        "kind": kind,
        "unit": "months" if is_dur else "date",
    }
    for q in ("median", "q10", "q90"):
        months = float(result[q].values[i])
        rec[q] = months if is_dur else pd.Timestamp(result[f"{q}_date"].values[i])
        rec[f"{q}_months"] = months
    for key in SUMMARY_FIELDS[3:]:
        rec[key] = float(result[key].values[i]) if key in result else math.nan
    rec["threshold_units"] = str(result["units"].values[i]) if "units" in result.coords else ""
    rec["threshold_rule"] = (
        str(result["threshold_rule"].values[i]) if "threshold_rule" in result.coords else ""
    )
    rec["met_text"] = str(result["met_text"].values[i]) if "met_text" in result.coords else ""
    rec["n_occurred"] = int(result["n_occurred"].values[i])
    rec["n_paths"] = int(result.attrs.get("n_paths", result.sizes.get(SAMPLE, 0)))
    return rec


def event_summary_table(result: xr.Dataset) -> pd.DataFrame:
    """One row per event: quantiles and probabilities (see :func:`evaluate_events`).

    ``median``, ``q10``, ``q90`` hold month-start Timestamps for dated events (``unit == "date"``)
    and month counts for duration events (``unit == "months"``); ``*_months`` hold the numbers
    (months ahead of the as-of month, or duration months) for every event.  Threshold events carry
    ``threshold`` in ``threshold_units``, its rule, and ``met_at_as_of``.
    """
    records = [_summary_record(result, i) for i in range(result.sizes[EVENT])]
    df = pd.DataFrame.from_records(records, columns=list(SUMMARY_COLUMNS))
    for q in ("median", "q10", "q90"):  # keep Timestamps and month counts apart (no NaN -> NaT)
        df[q] = pd.Series([rec[q] for rec in records], index=df.index, dtype=object)
    return df

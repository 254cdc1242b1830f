"""Events on simulated paths: when QE starts, how long the window it opens lasts, when volume returns.

An event is a small frozen dataclass built from a dict (as parsed from a TOML ``[[events]]`` table) by
:func:`load_events`.  Three kinds exist, so users add events in TOML without code:

``state_start``
    ``state = "policy:QE"`` (or ``"macro:<label>"``).  The event happens at the first month
    ``h >= 1`` at which the chain *enters* the state: ``S_h = target`` and ``S_{h-1} != target``.
    An episode already running at the as-of month (``h = 0``) is not a start, so a path that is in
    QE at ``h = 0`` only starts QE after leaving and re-entering it.  With ``allow_ongoing = true``
    a path already in the state at ``h = 0`` counts as a start at ``h = 0``.

``duration``
    ``start = "policy:QE"``, ``end = "policy:tightening"`` (or ``"macro:inflationary"``).  On paths
    where the start (a ``state_start`` of ``start``, same ``allow_ongoing`` rule) happens at month
    ``s``, the duration is ``e - s`` where ``e`` is the first month ``e >= s`` with the end state.
    When no such ``e <= H`` exists the duration is *right-censored*: the window was still open at
    the horizon end and its length is only known to be at least ``H - s + 1`` months.

``threshold``
    ``variable = "smallcap_volume"``, ``above = true`` and exactly one of ``level = <number>``,
    ``percentile = <0-100>`` (of the variable's observed history) or ``mean_of = ["YYYY-MM",
    "YYYY-MM"]`` (mean of the observed history over that inclusive window).  The event happens at the
    first month ``h >= 1`` with the series strictly above (``above = true``) or strictly below the
    threshold.  Missing (NaN) simulated values never cross.

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

import dataclasses
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from regimecast.data.columns import (
    BALANCE_SHEET,
    CPI_MOM_ANN,
    CPI_YOY,
    POLICY_RATE,
    SMALLCAP_VOLUME,
)
from regimecast.errors import ConfigError, DataError

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# names used in the forecast / history Datasets and in the result
# --------------------------------------------------------------------------------------------------
SAMPLE = "sample"
HORIZON = "horizon"
DATE = "date"
EVENT = "event"
DURATION = "duration"
TIME = "time"
MACRO_STATE = "macro_state"
POLICY_STATE = "policy_state"
MACRO_LABELS_ATTR = "macro_labels"
POLICY_LABELS_ATTR = "policy_labels"

DEFAULT_MACRO_LABELS: tuple[str, ...] = ("deflationary", "moderate", "inflationary")
DEFAULT_POLICY_LABELS: tuple[str, ...] = ("QE", "cutting", "hold", "tightening")
#: Series simulated by the forecast, the variables a threshold event may refer to.
FORECAST_VARIABLES: tuple[str, ...] = (
    CPI_YOY,
    CPI_MOM_ANN,
    POLICY_RATE,
    BALANCE_SHEET,
    SMALLCAP_VOLUME,
)
#: The months ``k`` of the ``p_within_{k}m`` summary columns.
WITHIN_MONTHS: tuple[int, ...] = (6, 12, 24)

STATE_START = "state_start"
DURATION_KIND = "duration"
THRESHOLD = "threshold"
KINDS: tuple[str, ...] = (STATE_START, DURATION_KIND, THRESHOLD)

Chain = Literal["macro", "policy"]
_CHAINS: dict[str, str] = {"macro": MACRO_STATE, "policy": POLICY_STATE}
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MONTH_RE = re.compile(r"^\d{4}-\d{2}$")

#: The events shipped by default (the same dicts a TOML ``[[events]]`` list parses to).
DEFAULT_EVENT_SPECS: tuple[dict[str, Any], ...] = (
    {"name": "qe_start", "kind": STATE_START, "state": "policy:QE", "label": "QE starts"},
    {
        "name": "first_cut",
        "kind": STATE_START,
        "state": "policy:cutting",
        "label": "first rate cut",
    },
    {
        "name": "bullish_window",
        "kind": DURATION_KIND,
        "start": "policy:QE",
        "end": "policy:tightening",
        "label": "bullish window (QE until tightening returns)",
    },
    {
        "name": "inflation_after_qe",
        "kind": DURATION_KIND,
        "start": "policy:QE",
        "end": "macro:inflationary",
        "label": "time from QE to inflation's return",
    },
    {
        "name": "volume_return",
        "kind": THRESHOLD,
        "variable": SMALLCAP_VOLUME,
        "above": True,
        "mean_of": ["2021-01", "2021-12"],
        "label": "small-cap volume back above its 2021 average",
    },
)


# --------------------------------------------------------------------------------------------------
# definitions
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StateRef:
    """A state of one of the two chains, written ``"policy:QE"`` or ``"macro:inflationary"``."""

    chain: Chain
    label: str

    def __str__(self) -> str:
        return f"{self.chain}:{self.label}"

    @property
    def variable(self) -> str:
        """The forecast variable holding this chain's state index."""
        return _CHAINS[self.chain]


@dataclass(frozen=True)
class StateStartEvent:
    """First month ``h >= 1`` at which the chain enters ``state`` (see the module docstring)."""

    name: str
    state: StateRef
    allow_ongoing: bool = False
    label: str = ""
    kind: str = dataclasses.field(default=STATE_START, init=False)


@dataclass(frozen=True)
class DurationEvent:
    """Months from entering ``start`` until the first month at or after it in ``end`` (censored)."""

    name: str
    start: StateRef
    end: StateRef
    allow_ongoing: bool = False
    at_least: int = 6
    label: str = ""
    kind: str = dataclasses.field(default=DURATION_KIND, init=False)


@dataclass(frozen=True)
class ThresholdEvent:
    """First month ``h >= 1`` at which ``variable`` is strictly above (or below) a threshold.

    Exactly one of ``level``, ``percentile`` (0-100, of the observed history) or ``mean_of``
    (``("YYYY-MM", "YYYY-MM")``, inclusive) is set.
    """

    name: str
    variable: str
    above: bool = True
    level: float | None = None
    percentile: float | None = None
    mean_of: tuple[str, str] | None = None
    label: str = ""
    kind: str = dataclasses.field(default=THRESHOLD, init=False)

    def threshold(self, history: xr.Dataset) -> float:
        """Resolve the threshold against the observed ``history`` of :attr:`variable`."""
        if self.level is not None:
            return float(self.level)
        if self.variable not in history:
            raise DataError(
                f"event {self.name!r}: history has no variable {self.variable!r} to compute its "
                "threshold from; pass a history Dataset with that series or use `level = <number>`"
            )
        series = history[self.variable]
        if self.percentile is not None:
            values = series.values[np.isfinite(series.values)]
            if values.size == 0:
                raise DataError(
                    f"event {self.name!r}: history of {self.variable!r} has no observed values, "
                    "so its percentile is undefined; use `level = <number>`"
                )
            return float(np.percentile(values, self.percentile))
        assert self.mean_of is not None
        lo, hi = (pd.Period(m, freq="M") for m in self.mean_of)
        months = pd.DatetimeIndex(history[TIME].values).to_period("M")
        window = series.values[(months >= lo) & (months <= hi)]
        window = window[np.isfinite(window)]
        if window.size == 0:
            raise DataError(
                f"event {self.name!r}: history of {self.variable!r} has no observed values in "
                f"mean_of = [{self.mean_of[0]!r}, {self.mean_of[1]!r}]; choose a window with data "
                "or use `level = <number>`"
            )
        return float(window.mean())

    def describe_threshold(self) -> str:
        """Human description of the threshold, e.g. ``"mean of 2021-01..2021-12"``."""
        if self.level is not None:
            return f"level {self.level:g}"
        if self.percentile is not None:
            return f"{self.percentile:g}th percentile of history"
        assert self.mean_of is not None
        return f"mean of {self.mean_of[0]}..{self.mean_of[1]}"


Event = StateStartEvent | DurationEvent | ThresholdEvent

_FIELDS: dict[str, tuple[set[str], set[str]]] = {  # kind -> (required, optional)
    STATE_START: ({"name", "kind", "state"}, {"allow_ongoing", "label"}),
    DURATION_KIND: ({"name", "kind", "start", "end"}, {"allow_ongoing", "at_least", "label"}),
    THRESHOLD: (
        {"name", "kind", "variable"},
        {"above", "level", "percentile", "mean_of", "label"},
    ),
}


def _spec_key(spec: Mapping[str, Any]) -> str:
    """A canonical key of an event definition, ignoring its label."""
    items = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.items() if k != "label"}
    return repr(sorted(items.items()))


_DEFAULT_LABELS: dict[str, str] = {_spec_key(s): s["label"] for s in DEFAULT_EVENT_SPECS}


def event_label(event: Event) -> str:
    """The human label of ``event``: its ``label`` field, else one built from the definition
    (``"QE starts"``, ``"QE until tightening"``, ``"smallcap_volume above its 2021-01..2021-12
    average"``)."""
    if event.label:
        return event.label
    if isinstance(event, StateStartEvent):
        return f"{event.state.label} starts"
    if isinstance(event, DurationEvent):
        return f"{event.start.label} until {event.end.label}"
    side = "above" if event.above else "below"
    if event.mean_of is not None:
        return f"{event.variable} {side} its {event.mean_of[0]}..{event.mean_of[1]} average"
    return f"{event.variable} {side} {event.describe_threshold()}"


# --------------------------------------------------------------------------------------------------
# loading and validation
# --------------------------------------------------------------------------------------------------
def _where(i: int, spec: Mapping[str, Any]) -> str:
    name = spec.get("name")
    return f"events[{i}]" + (f" (name = {name!r})" if isinstance(name, str) else "")


def _parse_state(
    value: Any,
    field: str,
    where: str,
    labels: Mapping[str, Sequence[str]],
) -> StateRef:
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(
            f"{where}: field {field!r} must be a string 'policy:<label>' or 'macro:<label>', "
            f"got {value!r}"
        )
    chain, _, label = value.partition(":")
    chain, label = chain.strip(), label.strip()
    if chain not in labels:
        raise ConfigError(
            f"{where}: field {field!r} = {value!r} names unknown chain {chain!r}; "
            f"use one of {sorted(labels)}"
        )
    if label not in labels[chain]:
        raise ConfigError(
            f"{where}: field {field!r} = {value!r} names unknown {chain} state label {label!r}; "
            f"known labels: {list(labels[chain])}"
        )
    return StateRef(chain, label)  # type: ignore[arg-type]


def _parse_bool(value: Any, field: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: field {field!r} must be true or false, got {value!r}")
    return value


def _parse_number(value: Any, field: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: field {field!r} must be a finite number, got {value!r}")
    return float(value)


def _parse_one(
    i: int,
    spec: Any,
    labels: Mapping[str, Sequence[str]],
    variables: Sequence[str],
) -> Event:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"events[{i}] must be a table of fields, got {type(spec).__name__}")
    where = _where(i, spec)
    if "kind" not in spec:
        raise ConfigError(f"{where}: missing field 'kind'; use one of {list(KINDS)}")
    kind = spec["kind"]
    if kind not in KINDS:
        raise ConfigError(f"{where}: field 'kind' = {kind!r} is unknown; use one of {list(KINDS)}")
    required, optional = _FIELDS[kind]
    missing = sorted(required - set(spec))
    if missing:
        raise ConfigError(
            f"{where}: missing field {missing[0]!r} (a {kind} event needs {sorted(required)})"
        )
    unknown = sorted(set(spec) - required - optional)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field {unknown[0]!r} for a {kind} event; "
            f"allowed fields: {sorted(required | optional)}"
        )
    name = spec["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            f"{where}: field 'name' must be an identifier (letters, digits, underscores), got {name!r}"
        )
    label = spec.get("label", "")
    if not isinstance(label, str):
        raise ConfigError(f"{where}: field 'label' must be a string, got {label!r}")
    if not label:  # a shipped event written without its label keeps the shipped label
        label = _DEFAULT_LABELS.get(_spec_key(spec), "")

    if kind == STATE_START:
        return StateStartEvent(
            name=name,
            state=_parse_state(spec["state"], "state", where, labels),
            allow_ongoing=_parse_bool(spec.get("allow_ongoing", False), "allow_ongoing", where),
            label=label,
        )
    if kind == DURATION_KIND:
        at_least = spec.get("at_least", 6)
        if isinstance(at_least, bool) or not isinstance(at_least, int) or at_least < 1:
            raise ConfigError(
                f"{where}: field 'at_least' must be a positive integer (months), got {at_least!r}"
            )
        return DurationEvent(
            name=name,
            start=_parse_state(spec["start"], "start", where, labels),
            end=_parse_state(spec["end"], "end", where, labels),
            allow_ongoing=_parse_bool(spec.get("allow_ongoing", False), "allow_ongoing", where),
            at_least=at_least,
            label=label,
        )
    # threshold
    variable = spec["variable"]
    if variable not in variables:
        raise ConfigError(
            f"{where}: field 'variable' = {variable!r} is unknown; use one of {list(variables)}"
        )
    given = [f for f in ("level", "percentile", "mean_of") if f in spec]
    if len(given) != 1:
        raise ConfigError(
            f"{where}: a threshold event needs exactly one of the fields 'level', 'percentile', "
            f"'mean_of' (got {given or 'none'})"
        )
    level = percentile = None
    mean_of = None
    if "level" in spec:
        level = _parse_number(spec["level"], "level", where)
    elif "percentile" in spec:
        percentile = _parse_number(spec["percentile"], "percentile", where)
        if not 0.0 <= percentile <= 100.0:
            raise ConfigError(
                f"{where}: field 'percentile' must lie in [0, 100], got {percentile!r}"
            )
    else:
        raw = spec["mean_of"]
        if (
            not isinstance(raw, list | tuple)
            or len(raw) != 2
            or not all(isinstance(m, str) and _MONTH_RE.match(m) for m in raw)
        ):
            raise ConfigError(
                f'{where}: field \'mean_of\' must be two months ["YYYY-MM", "YYYY-MM"], got {raw!r}'
            )
        if raw[0] > raw[1]:
            raise ConfigError(f"{where}: field 'mean_of' = {raw!r} ends before it starts")
        mean_of = (raw[0], raw[1])
    return ThresholdEvent(
        name=name,
        variable=variable,
        above=_parse_bool(spec.get("above", True), "above", where),
        level=level,
        percentile=percentile,
        mean_of=mean_of,
        label=label,
    )


def load_events(
    specs: Iterable[Mapping[str, Any]],
    *,
    macro_labels: Sequence[str] = DEFAULT_MACRO_LABELS,
    policy_labels: Sequence[str] = DEFAULT_POLICY_LABELS,
    variables: Sequence[str] = FORECAST_VARIABLES,
) -> tuple[Event, ...]:
    """Build validated event definitions from dicts (a TOML ``[[events]]`` list).

    Raises :class:`~regimecast.errors.ConfigError` naming the event and the field at fault: unknown
    kind, missing or unknown field, unknown state label or variable, or a duplicated name.
    """
    labels = {"macro": list(macro_labels), "policy": list(policy_labels)}
    events: list[Event] = []
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        event = _parse_one(i, spec, labels, variables)
        if event.name in seen:
            raise ConfigError(
                f"events[{i}]: field 'name' = {event.name!r} is used by an earlier event"
            )
        seen.add(event.name)
        events.append(event)
    return tuple(events)


def default_events() -> tuple[Event, ...]:
    """The events shipped by default: ``qe_start``, ``first_cut``, ``bullish_window``,
    ``inflation_after_qe``, ``volume_return``."""
    return load_events(DEFAULT_EVENT_SPECS)


# --------------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------------
def _labels(forecast: xr.Dataset, chain: str) -> list[str]:
    attr = MACRO_LABELS_ATTR if chain == "macro" else POLICY_LABELS_ATTR
    default = DEFAULT_MACRO_LABELS if chain == "macro" else DEFAULT_POLICY_LABELS
    return [str(x) for x in np.atleast_1d(forecast.attrs.get(attr, default))]


def _in_state(forecast: xr.Dataset, ref: StateRef, name: str) -> np.ndarray:
    labels = _labels(forecast, ref.chain)
    if ref.label not in labels:
        raise ConfigError(
            f"event {name!r}: state {str(ref)!r} is not among the forecast's {ref.chain} labels "
            f"{labels}; fix the event or the model's state labels"
        )
    if ref.variable not in forecast:
        raise DataError(f"forecast has no variable {ref.variable!r} needed by event {name!r}")
    states = forecast[ref.variable].transpose(SAMPLE, HORIZON).values
    return states == labels.index(ref.label)


def _first_true(mask: np.ndarray) -> np.ndarray:
    """Index of the first True along axis 1 as float, NaN where none."""
    first = np.argmax(mask, axis=1).astype(float)
    first[~mask.any(axis=1)] = np.nan
    return first


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
        Whether each path is in the end state.

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


def _quantiles(values: np.ndarray, qs: Sequence[float]) -> list[float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [math.nan] * len(qs)
    return [float(v) for v in np.quantile(values, qs, method="inverted_cdf")]


def _hit_probabilities(first: np.ndarray, n_h: int) -> np.ndarray:
    """P(first == h) for h in 0..n_h-1 over all paths (NaN = never)."""
    hits = first[np.isfinite(first)].astype(int)
    return np.bincount(hits, minlength=n_h)[:n_h] / first.size


def _check_forecast(forecast: xr.Dataset) -> tuple[int, np.ndarray]:
    for dim in (SAMPLE, HORIZON):
        if dim not in forecast.dims:
            raise DataError(
                f"forecast Dataset has no {dim!r} dimension (dims: {dict(forecast.sizes)})"
            )
    horizon = np.asarray(forecast[HORIZON].values)
    if not np.array_equal(horizon, np.arange(horizon.size)):
        raise DataError(
            f"forecast horizon coordinate must be 0..H in steps of 1, got {horizon[:5]}...; "
            "horizon 0 is the as-of month"
        )
    return horizon.size, horizon


#: Per-event summary fields (floats) that ``evaluate_events`` returns with dim ``event``.
_SUMMARY_FIELDS: tuple[str, ...] = (
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
)


def evaluate_events(
    forecast: xr.Dataset,
    history: xr.Dataset,
    events: Sequence[Event],
) -> xr.Dataset:
    """Evaluate ``events`` on the simulated paths of ``forecast``.

    Parameters
    ----------
    forecast : Dataset
        dims ``sample`` (N) and ``horizon`` (0..H, with a ``date`` coordinate); ``macro_state`` and
        ``policy_state`` state indices and the simulated series.
    history : Dataset
        dim ``time``; the observed series, used to resolve threshold levels.
    events : sequence of events (see :func:`load_events`).

    Returns
    -------
    Dataset with coordinates ``event`` (names; plus ``kind`` and ``label`` on ``event``), ``horizon``
    (with ``date``), ``sample`` and ``duration`` (0..H months), and variables

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
      ``at_least_months``, ``p_at_least``, ``threshold``, ``n_occurred``.

    The conventions (conditioning, censoring, quantiles) are in the module docstring.
    """
    if not events:
        raise ConfigError("no events to evaluate; define at least one [[events]] table")
    n_h, horizon = _check_forecast(forecast)
    big_h = n_h - 1
    n = forecast.sizes[SAMPLE]
    dates = (
        pd.DatetimeIndex(forecast[DATE].values)
        if DATE in forecast.coords
        else pd.period_range(forecast.attrs["as_of"], periods=n_h, freq="M").to_timestamp()
    )
    within = [min(k, big_h) for k in WITHIN_MONTHS]
    qs = (0.5, 0.1, 0.9)

    per_path = ("first_month", "start_month", "duration_months", "censored", "probability",
                "duration_probability", "n_occurred")
    rows: dict[str, list[Any]] = {k: [] for k in (*per_path, *_SUMMARY_FIELDS)}
    nan_n = np.full(n, np.nan)
    nan_h = np.full(n_h, np.nan)
    for ev in events:
        start = dur = nan_n
        censored = np.zeros(n, dtype=bool)
        dur_prob = nan_h
        p_start = p_censored = p_at_least = thr = math.nan
        at_least = math.nan
        if isinstance(ev, StateStartEvent):
            first = state_start_months(
                _in_state(forecast, ev.state, ev.name), allow_ongoing=ev.allow_ongoing
            )
        elif isinstance(ev, DurationEvent):
            start = state_start_months(
                _in_state(forecast, ev.start, ev.name), allow_ongoing=ev.allow_ongoing
            )
            first, dur, censored = duration_months(start, _in_state(forecast, ev.end, ev.name))
        elif isinstance(ev, ThresholdEvent):
            if ev.variable not in forecast:
                raise DataError(
                    f"forecast has no variable {ev.variable!r} needed by event {ev.name!r}"
                )
            thr = ev.threshold(history)
            x = forecast[ev.variable].transpose(SAMPLE, HORIZON).values.astype(float)
            with np.errstate(invalid="ignore"):
                hit = x > thr if ev.above else x < thr
            hit[:, 0] = False
            first = _first_true(hit)
        else:  # pragma: no cover - load_events only builds the three kinds
            raise ConfigError(f"unknown event type {type(ev).__name__}")

        prob = _hit_probabilities(first, n_h)
        cum = np.cumsum(prob)
        if isinstance(ev, DurationEvent):
            started = np.isfinite(start)
            n_started = int(started.sum())
            p_start = n_started / n
            at_least = float(ev.at_least)
            if n_started:
                d_obs = dur[np.isfinite(dur)]
                dur_prob = np.bincount(d_obs.astype(int), minlength=n_h)[:n_h] / n_started
                p_censored = float(censored.sum()) / n_started
                lower_bound = big_h - start[censored] + 1
                p_at_least = (
                    float((d_obs >= ev.at_least).sum() + (lower_bound >= ev.at_least).sum())
                    / n_started
                )
                dur_cum = np.cumsum(dur_prob)
                p_within = [float(dur_cum[k]) for k in within]
            else:
                dur_prob = np.zeros(n_h)
                p_within = [math.nan] * len(within)
            p_never = p_censored
            med, q10, q90 = _quantiles(dur, qs)
        else:
            p_within = [float(cum[k]) for k in within]
            p_never = 1.0 - float(cum[-1])
            med, q10, q90 = _quantiles(first, qs)

        rows["first_month"].append(first)
        rows["start_month"].append(start)
        rows["duration_months"].append(dur)
        rows["censored"].append(censored)
        rows["probability"].append(prob)
        rows["duration_probability"].append(dur_prob)
        rows["median"].append(med)
        rows["q10"].append(q10)
        rows["q90"].append(q90)
        rows["p_never"].append(p_never)
        rows["p_start"].append(p_start)
        rows["p_censored"].append(p_censored)
        rows["at_least_months"].append(at_least)
        rows["p_at_least"].append(p_at_least)
        rows["threshold"].append(thr)
        rows["n_occurred"].append(int(np.isfinite(first).sum()))
        for k, p in zip(WITHIN_MONTHS, p_within, strict=True):
            rows[f"p_within_{k}m"].append(p)
        log.info("event %s: P(within horizon)=%.3f", ev.name, float(cum[-1]))

    names = [ev.name for ev in events]
    is_date = np.array([not isinstance(ev, DurationEvent) for ev in events])

    def _to_dates(months: list[float]) -> np.ndarray:
        out = np.full(len(months), np.datetime64("NaT"), dtype="datetime64[ns]")
        for i, m in enumerate(months):
            if is_date[i] and np.isfinite(m):
                out[i] = dates[int(m)].to_datetime64()
        return out

    probability = np.vstack(rows["probability"])
    data_vars: dict[str, Any] = {
        "first_month": ((EVENT, SAMPLE), np.vstack(rows["first_month"])),
        "start_month": ((EVENT, SAMPLE), np.vstack(rows["start_month"])),
        "duration_months": ((EVENT, SAMPLE), np.vstack(rows["duration_months"])),
        "censored": ((EVENT, SAMPLE), np.vstack(rows["censored"])),
        "probability": ((EVENT, HORIZON), probability),
        "cumulative": ((EVENT, HORIZON), np.cumsum(probability, axis=1)),
        "duration_probability": ((EVENT, DURATION), np.vstack(rows["duration_probability"])),
        "median_date": ((EVENT,), _to_dates(rows["median"])),
        "q10_date": ((EVENT,), _to_dates(rows["q10"])),
        "q90_date": ((EVENT,), _to_dates(rows["q90"])),
    }
    for key in _SUMMARY_FIELDS:
        data_vars[key] = ((EVENT,), np.asarray(rows[key], dtype=float))
    data_vars["n_occurred"] = ((EVENT,), np.asarray(rows["n_occurred"], dtype=np.int64))

    result = xr.Dataset(
        data_vars,
        coords={
            EVENT: names,
            "kind": (EVENT, [ev.kind for ev in events]),
            "label": (EVENT, [event_label(ev) for ev in events]),
            HORIZON: horizon,
            DATE: (HORIZON, dates.values),
            SAMPLE: forecast[SAMPLE].values if SAMPLE in forecast.coords else np.arange(n),
            DURATION: np.arange(n_h),
        },
        attrs={
            "as_of": str(forecast.attrs.get("as_of", pd.Timestamp(dates[0]).strftime("%Y-%m"))),
            "demo": int(forecast.attrs.get("demo", 0)),
            "scenario": str(forecast.attrs.get("scenario", "")),
            "n_paths": int(n),
            "horizon_months": int(big_h),
            "conventions": (
                "probability/cumulative: P(first occurrence at/by month h) over all paths; "
                "quantiles over paths where the event occurs (inverted CDF), p_never beside them; "
                "duration statistics conditional on the start within the horizon, censored "
                "windows reported as p_censored"
            ),
        },
    )
    return result


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


def event_summary_table(result: xr.Dataset) -> pd.DataFrame:
    """One row per event: quantiles and probabilities (see :func:`evaluate_events`).

    ``median``, ``q10``, ``q90`` hold month-start Timestamps for dated events (``unit == "date"``)
    and month counts for duration events (``unit == "months"``); ``*_months`` hold the numbers
    (months ahead of the as-of month, or duration months) for every event.
    """
    records = []
    for i, name in enumerate(result[EVENT].values):
        kind = str(result["kind"].values[i])
        is_dur = kind == DURATION_KIND
        rec: dict[str, Any] = {
            "event": str(name),
            "label": str(result["label"].values[i]),
            "kind": kind,
            "unit": "months" if is_dur else "date",
        }
        for q in ("median", "q10", "q90"):
            months = float(result[q].values[i])
            rec[q] = months if is_dur else pd.Timestamp(result[f"{q}_date"].values[i])
            rec[f"{q}_months"] = months
        for key in (
            *(f"p_within_{k}m" for k in WITHIN_MONTHS),
            "p_never",
            "p_start",
            "p_censored",
            "at_least_months",
            "p_at_least",
            "threshold",
        ):
            rec[key] = float(result[key].values[i])
        rec["n_occurred"] = int(result["n_occurred"].values[i])
        rec["n_paths"] = int(result.attrs.get("n_paths", result.sizes.get(SAMPLE, 0)))
        records.append(rec)
    df = pd.DataFrame.from_records(records, columns=list(SUMMARY_COLUMNS))
    for q in ("median", "q10", "q90"):  # keep Timestamps and month counts apart (no NaN -> NaT)
        df[q] = pd.Series([rec[q] for rec in records], index=df.index, dtype=object)
    return df

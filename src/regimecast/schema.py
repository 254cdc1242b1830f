"""The forecast Dataset's names: dimensions, variables, attributes, and the chains it declares.

One module owns these names; the producer (:mod:`regimecast.forecast`) and the consumers
(:mod:`regimecast.events`, :mod:`regimecast.report`, :mod:`regimecast.plots`) import them.

A forecast Dataset has

* dims ``sample`` (N paths) and ``horizon`` (0..H, 0 = the as-of month) with a ``date`` coordinate of
  month starts on ``horizon``;
* attrs ``as_of`` (``"YYYY-MM"``), ``chains`` (list of chain names, e.g. ``["macro", "rate", "bs"]``) and,
  for every chain ``c``, ``c_labels`` (the state labels, from the model config);
* for every chain ``c`` an integer variable ``c_state`` (sample, horizon) indexing ``c_labels``;
* the simulated series as float variables (sample, horizon).

A history Dataset (observed series up to the as-of month) has dim ``time`` and, per chain, the
smoothed state probabilities ``p_<chain>`` (time, <chain>).

A Dataset written without the ``chains`` attr (older runs) declares its chains through its
``<chain>_labels`` attrs that have a matching ``<chain>_state`` variable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from regimecast.errors import SchemaError

SAMPLE = "sample"
HORIZON = "horizon"
DATE = "date"
TIME = "time"
EVENT = "event"
DURATION = "duration"

AS_OF_ATTR = "as_of"
CHAINS_ATTR = "chains"
DEMO_ATTR = "demo"
SCENARIO_ATTR = "scenario"

_STATE_SUFFIX = "_state"
_LABELS_SUFFIX = "_labels"


def state_variable(chain: str) -> str:
    """The forecast variable holding ``chain``'s state index, e.g. ``"bs_state"``."""
    return f"{chain}{_STATE_SUFFIX}"


def labels_attr(chain: str) -> str:
    """The forecast attr holding ``chain``'s state labels, e.g. ``"bs_labels"``."""
    return f"{chain}{_LABELS_SUFFIX}"


def probability_variable(chain: str) -> str:
    """The history variable with ``chain``'s smoothed state probabilities, e.g. ``"p_bs"``."""
    return f"p_{chain}"


def _as_list(value: Any) -> list[str]:
    return [str(x) for x in np.atleast_1d(np.asarray(value, dtype=object))]


def chains(ds: xr.Dataset) -> list[str]:
    """The chains ``ds`` declares: its ``chains`` attr, else every ``<c>_labels`` attr with a
    ``<c>_state`` variable (in attr order)."""
    if CHAINS_ATTR in ds.attrs:
        return _as_list(ds.attrs[CHAINS_ATTR])
    found = [k[: -len(_LABELS_SUFFIX)] for k in ds.attrs if k.endswith(_LABELS_SUFFIX)]
    return [c for c in found if state_variable(c) in ds.variables]


def chain_labels(ds: xr.Dataset) -> dict[str, list[str]]:
    """``{chain: labels}`` of every chain ``ds`` declares."""
    out = {}
    for chain in chains(ds):
        attr = labels_attr(chain)
        if attr not in ds.attrs:
            raise SchemaError(
                f"forecast declares chain {chain!r} but has no attr {attr!r} with its state labels; "
                "write the forecast with regimecast.forecast.forecast"
            )
        out[chain] = _as_list(ds.attrs[attr])
    return out


def chain_attrs(labels: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The forecast attrs declaring ``labels`` (``{chain: labels}``): ``chains`` and ``<c>_labels``."""
    attrs: dict[str, Any] = {CHAINS_ATTR: list(labels)}
    attrs.update({labels_attr(c): [str(x) for x in v] for c, v in labels.items()})
    return attrs


def model_chain_labels(model: Any) -> dict[str, list[str]]:
    """``{chain: labels}`` of a model configuration: ``<chain>_labels`` of every chain the config
    declares in ``chains`` (``macro``, ``rate``, ``bs``)."""
    names = list(getattr(model, "chains", ("macro", "rate", "bs")))
    return {c: [str(x) for x in getattr(model, labels_attr(c))] for c in names}


def validate_forecast(ds: xr.Dataset) -> xr.Dataset:
    """Check ``ds`` against the forecast schema and return it.

    Raises :class:`~regimecast.errors.SchemaError` naming the missing or malformed dim, coordinate,
    attr or variable.
    """
    for dim in (SAMPLE, HORIZON):
        if dim not in ds.dims:
            raise SchemaError(
                f"forecast Dataset has no {dim!r} dimension (dims: {dict(ds.sizes)}); "
                "write it with regimecast.forecast.forecast"
            )
    horizon = np.asarray(ds[HORIZON].values) if HORIZON in ds.coords else None
    if horizon is None or not np.array_equal(horizon, np.arange(ds.sizes[HORIZON])):
        head = None if horizon is None else horizon[:5]
        raise SchemaError(
            f"forecast horizon coordinate must be 0..H in steps of 1, got {head}; "
            "horizon 0 is the as-of month"
        )
    if DATE not in ds.coords or ds[DATE].dims != (HORIZON,):
        raise SchemaError(f"forecast Dataset has no {DATE!r} coordinate on {HORIZON!r}")
    if AS_OF_ATTR not in ds.attrs:
        raise SchemaError(f"forecast Dataset has no attr {AS_OF_ATTR!r} (the as-of month YYYY-MM)")
    names = chains(ds)
    if not names:
        raise SchemaError(
            f"forecast Dataset declares no chains: attr {CHAINS_ATTR!r} is missing and no "
            "<chain>_labels attr has a <chain>_state variable"
        )
    for chain, labels in chain_labels(ds).items():
        var = state_variable(chain)
        if var not in ds:
            raise SchemaError(f"forecast declares chain {chain!r} but has no variable {var!r}")
        if set(ds[var].dims) != {SAMPLE, HORIZON}:
            raise SchemaError(f"forecast variable {var!r} must have dims (sample, horizon)")
        values = np.asarray(ds[var].values)
        if values.size and (values.min() < 0 or values.max() >= len(labels)):
            raise SchemaError(
                f"forecast variable {var!r} holds state indices outside 0..{len(labels) - 1} "
                f"(labels {labels})"
            )
    return ds
